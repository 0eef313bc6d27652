"""launch: the accelerate command line, and what a failing child job reports."""

import json
import logging
import os
import sys
from pathlib import Path

import pytest

from gristmill.configs import LaunchConfig
from gristmill.engine.launch import StageFailed, accelerate_command, launch_stage, wants_child
from gristmill.engine.runner import execute
from gristmill.engine.store import ArtifactStore
from gristmill.pipeline.config import validate_pipeline
from gristmill.plugins import AUTOLOAD_OFF_ENV
from gristmill.stage import StageContext
from gristmill.testing import artifact_from_dir
from gristmill_plugins.pretrain import SPEC, PretrainConfig
from tests.conftest import REPO_ROOT
from tests.support import toy_registry


def test_two_cpu_processes_use_multi_gpu_not_cpu_flag():
    cmd = accelerate_command(LaunchConfig(processes=2), Path("r.json"), cpu=True)
    assert cmd[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert "--multi_gpu" in cmd and "--cpu" not in cmd  # `--cpu --num_processes 2` silently runs one process
    assert cmd[cmd.index("--num_processes") + 1] == "2"
    assert cmd[-3:] == ["--module", "gristmill.engine.launch_child", "r.json"]


def test_multi_machine_flags():
    launch = LaunchConfig(
        processes=8,
        machines=2,
        machine_rank=1,
        main_process_ip="10.0.0.1",
        main_process_port=29500,
        gpu_ids="0,1,2,3,4,5,6,7",
        extra_args=["--rdzv_backend", "c10d"],
    )
    cmd = accelerate_command(launch, Path("r.json"), cpu=False)
    flags = dict(zip(cmd[3:-3:], cmd[4:-3:], strict=False))
    assert flags["--num_processes"] == "16" and flags["--num_machines"] == "2" and flags["--machine_rank"] == "1"
    assert flags["--main_process_ip"] == "10.0.0.1" and flags["--main_process_port"] == "29500"
    assert flags["--gpu_ids"] == "0,1,2,3,4,5,6,7" and flags["--rdzv_backend"] == "c10d"
    assert not wants_child(LaunchConfig(mode="inline", processes=4))
    assert wants_child(LaunchConfig(processes=2)) and wants_child(LaunchConfig(mode="child"))


def test_a_failing_child_is_reported_with_the_end_of_its_log(tmp_path):
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    (tokens / "index.json").write_text("{}")  # not a tokens artifact: the child's stage raises
    tok = tmp_path / "tok"
    tok.mkdir()
    ctx = StageContext(
        instance="my_pretrain",
        output_dir=tmp_path / "out",
        work_dir=tmp_path / "work",
        log=logging.getLogger("test.launch"),
    )
    ctx.output_dir.mkdir()
    ctx.work_dir.mkdir()
    cfg = PretrainConfig.model_validate({"launch": {"mode": "child"}})
    inputs = {"tokens": artifact_from_dir("tokens", tokens), "tokenizer": artifact_from_dir("tokenizer", tok)}
    with pytest.raises(
        StageFailed,
        match=r"(?s)'pretrain' \(my_pretrain\): accelerate launch exited with 1.*"
        r"TokensFormatError",
    ):
        launch_stage(SPEC, ctx, cfg, inputs)
    assert not any(ctx.output_dir.iterdir())


def test_a_child_job_gets_the_round_and_the_previous_round(tmp_path, toy_plugin_site, monkeypatch):
    """ctx.round and ctx.previous travel to the accelerate-launched child (the toy stage is found there through its
    entry point), and round 2's child reads round 1's artifact."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(toy_plugin_site), str(REPO_ROOT)]))
    monkeypatch.delenv(AUTOLOAD_OFF_ENV, raising=False)
    stage = {"stage": "toy_launched", "partitions": "rounds", "config": {"launch": {"mode": "child"}}}
    pipeline = validate_pipeline({"stages": {"trained": stage}}, "l.yaml", toy_registry(), store=tmp_path / "store")
    assert pipeline.stages["trained"].retries == 0 and pipeline.stages["trained"].pool == "gristmill_accelerator"
    store = ArtifactStore(pipeline.store)
    first = execute(pipeline, "trained", store, "round-001").artifact
    second = execute(pipeline, "trained", store, "round-002").artifact
    seen1, seen2 = (json.loads((a.path / "seen.json").read_text()) for a in (first, second))
    assert seen1["pid"] != os.getpid() and seen2["pid"] != os.getpid()  # ran in a child process
    assert seen1["round"] == 1 and seen1["previous"] is None
    assert seen2["round"] == 2 and seen2["previous"] == {"id": first.id, "kind": "report", "seen": True}
