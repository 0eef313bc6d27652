"""A stand-in for Slurm's client commands, enough to run datatrove's real Slurm job scripts on this machine.

:func:`install` writes ``sbatch``, ``squeue``, ``srun``, ``scontrol`` and ``scancel`` into a folder (put it first on
``PATH``); each runs this file with the command's name. State lives in the folder given at install time.

- ``sbatch [--export=ALL,K=V] [--dependency=after*:ID,...] SCRIPT`` reads the script's ``#SBATCH`` lines (``--array``
  with an optional ``%N`` limit, ``--output``, ``--job-name``, ``--cpus-per-task``), copies the script, prints
  ``Submitted batch job ID`` like the real one and returns at once. A detached runner (its own session; pid in
  ``jobs/ID/pgid``) waits for the dependencies, then runs ``bash SCRIPT`` once per array index, at most N at a time,
  with ``SLURM_JOB_ID``, ``SLURM_ARRAY_JOB_ID``, ``SLURM_ARRAY_TASK_ID``, ``SLURM_JOB_NAME``,
  ``SLURM_NODELIST=localhost``, ``SLURM_NODEID=0``, ``SLURM_CPUS_PER_TASK`` and ``SLURM_SUBMIT_DIR`` set, output
  to the ``--output`` file (``%A``/``%a``/``%j``/``%x`` expanded), in the submit directory. Exit codes go to
  ``jobs/ID/exit_INDEX``, and ``jobs/ID/done`` marks the end.
- ``squeue -h -o %i -j ID``: prints ID while the job runs; nothing once done; unknown id: "Invalid job id" and exit 1.
- ``srun [options] CMD ...``: runs CMD (one task, this node). ``scontrol show hostnames LIST``: LIST split on
  commas (``requeue``: no-op). ``scancel ID...``: kills the job's runner process group and marks it done.

Every call is appended to ``calls.log`` (one JSON list per line) so tests can check what was run.
"""

import contextlib
import fcntl
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = ("sbatch", "squeue", "srun", "scontrol", "scancel")
SRUN_OPTIONS_WITH_VALUE = {"-n", "-N", "-c", "-p", "-t", "-J", "-o", "-e", "-w", "-G"}


def install(bin_dir: Path, state_dir: Path) -> Path:
    """Write the fake commands into ``bin_dir`` (state in ``state_dir``); returns ``bin_dir``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    for name in COMMANDS:
        path = bin_dir / name
        path.write_text(
            f"#!/bin/sh\nFAKE_SLURM_DIR={shlex.quote(str(state_dir))} exec {shlex.quote(sys.executable)} "
            f'{shlex.quote(str(Path(__file__).resolve()))} {name} "$@"\n'
        )
        path.chmod(0o755)
    return bin_dir


def runner_pids(state_dir: Path) -> list[int]:
    """Process-group ids of the job runners started so far (for cleanup)."""
    return [int(p.read_text()) for p in sorted(state_dir.glob("jobs/*/pgid"))]


def kill_runners(state_dir: Path) -> None:
    """SIGKILL the process group of every job runner that is still alive."""
    for pgid in runner_pids(state_dir):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


def _state() -> Path:
    return Path(os.environ["FAKE_SLURM_DIR"])


def _next_job_id(state: Path) -> str:
    with open(state / "next_id.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        counter = state / "next_id"
        job_id = int(counter.read_text()) if counter.exists() else 1000
        counter.write_text(str(job_id + 1))
    return str(job_id)


def _sbatch_directives(script: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in script.splitlines():
        if match := re.match(r"#SBATCH\s+--([\w-]+)(?:=(.*))?$", line.strip()):
            found[match.group(1)] = (match.group(2) or "").strip()
    return found


def _array_indices(spec: str) -> tuple[list[int], int]:
    """``0-3%2`` → ([0, 1, 2, 3], 2); no ``%``: no limit (0)."""
    spec, _, limit = spec.partition("%")
    indices: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        indices.extend(range(int(lo), int(hi or lo) + 1))
    return indices, int(limit or 0)


def sbatch(args: list[str]) -> int:
    state = _state()
    options: dict[str, str] = {}
    script_path = None
    for arg in args:
        if arg.startswith("--"):
            key, _, value = arg[2:].partition("=")
            options[key] = value
        else:
            script_path = arg
    if script_path is None:
        print("sbatch: error: no batch script", file=sys.stderr)
        return 1
    script = Path(script_path).read_text()
    directives = _sbatch_directives(script) | options
    job_id = _next_job_id(state)
    job = state / "jobs" / job_id
    job.mkdir(parents=True)
    (job / "script.sh").write_text(script)
    env = {}
    for item in directives.get("export", "ALL").split(","):
        if "=" in item:
            key, _, value = item.partition("=")
            env[key] = value
    meta = {"directives": directives, "env": env, "cwd": os.getcwd()}
    (job / "meta.json").write_text(json.dumps(meta))
    runner = subprocess.Popen(
        [sys.executable, __file__, "_run", job_id],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(job / "runner.err", "w"),  # noqa: SIM115 - handed to the child
    )
    (job / "pgid").write_text(str(runner.pid))
    print(f"Submitted batch job {job_id}")
    return 0


def _dependencies(spec: str) -> list[tuple[str, str]]:
    deps = []
    for item in filter(None, spec.split(",")):
        kind, *ids = item.split(":")
        deps.extend((kind, job_id) for job_id in ids)
    return deps


def _run_job(job_id: str) -> int:
    state = _state()
    job = state / "jobs" / job_id
    meta = json.loads((job / "meta.json").read_text())
    directives = meta["directives"]
    for kind, dep in _dependencies(directives.get("dependency", "")):
        while not (state / "jobs" / dep / "done").exists():
            time.sleep(0.2)
        if kind == "afterok" and (state / "jobs" / dep / "done").read_text() != "COMPLETED":
            (job / "done").write_text("DEPENDENCY_NEVER_SATISFIED")
            return 0
    indices, limit = _array_indices(directives.get("array", "0"))
    name = directives.get("job-name", "job")
    started: list[tuple[int, subprocess.Popen]] = []
    try:
        for index in indices:
            while limit and sum(p.poll() is None for _, p in started) >= limit:
                time.sleep(0.1)
            pattern = directives.get("output") or f"slurm-{job_id}_{index}.out"
            out_path = pattern.replace("%A", job_id).replace("%a", str(index)).replace("%j", job_id)
            env = os.environ | meta["env"]
            env |= {
                "SLURM_JOB_ID": job_id,
                "SLURM_ARRAY_JOB_ID": job_id,
                "SLURM_ARRAY_TASK_ID": str(index),
                "SLURM_JOB_NAME": name,
                "SLURM_NODELIST": "localhost",
                "SLURM_NODEID": "0",
                "SLURM_CPUS_PER_TASK": directives.get("cpus-per-task", "1"),
                "SLURM_SUBMIT_DIR": meta["cwd"],
            }
            with open(Path(meta["cwd"]) / out_path.replace("%x", name), "ab") as out:
                proc = subprocess.Popen(
                    ["bash", str(job / "script.sh")], cwd=meta["cwd"], env=env, stdout=out, stderr=subprocess.STDOUT
                )
            started.append((index, proc))
        for index, proc in started:
            (job / f"exit_{index}").write_text(str(proc.wait()))
        failed = any(proc.returncode for _, proc in started)
        (job / "done").write_text("FAILED" if failed else "COMPLETED")
    except BaseException:
        (job / "done").write_text("FAILED")
        raise
    return 0


def squeue(args: list[str]) -> int:
    state = _state()
    ids = []
    for i, arg in enumerate(args):
        if arg == "-j" and i + 1 < len(args):
            ids.extend(args[i + 1].split(","))
        elif arg.startswith("--jobs="):
            ids.extend(arg.split("=", 1)[1].split(","))
    for job_id in ids:
        job = state / "jobs" / job_id
        if not job.is_dir():
            print("slurm_load_jobs error: Invalid job id specified", file=sys.stderr)
            return 1
        if not (job / "done").exists():
            print(job_id)
    return 0


def srun(args: list[str]) -> int:
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in SRUN_OPTIONS_WITH_VALUE else 1
    if i >= len(args):
        print("srun: fatal: No command given to execute.", file=sys.stderr)
        return 1
    os.execvp(args[i], args[i:])
    return 1  # not reached


def scontrol(args: list[str]) -> int:
    if args[:2] == ["show", "hostnames"]:
        nodes = args[2] if len(args) > 2 else os.environ.get("SLURM_NODELIST", "")
        print("\n".join(filter(None, nodes.split(","))))
        return 0
    if args[:1] == ["requeue"]:
        return 0
    print(f"scontrol (fake): unsupported {args}", file=sys.stderr)
    return 1


def scancel(args: list[str]) -> int:
    state = _state()
    for job_id in args:
        job = state / "jobs" / job_id
        if (job / "pgid").exists():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int((job / "pgid").read_text()), signal.SIGKILL)
            if not (job / "done").exists():
                (job / "done").write_text("CANCELLED")
    return 0


def main(argv: list[str]) -> int:
    command, args = argv[0], argv[1:]
    if command == "_run":
        return _run_job(args[0])
    with open(_state() / "calls.log", "a") as log:
        log.write(json.dumps([command, *args]) + "\n")
    return {"sbatch": sbatch, "squeue": squeue, "srun": srun, "scontrol": scontrol, "scancel": scancel}[command](args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
