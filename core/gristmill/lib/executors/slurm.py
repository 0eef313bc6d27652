"""``kind: slurm``: datatrove's ``SlurmPipelineExecutor`` submits one job array with ``sbatch``; this module waits.

:func:`run_slurm` waits for every task's completion file (``squeue`` tells when the job is gone) and raises naming the
slurm log folder when tasks failed; :func:`gristmill.lib.executors.run_datatrove` then sums the tasks' stats (no merge
job). Without ``sbatch`` the script is written and the error says where.
"""

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datatrove.executor.slurm import SlurmPipelineExecutor
from pydantic import BaseModel, ConfigDict, Field

from gristmill.lib.executors.local import quiet_datatrove_logs
from gristmill.lib.executors.stats import ExecutorError, incomplete_ranks, log_tail

if TYPE_CHECKING:
    from gristmill.lib.executors import ExecutorConfig


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


def slurm_executor(steps: Sequence[Any], executor: "ExecutorConfig", logging_dir: Path) -> GristmillSlurmExecutor:
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


def run_slurm(
    steps: list[Any],
    executor: "ExecutorConfig",
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
    executor: "ExecutorConfig",
    slurm_logs: str,
    progress: Callable[[int, int | None, str], None] | None,
) -> None:
    """Poll the completion files (and squeue) until every task completed; raise when the jobs left the queue first."""
    opts, tasks = executor.slurm, executor.tasks
    if shutil.which("squeue") is None:
        raise ExecutorError("slurm: jobs submitted but `squeue` is not on PATH, so their end cannot be seen")
    last_done, gone_polls, errors = -1, 0, 0
    while True:
        failed = incomplete_ranks(logging_dir, tasks)
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


def _slurm_failure(ids: list[str], failed: list[int], logging_dir: Path, executor: "ExecutorConfig", logs: Path) -> str:
    opts = executor.slurm
    message = (
        f"slurm: job {', '.join(ids)} ended with {len(failed)} of {executor.tasks} task(s) not completed "
        f"(ranks {failed[:20]}); slurm logs: {logs}; datatrove task logs: {logging_dir / 'logs'}"
    )
    job = failed[0] // opts.tasks_per_job  # ranks_to_run is 0..tasks-1 (skip_completed=False)
    if job // opts.max_array_size < len(ids):
        out = logs / f"{ids[job // opts.max_array_size]}_{job % opts.max_array_size}.out"
        if out.is_file():
            message += f"\n--- last lines of {out}:\n{log_tail(out)}"
    return message
