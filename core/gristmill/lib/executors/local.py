"""The local executor, quiet: datatrove's ``LocalPipelineExecutor`` without its loguru output."""

import contextlib
from collections.abc import Iterator
from typing import Any

from datatrove.executor.local import LocalPipelineExecutor
from loguru import logger as loguru_logger

_quiet_depth = 0


def _no_task_logger(*args: Any, **kwargs: Any) -> None:
    return None


@contextlib.contextmanager
def quiet_datatrove_logs() -> Iterator[None]:
    """Silence datatrove's loguru output without touching anyone else's loguru handlers.

    datatrove's executor calls ``logger.remove()`` for every task (dropping all loguru handlers in the
    process) and re-adds its own stderr/file handlers at INFO. Inside this block its task-logger hooks
    are no-ops and records from ``datatrove.*`` modules are disabled; other loguru users keep their
    handlers. What datatrove would warn about (extraction timeouts/errors) is counted in its stats,
    which the stage reports as warnings. Re-entrant.
    """
    global _quiet_depth
    import datatrove.executor.base as executor_base

    if _quiet_depth:
        yield
        return
    saved = executor_base.add_task_logger, executor_base.close_task_logger
    executor_base.add_task_logger = _no_task_logger
    executor_base.close_task_logger = _no_task_logger
    loguru_logger.disable("datatrove")
    _quiet_depth += 1
    try:
        yield
    finally:
        _quiet_depth -= 1
        loguru_logger.enable("datatrove")
        executor_base.add_task_logger, executor_base.close_task_logger = saved


class QuietLocalExecutor(LocalPipelineExecutor):
    """``LocalPipelineExecutor`` that runs under :func:`quiet_datatrove_logs` (also in its worker processes)."""

    def run(self) -> Any:
        with quiet_datatrove_logs():
            return super().run()

    def _launch_run_for_rank(self, rank: int, ranks_q: Any, completed: Any = None, completed_lock: Any = None) -> Any:
        with quiet_datatrove_logs():  # in a worker process when workers > 1
            return super()._launch_run_for_rank(rank, ranks_q, completed, completed_lock)

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1) -> Any:
        with quiet_datatrove_logs():
            return super()._run_for_rank(rank, local_rank, node_rank)
