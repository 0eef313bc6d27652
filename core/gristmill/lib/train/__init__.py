"""The shared training loop (pretraining and long-context): a readable, nanoGPT-like loop.

- :mod:`.config`: :class:`ModelConfig` and :class:`TrainConfig` (pydantic only: cheap to import).
- :mod:`.model`: a from-scratch ``LlamaForCausalLM``; parameter and FLOP counts (also of any HF causal LM).
- :mod:`.optim`: optimizers (AdamW, Lion, Adafactor) and LR schedules as pure functions of the step.
- :mod:`.checkpoint`: atomic, checksummed checkpoints with exact-resume state; :func:`latest_valid`.
- :mod:`.loop`: :func:`train` (a model from scratch, or a pre-built one of any architecture), :func:`evaluate`,
  :class:`TrainResult`.
- :mod:`.export`: saving a from-scratch model as a ``model`` folder, the output dtype; :mod:`.devices`: peak
  FLOP/s; :mod:`.chinchilla`: sizing.

Names are imported lazily, so ``from gristmill.lib.train import ModelConfig`` does not import torch.
"""

from importlib import import_module
from typing import Any

_WHERE = {
    "ModelConfig": "config",
    "TrainConfig": "config",
    "TrainResult": "loop",
    "train": "loop",
    "build_model": "model",
    "count_params": "model",
    "flops_per_token": "model",
    "latest_valid": "checkpoint",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'gristmill.lib.train' has no attribute {name!r}")
    return getattr(import_module(f"gristmill.lib.train.{_WHERE[name]}"), name)
