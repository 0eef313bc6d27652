"""Case 11: a corrupt fastText model or tokenizer file in the store → `gristmill run` fails with a clear error naming
the artifact; the process exits 1 (fastText segfaults on some corrupt `.bin` files, so gristmill validates the file
before fastText sees it). Every corruption kind, offset by offset: tests/core/lib/test_textclf.py; tokenizer files:
tests/plugins/test_tokens.py."""

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gristmill.engine.store import MANIFEST, hash_files
from tests.conftest import REPO_ROOT

PIPELINE = """
name: models
stages:
  demo_crawl: {stage: synthetic_crawl, config: {pages: 80}}
  crawl:
    stage: crawl_filter
    inputs: {warcs: demo_crawl}
    config: {languages: [en], url_filter: false, gopher_repetition: false, gopher_quality: false, c4: false,
             fineweb: false}
  reference: {stage: synthetic_reference}
  quality_model: {stage: quality_classifier, inputs: {documents: crawl, reference: reference}, config: {min_auc: 0}}
  quality: {stage: quality_filter, inputs: {documents: crawl, classifier: quality_model}}
  tokenizer: {stage: tokenizer, inputs: {documents: reference}, config: {vocab_size: 400}}
  tokens: {stage: tokens, inputs: {documents: reference, tokenizer: tokenizer}, config: {seq_len: 64}}
"""


def _gristmill(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run(
        [sys.executable, "-m", "gristmill.cli", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pipeline's upstream stages materialized once: a real fastText classifier and a real tokenizer."""
    work = tmp_path_factory.mktemp("models")
    (work / "models.yaml").write_text(PIPELINE)
    proc = _gristmill(
        "run",
        "models.yaml",
        "--store",
        "st",
        "--select",
        "quality_model",
        "tokenizer",
        "+quality_model",
        "+tokenizer",
        cwd=work,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work


def _latest(work: Path, asset: str) -> Path:
    slot = work / "st" / "models" / asset / "_"
    return slot / (slot / "latest").read_text().strip()


@contextlib.contextmanager
def committed_as_is(artifact: Path) -> Iterator[None]:
    """Re-sign ``artifact``'s manifest over its (damaged) files, as if the stage had written them so: the store's own
    check (tests/reliability/test_15_tampered_artifacts.py) passes and the reading stage meets the bad file. The
    manifest is put back afterwards."""
    original = (artifact / MANIFEST).read_text()
    manifest = json.loads(original)
    manifest["content_hash"], manifest["files"] = hash_files(artifact)
    manifest["mtime_ns"] = {f["path"]: (artifact / f["path"]).stat().st_mtime_ns for f in manifest["files"]}
    (artifact / MANIFEST).write_text(json.dumps(manifest))
    try:
        yield
    finally:
        (artifact / MANIFEST).write_text(original)


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncate", "header"])
def test_corrupt_fasttext_model_is_named_not_a_crash(store: Path, damage: str):
    model = _latest(store, "quality_model") / "model.bin"
    good = model.read_bytes()
    if damage == "truncate":
        model.write_bytes(good[: len(good) // 3])
    elif damage == "random":
        model.write_bytes(random.Random(0).randbytes(len(good)))
    else:  # a plausible header over a body of zeros
        model.write_bytes(good[:64] + bytes(len(good) - 64))
    try:
        with committed_as_is(model.parent):
            proc = _gristmill("run", "models.yaml", "--store", "st", "--select", "quality", cwd=store)
    finally:
        model.write_bytes(good)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-3000:])  # not -SIGSEGV / -SIGFPE
    assert proc.returncode not in (-signal.SIGSEGV, -signal.SIGFPE, -signal.SIGABRT)
    message = proc.stdout + proc.stderr
    assert "quality_filter: classifier" in message and str(model) in message, message[-3000:]
    assert not (store / "st" / "models" / "quality").exists()  # nothing committed


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncate"])
def test_corrupt_tokenizer_is_named(store: Path, damage: str):
    tokenizer = _latest(store, "tokenizer") / "tokenizer.json"
    good = tokenizer.read_text()
    tokenizer.write_text(good[: len(good) // 2] if damage == "truncate" else '{"version": "1.0"}')
    try:
        with committed_as_is(tokenizer.parent):
            proc = _gristmill("run", "models.yaml", "--store", "st", "--select", "tokens", cwd=store)
    finally:
        tokenizer.write_text(good)
    assert proc.returncode == 1, proc.stderr[-3000:]
    message = proc.stdout + proc.stderr
    assert "corrupt tokenizer.json in input" in message and tokenizer.parent.name in message, message[-3000:]
    assert not (store / "st" / "models" / "tokens").exists()
