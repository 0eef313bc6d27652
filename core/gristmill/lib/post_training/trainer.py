"""Running a TRL/transformers trainer as a stage: the options every training stage shares (:class:`TrainingConfig`),
the ``TrainingArguments`` they become (:func:`training_args`), the progress/loss-history callback
(:func:`stage_callback`) and :func:`run_trainer`, which trains, times, saves on rank 0 and sums the run up
(:class:`TrainRun`: steps, first/final loss, seconds, the loss curve).

Torch and transformers are imported inside functions: plugin modules import this at registration time.
"""

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from gristmill.configs import LaunchableConfig
from gristmill.lib.post_training.plots import history_plot
from gristmill.stage import Artifact, Markdown, StageContext

LrScheduler = Literal[
    "linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup", "inverse_sqrt"
]


class TrainingConfig(LaunchableConfig):
    """Options of every TRL/transformers training stage (``sft``, ``dpo``, ``reward_model``, kit trainer stages), one
    spelling each; a stage's config subclasses it and overrides a field where its default differs."""

    RENAMED: ClassVar[dict[str, str]] = {"grad_accum": "gradient_accumulation_steps"}

    epochs: float = Field(1.0, gt=0, description="Passes over the training examples (ignored when max_steps is set).")
    max_steps: int | None = Field(None, ge=1, description="Optimizer steps; overrides epochs when set.")
    lr: float = Field(2e-5, gt=0, description="Peak learning rate (AdamW).")
    lr_scheduler: LrScheduler = Field("cosine", description="Learning-rate schedule after warmup (transformers').")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Fraction of the steps spent warming the LR up.")
    warmup_steps: int = Field(0, ge=0, description="Steps spent warming the LR up (instead of warmup_ratio).")
    batch_size: int = Field(8, ge=1, description="Examples (sequences, pairs) per device per micro-batch.")
    gradient_accumulation_steps: int = Field(1, ge=1, description="Micro-batches accumulated per optimizer step.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    bf16: bool = Field(True, description="bf16 mixed precision (only used on GPUs that support it).")
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations in the backward pass: less memory, ~20% slower (big models)."
    )
    min_loss_drop: float = Field(
        0.05,
        ge=0,
        lt=1,
        description="Check loss_decreased (stages that declare it): the final loss is at least this fraction below "
        "the first step's.",
    )

    @model_validator(mode="after")
    def _one_warmup(self) -> "TrainingConfig":
        if self.warmup_ratio and self.warmup_steps:
            raise ValueError("set warmup_ratio or warmup_steps, not both")
        return self


def training_args(ctx: StageContext, config: TrainingConfig, **extra: Any) -> dict[str, Any]:
    """Keyword arguments for a TRL/transformers ``TrainingArguments`` (``SFTConfig``, ``DPOConfig``, …): ``config``'s
    options plus what every trainer here gets — CPU when there is no GPU (``use_cpu``), bf16 only where the GPU
    supports it, no hub, no reporting, no checkpoints, no progress bars (progress goes to the stage log through
    :func:`stage_callback`), the stage's seed, output in the scratch dir, the first step logged. ``extra`` adds to or
    overrides them (``logging_steps``, trainer-specific options)."""
    import torch

    cuda = torch.cuda.is_available()
    args: dict[str, Any] = {
        "output_dir": str(ctx.work_dir / "trainer"),
        "use_cpu": not cuda,
        "bf16": bool(config.bf16 and cuda and torch.cuda.is_bf16_supported()),
        "fp16": False,
        "report_to": "none",
        "save_strategy": "no",
        "push_to_hub": False,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "seed": ctx.seed,
        "data_seed": ctx.seed,
        "logging_steps": 10,
        "logging_first_step": True,
        "learning_rate": config.lr,
        "lr_scheduler_type": config.lr_scheduler,
        "warmup_steps": config.warmup_ratio or config.warmup_steps,  # transformers 5: a float < 1 is a ratio
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps or -1,
        "per_device_train_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "weight_decay": config.weight_decay,
        "activation_checkpointing": config.gradient_checkpointing,  # TRL configs default to True
    }
    args.update(extra)
    return args


def stage_callback(ctx: StageContext, history: list[dict[str, float]]) -> Any:
    """A ``TrainerCallback`` that appends each log (``step`` + numbers) to ``history`` and reports progress."""
    from transformers import TrainerCallback

    class _StageCallback(TrainerCallback):  # type: ignore[misc]
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **_: Any) -> None:
            numbers = {k: float(v) for k, v in (logs or {}).items() if isinstance(v, int | float)}
            if not numbers:
                return
            history.append({"step": float(state.global_step), **numbers})
            shown = " ".join(f"{k}={v:.4g}" for k, v in numbers.items() if k in ("loss", "accuracy", "rewards/margins"))
            ctx.progress(state.global_step, state.max_steps or None, shown, every_s=0.0)

    return _StageCallback()


@dataclass
class TrainRun:
    """A finished training run, on the main process: the trainer, its unwrapped model, the :func:`stage_callback`
    history, the ``trainer.train()`` wall time and its ``TrainOutput``."""

    trainer: Any
    model: Any
    history: list[dict[str, float]]
    seconds: float
    output: Any

    @property
    def steps(self) -> int:
        return int(self.trainer.state.global_step)

    @property
    def losses(self) -> list[float]:
        return [h["loss"] for h in self.history if "loss" in h]

    @property
    def first_loss(self) -> float:
        """The first logged loss (step 1), rounded to 4 places."""
        losses = self.losses
        return round(losses[0], 4) if losses else math.nan

    @property
    def final_loss(self) -> float:
        """Mean of the last quarter of the logged losses (at most 10, at least 1), rounded to 4 places."""
        losses = self.losses
        tail = losses[-max(1, min(10, len(losses) // 4)) :] if losses else []
        return round(sum(tail) / len(tail), 4) if tail else math.nan

    @property
    def last_loss(self) -> float:
        """The last logged loss, rounded to 4 places."""
        losses = self.losses
        return round(losses[-1], 4) if losses else math.nan

    @property
    def train_seconds(self) -> float:
        return round(self.seconds, 2)

    def counts(self) -> dict[str, int | float]:
        """``steps``, ``first_loss``, ``final_loss``, ``train_seconds``."""
        return {
            "steps": self.steps,
            "first_loss": self.first_loss,
            "final_loss": self.final_loss,
            "train_seconds": self.train_seconds,
        }

    def curve(self, alt: str, series: Sequence[tuple[str, str]] = (("loss", "train"),), **plot: Any) -> Markdown:
        """A PNG of the logged ``series`` (the loss by default): :func:`~gristmill.lib.post_training.plots.history_plot`
        of the run's history."""
        return history_plot(self.history, series, alt, **plot)


def run_trainer(
    ctx: StageContext, trainer: Any, *, history: list[dict[str, float]], tokenizer_from: Artifact | None
) -> TrainRun | None:
    """Train ``trainer`` (built with :func:`training_args` and a :func:`stage_callback` filling ``history``) without
    transformers' stdout printer, timed. On the main process the unwrapped model is saved into ``ctx.output_dir``
    (:func:`~gristmill.lib.train.export.save_model_dir`, with the tokenizer files of ``tokenizer_from``, normally
    the input model; ``None``: the stage saves it itself) and the run is returned; the other processes get
    ``None`` (their stage returns an empty result)."""
    from transformers import PrinterCallback

    from gristmill.engine.launch import process_state
    from gristmill.lib.train.export import save_model_dir

    trainer.remove_callback(PrinterCallback)  # progress goes to the stage log instead of stdout
    start = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - start
    if not process_state().is_main_process:
        return None
    model = trainer.accelerator.unwrap_model(trainer.model)
    if tokenizer_from is not None:
        save_model_dir(model, ctx.output_dir, tokenizer_from.path)
    return TrainRun(trainer, model, history, seconds, output)
