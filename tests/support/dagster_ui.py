"""`gristmill ui` (dagster dev: webserver + daemon) started for a test, talked to over GraphQL, stopped with its
whole process group."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent


@dataclass
class UI:
    """A running `gristmill ui`: its base URL, its store and its log file."""

    url: str
    store: Path
    log: Path
    proc: subprocess.Popen

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST a GraphQL query; return ``data`` (fails on GraphQL-level errors)."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        req = urllib.request.Request(f"{self.url}/graphql", body, {"Content-Type": "application/json"})
        reply = json.loads(urllib.request.urlopen(req, timeout=60).read())
        assert "errors" not in reply, reply["errors"]
        return reply["data"]

    def tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_ui(workdir: Path, *extra: str, timeout: float = 180) -> UI:
    """Start `gristmill ui --store <workdir>/st` in its own process group; return once /server_info answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    port, log = _free_port(), workdir / "ui.log"
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    with log.open("w") as out:  # a file, not a pipe: `dagster dev` logs enough to fill a pipe and block
        proc = subprocess.Popen(
            [str(BIN / "gristmill"), "ui", "--port", str(port), "--store", str(workdir / "st"), *extra],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    ui = UI(f"http://127.0.0.1:{port}", workdir / "st", log, proc)
    deadline = time.monotonic() + timeout
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"`gristmill ui` exited with {proc.returncode}:\n{ui.tail()}")
            try:
                urllib.request.urlopen(f"{ui.url}/server_info", timeout=2).read()
                return ui
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"`gristmill ui` did not answer /server_info within {timeout:.0f} s:\n{ui.tail()}")
                time.sleep(1)
    except BaseException:
        stop_ui(ui)
        raise


def stop_ui(ui: UI) -> None:
    """SIGTERM the whole process group (dagster dev, webserver, daemon, code servers, run workers); SIGKILL what is
    left after 30 s."""

    def group_alive() -> bool:
        try:
            os.killpg(ui.proc.pid, 0)
            return True
        except ProcessLookupError:
            return False

    if group_alive():
        os.killpg(ui.proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while group_alive() and time.monotonic() < deadline:
        ui.proc.poll()  # reap the leader, or the group stays "alive" as a zombie
        time.sleep(0.5)
    if group_alive():
        os.killpg(ui.proc.pid, signal.SIGKILL)
    ui.proc.wait(timeout=30)
