"""SIGINT and SIGTERM for a CLI command that runs pipelines: both stop it, and it exits ``128 + signal``.

While a Dagster run executes, Dagster installs its own handlers (a signal inside a step interrupts the step;
elsewhere it is only noted), so a handler of ours would not see it. :func:`watch_signals` therefore also records
every SIGINT/SIGTERM through Python's wakeup fd, which the interpreter writes whatever Python-level handler is
installed; :func:`received` reads it after the run. Outside Dagster, SIGTERM raises ``KeyboardInterrupt`` like
SIGINT (by default it would kill the process on the spot, before any cleanup). After an interrupt,
:func:`stop_children` ends whatever the stage left running.
"""

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator

WATCHED = (signal.SIGINT, signal.SIGTERM)
_state: dict[str, int | None] = {"fd": None}
_seen: list[signal.Signals] = []


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM outside a Dagster run (``signum`` says which)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signal.Signals(signum)


def _raise(signum: int, frame: object) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def watch_signals() -> Iterator[None]:
    """Within: SIGINT and SIGTERM raise :class:`Interrupted` and are recorded for :func:`received` (main thread
    only; elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read, write = os.pipe()
    os.set_blocking(read, False)
    os.set_blocking(write, False)
    old_fd = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    old = {sig: signal.getsignal(sig) for sig in WATCHED}
    _seen.clear()
    _state["fd"] = read
    _subreaper(True)
    try:
        for sig in WATCHED:
            signal.signal(sig, _raise)
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(old_fd)
        _subreaper(False)
        _state["fd"] = None
        os.close(read)
        os.close(write)


def _subreaper(on: bool) -> None:
    """Linux: descendants orphaned while this process runs (a datatrove worker's extraction helper, whose worker the
    pool terminated) are re-parented to this process instead of init, so :func:`stop_children` finds them."""
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, int(on), 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def received() -> signal.Signals | None:
    """The first SIGINT/SIGTERM received within :func:`watch_signals` so far (None: none, or not watching)."""
    fd = _state["fd"]
    if fd is not None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while data := os.read(fd, 512):
                _seen.extend(signal.Signals(b) for b in data if b in WATCHED)
    return _seen[0] if _seen else None


def exit_code(sig: int) -> int:
    """The shell's convention: 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM); first stops what the
    interrupted work left running (see :func:`stop_children`)."""
    stop_children()
    return 128 + int(sig)


def stop_children(wait_s: float = 5.0) -> list[int]:
    """SIGTERM every process this one started that is still alive, then SIGKILL what is left after ``wait_s``.

    A SIGTERM sent to this process alone (``kill PID``; Ctrl-C signals the whole process group) does not reach a
    stage's worker processes: datatrove's forkserver and the extraction helpers of its pool workers were seen to
    outlive the run. A multiprocessing resource tracker is left alone: it ignores SIGTERM by design and exits,
    after freeing what the workers leaked, once this process is gone. Returns the pids signalled.
    """
    import psutil

    def tracker(proc: psutil.Process) -> bool:
        with contextlib.suppress(psutil.Error):
            return "resource_tracker" in " ".join(proc.cmdline())
        return False

    children = [child for child in psutil.Process().children(recursive=True) if not tracker(child)]
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=wait_s)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()
    return [child.pid for child in children]


def interrupted_exit(exc: KeyboardInterrupt, what: str) -> int:
    """Report an interrupt that ended ``what`` (e.g. "gristmill run") and return its exit code."""
    sig = getattr(exc, "signum", None) or received() or signal.SIGINT
    print(f"gristmill: interrupted by {signal.Signals(sig).name}: {what} stopped", file=sys.stderr, flush=True)
    return exit_code(sig)
