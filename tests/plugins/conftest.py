"""Shared fixtures of the post-training stage tests: the demo's arithmetic tasks and a tiny policy.

``arithmetic`` — the ``arithmetic_tasks`` dataset (small sizes). ``tiny_policy`` — a ~0.2M-parameter Llama
pretrained for a few seconds on those problems' worked solutions (plain text), saved as a ``model`` artifact
with a ChatML tokenizer: enough to generate the answer format, far from solving the sums. ``reward_model`` — its
backbone with an untrained one-label score head. ``one_thread`` — one torch thread for the test.
"""

import json
from pathlib import Path

import pytest

from gristmill.lib.documents import DocumentWriter
from gristmill.testing import artifact_from_dir, run_stage


@pytest.fixture(scope="session")
def arithmetic(tmp_path_factory) -> Path:
    from gristmill_plugins.demo_data.tasks import TASKS_SPEC

    out = tmp_path_factory.mktemp("arithmetic") / "tasks"
    run_stage(TASKS_SPEC, out, {"sft_examples": 400, "prompts": 48, "eval_examples": 32})
    return out


@pytest.fixture(scope="session")
def tiny_policy(arithmetic: Path, tmp_path_factory) -> Path:
    from gristmill.lib.tokens import TokenDataset
    from gristmill.lib.train import ModelConfig, TrainConfig, train
    from gristmill.lib.train.export import save_model_dir
    from gristmill_plugins import tokenizer as tokenizer_stage
    from gristmill_plugins import tokens as tokens_stage

    root = tmp_path_factory.mktemp("tiny_policy")
    with DocumentWriter(root / "docs") as writer:
        for i, line in enumerate((arithmetic / "sft.jsonl").read_text().splitlines()):
            messages = json.loads(line)["messages"]
            writer.write(
                {"id": f"sft-{i}", "text": f"{messages[0]['content']} {messages[1]['content']}", "metadata": {}}
            )
    docs = artifact_from_dir("documents", root / "docs")
    run_stage(tokenizer_stage.SPEC, root / "tokenizer", {"vocab_size": 400}, {"documents": docs})
    tok = artifact_from_dir("tokenizer", root / "tokenizer")
    run_stage(
        tokens_stage.SPEC,
        root / "tokens",
        {"seq_len": 128, "validation_fraction": 0.05},
        {"documents": docs, "tokenizer": tok},
    )
    cfg = ModelConfig(d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=128, vocab_size=400, max_seq_len=256)
    data = TokenDataset(root / "tokens", "train", shuffle=True)
    result = train(
        cfg,
        TrainConfig(steps=60, batch_size=8, lr=3e-3, warmup=5, checkpoint_every=1000),
        data,
        root / "run",
        log_fn=lambda m: None,
    )
    save_model_dir(result.model, root / "model", tokenizer_dir=root / "tokenizer")
    return root / "model"


@pytest.fixture
def one_thread():
    """Tiny models on a shared 2-core machine: one torch thread is several times faster than two fighting."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def reward_model(tiny_policy: Path, tmp_path_factory) -> Path:
    """The tiny policy's backbone with a fresh (seeded, untrained) one-label score head: plumbing, not judgement."""
    import torch
    from transformers import LlamaForSequenceClassification

    from gristmill.lib.models import copy_tokenizer

    out = tmp_path_factory.mktemp("reward_model")
    torch.manual_seed(0)
    model = LlamaForSequenceClassification.from_pretrained(
        str(tiny_policy), num_labels=1, local_files_only=True, use_safetensors=True
    )
    model.save_pretrained(str(out), safe_serialization=True)
    copy_tokenizer(tiny_policy, out)
    return out
