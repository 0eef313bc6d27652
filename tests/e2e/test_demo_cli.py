"""The README's main command, as a user runs it: `gristmill demo`, then the UI on the same store."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gristmill_pipelines import pipeline_path

BIN = Path(sys.executable).parent
ASSETS = (
    "demo_crawl ",
    "reference ",
    "crawl ",
    "crawl_unfiltered ",
    "dedup ",
    "quality_model ",
    "quality ",
    "tasks ",
    "pretrain_docs ",
    "tokenizer ",
    "tokens ",
    "pretrain ",
    "retrieval ",
    "retrieval_tokens ",
    "long_context ",
    "sft ",
    "rejection ",
    "rs_sft ",
    "reward ",
    "dpo ",
    "eval ",
)
ROUNDS = 2  # demo.yaml rounds.initial: the dpo row appears once per round


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}


def _demo(store: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "gristmill"), "demo", "--store", str(store)],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=1500,
    )


def _latest(store: Path, asset: str) -> str:
    return (store / "demo" / asset / "_" / "latest").read_text().strip()


def _manifest(store: Path, asset: str) -> dict:
    return json.loads((store / "demo" / asset / "_" / _latest(store, asset) / "manifest.json").read_text())


@pytest.mark.slow
def test_demo_end_to_end_cached_and_deterministic(tmp_path):
    """The whole chain once (the suite's only full demo run): every gate passes, SFT beats the pretrained model on
    the held-out set, two DPO rounds chain, a second run is all cache hits, the data stages are reproducible."""
    first = _demo(tmp_path / "a", tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "succeeded" in first.stdout and "Traceback" not in first.stderr
    crawl = _manifest(tmp_path / "a", "crawl")
    assert crawl["counts"]["documents_kept"] > 100
    demo = tmp_path / "a" / "demo"
    report = json.loads((demo / "eval" / "_" / _latest(tmp_path / "a", "eval") / "report.json").read_text())
    accuracy = {r["model"]: r["accuracy"] for r in report["models"]}
    assert list(accuracy) == ["pretrain", "long_context", "sft", "rs_sft", "dpo[round-001]", "dpo[round-002]"]
    assert accuracy["sft"] > accuracy["pretrain"] + 0.05, accuracy
    round2 = json.loads(next((demo / "dpo" / "round-002").glob("*/manifest.json")).read_text())
    round1_id = (demo / "dpo" / "round-001" / "latest").read_text().strip()
    assert round2["inputs"]["previous"]["id"] == round1_id  # round 2 started from round 1's policy
    again = _demo(tmp_path / "a", tmp_path)
    assert again.returncode == 0
    rows = [ln for ln in again.stdout.splitlines() if ln.startswith(ASSETS)]
    assert len(rows) == len(ASSETS) + ROUNDS - 1 and all(" cache hit " in ln for ln in rows), again.stdout[-3000:]
    # A fresh store: same seed → same bytes for the data stages (training determinism: tests/core/lib/train).
    other = subprocess.run(
        [str(BIN / "gristmill"), "run", str(pipeline_path()), "--store", str(tmp_path / "b"), "--select", "+tokens"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert other.returncode == 0, other.stderr[-3000:]
    for asset in ("demo_crawl", "crawl", "dedup", "quality", "tasks", "pretrain_docs", "tokenizer", "tokens"):
        assert _manifest(tmp_path / "b", asset)["content_hash"] == _manifest(tmp_path / "a", asset)["content_hash"]
    verify = subprocess.run(
        [str(BIN / "gristmill"), "store", "verify", "--store", str(tmp_path / "a")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0 and "0 problems" in verify.stdout
