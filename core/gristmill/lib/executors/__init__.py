"""Running datatrove pipelines: on datatrove's own executors, quietly, with their stats read back.

Data stages built from datatrove steps (``crawl_filter``, the filters and mappers of :mod:`gristmill.lib.kit`) call
:func:`run_datatrove` with an :class:`ExecutorConfig`, so every such stage scales out the same way:

- ``local``: datatrove's ``LocalPipelineExecutor`` (``workers`` processes; 1 = in this process, quiet).
- ``ray``: datatrove's ``RayPipelineExecutor`` on a local Ray started for the run, or an existing cluster
  (``ray`` extra, imported lazily). Failed tasks raise :class:`ExecutorError` with the task log's tail.
- ``slurm``: datatrove's ``SlurmPipelineExecutor`` writes the job script and submits one job array with ``sbatch``;
  :func:`run_datatrove` then waits for every task's completion file (``squeue`` tells when the job is gone), sums the
  tasks' stats itself (no merge job) and raises naming the slurm log folder when tasks failed. Without ``sbatch``
  the script is written and the error says where. The logging folder, the outputs and the inputs must be on
  storage the nodes share: for a stage, the store's root.

Outputs are the same bytes on every executor (same shards per task): :mod:`~gristmill.lib.executors.output` holds
the deterministic writer; :mod:`~gristmill.lib.executors.local`, :mod:`~gristmill.lib.executors.ray` and
:mod:`~gristmill.lib.executors.slurm` the executors; :mod:`~gristmill.lib.executors.stats` reads back what the
tasks left.
"""

import json
import logging
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gristmill.lib.executors.local import QuietLocalExecutor, quiet_datatrove_logs
from gristmill.lib.executors.output import GZIP_DETERMINISTIC, DeterministicJsonlWriter
from gristmill.lib.executors.ray import RayOptions, run_ray
from gristmill.lib.executors.slurm import GristmillSlurmExecutor, SlurmOptions, run_slurm, slurm_executor
from gristmill.lib.executors.stats import ExecutorError, merge_task_stats, read_step_stats

__all__ = [
    "GZIP_DETERMINISTIC",
    "DeterministicJsonlWriter",
    "ExecutorConfig",
    "ExecutorError",
    "GristmillSlurmExecutor",
    "QuietLocalExecutor",
    "RayOptions",
    "SlurmOptions",
    "quiet_datatrove_logs",
    "read_step_stats",
    "run_datatrove",
    "slurm_executor",
]


class ExecutorConfig(BaseModel):
    """Where a datatrove pipeline runs: ``local`` (default), ``ray`` or ``slurm`` (datatrove's executors).

    With ``ray`` and ``slurm`` the store (the stage's output and scratch folders, where datatrove's logging folder
    lives) and the input files must be on storage every node sees at the same path.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["local", "ray", "slurm"] = Field(
        "local",
        description="Executor: local (this machine), ray (a Ray cluster, `ray` extra) or slurm (an sbatch job array).",
    )
    tasks: int = Field(
        1, ge=1, description="datatrove tasks (input files are sharded over tasks; one output shard each)."
    )
    workers: int = Field(
        1,
        ge=1,
        description="Tasks run at the same time (capped at tasks). local: processes, 1 = in this process; "
        "ray: concurrent Ray tasks; slurm: the job array's %N limit.",
    )
    ray: RayOptions = Field(default_factory=RayOptions, description="Options of kind ray.")
    slurm: SlurmOptions = Field(default_factory=SlurmOptions, description="Options of kind slurm.")


def run_datatrove(
    steps: Sequence[Any],
    executor: ExecutorConfig,
    logging_dir: Path,
    labels: Sequence[str] | None = None,
    log: Callable[[str], None] | None = None,
    *,
    progress: Callable[[int, int | None, str], None] | None = None,
) -> dict[str, dict[str, float]] | list[dict[str, Any]]:
    """Run ``steps`` on the configured executor (logs/stats in ``logging_dir``, never in the hashed output).

    ``log`` gets messages about submission/waiting and ``progress(done, total, message)`` the count of finished
    tasks (ray: at the end; slurm: while waiting). Returns the per-step metric totals by label
    (:func:`read_step_stats`) when ``labels`` are given, else the raw ``stats.json`` list. Raises
    :class:`ExecutorError` when tasks fail on Ray or Slurm, or when ``sbatch`` is missing.
    """
    logging_dir = Path(logging_dir).absolute()
    workers = min(executor.workers, executor.tasks)
    if executor.kind == "local":
        QuietLocalExecutor(
            list(steps), tasks=executor.tasks, workers=workers, logging_dir=str(logging_dir), skip_completed=False
        ).run()
    else:
        shutil.rmtree(logging_dir / "completions", ignore_errors=True)  # completion files tell what finished
        (logging_dir / "stats.json").unlink(missing_ok=True)
        if executor.kind == "ray":
            run_ray(list(steps), executor, logging_dir, log or _default_log)
        else:
            run_slurm(list(steps), executor, logging_dir, log or _default_log, progress)
        merge_task_stats(logging_dir, executor.tasks)
    if progress is not None:
        progress(executor.tasks, executor.tasks, "tasks done")
    stats = logging_dir / "stats.json"
    if labels is not None:
        return read_step_stats(stats, labels)
    return json.loads(stats.read_text())


def _default_log(message: str) -> None:
    logging.getLogger("gristmill.lib.executors").info(message)
