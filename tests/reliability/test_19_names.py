"""Case 19: hostile names. A stage instance, source or pipeline name that Dagster or the store cannot take (non-ASCII,
300 characters, a Dagster reserved word, ``dagster_home`` — the Dagster instance's folder in the store) is refused
when the file is validated, with one line naming the file and the key; before, they passed and failed later (a
traceback in Dagster, ENAMETOOLONG at commit after retries, writes into the instance folder). The longest allowed
name builds and runs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from gristmill.dagster.assets import build_assets
from gristmill.dagster.definitions import build_definitions
from gristmill.pipeline.config import PipelineError, validate_pipeline
from tests.reliability.test_04_killed_dagster_run import cli_env
from tests.reliability.test_07_bad_pipeline_yaml import CHILD  # one CLI child for every YAML case
from tests.support import toy_registry

REG = toy_registry()
LONGEST = "n" * 64

BAD_STAGE_NAMES = {
    "données": "must be ASCII letters, digits and _",
    "数据": "must be ASCII letters, digits and _",
    "x" * 300: "is 300 characters long",
    "crawl-v2": "must be ASCII letters, digits and _",
    "2nd": "not starting with a digit",
    "dagster_home": "reserved: the store keeps the Dagster instance",
    "config": "reserved by Dagster",
    "class": "reserved by Dagster",
}


def _stages(name: str) -> dict:
    return {"stages": {name: {"stage": "toy_words", "config": {"words": ["a"]}}}}


@pytest.mark.parametrize("name", list(BAD_STAGE_NAMES), ids=lambda n: n[:12])
def test_a_bad_stage_name_is_refused_at_validation(name: str) -> None:
    with pytest.raises(PipelineError) as info:
        validate_pipeline(_stages(name), "pipe.yaml", REG)
    message = str(info.value)
    assert message.startswith(f"pipe.yaml: stages.{name[:60]}"), message
    assert BAD_STAGE_NAMES[name] in message and "\n" not in message and len(message) < 300, message


@pytest.mark.parametrize(
    ("data", "start"),
    [
        ({"name": "my pipeline", **_stages("words")}, "pipe.yaml: name: the pipeline name 'my pipeline' must be"),
        ({"name": "é", **_stages("words")}, "pipe.yaml: name: the pipeline name 'é' must be"),
        ({"name": "import", **_stages("words")}, "pipe.yaml: name: the pipeline name 'import' is reserved"),
        (
            {"sources": {"dagster_home": {"kind": "warc", "path": "x"}}, **_stages("words")},
            "pipe.yaml: sources.dagster_home: the source name is reserved",
        ),
    ],
)
def test_bad_pipeline_and_source_names_are_refused(data: dict, start: str) -> None:
    with pytest.raises(PipelineError, match="^" + start):
        validate_pipeline(data, "pipe.yaml", REG)


def test_the_longest_allowed_names_build_and_run(tmp_path: Path) -> None:
    pipeline = validate_pipeline({"name": "p" * 64, **_stages(LONGEST)}, "pipe.yaml", REG, store=tmp_path / ("s" * 100))
    build_definitions([pipeline])
    with dg.DagsterInstance.ephemeral() as instance:
        assert dg.materialize(build_assets(pipeline), instance=instance).success
    assert [p for p in (tmp_path / ("s" * 100)).rglob("latest") if LONGEST in p.parts]  # committed in the store


def test_gristmill_run_refuses_them_before_any_work(tmp_path: Path, toy_plugin_site_module: Path) -> None:
    files = {
        "unicode": "stages:\n  données: {stage: toy_words}\n",
        "long": f"stages:\n  {'x' * 300}: {{stage: toy_words}}\n",
        "home": "stages:\n  dagster_home: {stage: toy_words}\n",
    }
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text("name: toy\n" + text, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *files],
        env=cli_env(toy_plugin_site_module, PYTHONPATH=os.pathsep.join([str(toy_plugin_site_module), *sys.path])),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name, (code, stderr) in json.loads(proc.stdout.splitlines()[-1]).items():
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1, (name, stderr[:1000])
        assert lines[0].startswith(f"gristmill: error: {name}.yaml: stages."), lines[0]
        assert not (tmp_path / f"store-{name}").exists()  # nothing started: no store, no Dagster instance
