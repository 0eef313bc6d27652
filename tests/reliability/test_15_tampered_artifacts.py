"""Case 15: a cache hit trusts the files, not the manifest.

A committed shard that was appended to, truncated or changed is not a cache hit: the artifact is moved aside (the
log names where) and recomputed, and a stage never reads a tampered input — its id comes from verified hashes. A
manifest whose ``files`` point outside the artifact (``../…``) is refused. ``gristmill store verify`` re-hashes every
file and names what changed, was added, is missing or points outside; ``--repair`` moves the bad artifacts aside so
the next run recomputes them; ``gristmill run --force ASSET`` recomputes an asset even on a cache hit.
"""

import hashlib
import json
import logging
import os
from pathlib import Path

import pytest

from gristmill.engine.runner import execute
from gristmill.engine.store import MANIFEST, ArtifactStore, StoreError
from gristmill.pipeline.config import validate_pipeline
from tests.reliability.test_04_killed_dagster_run import gristmill
from tests.reliability.test_14_shared_store import stages, summary, write_pipeline
from tests.support import toy_registry, toy_stages

REG = toy_registry()


def pipeline(store, verify_on_hit=False):
    data = {"name": "team_a", "stages": stages(300), "verify_on_hit": verify_on_hit}
    return validate_pipeline(data, "a.yaml", REG, store=store)


def shard(art) -> Path:
    return art.path / "00000.jsonl"


def documents(art) -> int:
    return len(shard(art).read_text().splitlines())


def run_all(p, store, *names):
    return {n: execute(p, n, store) for n in names or p.order}


def test_an_appended_shard_is_not_a_cache_hit(tmp_path, caplog):
    p = pipeline(tmp_path / "st")
    store = ArtifactStore(p.store)
    clean = run_all(p, store, "words", "dedup")["dedup"].artifact
    with open(shard(clean), "a") as f:  # 200 more documents in a committed shard
        f.writelines(json.dumps({"id": f"x{i}", "text": "spam", "metadata": {}}) + "\n" for i in range(200))

    with caplog.at_level(logging.WARNING):
        again = execute(p, "dedup", store)
    assert not again.cache_hit and again.artifact.id == clean.id
    assert again.artifact.content_hash == clean.content_hash and documents(again.artifact) == 300
    moved = [r.getMessage() for r in caplog.records if "moved aside" in r.getMessage()]
    aside = [f.parent for f in (tmp_path / "st" / ".quarantine").rglob("00000.jsonl")]
    assert len(aside) == 1 and len((aside[0] / "00000.jsonl").read_text().splitlines()) == 500  # kept, out of the way
    assert len(moved) == 1 and "00000.jsonl" in moved[0] and str(aside[0]) in moved[0], caplog.text

    tokenizer = execute(p, "tokenizer", store)
    assert tokenizer.counts["documents_in"] == 300


def test_a_stage_never_reads_a_tampered_input(tmp_path):
    p = pipeline(tmp_path / "st")
    store = ArtifactStore(p.store)
    clean = run_all(p, store, "words", "dedup")["dedup"].artifact
    with open(shard(clean), "a") as f:
        f.write(json.dumps({"id": "x", "text": "poison", "metadata": {}}) + "\n")
    calls = len(toy_stages.CALLS)
    with pytest.raises(StoreError, match=r"'dedup'.*00000\.jsonl"):
        execute(p, "tokenizer", store)
    assert len(toy_stages.CALLS) == calls and store.for_pipeline("team_a").latest("tokenizer") is None

    # Restored: the same (verified) input hash, the same tokenizer id as a run that never saw the poison.
    execute(p, "dedup", store)
    tokenizer = execute(p, "tokenizer", store).artifact
    fresh = pipeline(tmp_path / "fresh")
    assert tokenizer.id == run_all(fresh, ArtifactStore(fresh.store))["tokenizer"].artifact.id


def test_a_truncated_shard_is_recomputed(tmp_path):
    p = pipeline(tmp_path / "st")
    store = ArtifactStore(p.store)
    arts = {n: r.artifact for n, r in run_all(p, store).items()}
    data = shard(arts["words"]).read_bytes()
    shard(arts["words"]).write_bytes(data[: len(data) // 2])
    again = run_all(p, store)
    assert not again["words"].cache_hit and documents(again["words"].artifact) == 300
    assert again["dedup"].cache_hit and again["tokenizer"].cache_hit  # same verified content: same ids downstream


def _outside_manifest(art, outside) -> None:
    """Point the artifact's manifest at ``outside`` (``../../…``), re-signed so that the manifest itself is
    consistent: what an attacker with write access to the store can do."""
    manifest = json.loads((art.path / MANIFEST).read_text())
    rel = os.path.relpath(outside, art.path)
    assert rel.startswith("../../")
    files = [{"path": rel, "size": outside.stat().st_size, "sha256": hashlib.sha256(outside.read_bytes()).hexdigest()}]
    blob = json.dumps([(f["path"], f["size"], f["sha256"]) for f in files], separators=(",", ":"))
    manifest.update(files=files, content_hash=hashlib.sha256(blob.encode()).hexdigest())
    (art.path / MANIFEST).write_text(json.dumps(manifest))
    shard(art).unlink()


def test_a_manifest_pointing_outside_the_artifact_is_refused(tmp_path):
    outside = tmp_path / "outside.jsonl"
    outside.write_text(json.dumps({"id": "o", "text": "outside", "metadata": {}}) + "\n")
    p = pipeline(tmp_path / "st")
    store = ArtifactStore(p.store)
    _outside_manifest(run_all(p, store, "words", "dedup")["dedup"].artifact, outside)

    with pytest.raises(StoreError, match=r"outside.jsonl.*outside the artifact"):
        execute(p, "tokenizer", store)
    again = execute(p, "dedup", store)  # not a cache hit: moved aside and recomputed
    assert not again.cache_hit and documents(again.artifact) == 300
    assert execute(p, "tokenizer", store).counts["documents_in"] == 300


def test_verify_on_hit_rehashes_large_artifacts(tmp_path, monkeypatch):
    from gristmill.engine import integrity

    monkeypatch.setattr(integrity, "FULL_CHECK_BYTES", 0)  # every artifact counts as large: sizes + mtimes only
    for verify_on_hit in (False, True):
        p = pipeline(tmp_path / f"st{verify_on_hit}", verify_on_hit)
        store = ArtifactStore(p.store)
        art = run_all(p, store, "words")["words"].artifact
        stat = shard(art).stat()
        data = bytearray(shard(art).read_bytes())
        data[10] ^= 1  # same size; the mtime put back: only a re-hash sees it
        shard(art).write_bytes(bytes(data))
        os.utime(shard(art), ns=(stat.st_atime_ns, stat.st_mtime_ns))
        assert execute(p, "words", store).cache_hit is not verify_on_hit


def test_store_verify_names_the_tampering_and_repair_moves_it_aside(tmp_path, toy_plugin_site_module):
    write_pipeline(tmp_path / "a.yaml", "team_a", 300)
    assert gristmill(["run", "a.yaml", "--store", "st"], toy_plugin_site_module, tmp_path).returncode == 0
    store = ArtifactStore(tmp_path / "st", pipeline="team_a")
    words, dedup, tokenizer = (store.latest(n) for n in ("words", "dedup", "tokenizer"))
    (words.path / "extra.jsonl").write_text("{}\n")  # added
    data = bytearray(shard(dedup).read_bytes())
    data[10] ^= 1  # changed, same size
    shard(dedup).write_bytes(bytes(data))
    outside = tmp_path / "outside.jsonl"
    outside.write_text("{}\n")
    _outside_manifest(tokenizer, outside)  # outside path (and its own shard missing)

    verify = gristmill(["store", "verify", "--store", "st"], toy_plugin_site_module, tmp_path)
    assert verify.returncode == 1
    errors = verify.stderr
    assert "extra.jsonl added" in errors and f"{words.path}" in errors, errors
    assert "00000.jsonl changed" in errors and f"{dedup.path}" in errors, errors
    assert "outside.jsonl" in errors and "outside the artifact" in errors and f"{tokenizer.path}" in errors, errors

    repair = gristmill(["store", "verify", "--repair", "--store", "st"], toy_plugin_site_module, tmp_path)
    assert repair.returncode == 0, repair.stdout + repair.stderr
    assert repair.stdout.count("moved aside") == 3, repair.stdout
    assert not words.path.exists() and not dedup.path.exists() and not tokenizer.path.exists()
    clean = gristmill(["store", "verify", "--store", "st"], toy_plugin_site_module, tmp_path)
    assert clean.returncode == 0 and "0 problems" in clean.stdout, clean.stdout + clean.stderr

    rerun = gristmill(["run", "a.yaml", "--store", "st"], toy_plugin_site_module, tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert all(" ran " in summary(rerun.stdout, a) for a in ("words", "dedup", "tokenizer")), rerun.stdout
    assert "documents_in=300" in summary(rerun.stdout, "tokenizer")


def test_run_force_recomputes_a_cache_hit(tmp_path, toy_plugin_site_module):
    write_pipeline(tmp_path / "a.yaml", "team_a", 30)
    assert gristmill(["run", "a.yaml", "--store", "st"], toy_plugin_site_module, tmp_path).returncode == 0
    forced = gristmill(["run", "a.yaml", "--store", "st", "--force", "dedup"], toy_plugin_site_module, tmp_path)
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert "cache hit" in summary(forced.stdout, "words")
    assert " ran " in summary(forced.stdout, "dedup")
    assert "cache hit" in summary(forced.stdout, "tokenizer")  # identical output: downstream stays a hit
    unknown = gristmill(["run", "a.yaml", "--store", "st", "--force", "nope"], toy_plugin_site_module, tmp_path)
    assert unknown.returncode == 2 and "--force" in unknown.stderr and "nope" in unknown.stderr
