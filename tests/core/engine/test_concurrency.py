"""The training pool, through the real CLI on one SQLite Dagster instance: two runs of stages sharing a pool never
overlap (gristmill's dagster.yaml gives every pool one slot), without the pool they do, and a run killed while
holding the slot does not block the next one."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO_ROOT


def _pipeline(root: Path, pool: str | None, seconds: float = 2.5) -> Path:
    stage = {"stage": "toy_sleep", "config": {"seconds": seconds}, "pool": pool}
    root.mkdir(parents=True, exist_ok=True)
    path = root / "p.yaml"
    path.write_text(json.dumps({"name": "p", "store": str(root / "store"), "stages": {"a": stage, "b": stage}}))
    return path


def _start(root: Path, site: Path, name: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO_ROOT)])}
    env.pop("DAGSTER_HOME", None)  # <store>/dagster_home, with the dagster.yaml gristmill writes
    env.pop("GRISTMILL_DISABLE_PLUGIN_AUTOLOAD", None)
    return subprocess.Popen(
        [sys.executable, "-m", "gristmill.cli", "run", str(root / "p.yaml"), "--select", name],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out[-3000:]
    return out


def _times(root: Path, name: str) -> tuple[float, float]:
    latest = (root / "store" / "p" / name / "_" / "latest").read_text().strip()
    start, end = json.loads((root / "store" / "p" / name / "_" / latest / "times.json").read_text())
    return start, end


def _both(root: Path, site: Path, pool: str | None) -> list[tuple[float, float]]:
    _pipeline(root, pool)
    procs = [_start(root, site, name) for name in ("a", "b")]
    for proc in procs:
        _finish(proc)
    return sorted([_times(root, "a"), _times(root, "b")])


def test_stages_in_one_pool_run_one_at_a_time(tmp_path, toy_plugin_site):
    (_, first_end), (second_start, _) = _both(tmp_path / "pooled", toy_plugin_site, "gristmill_accelerator")
    assert second_start >= first_end  # the second run waited for the slot
    (_, first_end), (second_start, _) = _both(tmp_path / "free", toy_plugin_site, None)
    assert second_start < first_end  # control: without a pool the two runs overlap


def test_a_killed_run_does_not_hold_the_pool_slot(tmp_path, toy_plugin_site):
    root = tmp_path / "killed"
    _pipeline(root, "gristmill_accelerator", seconds=60)
    doomed = _start(root, toy_plugin_site, "a")
    deadline = time.monotonic() + 120
    while not list((root / "store" / ".tmp").glob("*")):  # stage a is running: it holds the slot
        assert doomed.poll() is None and time.monotonic() < deadline, doomed.stdout.read()[-3000:]
        time.sleep(0.2)
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait()
    _pipeline(root, "gristmill_accelerator", seconds=0.1)
    out = _finish(_start(root, toy_plugin_site, "b"))  # would wait forever on a leaked slot
    assert "was killed: marked failed, its pool slots released" in out
    assert (root / "store" / "p" / "b" / "_" / "latest").is_file()
    assert not (root / "store" / "p" / "a").exists()
