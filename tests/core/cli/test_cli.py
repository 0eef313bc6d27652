import json
import os
import subprocess
import sys

from gristmill.cli import main
from tests.conftest import REPO_ROOT

TOY = """
name: toy
stages:
  words: {stage: toy_words, config: {words: [one, two, three]}}
  upper: {stage: toy_upper, inputs: {documents: words}}
"""


def _cli(args, site, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO_ROOT)])}
    env.pop("DAGSTER_HOME", None)
    env.pop("GRISTMILL_DISABLE_PLUGIN_AUTOLOAD", None)
    return subprocess.run(
        [sys.executable, "-m", "gristmill.cli", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_run_twice_second_is_cache_hit_and_summary(tmp_path, toy_plugin_site):
    (tmp_path / "toy.yaml").write_text(TOY)
    first = _cli(["run", "toy.yaml", "--store", "st"], toy_plugin_site, tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "upper" in first.stdout and "ran" in first.stdout and "succeeded" in first.stdout
    assert (tmp_path / "st" / "dagster_home" / "dagster.yaml").is_file()
    second = _cli(["run", "toy.yaml", "--store", "st", "--select", "upper"], toy_plugin_site, tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    lines = [ln for ln in second.stdout.splitlines() if ln.startswith("upper")]
    assert lines and "cache hit" in lines[0]
    assert not any(ln.startswith("words ") for ln in second.stdout.splitlines())
    verify = _cli(["store", "verify", "--store", "st"], toy_plugin_site, tmp_path)
    assert verify.returncode == 0 and "2 artifacts checked" in verify.stdout and "0 problems" in verify.stdout


def test_run_invalid_pipeline_exits_2_naming_field(tmp_path, toy_plugin_site):
    (tmp_path / "bad.yaml").write_text(TOY.replace("words: [one", "wrods: [one"))
    proc = _cli(["run", "bad.yaml"], toy_plugin_site, tmp_path)
    assert proc.returncode == 2
    assert "bad.yaml: stages.words.config: wrods: Extra inputs are not permitted" in proc.stderr
    assert not (tmp_path / ".gristmill").exists()  # nothing started


def test_schema_is_json_with_stage_configs(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "stages" in schema["properties"]
    assert "crawl_filter" in schema["x-stage-configs"]
