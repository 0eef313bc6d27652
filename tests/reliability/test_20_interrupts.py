"""Case 20: an interrupt is not a failure. SIGINT (Ctrl-C, sent to the whole process group as a terminal does) or
SIGTERM (`kill PID`) to a real `gristmill run`, while a stage runs or while its output is being committed, stops the
run: no retry (the stages here have the default 2 retries), no "succeeded", exit 130 / 143, nothing left in the
store's `.tmp`, no artifact visible, and the Dagster run CANCELED. Also for `crawl_filter` on 2 worker processes,
whose workers and their helpers must not outlive the run, and for a run launched in the UI and terminated there."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import psutil
import pytest

from tests.conftest import REPO_ROOT, write_plugin_dist
from tests.reliability.test_04_killed_dagster_run import cli_env

TOY = """
name: toy
stages:
  words: {{stage: toy_words, config: {{words: [one, two, three, four], sleep_s: {sleep}}}}}
  upper: {{stage: toy_upper, inputs: {{documents: words}}}}
"""

# The toy stages, plus (when TOY_COMMIT_MARKER is set) a pause inside the store's commit: hashing the staged files
# writes the marker, then sleeps, so a signal lands in the middle of the commit.
PLUGIN = """
import os, time
from tests.support.toy_stages import *  # noqa
from tests.support.toy_stages import gristmill_register_stages  # noqa
import gristmill.engine.integrity as _integrity

_hash = _integrity.file_sha256

def _slow_hash(path):
    marker = os.environ.get("TOY_COMMIT_MARKER")
    if marker:
        with open(marker, "a") as f:
            f.write("hashing\\n")
        time.sleep(60)
    return _hash(path)

_integrity.file_sha256 = _slow_hash
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("interrupt-site") / "site"
    return write_plugin_dist(root, "gristmill_toy", {"toy": "gm_toy_slow_commit"}, {"gm_toy_slow_commit": PLUGIN})


def _wait_for(proc: subprocess.Popen, marker: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"`gristmill run` exited ({proc.returncode}) before {marker.name}:\n{out}\n{err[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"`gristmill run` never wrote {marker.name}")
        time.sleep(0.05)


def _interrupt(tmp_path: Path, site: Path, sig: signal.Signals, *, in_commit: bool) -> tuple[int, str, str, Path]:
    """Start `gristmill run`, signal it once the stage (or its commit) is under way; return (rc, out, err, store)."""
    (tmp_path / "p.yaml").write_text(TOY.format(sleep=0 if in_commit else 60))
    marker = tmp_path / ("committing" if in_commit else "running")
    extra = {"TOY_COMMIT_MARKER": str(marker)} if in_commit else {"TOY_STARTED_MARKER": str(marker)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gristmill.cli", "run", "p.yaml", "--store", "st"],
        env=cli_env(site, **extra),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        _wait_for(proc, marker)
        marker.unlink()  # a retry would write it again
        if sig == signal.SIGINT:
            os.killpg(proc.pid, sig)  # Ctrl-C: the terminal signals the whole foreground group
        else:
            os.kill(proc.pid, sig)  # `kill PID`
        out, err = proc.communicate(timeout=60)  # a retry would take 10 s, then the stage 60 s more
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    assert not marker.exists(), f"the stage ran again after the interrupt (retried):\n{out}\n{err[-3000:]}"
    return proc.returncode, out, err, tmp_path / "st"


def _assert_stopped_cleanly(rc: int, out: str, err: str, store: Path, sig: signal.Signals) -> None:
    log = f"stdout:\n{out}\nstderr:\n{err[-4000:]}"
    assert rc == 128 + sig, log
    assert "succeeded" not in out and "retry" not in err.lower(), log
    assert f"interrupted by {sig.name}" in err, log
    assert list((store / ".tmp").iterdir()) == [], log  # the staging folder was removed
    assert [p for p in store.rglob("manifest.json") if "dagster_home" not in p.parts] == [], log  # nothing committed
    with dg.DagsterInstance.from_config(str(store / "dagster_home")) as instance:
        runs = instance.get_runs()
        assert [run.status for run in runs] == [dg.DagsterRunStatus.CANCELED], log
        retries = [
            e for e in instance.all_logs(runs[0].run_id) if e.dagster_event and e.dagster_event.is_step_up_for_retry
        ]
        assert retries == [], log


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_a_stage_cancels_the_run(tmp_path, site, sig):
    rc, out, err, store = _interrupt(tmp_path, site, sig, in_commit=False)
    _assert_stopped_cleanly(rc, out, err, store, sig)


def test_ctrl_c_during_a_commit_cancels_the_run(tmp_path, site):
    rc, out, err, store = _interrupt(tmp_path, site, signal.SIGINT, in_commit=True)
    _assert_stopped_cleanly(rc, out, err, store, signal.SIGINT)


CRAWL = """
name: cf
sources:
  raw: {kind: warc, path: in}
stages:
  crawl: {stage: crawl_filter, inputs: {warcs: raw}, config: {url_filter: false, executor: {tasks: 2, workers: 2}}}
"""


def _pool_workers(pid: int) -> int:
    workers = 0
    for child in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            workers += "multiprocess.forkserver" in " ".join(child.cmdline())
    return workers


def test_sigterm_during_crawl_filter_on_two_workers_cancels_the_run_and_its_workers(tmp_path, site):
    from tests.plugins.test_crawl_filter import BREAD, GARDEN, _article, _write_warc

    (tmp_path / "in").mkdir()
    for k in range(2):  # ~20 s of work per file: the signal comes while both workers extract
        pages = [_article(f"Page {i}", (GARDEN if i % 2 else BREAD)[i % 3 :]).encode() for i in range(600)]
        records = [("response", f"https://site-{k}.org/{i}.html", page, "text/html") for i, page in enumerate(pages)]
        _write_warc(tmp_path / "in" / f"crawl-{k}.warc.gz", records)
    (tmp_path / "p.yaml").write_text(CRAWL)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gristmill.cli", "run", "p.yaml", "--store", "st"],
        env=cli_env(site),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while _pool_workers(proc.pid) < 3:  # the forkserver, its 2 workers (and their extraction helpers)
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        time.sleep(1)
        os.kill(proc.pid, signal.SIGTERM)  # this process only: its workers do not get the signal
        out, err = proc.communicate(timeout=60)
        time.sleep(1)
        left = _members(proc.pid)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    _assert_stopped_cleanly(proc.returncode, out, err, tmp_path / "st", signal.SIGTERM)
    assert left == [], [" ".join(p.cmdline())[:200] for p in left]


def _group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def test_a_second_interrupt_while_a_child_job_stops_kills_its_ranks():
    """Ctrl-C pressed again while `accelerate launch` ranks (their own session) are being stopped: they are killed,
    not left running."""
    from gristmill.engine.launch import _stop

    ranks = subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 60 & sleep 60 & wait"], start_new_session=True)
    time.sleep(0.3)  # the ranks ignore SIGTERM: _stop would wait 15 s before SIGKILL

    def second_ctrl_c(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, second_ctrl_c)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        with pytest.raises(KeyboardInterrupt):
            _stop(ranks)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    ranks.wait(10)
    deadline = time.monotonic() + 10
    while _members(ranks.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = _members(ranks.pid)
    if alive:
        os.killpg(ranks.pid, signal.SIGKILL)
    assert not alive, "the ranks outlived the second interrupt"


def _members(pgid: int) -> list[psutil.Process]:
    """The live (not zombie) processes of process group ``pgid``."""
    procs = [p for p in psutil.process_iter(["status"]) if _group(p.pid) == pgid]
    return [p for p in procs if p.info["status"] != psutil.STATUS_ZOMBIE]


LAUNCH = """mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) { __typename ... on LaunchRunSuccess { run { runId } } ... on Error { message } }
}"""
TERMINATE = """mutation Terminate($id: String!) {
  terminateRun(runId: $id) { __typename ... on TerminateRunFailure { message } ... on PythonError { message } }
}"""
STATUS = "query Run($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"


def test_terminate_in_the_ui_cancels_the_run_without_retry(tmp_path, site, monkeypatch):
    from tests.support.dagster_ui import start_ui, stop_ui

    marker = tmp_path / "running"
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), str(REPO_ROOT)]))
    monkeypatch.setenv("TOY_STARTED_MARKER", str(marker))
    monkeypatch.delenv("GRISTMILL_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    (tmp_path / "p.yaml").write_text(TOY.format(sleep=60))
    ui = start_ui(tmp_path, "--pipeline", str(tmp_path / "p.yaml"))
    try:
        selector = {"repositoryLocationName": "gristmill_pipelines.definitions", "repositoryName": "__repository__"}
        params = {"selector": {**selector, "jobName": "toy_job", "assetSelection": [{"path": ["words"]}]}}
        launched = ui.graphql(LAUNCH, {"params": {**params, "runConfigData": {}}})["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert time.monotonic() < deadline, f"the stage never started:\n{ui.tail()}"
            time.sleep(0.2)
        marker.unlink()
        terminated = ui.graphql(TERMINATE, {"id": run_id})["terminateRun"]
        assert terminated["__typename"] == "TerminateRunSuccess", terminated
        deadline = time.monotonic() + 60
        while (status := ui.graphql(STATUS, {"id": run_id})["runOrError"]["status"]) not in (
            "SUCCESS",
            "FAILURE",
            "CANCELED",
        ):
            assert time.monotonic() < deadline, f"run {run_id} still {status}:\n{ui.tail()}"
            time.sleep(0.5)
        assert status == "CANCELED" and not marker.exists(), ui.tail()  # before: retried 10 s later, then SUCCESS
        assert list((ui.store / ".tmp").iterdir()) == []
    finally:
        stop_ui(ui)
