"""Case 16: store paths that cannot work get one clear error before any work; a read-only store still serves cache
hits; an orphan left by a deleted manifest does not block the next run.

* ``store:`` is a file; the store is inside another store (its ``.tmp``, which the outer store empties, or its
  artifact folders); the store is under a source's folder (the source would read the store's own outputs): one
  ``gristmill: error:`` line, no traceback, nothing run.
* A read-only store (a read-only bind mount made by the test; ``chmod`` where not root): a pure cache hit works
  (``latest`` is already right and is not rewritten); a stage that must run fails at once, without retries.
* A deleted ``manifest.json`` leaves a folder in the artifact's place: the next run moves it aside and commits.
* A store path so long that an artifact's path would not fit the file system fails before the stage runs, with one
  line, not ``ENAMETOOLONG`` after retries (names themselves are validated with the pipeline file).
"""

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gristmill.engine.runner import execute
from gristmill.engine.store import ArtifactStore, StoreError
from gristmill.pipeline.config import validate_pipeline
from tests.reliability.test_04_killed_dagster_run import cli_env, gristmill
from tests.reliability.test_14_shared_store import stages, summary, write_pipeline
from tests.support import toy_registry


def one_error(proc: subprocess.CompletedProcess) -> str:
    """The single ``gristmill: error:`` line of a failed run (asserting there is one, and no traceback)."""
    errors = [line for line in proc.stderr.splitlines() if line.startswith("gristmill: error:")]
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert "STEP_UP_FOR_RETRY" not in proc.stdout + proc.stderr  # re-running cannot help: not retried
    return errors[0]


def test_a_store_that_is_a_file(tmp_path, toy_plugin_site_module):
    write_pipeline(tmp_path / "a.yaml", "team_a", 3)
    (tmp_path / "st").write_text("not a folder\n")
    error = one_error(gristmill(["run", "a.yaml", "--store", "st"], toy_plugin_site_module, tmp_path))
    assert f"{tmp_path / 'st'}" in error and "is a file" in error, error


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` made read-only for this process: a read-only bind mount as root, ``chmod`` otherwise."""
    if os.geteuid() == 0:
        mounted = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode == 0
        if not mounted:
            pytest.skip("cannot bind-mount (root without mount rights): no way to make a read-only store")
        try:
            remount = ["mount", "-o", "remount,bind,ro", str(folder)]
            if subprocess.run(remount, capture_output=True).returncode != 0:
                pytest.skip("cannot remount read-only")
            yield
        finally:
            subprocess.run(["umount", "-l", str(folder)], check=False)
    else:
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")] if p.is_dir()}
        for path in modes:
            path.chmod(0o555)
        try:
            yield
        finally:
            for path, mode in modes.items():
                path.chmod(mode)


def test_a_read_only_store_serves_cache_hits(tmp_path, toy_plugin_site_module):
    write_pipeline(tmp_path / "a.yaml", "team_a", 3)
    write_pipeline(tmp_path / "b.yaml", "team_a", 4)  # the same pipeline with one more document: must run
    home = tmp_path / "dagster_home"  # the Dagster instance (SQLite) lives elsewhere, writable
    home.mkdir()

    def run(name: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "gristmill.cli", "run", name, "--store", "st"],
            env=cli_env(toy_plugin_site_module, DAGSTER_HOME=str(home)),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )

    assert run("a.yaml").returncode == 0
    with read_only(tmp_path / "st"):
        hit = run("a.yaml")
        assert hit.returncode == 0, hit.stdout[-2000:] + hit.stderr[-3000:]
        assert all("cache hit" in summary(hit.stdout, a) for a in ("words", "dedup", "tokenizer")), hit.stdout
        error = one_error(run("b.yaml"))
        assert "read-only" in error and "words" in error, error


def test_a_store_inside_another_store(tmp_path, toy_plugin_site_module):
    write_pipeline(tmp_path / "a.yaml", "team_a", 3)
    assert gristmill(["run", "a.yaml", "--store", "outer"], toy_plugin_site_module, tmp_path).returncode == 0
    for inner in ("outer/.tmp/inner", "outer/team_a/inner"):
        error = one_error(gristmill(["run", "a.yaml", "--store", inner], toy_plugin_site_module, tmp_path))
        assert "inside the store" in error and str(tmp_path / "outer") in error, error
        assert not (tmp_path / inner).exists()


def test_a_store_under_a_source_folder(tmp_path, toy_plugin_site_module):
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.jsonl").write_text('{"id": "0", "text": "a", "metadata": {}}\n')
    pipe = {
        "name": "team_a",
        "sources": {"raw": {"kind": "documents", "path": "data"}},
        "stages": {"upper": {"stage": "toy_upper", "inputs": {"documents": "raw"}}},
    }
    (tmp_path / "a.yaml").write_text(str(pipe).replace("'", '"'))
    error = one_error(gristmill(["run", "a.yaml", "--store", "data/st"], toy_plugin_site_module, tmp_path))
    assert "source 'raw'" in error and str(data / "st") in error, error
    assert not (data / "st").exists()
    ok = gristmill(["run", "a.yaml", "--store", "st"], toy_plugin_site_module, tmp_path)  # beside it: fine
    assert ok.returncode == 0, ok.stderr[-3000:]


def test_an_orphan_left_by_a_deleted_manifest(tmp_path, toy_plugin_site_module):
    write_pipeline(tmp_path / "a.yaml", "team_a", 3)
    assert gristmill(["run", "a.yaml", "--store", "st"], toy_plugin_site_module, tmp_path).returncode == 0
    slot = tmp_path / "st" / "team_a" / "words" / "_"
    artifact = slot / (slot / "latest").read_text().strip()
    (artifact / "manifest.json").unlink()

    again = gristmill(["run", "a.yaml", "--store", "st"], toy_plugin_site_module, tmp_path)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    assert " ran " in summary(again.stdout, "words") and "moved aside" in again.stdout + again.stderr
    assert (artifact / "manifest.json").is_file()
    assert "STEP_UP_FOR_RETRY" not in again.stdout + again.stderr
    verify = gristmill(["store", "verify", "--store", "st"], toy_plugin_site_module, tmp_path)
    assert verify.returncode == 0 and "0 problems" in verify.stdout, verify.stdout + verify.stderr


def test_a_path_too_long_for_the_file_system(tmp_path):
    """Names are validated with the pipeline (at most 64 characters); what is left for the store is a store path so
    deep that an artifact's path would pass PATH_MAX: one clear error before the stage runs, not ENAMETOOLONG."""
    depth = 4070 - len(str(tmp_path))
    root = tmp_path.joinpath(*["d" * 200] * (depth // 201), "e" * (depth % 201 or 1))
    root.mkdir(parents=True)
    p = validate_pipeline({"name": "team_a", "stages": stages(3)}, "a.yaml", toy_registry(), store=root)
    store = ArtifactStore(root)
    with pytest.raises(StoreError, match="too long for the file system"):
        execute(p, "words", store)
    assert list(store.tmp.iterdir()) == [] and not (root / "team_a").exists()
