"""Third-party plugin packages installed for real (pip --target): the example keyword_filter package in a pipeline
between built-in stages, a `gristmill new-stage` package with its own test, and a broken package named on stderr."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gristmill.plugins import AUTOLOAD_OFF_ENV
from tests.conftest import REPO_ROOT

EXAMPLE = REPO_ROOT / "docs" / "examples" / "gristmill-plugin-example"

BROKEN_PYPROJECT = """[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "gm-broken-plugins"
version = "0.1.0"

[project.entry-points.gristmill]
broken_import = "gm_broken_import"
raising = "gm_broken_raises"
wrong_type = "gm_broken_type"

[tool.setuptools]
py-modules = ["gm_broken_import", "gm_broken_raises", "gm_broken_type"]
"""
BROKEN_MODULES = {
    "gm_broken_import": "import gm_no_such_module_xyz  # noqa\n",
    "gm_broken_raises": "from gristmill import hookimpl\n\n\n@hookimpl\ndef gristmill_register_stages():\n"
    "    raise RuntimeError('boom from an installed package')\n",
    "gm_broken_type": "from gristmill import hookimpl\n\n\n@hookimpl\ndef gristmill_register_stages():\n"
    "    return 'not a list'\n",
}


def _pip_install(target: Path, *packages: Path) -> None:
    """``pip install --no-deps --no-build-isolation --target`` (offline: the venv's setuptools builds them)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "--target",
            str(target),
            *map(str, packages),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def _env(*sites: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", AUTOLOAD_OFF_ENV)}
    env["PYTHONPATH"] = os.pathsep.join([*map(str, sites), str(REPO_ROOT)])
    return env


def _gristmill(*args: str, env: dict[str, str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gristmill.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, Path]:
    """The example package and a `new-stage demo_filter` package in one site dir, a broken package in another.

    Built from copies, so nothing is written into the repository (setuptools builds in the source tree)."""
    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode != 0:
        pytest.skip(f"pip is not available in {sys.executable}")
    root = tmp_path_factory.mktemp("plugins")
    example = shutil.copytree(
        EXAMPLE, root / "example", ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    made = _gristmill("new-stage", "demo_filter", "--dir", str(root / "new"), env=_env(), cwd=root)
    assert made.returncode == 0, made.stderr
    scaffold = root / "new" / "gristmill-demo-filter"
    assert "pip install -e" in made.stdout and scaffold.is_dir()
    broken = root / "broken"
    broken.mkdir()
    (broken / "pyproject.toml").write_text(BROKEN_PYPROJECT, encoding="utf-8")
    for name, source in BROKEN_MODULES.items():
        (broken / f"{name}.py").write_text(source, encoding="utf-8")
    _pip_install(root / "site", example, scaffold)
    _pip_install(root / "broken_site", broken)
    return {"site": root / "site", "broken_site": root / "broken_site", "example": example, "scaffold": scaffold}


def _stage_row(stdout: str, name: str) -> list[str]:
    rows = [line.split(None, 2) for line in stdout.splitlines() if line.startswith(f"{name} ")]
    assert len(rows) == 1, stdout
    return rows[0]


def test_installed_plugins_are_listed_with_their_entry_point_names(installed, tmp_path):
    proc = _gristmill("stages", env=_env(installed["site"]), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert _stage_row(proc.stdout, "keyword_filter")[:2] == ["keyword_filter", "keyword_filter"]
    assert _stage_row(proc.stdout, "demo_filter")[:2] == ["demo_filter", "demo_filter"]
    assert "documents:documents → documents" in _stage_row(proc.stdout, "keyword_filter")[2]
    assert _stage_row(proc.stdout, "crawl_filter")[1] == "gristmill_plugins.crawl_filter"


def test_a_broken_installed_package_is_named_and_everything_else_loads(installed, tmp_path):
    proc = _gristmill("stages", env=_env(installed["site"], installed["broken_site"]), cwd=tmp_path)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("gristmill: error: plugin ")]
    assert len(errors) == 3, proc.stderr
    assert any("'broken_import (gm_broken_import)'" in e and "gm_no_such_module_xyz" in e for e in errors)
    assert any("'raising'" in e and "boom from an installed package" in e for e in errors)
    assert any("'wrong_type'" in e and "must return a list of StageSpec, got str" in e for e in errors)
    for stage in ("keyword_filter", "demo_filter", "crawl_filter", "minhash_dedup"):
        _stage_row(proc.stdout, stage)


def test_example_pipeline_materializes_the_plugin_asset_between_builtins(installed, tmp_path):
    store = tmp_path / "store"
    proc = _gristmill(
        "run", "example.yaml", "--store", str(store), env=_env(installed["site"]), cwd=installed["example"], timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "succeeded" in proc.stdout

    def manifest(asset: str) -> dict:
        latest = (store / "plugin_example" / asset / "_" / "latest").read_text().strip()
        return json.loads((store / "plugin_example" / asset / "_" / latest / "manifest.json").read_text())

    crawl, keywords, dedup = manifest("crawl"), manifest("keywords"), manifest("dedup")
    assert keywords["stage"] == "keyword_filter" and keywords["kind"] == "documents"
    c = keywords["counts"]
    assert c["documents_in"] == crawl["counts"]["documents_kept"] > 0
    assert c["documents_kept"] + c["documents_dropped"] == c["documents_in"]
    assert c["dropped_promotional"] > 0 and c["documents_dropped"] == c["dropped_promotional"] + c.get(
        "dropped_gambling", 0
    )
    assert keywords["inputs"]["documents"]["id"] == crawl["id"]
    assert [f["path"] for f in keywords["files"]] == ["00000.jsonl.gz"]
    assert set(keywords["metadata"]) >= {"drop_reasons", "dropped_sample", "drops_per_reason"}
    assert dedup["inputs"]["documents"]["id"] == keywords["id"]
    assert dedup["counts"]["documents_in"] == c["documents_kept"]


def test_new_stage_package_passes_its_own_test_when_installed(installed, tmp_path):
    """Run from elsewhere, so the test imports the installed module, not the source folder."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(installed["scaffold"])],
        cwd=tmp_path,
        env=_env(installed["site"]),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "1 passed" in proc.stdout
