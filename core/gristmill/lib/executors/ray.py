"""``kind: ray``: datatrove's ``RayPipelineExecutor`` on a local Ray started for the run or an existing cluster.

Ray is an optional extra (``gristmill[ray]``), imported lazily. Failed tasks raise :class:`ExecutorError` with the
task log's tail.
"""

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from gristmill.lib.executors.local import quiet_datatrove_logs
from gristmill.lib.executors.stats import ExecutorError, incomplete_ranks, log_tail

if TYPE_CHECKING:
    from gristmill.lib.executors import ExecutorConfig


class RayOptions(BaseModel):
    """Options of ``kind: ray`` (datatrove's ``RayPipelineExecutor``; needs the ``ray`` extra)."""

    model_config = ConfigDict(extra="forbid")

    address: str | None = Field(
        None,
        description="Ray cluster: null starts a local Ray on this machine for the run and stops it after; 'auto' "
        "joins the cluster this machine belongs to (`ray start`); 'HOST:PORT' or 'ray://HOST:10001' a given one. "
        "Unused when this process is already connected to Ray.",
    )
    num_cpus: int | None = Field(
        None, ge=1, description="CPUs of the local Ray started when address is null (null: all of this machine's)."
    )
    cpus_per_task: int = Field(1, ge=1, description="CPUs Ray reserves for each task.")
    mem_per_cpu_gb: float = Field(2.0, gt=0, description="Memory (GB) Ray reserves per CPU of a task.")
    gpus_per_task: int = Field(0, ge=0, description="GPUs Ray reserves for each task.")
    tasks_per_job: int = Field(1, ge=1, description="datatrove tasks run by one Ray task (in parallel processes).")
    time_limit_s: int | None = Field(
        None, ge=1, description="A Ray task running longer is killed (datatrove retries it up to 3 times); null: none."
    )
    runtime_env: dict[str, Any] | None = Field(
        None,
        description="Ray runtime_env given to ray.init when this run connects (e.g. env_vars). The cluster's nodes "
        "need gristmill and the stage's plugin packages installed.",
    )


def run_ray(steps: list[Any], executor: "ExecutorConfig", logging_dir: Path, log: Callable[[str], None]) -> None:
    """datatrove's ``RayPipelineExecutor`` on the configured cluster (a local one started for the run by default)."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError("executor kind 'ray' needs Ray, an optional extra: pip install 'gristmill[ray]'") from exc
    from datatrove.executor.ray import RayPipelineExecutor

    opts = executor.ray
    started = False
    if not ray.is_initialized():
        local = opts.address is None
        log(f"ray: {'starting a local Ray' if local else f'connecting to {opts.address}'}")
        ray.init(
            address="local" if local else opts.address,
            num_cpus=opts.num_cpus if local else None,
            include_dashboard=False if local else None,
            log_to_driver=False,
            runtime_env=opts.runtime_env,
            configure_logging=False,
        )
        started = True
    try:
        _check_ray_resources(ray.cluster_resources(), opts)
        with quiet_datatrove_logs():
            runner = RayPipelineExecutor(
                steps,
                tasks=executor.tasks,
                workers=min(executor.workers, executor.tasks),
                logging_dir=str(logging_dir),
                skip_completed=False,
                cpus_per_task=opts.cpus_per_task,
                mem_per_cpu_gb=opts.mem_per_cpu_gb,
                gpus_per_task=opts.gpus_per_task,
                tasks_per_job=opts.tasks_per_job,
                time=opts.time_limit_s,
            )
            log(f"ray: running {executor.tasks} task(s)")
            runner.run()
    finally:
        if started:
            ray.shutdown()
    failed = incomplete_ranks(logging_dir, executor.tasks)
    if failed:
        logs = logging_dir / "logs"
        first = logs / f"task_{failed[0]:05d}.log"
        raise ExecutorError(
            f"ray: {len(failed)} of {executor.tasks} task(s) failed (ranks {failed[:20]}); task logs: {logs}\n"
            f"--- last lines of {first.name}:\n{log_tail(first)}"
        )


def _check_ray_resources(resources: Mapping[str, float], opts: RayOptions) -> None:
    """Fail now instead of waiting forever for a task the cluster can never place."""
    need = {
        "CPU": opts.cpus_per_task,
        "memory": opts.mem_per_cpu_gb * opts.cpus_per_task * 1024**3,
        "GPU": opts.gpus_per_task,
    }
    short = {k: (v, resources.get(k, 0)) for k, v in need.items() if v and resources.get(k, 0) < v}
    if short:
        detail = ", ".join(f"{k}: task needs {v:g}, cluster has {have:g}" for k, (v, have) in short.items())
        raise ExecutorError(
            f"ray: one task does not fit on the cluster ({detail}); lower ray.cpus_per_task/"
            "mem_per_cpu_gb/gpus_per_task or grow the cluster"
        )
