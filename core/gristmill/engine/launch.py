"""Run a stage function: inline in this process, or for stages whose ``RunPolicy.launch`` is ``"accelerate"`` as a
child ``accelerate launch`` job (several CPU processes over gloo, one or more GPUs, several machines).

The child protocol (a small, documented equivalent of Dagster Pipes that also works outside Dagster):

1. The parent writes ``<work_dir>/launch/request.json``: stage name, instance, validated config, input
   artifacts, output/work/resume folders, seed, partition, round and the previous round's artifact.
2. It runs ``python -m accelerate.commands.launch [flags] --module gristmill.engine.launch_child request.json``
   with stdout/stderr going to ``<work_dir>/launch/accelerate.log``.
3. Every rank runs the same stage function (the stage decides what only rank 0 writes). Rank 0 streams its log
   records and progress reports as JSON lines to ``events.jsonl``; the parent tails that file into the stage's
   logger (the Dagster run log) and progress callback while the child runs.
4. Rank 0 writes ``result.json`` (counts and metadata) last; the parent turns it back into a
   :class:`~gristmill.stage.StageResult`. A non-zero exit raises :class:`StageFailed` with the end of the log.

On CPU, several processes need ``--multi_gpu --num_processes N`` with ``ACCELERATE_USE_CPU=true``
(``--cpu --num_processes N`` silently runs one process); :func:`accelerate_command` does that.
"""

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from gristmill.configs import LaunchConfig
from gristmill.stage import Artifact, StageContext, StageResult, StageSpec, decode_metadata, encode_input


class StageFailed(RuntimeError):
    """A stage raised or its child launch failed; the message names the stage instance."""


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def wants_child(launch: LaunchConfig) -> bool:
    if launch.mode != "auto":
        return launch.mode == "child"
    return launch.processes * launch.machines > 1 or _cuda_available()


def accelerate_command(launch: LaunchConfig, request: Path, *, cpu: bool) -> list[str]:
    """The ``accelerate launch`` argv for ``request`` (same interpreter, so the same environment)."""
    total = launch.processes * launch.machines
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    if total > 1:
        cmd += ["--multi_gpu"]  # also right on CPU with ACCELERATE_USE_CPU=true: DDP over gloo
    cmd += ["--num_processes", str(total), "--num_machines", str(launch.machines)]
    cmd += ["--mixed_precision", "no", "--dynamo_backend", "no"]  # the stage's Accelerator(...) decides these
    if launch.machines > 1:
        cmd += ["--machine_rank", str(launch.machine_rank)]
        if launch.main_process_ip:
            cmd += ["--main_process_ip", launch.main_process_ip]
    if launch.main_process_port:
        cmd += ["--main_process_port", str(launch.main_process_port)]
    if launch.gpu_ids and not cpu:
        cmd += ["--gpu_ids", launch.gpu_ids]
    cmd += [*launch.extra_args, "--module", "gristmill.engine.launch_child", str(request)]
    return cmd


def _request(spec: StageSpec, ctx: StageContext, config: Any, inputs: dict[str, Artifact], folder: Path) -> dict:
    return {
        "stage": spec.name,
        "instance": ctx.instance,
        "config": config.model_dump(mode="json"),
        "inputs": {name: encode_input(a) for name, a in inputs.items()},
        "output_dir": str(ctx.output_dir),
        "work_dir": str(ctx.work_dir),
        "resume_dir": str(ctx.resume_dir) if ctx.resume_dir else None,
        "seed": ctx.seed,
        "partition_key": ctx.partition_key,
        "round": ctx.round,
        "previous": ctx.previous.to_json() if ctx.previous is not None else None,
        "events": str(folder / "events.jsonl"),
        "result": str(folder / "result.json"),
    }


class _EventTail:
    """Reads new complete lines of ``events.jsonl`` and replays them into the stage context."""

    def __init__(self, path: Path, ctx: StageContext) -> None:
        self.path, self.ctx, self.offset = path, ctx, 0

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1  # only whole lines; a partial one is read next time
        self.offset += end
        for line in data[:end].splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("type") == "progress":
                self.ctx.progress(event["done"], event.get("total"), event.get("message", ""), every_s=0.0)
            elif event.get("type") == "log":
                self.ctx.log.log(int(event.get("level", logging.INFO)), "%s", event.get("message", ""))


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen) -> None:
    """Terminate the child's whole process group (every rank), then kill what is left. A second interrupt while
    waiting (Ctrl-C pressed again) kills the group at once: the ranks run in their own session, so nothing else
    would stop them."""
    try:
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        raise


def run_child(spec: StageSpec, ctx: StageContext, config: Any, inputs: dict[str, Artifact]) -> StageResult:
    """Run the stage under ``accelerate launch`` and return rank 0's result."""
    launch: LaunchConfig = config.launch
    folder = ctx.work_dir / "launch"
    folder.mkdir(parents=True, exist_ok=True)
    request = _request(spec, ctx, config, inputs, folder)
    req_path = folder / "request.json"
    req_path.write_text(json.dumps(request, indent=2), encoding="utf-8")
    cpu = not _cuda_available()
    env = dict(os.environ)
    if cpu:
        env["ACCELERATE_USE_CPU"] = "true"
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // launch.processes)))
    cmd = accelerate_command(launch, req_path, cpu=cpu)
    log_path = folder / "accelerate.log"
    ctx.log.info(
        "%s: launching %d process(es) on %s: %s",
        ctx.instance,
        launch.processes * launch.machines,
        "CPU" if cpu else "GPU",
        " ".join(cmd[1:]),
    )
    events = _EventTail(Path(request["events"]), ctx)
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            while proc.poll() is None:
                events.poll()
                time.sleep(0.2)
        finally:
            if proc.poll() is None:  # the parent was interrupted (Ctrl-C, Dagster termination): stop every rank
                _stop(proc)
    events.poll()
    result_path = Path(request["result"])
    if proc.returncode != 0 or not result_path.is_file():
        raise StageFailed(
            f"stage {spec.name!r} ({ctx.instance}): accelerate launch exited with {proc.returncode}"
            f"{'' if result_path.is_file() else ' without a result'}; last lines of {log_path}:\n{_tail(log_path)}"
        )
    data = json.loads(result_path.read_text(encoding="utf-8"))
    return StageResult(counts=data["counts"], metadata=decode_metadata(data["metadata"]))


def launch_stage(spec: StageSpec, ctx: StageContext, config: Any, inputs: dict[str, Artifact]) -> StageResult:
    """Call ``spec.run`` inline, or in an ``accelerate launch`` child for stages whose policy launches with
    accelerate and whose ``config.launch`` (a :class:`~gristmill.configs.LaunchableConfig`, checked by the spec) asks
    for one; check it returned a :class:`StageResult`."""
    if spec.policy.launch == "accelerate" and wants_child(config.launch):
        result = run_child(spec, ctx, config, inputs)
    else:
        result = spec.run(ctx, config, inputs)
    if not isinstance(result, StageResult):
        raise StageFailed(f"stage {spec.name!r} ({ctx.instance}) returned {type(result).__name__}, not StageResult")
    return result


def process_state():  # -> accelerate.PartialState
    """accelerate's process state (rank, world size, device), created the way the training loop's Accelerator
    expects: on a machine without CUDA it must be ``cpu=True`` — a default ``PartialState()`` there ignores the
    launcher's process group and reports a single process."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())
