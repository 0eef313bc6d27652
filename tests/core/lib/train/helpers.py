"""Tiny model, tiny token dataset and configs shared by the training-loop tests."""

from pathlib import Path

import numpy as np

from gristmill.lib.tokens import TokenDataset, TokensWriter
from gristmill.lib.train import ModelConfig, TrainConfig

VOCAB = 256
SEQ = 32
EOS = 1


def write_tokens(folder: Path, sequences: int = 64, seed: int = 0) -> Path:
    """Patterned documents (arithmetic runs with a random start and stride): learnable in a few steps."""
    rng = np.random.default_rng(seed)
    written = 0
    with TokensWriter(folder, seq_len=SEQ, vocab_size=VOCAB, eos_id=EOS, splits=("train",)) as w:
        while written < sequences * SEQ + SEQ:
            start, stride, n = rng.integers(2, VOCAB), rng.integers(1, 4), rng.integers(8, 40)
            doc = 2 + (start + stride * np.arange(n)) % (VOCAB - 2)
            w.add("train", np.append(doc, EOS))
            written += n + 1
    return folder


def dataset(folder: Path, shuffle: bool = True) -> TokenDataset:
    return TokenDataset(folder, "train", shuffle=shuffle, seed=7)


def tiny_model() -> ModelConfig:
    return ModelConfig(d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=128, vocab_size=VOCAB, max_seq_len=SEQ)


def tiny_train(**overrides) -> TrainConfig:
    base = {
        "steps": 20,
        "batch_size": 4,
        "lr": 3e-3,
        "min_lr": 3e-4,
        "warmup": 3,
        "checkpoint_every": 5,
        "keep_checkpoints": 3,
        "seed": 123,
    }
    return TrainConfig(**(base | overrides))
