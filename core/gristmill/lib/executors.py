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

Outputs are the same bytes on every executor (same shards per task).
"""

import contextlib
import gzip
import json
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import fsspec.compression
from datatrove.data import Document
from datatrove.executor.local import LocalPipelineExecutor
from datatrove.executor.slurm import SlurmPipelineExecutor
from datatrove.pipeline.writers.disk_base import DiskWriter
from loguru import logger as loguru_logger
from pydantic import BaseModel, ConfigDict, Field

# --------------------------------------------------------------------------------------------------
# Deterministic output: fsspec's "gzip" stamps the current time and a file name into every header, which would
# change an artifact's content hash on each run; this codec writes mtime 0 and no name.
GZIP_DETERMINISTIC = "gristmill_gzip"


def _deterministic_gzip(fileobj: Any, mode: str = "rb", **kwargs: Any) -> gzip.GzipFile:
    return gzip.GzipFile(fileobj=fileobj, mode=mode, mtime=0, filename="", compresslevel=6)


if GZIP_DETERMINISTIC not in fsspec.compression.compr:
    fsspec.compression.register_compression(GZIP_DETERMINISTIC, _deterministic_gzip, [])


class DeterministicJsonlWriter(DiskWriter):
    """datatrove writer of ``{"text", "id", "metadata"}`` lines (compact UTF-8 JSON, as
    :class:`gristmill.lib.documents.DocumentWriter`) into ``${rank}.jsonl.gz`` (``00000.jsonl.gz`` …) with a fixed gzip
    header, so equal input gives equal bytes on every executor. Reads back with datatrove's ``JsonlReader``;
    unlike datatrove's ``JsonlWriter`` it needs no ``orjson``."""

    default_output_filename = "${rank}.jsonl.gz"
    name = "🐿 Jsonl.gz (deterministic)"

    def __init__(self, output_folder: str | Path, output_filename: str | None = None) -> None:
        super().__init__(str(output_folder), output_filename=output_filename, compression=GZIP_DETERMINISTIC, mode="wb")

    def _default_adapter(self, document: Document) -> dict:
        return {"text": document.text, "id": document.id, "metadata": document.metadata}

    def _write(self, document: dict, file_handler: Any, _filename: str) -> None:
        line = json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n"
        file_handler.write(line.encode("utf-8"))


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


class SlurmOptions(BaseModel):
    """Options of ``kind: slurm`` (datatrove's ``SlurmPipelineExecutor``: one sbatch job array, one task each)."""

    model_config = ConfigDict(extra="forbid")

    partition: str | None = Field(None, description="#SBATCH --partition (null: the cluster's default partition).")
    time: str = Field("01:00:00", description="#SBATCH --time: wall-clock limit of each array task.")
    cpus_per_task: int = Field(1, ge=1, description="#SBATCH --cpus-per-task.")
    mem_per_cpu_gb: int = Field(2, ge=1, description="#SBATCH --mem-per-cpu, in GB.")
    gpus_per_task: int = Field(0, ge=0, description="#SBATCH --gpus per array task (0: none).")
    qos: str | None = Field(None, description="#SBATCH --qos (null: left out).")
    job_name: str = Field("gristmill", description="#SBATCH --job-name.")
    venv_path: str | None = Field(
        None,
        description="A virtualenv's activate script (e.g. /shared/venv/bin/activate) that the job sources; null "
        "with no env_command: the one of the virtualenv gristmill runs in, if any (nodes must see it at that path).",
    )
    env_command: str | None = Field(
        None, description="Shell command that sets up Python in the job (e.g. `module load python; source ...`)."
    )
    sbatch_args: dict[str, str | int] = Field(
        {}, description="More #SBATCH options without the dashes, e.g. {account: proj1, constraint: cpu}."
    )
    srun_args: dict[str, str | int] = Field({}, description="Options of the job's srun line, without the dashes.")
    slurm_logs_folder: str | None = Field(
        None,
        description="Where Slurm writes each array task's output (JOBID_INDEX.out); null: slurm_logs in the run's "
        "logging folder (scratch, removed with the run: set a lasting folder to keep them).",
    )
    max_array_size: int = Field(
        1001, ge=1, description="Largest job array the cluster accepts (MaxArraySize); more tasks: several arrays."
    )
    tasks_per_job: int = Field(1, ge=1, description="datatrove tasks run one after another by one array task.")
    requeue: bool = Field(True, description="#SBATCH --requeue: Slurm may requeue preempted/failed-node tasks.")
    poll_interval_s: float = Field(
        10.0, gt=0, description="Seconds between checks of the tasks' completion files and squeue."
    )


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


class ExecutorError(RuntimeError):
    """A datatrove pipeline did not complete on its executor (the message says where the logs are)."""


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
            _run_ray(list(steps), executor, logging_dir, log or _default_log)
        else:
            _run_slurm(list(steps), executor, logging_dir, log or _default_log, progress)
        _merge_task_stats(logging_dir, executor.tasks)
    if progress is not None:
        progress(executor.tasks, executor.tasks, "tasks done")
    stats = logging_dir / "stats.json"
    if labels is not None:
        return read_step_stats(stats, labels)
    return json.loads(stats.read_text())


def _default_log(message: str) -> None:
    logging.getLogger("gristmill.lib.executors").info(message)


def _incomplete_ranks(logging_dir: Path, tasks: int) -> list[int]:
    return [rank for rank in range(tasks) if not (logging_dir / "completions" / f"{rank:05d}").is_file()]


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _merge_task_stats(logging_dir: Path, tasks: int) -> None:
    """Sum the tasks' ``stats/NNNNN.json`` into ``stats.json`` (what datatrove's local executor writes)."""
    from datatrove.utils.stats import PipelineStats

    total = PipelineStats()
    for rank in range(tasks):
        total += PipelineStats.from_json(json.loads((logging_dir / "stats" / f"{rank:05d}.json").read_text()))
    with open(logging_dir / "stats.json", "w") as f:
        total.save_to_disk(f)


# --------------------------------------------------------------------------------------------------
# Ray


def _run_ray(steps: list[Any], executor: ExecutorConfig, logging_dir: Path, log: Callable[[str], None]) -> None:
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
    failed = _incomplete_ranks(logging_dir, executor.tasks)
    if failed:
        logs = logging_dir / "logs"
        first = logs / f"task_{failed[0]:05d}.log"
        raise ExecutorError(
            f"ray: {len(failed)} of {executor.tasks} task(s) failed (ranks {failed[:20]}); task logs: {logs}\n"
            f"--- last lines of {first.name}:\n{_tail(first)}"
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


# --------------------------------------------------------------------------------------------------
# Slurm


class _JobIds:
    """datatrove's job-id retriever that also remembers every id ``sbatch`` printed."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def __call__(self, sbatch_output: str) -> str:
        from datatrove.executor.slurm import default_job_id_retriever

        job_id = default_job_id_retriever(sbatch_output, job_id_position=-1)
        self.ids.append(job_id)
        return job_id


class GristmillSlurmExecutor(SlurmPipelineExecutor):
    """datatrove's ``SlurmPipelineExecutor``: the submitter merges the stats (no extra merge job) and unset
    (None) sbatch options are left out of the script."""

    def launch_merge_stats(self) -> None:
        return None  # run_datatrove sums stats/NNNNN.json itself once every task has completed

    def get_sbatch_args(self, max_array: int = 1) -> dict:
        return {k: v for k, v in super().get_sbatch_args(max_array).items() if v is not None}


def slurm_executor(steps: Sequence[Any], executor: ExecutorConfig, logging_dir: Path) -> GristmillSlurmExecutor:
    """The datatrove Slurm executor for ``steps`` as configured (``run_datatrove`` submits it and waits)."""
    opts = executor.slurm
    venv_path = opts.venv_path
    if venv_path is None and opts.env_command is None and sys.prefix != sys.base_prefix:
        activate = Path(sys.prefix) / "bin" / "activate"
        venv_path = str(activate) if activate.is_file() else None
    return GristmillSlurmExecutor(
        list(steps),
        tasks=executor.tasks,
        time=opts.time,
        partition=opts.partition,  # type: ignore[arg-type]  # None: left out by get_sbatch_args
        cpus_per_task=opts.cpus_per_task,
        mem_per_cpu_gb=opts.mem_per_cpu_gb,
        gpus_per_task=opts.gpus_per_task,
        workers=min(executor.workers, executor.tasks),
        job_name=opts.job_name,
        qos=opts.qos,  # type: ignore[arg-type]
        env_command=opts.env_command,  # type: ignore[arg-type]
        venv_path=venv_path,  # type: ignore[arg-type]
        sbatch_args=dict(opts.sbatch_args),
        srun_args=dict(opts.srun_args) or None,  # type: ignore[arg-type]
        max_array_size=opts.max_array_size,
        job_id_retriever=_JobIds(),
        logging_dir=str(logging_dir),
        skip_completed=False,
        slurm_logs_folder=opts.slurm_logs_folder,  # type: ignore[arg-type]
        requeue=opts.requeue,
        tasks_per_job=opts.tasks_per_job,
    )


def _run_slurm(
    steps: list[Any],
    executor: ExecutorConfig,
    logging_dir: Path,
    log: Callable[[str], None],
    progress: Callable[[int, int | None, str], None] | None,
) -> None:
    """Submit the job array with datatrove's launch path (sbatch), then wait for every task's completion file."""
    runner = slurm_executor(steps, executor, logging_dir)
    script = logging_dir / "launch_script.slurm"
    try:
        with quiet_datatrove_logs():
            runner.launch_job()
    except FileNotFoundError as exc:
        if shutil.which("sbatch") is not None and exc.filename != "sbatch":
            raise
        raise ExecutorError(
            f"slurm: `sbatch` is not on PATH, so the job was not submitted. The job script datatrove wrote is "
            f"{script} (it runs {logging_dir / 'executor.pik'}; both are in the run's scratch folder):\n"
            f"{script.read_text() if script.is_file() else '(not written)'}"
        ) from exc
    except subprocess.CalledProcessError as exc:  # sbatch refused the job; its message went to stderr
        command = " ".join(map(str, exc.cmd))
        raise ExecutorError(f"slurm: `{command}` failed (exit {exc.returncode}); job script: {script}") from exc
    ids = runner.job_id_retriever.ids
    log(f"slurm: submitted job {', '.join(ids)} ({executor.tasks} task(s)); logs in {runner.slurm_logs_folder}")
    try:
        _wait_for_slurm(ids, logging_dir, executor, runner.slurm_logs_folder, progress)
    except BaseException:
        if shutil.which("scancel"):
            subprocess.run(["scancel", *ids], capture_output=True, timeout=60)
        raise


def _squeue_active(job_id: str) -> bool | None:
    """True while squeue lists the job (or its array tasks), False when it is gone, None when squeue failed."""
    try:
        proc = subprocess.run(["squeue", "-h", "-o", "%i", "-j", job_id], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode == 0:
        return bool(proc.stdout.strip())
    if "invalid job id" in proc.stderr.lower():  # finished long ago (older than MinJobAge)
        return False
    return None


def _wait_for_slurm(
    ids: list[str],
    logging_dir: Path,
    executor: ExecutorConfig,
    slurm_logs: str,
    progress: Callable[[int, int | None, str], None] | None,
) -> None:
    """Poll the completion files (and squeue) until every task completed; raise when the jobs left the queue first."""
    opts, tasks = executor.slurm, executor.tasks
    if shutil.which("squeue") is None:
        raise ExecutorError("slurm: jobs submitted but `squeue` is not on PATH, so their end cannot be seen")
    last_done, gone_polls, errors = -1, 0, 0
    while True:
        failed = _incomplete_ranks(logging_dir, tasks)
        done = tasks - len(failed)
        if done != last_done and progress is not None:
            progress(done, tasks, "slurm tasks done")
        last_done = done
        if not failed:
            return
        states = [_squeue_active(job_id) for job_id in ids]
        if any(states):
            gone_polls = errors = 0
        elif None in states:
            errors += 1
            if errors >= 30:
                raise ExecutorError(f"slurm: squeue kept failing while waiting for job {', '.join(ids)}")
        else:
            gone_polls += 1  # one more poll: completion files written just before the end may show up late
            if gone_polls > 1:
                raise ExecutorError(_slurm_failure(ids, failed, logging_dir, executor, Path(slurm_logs)))
        time.sleep(opts.poll_interval_s)


def _slurm_failure(ids: list[str], failed: list[int], logging_dir: Path, executor: ExecutorConfig, logs: Path) -> str:
    opts = executor.slurm
    message = (
        f"slurm: job {', '.join(ids)} ended with {len(failed)} of {executor.tasks} task(s) not completed "
        f"(ranks {failed[:20]}); slurm logs: {logs}; datatrove task logs: {logging_dir / 'logs'}"
    )
    job = failed[0] // opts.tasks_per_job  # ranks_to_run is 0..tasks-1 (skip_completed=False)
    if job // opts.max_array_size < len(ids):
        out = logs / f"{ids[job // opts.max_array_size]}_{job % opts.max_array_size}.out"
        if out.is_file():
            message += f"\n--- last lines of {out}:\n{_tail(out)}"
    return message


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
