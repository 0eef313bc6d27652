"""Options of the ``long_context`` stage (its extension steps, training and gates) and its input error."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gristmill.configs import LaunchableConfig
from gristmill.errors import StageInputError
from gristmill.lib.models import DtypeName
from gristmill.lib.train.config import TrainConfig


class ExtensionStep(BaseModel):
    """One context-extension step."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq_len: int = Field(..., ge=2, description="The new context length (packed training sequence length).")
    train_steps: int = Field(50, ge=1, description="Optimizer steps of continued training at this length.")
    rope_theta: float | None = Field(None, gt=0, description="New RoPE base frequency; None: keep the previous one.")
    rope_scaling: Literal["default", "linear", "yarn"] | None = Field(
        None,
        description="RoPE scaling (rope_parameters rope_type); None: keep the previous step's (the input's own "
        "rope_parameters, e.g. llama3, unless an earlier step chose linear/yarn).",
    )
    rope_factor: float | None = Field(
        None, ge=1.0, description="Factor of linear/yarn scaling; None: seq_len / the original length."
    )
    lr: float | None = Field(None, gt=0, description="Peak learning rate of this step; None: train.lr.")

    @model_validator(mode="after")
    def _check(self) -> "ExtensionStep":
        if self.rope_scaling == "default" and self.rope_factor is not None:
            raise ValueError("rope_factor needs rope_scaling linear or yarn (default RoPE has no factor)")
        return self


def _default_train() -> TrainConfig:
    return TrainConfig(batch_size=8, lr=1e-3, min_lr=1e-4, warmup=5, checkpoint_every=25, keep_checkpoints=2)


class LongContextConfig(LaunchableConfig):
    """Options of the ``long_context`` stage."""

    steps: list[ExtensionStep] = Field(
        default_factory=lambda: [ExtensionStep(seq_len=256), ExtensionStep(seq_len=512)],
        description="Extension steps, in increasing seq_len (each longer than the input model's context).",
    )
    dtype: DtypeName = Field(
        "auto",
        description="Dtype of the saved weights (training runs in float32): auto = the input checkpoint's; "
        "bfloat16, float16 or float32 cast.",
    )
    train: TrainConfig = Field(
        default_factory=_default_train,
        description="Training loop options (see TrainConfig); train.steps is replaced by each step's train_steps.",
    )
    needle_depths: list[float] = Field(
        [0.0, 0.25, 0.5, 0.75, 1.0],
        description="Needle depths (0: start of the haystack, 1: just before the question).",
    )
    needle_trials: int = Field(8, ge=1, description="Needle prompts per (length, depth) cell, each its own fact.")
    needle_candidates: int = Field(4, ge=2, description="Values ranked per prompt (the right one + distractors).")
    needle_digits: int = Field(5, ge=1, le=12, description="Digits of the pass key (as in retrieval_docs).")
    min_needle_pass_rate: float = Field(
        0.5, ge=0, le=1, description="Check needle_retrieval: pass rate at the final length must reach this."
    )
    max_needle_drop: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Check needle_retrieval also fails when the final pass rate is more than this "
        "below the pre-extension model's at its own (original) length; None: off.",
    )
    short_ppl_tolerance: float = Field(
        0.15, ge=0, description="Check short_context_recovery: short-context perplexity ≤ (1 + this) × before."
    )
    short_eval_sequences: int = Field(64, ge=1, description="Validation sequences of the original length scored.")
    eval_batch_size: int = Field(16, ge=1, description="Sequences per forward pass in the gates.")
    log_every: int = Field(10, ge=1, description="Log a metrics line every N training steps.")

    @model_validator(mode="after")
    def _check(self) -> "LongContextConfig":
        lengths = [s.seq_len for s in self.steps]
        if not lengths:
            raise ValueError("steps: at least one extension step is needed")
        if lengths != sorted(set(lengths)):
            raise ValueError(f"steps: seq_len must strictly increase, got {lengths}")
        if any(not 0 <= d <= 1 for d in self.needle_depths) or not self.needle_depths:
            raise ValueError(f"needle_depths must be in [0, 1], got {self.needle_depths}")
        return self


class LongContextInputError(StageInputError):
    """An input artifact the stage cannot use; the message names it and the field."""
