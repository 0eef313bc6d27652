"""Kit trainer stages: ``build(setup) -> transformers.Trainer`` → a whole ``model`` (+ inputs) → ``model``
fine-tuning stage, run like the built-in ones (:func:`gristmill.lib.post_training.run_trainer`)."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from gristmill.checks import loss_decreased_check
from gristmill.lib.kit.spec import description, require_subclass
from gristmill.lib.post_training import TrainingConfig
from gristmill.stage import TRAINING, Artifact, Input, StageContext, StageResult, StageSpec


class TrainerConfig(TrainingConfig):
    """Base config of kit trainer stages: :class:`~gristmill.lib.post_training.TrainingConfig` (optimizer, schedule,
    the loss check, the launch block) with a fixed step budget."""

    max_steps: int = Field(100, ge=1, description="Optimizer steps.")


@dataclass
class TrainerSetup:
    """What ``build`` gets: pass ``args`` (keyword arguments for a TRL/transformers ``TrainingArguments``) and
    ``callbacks`` to the trainer it returns; ``model``/``tokenizer`` come from the ``model`` input."""

    ctx: StageContext
    config: Any
    inputs: dict[str, Artifact]
    model: Any
    tokenizer: Any
    args: dict[str, Any]
    callbacks: list[Any] = field(default_factory=list)


def trainer_stage(
    name: str,
    build: Callable[[TrainerSetup], Any],
    config: type[TrainerConfig] = TrainerConfig,
    inputs: Mapping[str, Input | str] | None = None,
    version: str = "1",
    doc: str = "",
) -> StageSpec:
    """A ``model`` (+ ``dataset`` …) → ``model`` fine-tuning stage around a trainer that ``build(setup)`` returns.

    The kit loads the ``model`` input (:func:`gristmill.lib.post_training.load_policy`, right padding), prepares the
    trainer arguments (:func:`gristmill.lib.post_training.training_args`: CPU/GPU, seed, scratch output dir, no
    hub/reporting/checkpoints, plus learning rate, steps, batch size, accumulation, warmup, schedule and activation
    checkpointing from :class:`TrainerConfig`) and a progress/loss-history callback, then
    :func:`gristmill.lib.post_training.run_trainer` trains, saves the model folder
    (:func:`gristmill.lib.post_training.save_trained`, rank 0 only) and returns ``steps``, ``first_loss``,
    ``final_loss``, ``train_seconds`` and a loss-curve plot, with the ``loss_decreased`` check. The stage runs with
    the :data:`~gristmill.stage.TRAINING` policy. ``inputs`` must contain ``"model": "model"`` (default: model +
    dataset).
    """
    require_subclass(config, TrainerConfig, "trainer_stage")
    declared = dict(inputs or {"model": "model", "dataset": "dataset"})
    if declared.get("model") not in ("model", Input("model")):
        raise ValueError(f"trainer_stage {name!r}: inputs must include 'model': 'model', got {declared}")

    def run(ctx: StageContext, cfg: TrainerConfig, arts: dict[str, Artifact]) -> StageResult:
        from gristmill.lib.post_training import load_policy, run_trainer, stage_callback, training_args

        model_art = arts["model"]
        model, tokenizer = load_policy(model_art, False, cfg.dtype, cfg.chat_template)
        model.config.use_cache = False
        history: list[dict[str, float]] = []
        args = training_args(ctx, cfg, logging_steps=max(1, cfg.max_steps // 50))
        trainer = build(TrainerSetup(ctx, cfg, arts, model, tokenizer, args, [stage_callback(ctx, history)]))
        trained = run_trainer(ctx, trainer, history=history, tokenizer_from=model_art, tokenizer=tokenizer)
        if trained is None:
            return StageResult()
        loss_curve = trained.curve(f"{name} loss curve", ylabel="loss")
        return StageResult(counts=trained.counts(), metadata={"loss_curve": loss_curve})

    run.__doc__ = description(build, doc)
    return StageSpec(
        name=name,
        version=version,
        inputs=declared,
        output="model",
        config=config,
        run=run,
        description=description(build, doc),
        policy=TRAINING,
        checks=(loss_decreased_check(),),
        group="training",
    )
