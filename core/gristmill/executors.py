"""Running datatrove pipelines: on datatrove's own executors, quietly, with their stats read back.

Data stages built from datatrove steps (``crawl_filter``, the filters and mappers of :mod:`gristmill.kit`) call
:func:`run_datatrove` with an :class:`ExecutorConfig`, so every such stage scales out the same way.
"""

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from datatrove.executor.local import LocalPipelineExecutor
from loguru import logger as loguru_logger
from pydantic import BaseModel, ConfigDict, Field


class ExecutorConfig(BaseModel):
    """Where a datatrove pipeline runs: ``local`` (default), ``ray`` or ``slurm`` (datatrove's executors)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["local"] = Field("local", description="Executor: local (this machine).")
    tasks: int = Field(
        1, ge=1, description="datatrove tasks (input files are sharded over tasks; one output shard each)."
    )
    workers: int = Field(1, ge=1, description="Tasks run in parallel (local: processes; 1 = in this process).")


def run_datatrove(
    steps: Sequence[Any],
    executor: ExecutorConfig,
    logging_dir: Path,
    labels: Sequence[str] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, dict[str, float]] | list[dict[str, Any]]:
    """Run ``steps`` on the configured executor (logs/stats in ``logging_dir``, never in the hashed output).

    Returns the per-step metric totals by label (:func:`read_step_stats`) when ``labels`` are given, else the
    raw ``stats.json`` list.
    """
    runner = QuietLocalExecutor(
        list(steps),
        tasks=executor.tasks,
        workers=min(executor.workers, executor.tasks),
        logging_dir=str(logging_dir),
        skip_completed=False,
    )
    runner.run()
    stats = Path(logging_dir) / "stats.json"
    if labels is not None:
        return read_step_stats(stats, labels)
    return json.loads(stats.read_text())


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


def _total(value: Any) -> float:
    """A datatrove stats.json metric as a number (it is either a number or a dict with ``total``)."""
    if isinstance(value, Mapping):
        return value.get("total", 0) or 0
    return value or 0


def read_step_stats(stats_json: Path, labels: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per-step metric totals from the executor's ``stats.json`` (a list in pipeline order), by label.

    Each step's dict also holds ``_seconds``: its processing time summed over tasks.
    """
    entries = json.loads(Path(stats_json).read_text())
    if len(entries) != len(labels):
        raise RuntimeError(f"{stats_json}: {len(entries)} steps, expected {len(labels)}")
    out: dict[str, dict[str, float]] = {}
    for label, entry in zip(labels, entries, strict=True):
        metrics = {key: _total(value) for key, value in entry.get("stats", {}).items()}
        metrics["_seconds"] = _total(entry.get("time_stats", 0))
        out[label] = metrics
    return out
