"""Case 12: determinism. The data stages run twice with the same config and seed (into two stores, from scratch)
give identical content hashes, file by file; training on CPU with a fixed seed gives identical losses."""

import json
from pathlib import Path

import pytest

from gristmill.lib.train import train
from tests.core.lib.train.helpers import dataset, tiny_model, tiny_train
from tests.reliability.test_11_corrupt_models import _gristmill

# fastText training is byte-deterministic too: tests/plugins/test_quality_classifier.py::test_same_seed_same_bytes
DATA_PIPELINE = """
name: data
stages:
  demo_crawl: {stage: synthetic_crawl, config: {pages: 80}}
  crawl: {stage: crawl_filter, inputs: {warcs: demo_crawl}, config: {languages: [en], url_filter: false}}
  dedup: {stage: minhash_dedup, inputs: {documents: crawl}}
  reference: {stage: synthetic_reference}
  tokenizer: {stage: tokenizer, inputs: {documents: reference}, config: {vocab_size: 400}}
  tokens: {stage: tokens, inputs: {documents: dedup, tokenizer: tokenizer}, config: {seq_len: 64}}
"""


def _manifests(store: Path) -> dict[str, dict]:
    out = {}
    for asset in sorted(p for p in (store / "data").iterdir() if (p / "_" / "latest").is_file()):
        latest = asset / "_" / (asset / "_" / "latest").read_text().strip()
        out[asset.name] = json.loads((latest / "manifest.json").read_text())
    return out


@pytest.mark.slow
def test_data_stages_twice_give_identical_content_hashes(tmp_path):
    (tmp_path / "data.yaml").write_text(DATA_PIPELINE)
    for store in ("one", "two"):
        proc = _gristmill("run", "data.yaml", "--store", store, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
    one, two = _manifests(tmp_path / "one"), _manifests(tmp_path / "two")
    assert sorted(one) == ["crawl", "dedup", "demo_crawl", "reference", "tokenizer", "tokens"]
    for asset in one:
        assert one[asset]["files"] == two[asset]["files"], asset  # every file's sha256 and size
        assert one[asset]["content_hash"] == two[asset]["content_hash"], asset
        assert one[asset]["id"] == two[asset]["id"], asset  # same inputs + config + seed → same artifact id
    assert one["dedup"]["counts"]["documents_out"] > 0 and one["tokens"]["bytes"] > 0


def test_training_with_a_fixed_seed_gives_identical_losses(tokens, tmp_path):
    cfg = tiny_train(steps=8)
    first = train(tiny_model(), cfg, dataset(tokens), tmp_path / "a")
    second = train(tiny_model(), cfg, dataset(tokens), tmp_path / "b")
    assert first.losses == second.losses and len(first.losses) == 8  # bitwise, not approximately
    other = train(tiny_model(), tiny_train(steps=8, seed=cfg.seed + 1), dataset(tokens), tmp_path / "c")
    assert other.losses != first.losses  # the seed matters: the comparison above can fail
