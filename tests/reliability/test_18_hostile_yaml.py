"""Case 18: hostile pipeline YAML. Alias bombs ("billion laughs") of a few hundred bytes, a recursive alias, a
100,000-character value, a 10,000-digit number and an oversized file each fail in well under 2 s with one short
line naming the file (and line), in a process limited to 2 GB of address space; `gristmill run` exits 2 with that
line. The pipeline loader is libyaml's CSafeLoader. Narrower cases: tests/core/pipeline/test_config.py."""

import json
import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.reliability.test_04_killed_dagster_run import cli_env
from tests.reliability.test_07_bad_pipeline_yaml import CHILD as CLI_CHILD  # the one `gristmill run` child

WORDS = "stages:\n  words: {stage: toy_words, config: {words: [a]}}\n"


def _laughs(levels: int, key: str = "lols") -> str:
    """A list bomb: ``levels`` anchors, each a list of ten aliases of the one before (10^levels strings)."""
    lines = [f"{key}0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"{key}{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


CASES = {
    # a billion strings under an unknown top-level key (the error used to print them all: 2.4 GB, minutes)
    "laughs_unknown_key": ("name: toy\n" + WORDS + _laughs(8), r"laughs_unknown_key\.yaml:\d+: YAML aliases expand"),
    # … as a config value the stage's model would validate, one by one
    "laughs_in_config": (
        "name: toy\n" + _laughs(8, "x-") + "stages:\n  words: {stage: toy_words, config: {words: *l8}}\n",
        r"laughs_in_config\.yaml:\d+: YAML aliases expand",
    ),
    "laughs_of_mappings": (
        "name: toy\n"
        + WORDS
        + "m0: &m0 {a: lol, b: lol, c: lol, d: lol, e: lol, f: lol, g: lol, h: lol}\n"
        + "".join(
            f"m{i}: &m{i} {{a: *m{i - 1}, b: *m{i - 1}, c: *m{i - 1}, d: *m{i - 1}, e: *m{i - 1}, f: *m{i - 1}, "
            f"g: *m{i - 1}, h: *m{i - 1}}}\n"
            for i in range(1, 10)
        ),
        r"laughs_of_mappings\.yaml:\d+: YAML aliases expand",
    ),
    "recursive_alias": (
        "name: toy\nstages:\n  words: {stage: toy_words, config: {words: &r [a, *r]}}\n",
        r"recursive_alias\.yaml:3: a recursive YAML alias",
    ),
    "long_value": (
        "name: toy\nstages:\n  words: {stage: toy_words, config: {sleep_s: '" + "z" * 100_000 + "'}}\n",
        r"long_value\.yaml: stages\.words\.config: sleep_s: Input should be a valid number.* \(got 'zzz",
    ),
    "long_unknown_list": (
        "name: toy\n" + WORDS + "extra: [" + ", ".join(["item"] * 50_000) + "]\n",
        r"long_unknown_list\.yaml: extra: Extra inputs are not permitted \(got \['item'",
    ),
    "huge_number": ("name: toy\n" + WORDS + "seed: " + "9" * 10_000 + "\n", r"huge_number\.yaml: invalid YAML value"),
    "too_big": (
        "name: toy\n" + WORDS + "".join(f"# {'padding ' * 10}\n" for _ in range(60_000)),
        r"too_big\.yaml: the file is larger than 4 MiB",
    ),
}

CHILD = """
import json, sys, time
from gristmill.pipeline.config import load_pipeline
from tests.support import toy_registry
registry = toy_registry()
start = time.perf_counter()
try:
    load_pipeline(sys.argv[1], registry=registry)
    out = {"error": None}
except Exception as exc:
    out = {"error": str(exc), "type": [c.__name__ for c in type(exc).__mro__]}
out["seconds"] = time.perf_counter() - start
print(json.dumps(out))
"""


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile-yaml")
    for name, (text, _) in CASES.items():
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_yaml_fails_fast_with_one_short_line(folder: Path, case: str) -> None:
    try:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, f"{case}.yaml"],
            cwd=folder,
            env=_child_env(),
            capture_output=True,
            text=True,
            timeout=60,
            preexec_fn=_limit,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{case}: still loading after 60 s")
    assert proc.returncode == 0, f"{case}: {proc.stderr[-1500:]}"
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["error"] is not None, case
    assert "StageInputError" in out["type"], out["type"]  # re-running cannot help: no retries, exit 2
    message = out["error"]
    assert "\n" not in message and len(message) < 400, (case, len(message), message[:500])
    assert re.match(CASES[case][1], message), message
    assert out["seconds"] < 2.0, (case, out["seconds"])


def test_small_aliases_still_work_and_the_loader_is_libyaml(tmp_path: Path) -> None:
    from gristmill.pipeline import limits
    from gristmill.pipeline.config import load_pipeline
    from tests.support import toy_registry

    path = tmp_path / "aliases.yaml"
    path.write_text(
        "name: toy\nstages:\n  words: &w {stage: toy_words, config: &c {words: [a, b]}}\n"
        "  more: {stage: toy_words, config: *c}\n  again: *w\n",
        encoding="utf-8",
    )
    pipeline = load_pipeline(path, registry=toy_registry())
    assert [pipeline.stages[n].config.words for n in ("words", "more", "again")] == [["a", "b"]] * 3
    assert limits.YAML_LOADER is getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    assert hasattr(yaml, "CSafeLoader")  # libyaml is installed with PyYAML's wheels


def test_gristmill_run_exits_2_with_one_short_line(folder: Path, toy_plugin_site_module: Path) -> None:
    cases = ["laughs_unknown_key", "laughs_in_config", "long_value", "huge_number"]
    proc = subprocess.run(
        [sys.executable, "-c", CLI_CHILD, *cases],
        env=cli_env(toy_plugin_site_module, PYTHONPATH=os.pathsep.join([str(toy_plugin_site_module), *sys.path])),
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limit,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for case, (code, stderr) in json.loads(proc.stdout.splitlines()[-1]).items():
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and lines[0].startswith("gristmill: error: "), (case, stderr[:500])
        assert len(lines[0]) < 450, (case, lines[0][:500])
        assert not (folder / f"store-{case}").exists()
