"""Shared fixtures of the post-training stage tests: the demo's arithmetic tasks and a tiny policy.

``arithmetic`` — the ``arithmetic_tasks`` dataset (small sizes). ``tiny_policy`` — a ~0.2M-parameter Llama
pretrained for a few seconds on those problems' worked solutions (plain text), saved as a ``model`` artifact
with a ChatML tokenizer: enough to generate the answer format, far from solving the sums.
"""

import json
from pathlib import Path

import pytest

from gristmill.documents import DocumentWriter
from gristmill.testing import artifact_from_dir, run_stage


@pytest.fixture(scope="session")
def arithmetic(tmp_path_factory) -> Path:
    from gristmill_plugins.demo_data.tasks import TASKS_SPEC

    out = tmp_path_factory.mktemp("arithmetic") / "tasks"
    run_stage(TASKS_SPEC, out, {"sft_examples": 400, "prompts": 48, "eval_examples": 32})
    return out


@pytest.fixture(scope="session")
def tiny_policy(arithmetic: Path, tmp_path_factory) -> Path:
    from gristmill.tokens import TokenDataset
    from gristmill.train import ModelConfig, TrainConfig, train
    from gristmill.train.export import save_model_dir
    from gristmill_plugins import tokenizer as tokenizer_stage
    from gristmill_plugins import tokens as tokens_stage

    root = tmp_path_factory.mktemp("tiny_policy")
    with DocumentWriter(root / "docs") as writer:
        for i, line in enumerate((arithmetic / "sft.jsonl").read_text().splitlines()):
            messages = json.loads(line)["messages"]
            writer.write({"id": f"sft-{i}", "text": f"{messages[0]['content']} {messages[1]['content']}",
                          "metadata": {}})  # fmt: skip
    docs = artifact_from_dir("documents", root / "docs")
    run_stage(tokenizer_stage.SPEC, root / "tokenizer", {"vocab_size": 400}, {"documents": docs})
    tok = artifact_from_dir("tokenizer", root / "tokenizer")
    run_stage(tokens_stage.SPEC, root / "tokens", {"seq_len": 128, "validation_fraction": 0.05},
              {"documents": docs, "tokenizer": tok})  # fmt: skip
    cfg = ModelConfig(d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=128, vocab_size=400, max_seq_len=256)
    data = TokenDataset(root / "tokens", "train", shuffle=True)
    result = train(cfg, TrainConfig(steps=60, batch_size=8, lr=3e-3, warmup=5, checkpoint_every=1000), data,
                   root / "run", log_fn=lambda m: None)  # fmt: skip
    save_model_dir(result.model, root / "model", tokenizer_dir=root / "tokenizer")
    return root / "model"
