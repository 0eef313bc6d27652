"""Running a TRL/transformers trainer as a stage: the options every training stage shares (:class:`TrainingConfig`),
the ``TrainingArguments`` they become (:func:`training_args`), the progress/loss-history callback
(:func:`stage_callback`) and :func:`run_trainer`, which trains, times, saves on rank 0 and sums the run up
(:class:`TrainRun`: steps, first/final loss, seconds, the loss curve).

Torch and transformers are imported inside functions: plugin modules import this at registration time.
"""

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from gristmill.configs import LaunchableConfig
from gristmill.lib.models.lora import LoraOptions
from gristmill.lib.models.options import ModelOptions
from gristmill.lib.post_training.plots import history_plot
from gristmill.stage import Artifact, Markdown, StageContext

log = logging.getLogger("gristmill.post_training")

LrScheduler = Literal[
    "linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup", "inverse_sqrt"
]


class TrainingConfig(LaunchableConfig, ModelOptions):
    """Options of every TRL/transformers training stage (``sft``, ``dpo``, ``reward_model``, kit trainer stages), one
    spelling each (``dtype`` and ``chat_template`` from :class:`~gristmill.lib.models.ModelOptions`); a stage's
    config subclasses it and overrides a field where its default differs."""

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


class LoraTrainingConfig(TrainingConfig):
    """:class:`TrainingConfig` plus the ``peft`` option (LoRA instead of full fine-tuning)."""

    peft: LoraOptions | None = Field(
        None, description="LoRA adapters (peft) instead of full fine-tuning, e.g. {r: 16, alpha: 32}; None: full."
    )


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
    params: dict[str, int] = field(default_factory=dict)  # trainable_params, total_params
    peak_memory_mb: float = math.nan

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
        """``steps``, ``first_loss``, ``final_loss``, ``train_seconds``, parameter counts, peak memory."""
        return {
            "steps": self.steps,
            "first_loss": self.first_loss,
            "final_loss": self.final_loss,
            "train_seconds": self.train_seconds,
            **self.params,
            "peak_memory_mb": self.peak_memory_mb,
        }

    def curve(self, alt: str, series: Sequence[tuple[str, str]] = (("loss", "train"),), **plot: Any) -> Markdown:
        """A PNG of the logged ``series`` (the loss by default): :func:`~gristmill.lib.post_training.plots.history_plot`
        of the run's history."""
        return history_plot(self.history, series, alt, **plot)


def run_trainer(
    ctx: StageContext,
    trainer: Any,
    *,
    history: list[dict[str, float]],
    tokenizer_from: Artifact | None,
    tokenizer: Any = None,
    lora: LoraOptions | None = None,
) -> TrainRun | None:
    """Train ``trainer`` (built with :func:`training_args` and a :func:`stage_callback` filling ``history``) without
    transformers' stdout printer, timed, with trainable/total parameters and peak memory. On the main process the
    unwrapped model is saved into ``ctx.output_dir`` (:func:`save_trained`, with the tokenizer of ``tokenizer_from``,
    normally the input model; ``None``: the stage saves it itself) and the run is returned; the other processes get
    ``None`` (their stage returns an empty result)."""
    from transformers import PrinterCallback

    from gristmill.engine.launch import process_state
    from gristmill.lib.models.lora import parameter_counts, peak_memory_mb, reset_peak_memory

    trainer.remove_callback(PrinterCallback)  # progress goes to the stage log instead of stdout
    params = parameter_counts(trainer.model)
    reset_peak_memory()
    start = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - start
    peak = peak_memory_mb()
    if not process_state().is_main_process:
        return None
    model = trainer.accelerator.unwrap_model(trainer.model)
    if tokenizer_from is not None:
        model = save_trained(model, ctx.output_dir, tokenizer, tokenizer_from, lora)
    return TrainRun(trainer, model, history, seconds, output, params, peak)


def save_trained(model: Any, out_dir: Any, tokenizer: Any, source: Artifact, lora: LoraOptions | None) -> Any:
    """Save a trained policy into ``out_dir``: a LoRA model merged into plain weights (``lora.merge``, the default)
    or as an adapter folder on ``source`` (``merge: false``; ``source`` itself an adapter folder cannot be a base,
    so that model is merged, with a warning); tokenizer files copied from ``source`` (``tokenizer`` saved over them
    when the stage changed it: template override, chosen pad token). Returns the model as saved."""
    from gristmill.lib.models import save_model_dir
    from gristmill.lib.models.chat import write_tokenizer_changes
    from gristmill.lib.models.loading import copy_tokenizer
    from gristmill.lib.models.lora import finish, save_adapter

    is_peft = hasattr(model, "merge_and_unload")
    if is_peft and lora is not None and not lora.merge:
        if not (source.path / "adapter_config.json").is_file():
            save_adapter(model, out_dir, source.path)
            copy_tokenizer(source.path, out_dir)
            write_tokenizer_changes(tokenizer, Path(out_dir))
            return model
        log.warning("%s is a LoRA adapter folder, which cannot be a base: saving the merged model", source.describe())
    model = finish(model, lora or LoraOptions()) if is_peft else model
    save_model_dir(model, out_dir, tokenizer=tokenizer, tokenizer_from=source.path)
    return model
