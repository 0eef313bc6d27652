"""Killing a child process at a known point: wait for the marker file it writes, then SIGKILL it."""

import os
import signal
import subprocess
import time
from pathlib import Path


def sigkill_when_marked(proc: subprocess.Popen, marker: Path, timeout: float = 180) -> None:
    """Wait until ``proc`` creates ``marker`` (failing if it exits first or never does), then SIGKILL it and reap it.

    The child is killed in any case, also when the wait fails.
    """
    try:
        deadline = time.monotonic() + timeout
        while not marker.exists():
            assert proc.poll() is None, f"the child exited ({proc.returncode}) before it wrote {marker.name}"
            assert time.monotonic() < deadline, f"the child never wrote {marker.name}"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
