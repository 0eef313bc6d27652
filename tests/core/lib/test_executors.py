"""Data stages on datatrove's executors: local, Ray (a local Ray started by the test) and Slurm (the job script as
written where ``sbatch`` is absent; the whole submit-and-wait path with the fake Slurm of tests/support)."""

import gzip
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dill
import pytest
from datatrove.pipeline.readers import JsonlReader
from pydantic import ValidationError

from gristmill import Artifact
from gristmill.lib.executors import (
    DeterministicJsonlWriter,
    ExecutorConfig,
    ExecutorError,
    GristmillSlurmExecutor,
    run_datatrove,
)
from gristmill.stage import StageContext
from gristmill.testing import artifact_from_dir, run_stage
from gristmill_plugins.crawl_filter import SPEC
from gristmill_plugins.demo_data import SyntheticCrawlConfig, write_synthetic_crawl
from tests.support import fake_slurm

CRAWL = {"extractor": "resiliparse", "url_filter": False}  # fast: no blocklist load, no trafilatura
IN_VENV = sys.prefix != sys.base_prefix


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.jsonl.gz"))}


@pytest.fixture(scope="module")
def warcs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("warcs")
    write_synthetic_crawl(folder, SyntheticCrawlConfig(pages=60, files=2), seed=3)
    return folder


@pytest.fixture(scope="module")
def local_crawl(warcs: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict[str, str]]:
    """crawl_filter with tasks=2 on the local executor: its counts and output shard hashes."""
    result, out = run_stage(
        SPEC, tmp_path_factory.mktemp("local"), {**CRAWL, "executor": {"tasks": 2}}, {"warcs": _warc_input(warcs)}
    )
    hashes = _hashes(out.path)
    assert sorted(hashes) == ["00000.jsonl.gz", "00001.jsonl.gz"] and result.counts["documents_kept"] > 10
    return result.counts, hashes


def _warc_input(folder: Path) -> Artifact:
    return artifact_from_dir("warc", folder)


def _broken_pipeline(tmp_path: Path) -> list:
    """Two input files, the second not gzip: with tasks=2, task 0 completes and task 1 fails (BadGzipFile)."""
    data = tmp_path / "in"
    data.mkdir()
    with gzip.open(data / "a.jsonl.gz", "wt") as f:
        for i in range(5):
            f.write(json.dumps({"text": f"document {i}", "id": str(i)}) + "\n")
    (data / "b.jsonl.gz").write_bytes(b"this is not gzip\n")
    return [JsonlReader(str(data), compression="gzip"), DeterministicJsonlWriter(tmp_path / "out")]


def test_executor_config_kinds_and_options() -> None:
    default = ExecutorConfig()
    assert (default.kind, default.tasks, default.workers) == ("local", 1, 1)
    assert default.ray.address is None and default.slurm.partition is None
    cfg = ExecutorConfig.model_validate(
        {"kind": "slurm", "tasks": 8, "workers": 4, "slurm": {"partition": "cpu", "sbatch_args": {"account": "p1"}}}
    )
    assert cfg.slurm.partition == "cpu" and cfg.slurm.sbatch_args == {"account": "p1"}
    for bad in ({"kind": "kubernetes"}, {"slurm": {"partiton": "cpu"}}, {"ray": {"adress": "auto"}}, {"tasks": 0}):
        with pytest.raises(ValidationError):
            ExecutorConfig.model_validate(bad)
    for name, field in [
        *ExecutorConfig.model_fields.items(),
        *type(cfg.ray).model_fields.items(),
        *type(cfg.slurm).model_fields.items(),
    ]:
        assert field.description, name


# --------------------------------------------------------------------------------------------------
# Ray


@pytest.fixture
def ray_session() -> Iterator[object]:
    """A local Ray (2 CPUs) started by the test in this process and shut down after it."""
    ray = pytest.importorskip("ray", reason="ray is not installed (the optional `ray` extra)")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def test_ray_output_is_identical_to_local(
    ray_session, warcs: Path, local_crawl: tuple[dict, dict[str, str]], tmp_path: Path
) -> None:
    """crawl_filter, tasks=2, on Ray's workers: the same shards, byte for byte, and the same counts."""
    config = {**CRAWL, "executor": {"kind": "ray", "tasks": 2, "workers": 2}}
    result, out = run_stage(SPEC, tmp_path / "ray", config, {"warcs": _warc_input(warcs)})
    assert _hashes(out.path) == local_crawl[1]
    assert result.counts == local_crawl[0]
    assert ray_session.is_initialized()  # a Ray this process was already connected to is left running


def test_ray_failed_task_raises_with_its_log(tmp_path: Path) -> None:
    """address: null starts a local Ray for the run and stops it, also when a task fails."""
    ray = pytest.importorskip("ray", reason="ray is not installed (the optional `ray` extra)")
    config = ExecutorConfig(kind="ray", tasks=2, workers=2, ray={"num_cpus": 2})
    with pytest.raises(ExecutorError, match=r"1 of 2 task\(s\) failed \(ranks \[1\]\)") as err:
        run_datatrove(_broken_pipeline(tmp_path), config, tmp_path / "logs")
    assert "BadGzipFile" in str(err.value) and str(tmp_path / "logs" / "logs") in str(err.value)
    assert not ray.is_initialized()
    assert (tmp_path / "logs" / "completions" / "00000").is_file()


def test_ray_task_that_does_not_fit_fails_fast(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="ray is not installed (the optional `ray` extra)")
    config = ExecutorConfig(kind="ray", tasks=1, ray={"num_cpus": 1, "cpus_per_task": 4})
    with pytest.raises(ExecutorError, match="CPU: task needs 4, cluster has 1"):
        run_datatrove(_broken_pipeline(tmp_path), config, tmp_path / "logs")


# --------------------------------------------------------------------------------------------------
# Slurm


def test_slurm_without_sbatch_writes_the_job_script(
    warcs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No sbatch on PATH: datatrove's launch path writes the job script and pickled executor; the error names both."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert shutil.which("sbatch") is None
    slurm = {
        "partition": "cpu-long",
        "time": "02:30:00",
        "cpus_per_task": 2,
        "mem_per_cpu_gb": 3,
        "qos": "high",
        "job_name": "crawl-test",
        "sbatch_args": {"account": "proj1"},
    }
    config = {**CRAWL, "executor": {"kind": "slurm", "tasks": 3, "workers": 2, "slurm": slurm}}
    work, out = tmp_path / "work", tmp_path / "out"  # a kept scratch folder (run_stage's goes away)
    out.mkdir()
    ctx = StageContext(instance="crawl", output_dir=out, work_dir=work, log=logging.getLogger("gristmill.crawl"))
    with pytest.raises(ExecutorError, match="`sbatch` is not on PATH") as err:
        SPEC.run(ctx, SPEC.config.model_validate(config), {"warcs": _warc_input(warcs)})
    logging_dir = work / "datatrove"
    script = logging_dir / "launch_script.slurm"
    assert str(script) in str(err.value)
    text = script.read_text()
    assert str(err.value).rstrip().endswith(text.rstrip())  # the script is in the message too (scratch goes away)
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash"
    directives = [line for line in lines if line.startswith("#SBATCH")]
    for expected in (
        "#SBATCH --partition=cpu-long",
        "#SBATCH --time=02:30:00",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --mem-per-cpu=3G",
        "#SBATCH --qos=high",
        "#SBATCH --job-name=crawl-test",
        "#SBATCH --array=0-2%2",
        "#SBATCH --account=proj1",
        f"#SBATCH --output={logging_dir / 'slurm_logs'}/%A_%a.out",
    ):
        assert expected in directives, (expected, directives)
    assert lines[-1].split() == ["srun", "-l", "-n", "1", "launch_pickled_pipeline", str(logging_dir / "executor.pik")]
    if IN_VENV:
        assert f"source {Path(sys.prefix) / 'bin' / 'activate'}" in lines
    with open(logging_dir / "executor.pik", "rb") as f:
        executor = dill.load(f)
    assert isinstance(executor, GristmillSlurmExecutor) and executor.world_size == 3
    assert [type(step).__name__ for step in executor.pipeline][-1] == "DeterministicJsonlWriter"
    assert json.loads((logging_dir / "ranks_to_run.json").read_text()) == [0, 1, 2]


def test_slurm_script_leaves_out_unset_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    config = ExecutorConfig(kind="slurm", tasks=2, slurm={"env_command": "module load python/3.11"})
    with pytest.raises(ExecutorError, match="sbatch"):
        run_datatrove(_broken_pipeline(tmp_path), config, tmp_path / "logs")
    text = (tmp_path / "logs" / "launch_script.slurm").read_text()
    assert "--partition" not in text and "--qos" not in text and "--array=0-1%1" in text
    assert "module load python/3.11" in text.splitlines() and "source " not in text


@pytest.fixture
def fake_slurm_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The fake sbatch/squeue/srun/scontrol/scancel first on PATH; yields their state folder; kills leftovers."""
    if shutil.which("bash") is None:
        pytest.skip("bash is needed to run the Slurm job scripts")
    state = tmp_path / "fake-slurm"
    bin_dir = fake_slurm.install(tmp_path / "fake-bin", state)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    try:
        yield state
    finally:
        fake_slurm.kill_runners(state)


def _slurm_env() -> dict:
    """Outside a virtualenv the job needs launch_pickled_pipeline on PATH another way."""
    return {} if IN_VENV else {"env_command": f"export PATH={Path(sys.executable).parent}:$PATH"}


def _calls(state: Path) -> list[list[str]]:
    return [json.loads(line) for line in (state / "calls.log").read_text().splitlines()]


def test_slurm_submit_and_wait_matches_local(
    fake_slurm_path: Path, warcs: Path, local_crawl: tuple[dict, dict[str, str]], tmp_path: Path
) -> None:
    """sbatch (fake) runs datatrove's real job script per array index; the stage waits and reads the same shards."""
    slurm = {"partition": "cpu", "poll_interval_s": 0.3, **_slurm_env()}
    config = {**CRAWL, "executor": {"kind": "slurm", "tasks": 2, "workers": 2, "slurm": slurm}}
    result, out = run_stage(SPEC, tmp_path / "slurm", config, {"warcs": _warc_input(warcs)})
    assert _hashes(out.path) == local_crawl[1]
    assert result.counts == local_crawl[0]
    calls = _calls(fake_slurm_path)
    sbatch = [c for c in calls if c[0] == "sbatch"]
    assert len(sbatch) == 1 and sbatch[0][1] == "--export=ALL,RUN_OFFSET=0"  # no separate merge-stats job
    assert sum(c[0] == "srun" and "launch_pickled_pipeline" in c for c in calls) == 2
    assert any(c[0] == "squeue" for c in calls)
    job = fake_slurm_path / "jobs" / "1000"
    for _ in range(300):  # the stage returns once every task's completion file exists; the job ends just after
        if (job / "done").exists():
            break
        time.sleep(0.1)
    assert (job / "done").read_text() == "COMPLETED"
    assert sorted(p.name for p in job.glob("exit_*")) == ["exit_0", "exit_1"]


def test_slurm_failed_task_raises_naming_the_log_folder(fake_slurm_path: Path, tmp_path: Path) -> None:
    """A task that fails ends the wait (once the job left squeue) with the slurm log folder and the log's tail."""
    logs = tmp_path / "slurm-logs"
    slurm = {"poll_interval_s": 0.3, "slurm_logs_folder": str(logs), **_slurm_env()}
    config = ExecutorConfig(kind="slurm", tasks=2, workers=2, slurm=slurm)
    progress: list[tuple[int, int | None]] = []
    with pytest.raises(ExecutorError, match=r"1 of 2 task\(s\) not completed \(ranks \[1\]\)") as err:
        run_datatrove(
            _broken_pipeline(tmp_path), config, tmp_path / "logs", progress=lambda d, t, m: progress.append((d, t))
        )
    message = str(err.value)
    assert f"slurm logs: {logs}" in message
    assert f"last lines of {logs / '1000_1.out'}" in message and "BadGzipFile" in message
    assert progress[-1] == (1, 2)
    assert (fake_slurm_path / "jobs" / "1000" / "done").read_text() == "FAILED"
