"""Case 4: a Dagster run SIGKILLed mid-asset (the `gristmill run` process, which executes the run in-process) leaves
no partial artifact visible; `gristmill store verify` removes its `.tmp` leftovers and finds the store consistent;
the next run succeeds and marks the killed run failed in Dagster."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from tests.conftest import REPO_ROOT
from tests.support.processes import sigkill_when_marked

TOY = """
name: toy
stages:
  words: {{stage: toy_words, config: {{words: [one, two, three, four], sleep_s: {sleep}}}}}
  upper: {{stage: toy_upper, inputs: {{documents: words}}}}
"""


def cli_env(site: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "GRISTMILL_DISABLE_PLUGIN_AUTOLOAD")}
    return {**env, "PYTHONPATH": os.pathsep.join([str(site), str(REPO_ROOT)]), **extra}


def gristmill(args: list[str], site: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gristmill.cli", *args],
        env=cli_env(site),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_sigkill_of_the_run_process_leaves_nothing_visible(tmp_path, toy_plugin_site):
    (tmp_path / "slow.yaml").write_text(TOY.format(sleep=120))
    (tmp_path / "fast.yaml").write_text(TOY.format(sleep=0))
    marker, store = tmp_path / "half-written", tmp_path / "st"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gristmill.cli", "run", "slow.yaml", "--store", "st"],
        env=cli_env(toy_plugin_site, TOY_STARTED_MARKER=str(marker)),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sigkill_when_marked(proc, marker)  # the stage has written half its output

    leftovers = list((store / ".tmp").iterdir())
    assert len(leftovers) == 1 and (leftovers[0] / "out" / "00000.jsonl").stat().st_size > 0  # half written
    assert not (store / "toy" / "words").exists() and not (store / "toy" / "upper").exists()  # nothing visible

    verify = gristmill(["store", "verify", "--store", "st"], toy_plugin_site, tmp_path)
    assert verify.returncode == 0, verify.stderr
    assert f"removed {leftovers[0].name}" in verify.stdout and "0 artifacts checked" in verify.stdout
    assert list((store / ".tmp").iterdir()) == []

    again = gristmill(["run", "fast.yaml", "--store", "st"], toy_plugin_site, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "was killed: marked failed" in again.stdout
    verify = gristmill(["store", "verify", "--store", "st"], toy_plugin_site, tmp_path)
    assert verify.returncode == 0 and "2 artifacts checked" in verify.stdout and "0 problems" in verify.stdout, (
        verify.stdout + verify.stderr
    )

    with dg.DagsterInstance.from_config(str(store / "dagster_home")) as instance:
        statuses = sorted(run.status.value for run in instance.get_runs())
    assert statuses == ["FAILURE", "SUCCESS"]


def test_verify_reports_orphans_and_tampering(tmp_path, toy_plugin_site):
    (tmp_path / "fast.yaml").write_text(TOY.format(sleep=0))
    assert gristmill(["run", "fast.yaml", "--store", "st"], toy_plugin_site, tmp_path).returncode == 0
    slot = tmp_path / "st" / "toy" / "words" / "_"
    (slot / "deadbeef").mkdir()  # a folder no commit made
    artifact = next(p for p in slot.iterdir() if (p / "manifest.json").is_file())
    (artifact / "00000.jsonl").write_text("tampered\n")
    verify = gristmill(["store", "verify", "--store", "st"], toy_plugin_site, tmp_path)
    assert verify.returncode == 1
    assert f"orphan: {slot / 'deadbeef'}" in verify.stderr
    assert "00000.jsonl changed" in verify.stderr and "2 problems" in verify.stdout
