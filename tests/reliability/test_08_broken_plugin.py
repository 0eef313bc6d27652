"""Case 8: broken third-party plugins (import error, hook raising, wrong return type) are named, and every other
stage still loads and runs. Installed for real with pip: tests/e2e/test_plugin_example.py; in-process loading:
tests/core/test_plugins.py."""

import subprocess
import sys

from tests.conftest import write_plugin_dist, write_toy_site
from tests.reliability.test_04_killed_dagster_run import cli_env

BROKEN = {
    "gm_broken_import": "import gm_no_such_module_xyz  # noqa\n",
    "gm_broken_raises": "from gristmill import hookimpl\n\n\n@hookimpl\ndef gristmill_register_stages():\n"
    "    raise RuntimeError('boom from a plugin')\n",
    "gm_broken_type": "from gristmill import hookimpl\n\n\n@hookimpl\ndef gristmill_register_stages():\n"
    "    return 'not a list'\n",
}
TOY = "name: toy\nstages:\n  words: {stage: toy_words}\n  upper: {stage: toy_upper, inputs: {documents: words}}\n"


def test_broken_plugins_are_named_and_the_rest_runs(tmp_path):
    site = write_toy_site(tmp_path / "site")
    write_plugin_dist(site, "gm_broken", {name.removeprefix("gm_"): name for name in BROKEN}, BROKEN)
    env = cli_env(site)

    def gristmill(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "gristmill.cli", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )

    stages = gristmill("stages")
    assert stages.returncode == 1
    assert "toy_words" in stages.stdout and "crawl_filter" in stages.stdout  # the others loaded
    for line in [
        "plugin 'broken_import (gm_broken_import)': failed to load entry point: ModuleNotFoundError: "
        "No module named 'gm_no_such_module_xyz'",
        "plugin 'broken_raises': gristmill_register_stages raised: RuntimeError: boom from a plugin",
        "plugin 'broken_type': gristmill_register_stages must return a list of StageSpec, got str",
    ]:
        assert f"gristmill: error: {line}" in stages.stderr, stages.stderr

    (tmp_path / "toy.yaml").write_text(TOY)
    run = gristmill("run", "toy.yaml", "--store", "st")
    assert run.returncode == 0, run.stderr[-3000:]  # a pipeline of healthy stages runs
    assert "broken_raises" in run.stderr  # and the broken plugins are still reported

    (tmp_path / "missing.yaml").write_text(TOY.replace("toy_upper", "broken_stage"))
    missing = gristmill("run", "missing.yaml", "--store", "st2")
    assert missing.returncode == 2
    assert "unknown stage 'broken_stage'" in missing.stderr and "broken plugins: " in missing.stderr
