"""The Dagster instance gristmill runs on: where it lives, its default settings, and slots left by dead runs."""

import fcntl
import os
import socket
from pathlib import Path
from typing import Any

DAGSTER_YAML = """\
# Written by gristmill for a local instance (SQLite under this folder); edit freely, it is not rewritten.
# A team instance on PostgreSQL: see docs/operations.md and docs/examples/dagster-postgres.yaml.
telemetry:
  enabled: false
nux:
  enabled: false       # no "join the community" dialog over the UI on first visit
concurrency:
  pools:
    default_limit: 1   # one slot per pool: training stages share the pool "gristmill_accelerator"
"""
PID_TAG, HOST_TAG = "gristmill/pid", "gristmill/host"


def dagster_home(store: Path) -> Path:
    """``$DAGSTER_HOME`` if set, else ``<store>/dagster_home`` (created, with a dagster.yaml if it has none)."""
    home = Path(os.environ.get("DAGSTER_HOME") or store.resolve() / "dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML, encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def open_instance() -> Any:
    """``DagsterInstance.get()``, created under a lock: two first runs on a fresh SQLite home would otherwise race
    creating its tables ("table runs already exists")."""
    import dagster as dg

    home = Path(os.environ["DAGSTER_HOME"])
    with open(home / ".gristmill-init.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return dg.DagsterInstance.get()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def process_tags() -> dict[str, str]:
    """Run tags naming this process, so a later run can tell whether it died."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_dead_runs(instance: Any) -> list[str]:
    """Mark runs of this host whose in-process runner was killed as failed, and free the pool slots held by runs
    that are over or dead.

    A ``gristmill run`` killed mid-stage leaves its run STARTED (and its slot claimed); without this the UI would show
    it running forever and the next run of a pooled (training) stage would wait forever. Returns the run ids released.
    """
    from dagster import DagsterRunStatus, RunsFilter

    released = []
    # runs of this host whose `gristmill run` process is gone: failed, so the UI does not show them running forever
    live = RunsFilter(
        statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING], tags={HOST_TAG: socket.gethostname()}
    )
    for run in instance.get_runs(filters=live):
        pid = run.tags.get(PID_TAG)
        if pid is not None and pid.isdigit() and not _alive(int(pid)):
            instance.report_run_failed(run, f"its process (pid {pid}) is gone")
            released.append(run.run_id)
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return sorted(set(released))
    for pool in storage.get_concurrency_keys():
        for run_id in storage.get_concurrency_info(pool).active_run_ids:
            run = instance.get_run_by_id(run_id)
            dead = run is None or run.is_finished
            if run is not None and not dead and run.tags.get(HOST_TAG) == socket.gethostname():
                pid = run.tags.get(PID_TAG)
                dead = pid is not None and pid.isdigit() and not _alive(int(pid))
                if dead and run.status in (DagsterRunStatus.STARTED, DagsterRunStatus.STARTING):
                    instance.report_run_failed(run, f"its process (pid {pid}) is gone; pool slots released")
            if dead:
                storage.free_concurrency_slots_for_run(run_id)
                released.append(run_id)
    return sorted(set(released))
