import json
import os
import subprocess
import sys

import pytest

from gristmill.engine.runner import execute
from gristmill.engine.store import MANIFEST, ArtifactStore, StoreError, hash_files
from gristmill.pipeline.config import validate_pipeline
from tests.conftest import REPO_ROOT
from tests.support import toy_registry, toy_stages
from tests.support.processes import sigkill_when_marked

REG = toy_registry()


def _pipeline(store, words=("alpha", "beta", "gamma"), sleep_s=0.0, seed=0):
    return validate_pipeline(
        {
            "seed": seed,
            "stages": {
                "words": {"stage": "toy_words", "config": {"words": list(words), "sleep_s": sleep_s}},
                "upper": {"stage": "toy_upper", "inputs": {"documents": "words"}},
            },
        },
        "test.yaml",
        REG,
        store=store,
    )


def test_commit_layout_manifest_and_latest(tmp_path):
    store = ArtifactStore(tmp_path / "store", pipeline="pipeline")
    run = execute(_pipeline(store.root), "words", store)
    art = run.artifact
    assert not run.cache_hit
    assert art.path == store.root / "pipeline" / "words" / "_" / art.id
    manifest = json.loads((art.path / MANIFEST).read_text())
    assert manifest["stage"] == "toy_words" and manifest["kind"] == "documents"
    assert manifest["counts"] == {"documents": 3}
    assert manifest["files"][0]["path"] == "00000.jsonl"
    assert manifest["metadata"]["sample"]["__type__"] == "Table"
    assert store.latest("words").id == art.id
    assert list(store.tmp.iterdir()) == []
    assert store.verify() == []


def test_same_inputs_and_config_hit_the_cache(tmp_path):
    store = ArtifactStore(tmp_path / "store", pipeline="pipeline")
    pipeline = _pipeline(store.root)
    execute(pipeline, "words", store)
    first = execute(pipeline, "upper", store)
    calls = len(toy_stages.CALLS)
    second = execute(pipeline, "upper", store)
    assert second.cache_hit and second.artifact.id == first.artifact.id
    assert len(toy_stages.CALLS) == calls  # the stage function did not run again
    # A different upstream content → a different artifact id for the downstream stage.
    changed = _pipeline(store.root, words=("delta",))
    execute(changed, "words", store)
    third = execute(changed, "upper", store)
    assert not third.cache_hit and third.artifact.id != first.artifact.id
    assert len(toy_stages.CALLS) == calls + 1


def test_seed_changes_the_artifact_id(tmp_path):
    store = ArtifactStore(tmp_path / "store", pipeline="pipeline")
    a = execute(_pipeline(store.root, seed=0), "words", store)
    b = execute(_pipeline(store.root, seed=1), "words", store)
    assert a.artifact.id != b.artifact.id
    assert a.artifact.content_hash == b.artifact.content_hash  # same bytes, same content hash


def test_content_hash_is_stable_and_ignores_mtime(tmp_path):
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_text("one")
    (d / "sub" / "b.txt").write_text("two")
    h1, files = hash_files(d)
    os.utime(d / "a.txt", (1, 1))
    assert hash_files(d)[0] == h1
    assert [f["path"] for f in files] == ["a.txt", "sub/b.txt"]
    (d / "a.txt").write_text("ONE")
    assert hash_files(d)[0] != h1


def test_missing_upstream_is_a_clear_error(tmp_path):
    store = ArtifactStore(tmp_path / "store", pipeline="pipeline")
    with pytest.raises(StoreError, match="'words', which has no artifact .* materialize 'words' first"):
        execute(_pipeline(store.root), "upper", store)


def test_verify_reports_tampering(tmp_path):
    store = ArtifactStore(tmp_path / "store", pipeline="pipeline")
    art = execute(_pipeline(store.root), "words", store).artifact
    (art.path / "00000.jsonl").write_text("tampered\n")
    (store.root / "pipeline" / "words" / "_" / "latest").write_text("nope\n")
    problems = store.verify()
    assert any("00000.jsonl" in p for p in problems)
    assert any("missing artifact 'nope'" in p for p in problems)


KILL_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from tests.core.engine.test_store import _pipeline
from gristmill.engine.runner import execute
from gristmill.engine.store import ArtifactStore
store = ArtifactStore({store!r})
execute(_pipeline(store.root, sleep_s=60), "words", store)
"""


def test_killed_run_leaves_nothing_visible_and_tmp_is_cleaned(tmp_path):
    root = tmp_path / "store"
    marker = tmp_path / "started"
    script = KILL_SCRIPT.format(root=str(REPO_ROOT), store=str(root))
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "TOY_STARTED_MARKER": str(marker)})
    sigkill_when_marked(proc, marker, timeout=60)
    # Half-written output exists only under .tmp; nothing else is visible.
    leftovers = list((root / ".tmp").iterdir())
    assert len(leftovers) == 1 and (leftovers[0] / "out" / "00000.jsonl").exists()
    assert not (root / "pipeline" / "words").exists()
    store = ArtifactStore(root, pipeline="pipeline")  # opening the store cleans up after the dead run
    assert list(store.tmp.iterdir()) == []
    assert store.latest("words") is None
    run = execute(_pipeline(root), "words", store)
    assert run.counts == {"documents": 3} and store.verify() == []


def test_tmp_of_a_live_process_is_kept(tmp_path):
    store = ArtifactStore(tmp_path / "store", pipeline="pipeline")
    with store.staging() as staging:
        ArtifactStore(store.root)  # a second opener must not delete our staging dir
        assert staging.out.is_dir()
    assert not staging.root.exists()


def test_a_symlink_out_of_the_artifact_is_refused(tmp_path):
    store = ArtifactStore(tmp_path / "store", pipeline="pipeline")
    art = execute(_pipeline(store.root), "words", store).artifact
    secret = tmp_path / "secret.jsonl"
    secret.write_text((art.path / "00000.jsonl").read_text())  # same bytes: only the path gives it away
    (art.path / "00000.jsonl").unlink()
    (art.path / "00000.jsonl").symlink_to(secret)
    with pytest.raises(StoreError, match="'00000.jsonl', a path outside the artifact"):
        store.load(art.path)
    assert any("outside the artifact" in p for p in store.verify())


def test_repair_moves_bad_artifacts_aside_and_drops_dangling_pointers(tmp_path):
    from gristmill.engine.store_admin import find_problems, repair

    store = ArtifactStore(tmp_path / "store", pipeline="pipeline")
    pipeline = _pipeline(store.root)
    words = execute(pipeline, "words", store).artifact
    upper = execute(pipeline, "upper", store).artifact
    (upper.path / "00000.jsonl").unlink()
    (store.root / "pipeline" / "words" / "_" / "latest").write_text("nope\n")
    problems = find_problems(store)
    assert problems[0].message == f"artifact {upper.path}: 00000.jsonl missing"
    assert problems[1].message.endswith("words/_/latest names missing artifact 'nope'") and len(problems) == 2
    done, left = repair(store, problems)
    assert left == [] and len(done) == 2 and not upper.path.exists() and words.path.exists()
    assert store.latest("words") is None and store.latest("upper") is None and store.verify() == []
    assert [p.name for p in (store.root / ".quarantine" / "pipeline" / "upper" / "_").iterdir()][0].startswith(upper.id)


def test_migrate_an_old_store_whose_asset_shares_the_pipeline_name(tmp_path):
    from gristmill.engine.store_admin import migrate

    store = ArtifactStore(tmp_path / "store", pipeline="words")
    pipeline = validate_pipeline(
        {"name": "words", "stages": {"words": {"stage": "toy_words"}}}, "w.yaml", REG, store=store.root
    )
    art = execute(pipeline, "words", store).artifact
    os.rename(store.root / "words", store.root / "old")  # the old layout: <root>/<instance>/…
    os.rename(store.root / "old" / "words", store.root / "words")
    (store.root / "old").rmdir()
    (store.root / ".gristmill-store").unlink()
    with pytest.raises(StoreError, match="store migrate"):
        ArtifactStore(store.root)
    assert migrate(store.root, "words") == ["words → words/words"]
    again = execute(pipeline, "words", ArtifactStore(store.root))
    assert again.cache_hit and again.artifact.path == art.path and ArtifactStore(store.root).verify() == []
