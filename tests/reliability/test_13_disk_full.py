"""Also: the disk fills up while an artifact is written → the run fails with a clear message, nothing is committed,
the previous artifact and `latest` stay intact and the store verifies.

The store lives on a 6 MB tmpfs mounted by the test (root only); where mounting is not allowed, the stage itself
raises ``OSError(ENOSPC)`` once it has written the same 6 MB (the write wrapper the issue allows).
"""

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.reliability.test_04_killed_dagster_run import cli_env, gristmill

PIPELINE = """
name: fill
stages:
  blob: {{stage: toy_fill, config: {{megabytes: {mb}{limit}}}}}
"""


@contextlib.contextmanager
def small_disk(folder: Path, megabytes: int) -> Iterator[bool]:
    """Mount a ``megabytes`` tmpfs on ``folder``; yield whether it is mounted (unmounted afterwards)."""
    folder.mkdir()
    mounted = False
    if os.geteuid() == 0:
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(folder)], capture_output=True, text=True
        )
        mounted = proc.returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], check=False)


def test_disk_full_fails_clearly_and_keeps_the_previous_artifact(tmp_path, toy_plugin_site):
    with small_disk(tmp_path / "disk", 6) as mounted:
        limit = "" if mounted else ", disk_limit_mb: 6"
        (tmp_path / "small.yaml").write_text(PIPELINE.format(mb=1, limit=limit))
        (tmp_path / "big.yaml").write_text(PIPELINE.format(mb=12, limit=limit))
        store = tmp_path / "disk" / "st"
        env_home = {"DAGSTER_HOME": str(tmp_path / "dagster_home")}  # the instance's SQLite is not on the full disk
        (tmp_path / "dagster_home").mkdir()

        def run(pipeline: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [sys.executable, "-m", "gristmill.cli", "run", pipeline, "--store", str(store)],
                env={**cli_env(toy_plugin_site), **env_home},
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=300,
            )

        first = run("small.yaml")
        assert first.returncode == 0, first.stderr[-3000:]
        latest = (store / "fill" / "blob" / "_" / "latest").read_text()

        full = run("big.yaml")
        assert full.returncode == 1
        message = full.stdout + full.stderr
        assert f"no space left on the device of the store {store}" in message, message[-3000:]
        assert "Nothing was committed; the previous artifact and `latest` are unchanged" in message
        assert "STEP_UP_FOR_RETRY" not in message  # a full disk is not retried over and over

        assert (store / "fill" / "blob" / "_" / "latest").read_text() == latest
        assert [p.name for p in (store / "fill" / "blob" / "_").iterdir() if p.is_dir()] == [latest.strip()]
        assert list((store / ".tmp").iterdir()) == []  # the partial write is gone, space is free again
        verify = gristmill(["store", "verify", "--store", str(store)], toy_plugin_site, tmp_path)
        assert verify.returncode == 0 and "1 artifacts checked" in verify.stdout, verify.stdout + verify.stderr
