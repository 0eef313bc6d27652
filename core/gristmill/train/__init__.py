"""The shared training loop (pretraining and long-context): a readable, nanoGPT-like loop.

- :mod:`.model`: :class:`ModelConfig` → a from-scratch ``LlamaForCausalLM``; parameter and FLOP counts.
- :mod:`.optim`: optimizers (AdamW, Lion) and LR schedules as pure functions of the step.
- :mod:`.checkpoint`: atomic, checksummed checkpoints with exact-resume state; :func:`latest_valid`.
- :mod:`.loop`: :class:`TrainConfig` and :func:`train`.
"""

from gristmill.train.checkpoint import latest_valid
from gristmill.train.loop import TrainConfig, TrainResult, train
from gristmill.train.model import ModelConfig, build_model, count_params, flops_per_token

__all__ = [
    "ModelConfig",
    "TrainConfig",
    "TrainResult",
    "build_model",
    "count_params",
    "flops_per_token",
    "latest_valid",
    "train",
]
