"""Case 9: the UI binds to loopback by default; binding beyond it needs --allow-remote and prints a warning.
The listening sockets of the real `gristmill ui` process group are read from the kernel (psutil)."""

import os

import psutil
import pytest

from gristmill.cli import main
from tests.support.dagster_ui import start_ui, stop_ui


def _listening_hosts(ui) -> set[str]:
    port = int(ui.url.rsplit(":", 1)[1])
    group = os.getpgid(ui.proc.pid)
    pids = {p.pid for p in psutil.process_iter() if _pgid(p.pid) == group}
    return {
        c.laddr.ip
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port and c.pid in pids
    }


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def test_non_loopback_host_is_refused_without_the_flag(capsys):
    for host in ("0.0.0.0", "::", "192.0.2.7", "example.org"):
        assert main(["ui", "--host", host]) == 2
        err = capsys.readouterr().err
        assert f"refusing to bind {host!r} (not loopback) without --allow-remote" in err


@pytest.mark.slow
def test_default_bind_is_loopback_and_remote_bind_warns(tmp_path):
    ui = start_ui(tmp_path / "default", "--read-only")
    try:
        assert _listening_hosts(ui) == {"127.0.0.1"}
        assert "WARNING" not in ui.tail()
    finally:
        stop_ui(ui)
    ui = start_ui(tmp_path / "remote", "--read-only", "--host", "0.0.0.0", "--allow-remote")
    try:
        assert _listening_hosts(ui) == {"0.0.0.0"}
        assert "WARNING: the Dagster UI on 0.0.0.0" in ui.tail() and "has no authentication" in ui.tail()
    finally:
        stop_ui(ui)
