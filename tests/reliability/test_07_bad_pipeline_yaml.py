"""Case 7: a bad pipeline file (syntax, unknown stage, unknown field, wrong type, missing or unknown input, cycle)
→ `gristmill run` exits 2 with one clear error naming the file, the stage and the field, before any work starts
(no store, no Dagster instance, no stage run). Narrower cases: tests/core/pipeline/test_config.py."""

import json
import subprocess
import sys

import pytest

from tests.reliability.test_04_killed_dagster_run import cli_env

CASES = {
    "syntax": (
        "stages:\n  words: {stage: toy_words, config: {words: [one, two}\n",
        "syntax.yaml:2:54: invalid YAML: expected ',' or ']'",
    ),
    "unknown_stage": (
        "stages:\n  words: {stage: toy_wordz}\n",
        "unknown_stage.yaml: stages.words.stage: unknown stage 'toy_wordz'; known stages: ",
    ),
    "unknown_field": (
        "stages:\n  words: {stage: toy_words, config: {wrods: [a]}}\n",
        "unknown_field.yaml: stages.words.config: wrods: Extra inputs are not permitted",
    ),
    "wrong_type": (
        "stages:\n  words: {stage: toy_words, config: {sleep_s: soon}}\n",
        "wrong_type.yaml: stages.words.config: sleep_s: Input should be a valid number",
    ),
    "missing_input": (
        "stages:\n  words: {stage: toy_words}\n  upper: {stage: toy_upper}\n",
        "missing_input.yaml: stages.upper.inputs: missing required input(s) documents",
    ),
    "unknown_input": (
        "stages:\n  upper: {stage: toy_upper, inputs: {documents: nowhere}}\n",
        "unknown_input.yaml: stages.upper.inputs.documents: 'nowhere' is neither a source nor a stage",
    ),
    "cycle": (
        "stages:\n  a: {stage: toy_upper, inputs: {documents: b}}\n  b: {stage: toy_upper, inputs: {documents: a}}\n",
        "cycle.yaml: stages form a cycle: a → b → a",
    ),
}

CHILD = """
import contextlib, io, json, sys
from gristmill.cli import main
out = {}
for name in sys.argv[1:]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["run", f"{name}.yaml", "--store", f"store-{name}"])
    out[name] = [code, err.getvalue()]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, toy_plugin_site_module):
    folder = tmp_path_factory.mktemp("bad-yaml")
    for name, (text, _) in CASES.items():
        (folder / f"{name}.yaml").write_text("name: toy\n" + text, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *CASES],
        env=cli_env(toy_plugin_site_module),
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return folder, json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.parametrize("case", list(CASES))
def test_bad_pipeline_is_one_clear_error_before_any_work(outcomes, case):
    folder, results = outcomes
    code, stderr = results[case]
    assert code == 2
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("gristmill: error: "), stderr
    want = CASES[case][1].replace("syntax.yaml:2:", "syntax.yaml:3:")  # the test adds a `name:` line first
    assert want in lines[0], lines[0]
    assert not (folder / f"store-{case}").exists()  # nothing started: no store, no Dagster instance
