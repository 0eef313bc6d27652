"""``reward_model``: a policy ``model`` + preference ``dataset`` → a scalar reward model (TRL ``RewardTrainer``).

The reward model is the policy's backbone (any causal-LM architecture) with a new one-output score head
(``AutoModelForSequenceClassification``, ``num_labels=1``, initialised from the stage's seed; LoRA with ``peft``),
trained with the Bradley–Terry loss ``-log σ(r(chosen) − r(rejected))`` on preference pairs:

- ``file`` (default ``pairs.jsonl``): TRL explicit-prompt pairs ``{"prompt": msgs, "chosen": msgs, "rejected":
  msgs}`` or hh-rlhf transcripts (``{"chosen": str, "rejected": str}``), read by
  :func:`gristmill.lib.post_training.load_preferences`;
- ``ranked_file`` (default ``ranked.jsonl``, used when the dataset has it): ranked lists ``{"prompt": msgs,
  "responses": [msgs or str, …], "scores": [float, …]}`` (higher is better), each expanded by
  :func:`expand_ranked` into every pair of responses with different scores (the Llama-3 recipe: N responses →
  up to N·(N−1)/2 pairs; ties give no pair).

Pairs are split by prompt (seeded), so no prompt is both trained on and held out. Pairs whose chosen or rejected
conversation exceeds ``max_length`` tokens are dropped (TRL's ``RewardTrainer`` would drop them silently; here they
are counted). The output folder (``config.json`` with ``<Arch>ForSequenceClassification``, ``model.safetensors``,
tokenizer files) loads with ``AutoModelForSequenceClassification`` or
:func:`gristmill.lib.post_training.load_reward_model`; :func:`gristmill.lib.post_training.reward_scores` scores
conversations with it.
"""

import json
import math
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from gristmill import (
    TRAINING,
    Artifact,
    CheckOutcome,
    CheckSpec,
    StageContext,
    StageResult,
    StageSpec,
    Table,
    hookimpl,
)
from gristmill.errors import StageInputError
from gristmill.lib.jsonl import read_jsonl
from gristmill.lib.plots import figure_markdown, small_figure
from gristmill.lib.post_training import (
    DatasetError,
    LoraTrainingConfig,
    LrScheduler,
    Messages,
    TrainRun,
    dataset_file,
    parse_messages,
)

Pair = dict[str, Messages]


class RewardModelConfig(LoraTrainingConfig):
    """Options of the ``reward_model`` stage (plus the shared training options of :class:`TrainingConfig`)."""

    file: str = Field("pairs.jsonl", description="Preference-pair JSONL of the dataset (a single-file source: any).")
    ranked_file: str | None = Field(
        "ranked.jsonl",
        description="Optional JSONL of ranked lists {prompt, responses, scores}, expanded into all pairs with "
        "different scores; used when the dataset has it (None: never).",
    )
    heldout_fraction: float = Field(
        0.1, ge=0, lt=1, description="Fraction of prompts (with all their pairs) held out to measure pair accuracy."
    )
    max_pairs: int | None = Field(None, ge=2, description="Use at most this many pairs (seeded sample); None: all.")
    lr: float = Field(1e-4, gt=0, description="Peak learning rate (AdamW).")
    lr_scheduler: LrScheduler = Field("linear", description="Learning-rate schedule after warmup (transformers').")
    max_length: int | None = Field(
        None, ge=8, description="Longest prompt+reply in tokens; longer pairs are dropped. None: the model's context."
    )
    center_rewards_coefficient: float | None = Field(
        None, ge=0, description="Weight of the mean-zero reward penalty (TRL; 0.01 is usual). None: off."
    )
    min_pair_accuracy: float = Field(
        0.5, ge=0, le=1, description="Check: held-out pair accuracy (reward(chosen) > reward(rejected)) at least this."
    )
    eval_batch_size: int = Field(16, ge=1, description="Conversations scored per forward pass on the held-out pairs.")


class RewardModelInputError(StageInputError):
    """An input the stage cannot use; the message names the file, field or folder."""


# ---------------------------------------------------------------- data


def _response(value: Any, where: str, field: str) -> Messages:
    if isinstance(value, str):
        return [{"role": "assistant", "content": value}]
    messages = parse_messages(value, where, field)
    if messages[-1]["role"] != "assistant":
        raise DatasetError(f"{where}: {field} must end with an assistant message")
    return messages


def expand_ranked(row: Mapping[str, Any], where: str = "ranked list") -> list[Pair]:
    """All ordered pairs of a ranked list ``{"prompt", "responses", "scores"}``: for every two responses with
    different scores, ``{"prompt", "chosen": the higher-scored, "rejected": the lower}``. N distinct scores give
    N·(N−1)/2 pairs; tied responses give none. Responses are message lists or plain strings (one assistant turn).
    Pairs come in index order (i < j). Raises :class:`DatasetError` (prefixed with ``where``) on malformed rows."""
    prompt = parse_messages(row.get("prompt"), where, "prompt")
    responses, scores = row.get("responses"), row.get("scores")
    if not isinstance(responses, list) or not isinstance(scores, list) or len(responses) != len(scores):
        raise DatasetError(f"{where}: 'responses' and 'scores' must be lists of the same length")
    values = []
    for i, s in enumerate(scores):
        if isinstance(s, bool) or not isinstance(s, int | float) or not math.isfinite(s):
            raise DatasetError(f"{where}: scores[{i}] must be a finite number (got {s!r})")
        values.append(float(s))
    replies = [_response(r, where, f"responses[{i}]") for i, r in enumerate(responses)]
    pairs: list[Pair] = []
    for i in range(len(replies)):
        for j in range(i + 1, len(replies)):
            if values[i] == values[j]:
                continue
            hi, lo = (i, j) if values[i] > values[j] else (j, i)
            pairs.append({"prompt": prompt, "chosen": replies[hi], "rejected": replies[lo]})
    return pairs


def load_ranked(path: Path) -> tuple[list[Pair], int]:
    """(pairs, number of ranked lists) of a ranked-list JSONL file; errors name ``file:line``."""
    pairs: list[Pair] = []
    lists = 0
    for lineno, row in read_jsonl(path, DatasetError):
        pairs.extend(expand_ranked(row, f"{path}:{lineno}"))
        lists += 1
    return pairs, lists


def _prompt_key(prompt: Messages) -> str:
    return json.dumps(prompt, sort_keys=True, ensure_ascii=False)


def split_by_prompt(pairs: list[Pair], fraction: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """(train, held out): ``ceil(fraction × prompts)`` distinct prompts (seeded shuffle) go to held out with all
    their pairs; no prompt is on both sides."""
    prompts = sorted({_prompt_key(p["prompt"]) for p in pairs})
    random.Random(f"reward-split:{seed}").shuffle(prompts)
    n_held = math.ceil(fraction * len(prompts)) if fraction > 0 else 0
    if n_held >= len(prompts) and n_held > 0:
        n_held = len(prompts) - 1
    held = set(prompts[:n_held])
    train = [p for p in pairs if _prompt_key(p["prompt"]) not in held]
    heldout = [p for p in pairs if _prompt_key(p["prompt"]) in held]
    return train, heldout


def _optional_file(artifact: Artifact, name: str | None, other: Path) -> Path | None:
    """``name`` of the dataset when it really is there (a single-file source's fallback to its one file does not
    count) and is not the file already used for ``other``."""
    if not name:
        return None
    matches = [p for p in artifact.glob(name) if p != other]
    return matches[0] if matches else None


# ---------------------------------------------------------------- model


def load_backbone(model_artifact: Artifact, config: "RewardModelConfig", seed: int = 0) -> tuple[Any, Any]:
    """The causal-LM folder (any architecture) as ``AutoModelForSequenceClassification(num_labels=1)`` — a new score
    head, initialised from ``seed``, on the policy's backbone; ``lm_head`` unused — + its tokenizer (right padding,
    pad id mirrored into the model config)."""
    import torch

    from gristmill.lib.models import inspect_model_folder, load_classifier, load_tokenizer

    inspect_model_folder(model_artifact.path)
    tokenizer = load_tokenizer(model_artifact.path, model_artifact.describe(), config.chat_template)
    tokenizer.padding_side = "right"
    torch.manual_seed(seed)  # the score head's init: the same output whatever ran in this process before
    model = load_classifier(model_artifact.path, dtype=config.dtype)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.use_cache = False
    return model, tokenizer


def _fits(tokenizer: Any, pair: Pair, limit: int, where: Path) -> bool:
    from gristmill.lib.models.chat import encode

    for side in ("chosen", "rejected"):
        try:
            ids = encode(tokenizer, pair["prompt"] + pair[side])
        except Exception as exc:  # noqa: BLE001 - jinja's TemplateError (raise_exception in shipped templates)
            raise DatasetError(f"{where}: the chat template refuses a pair: {exc}") from exc
        if len(ids) > limit:
            return False
    return True


def _short(messages: Messages, n: int = 120) -> str:
    text = messages[-1]["content"].replace("\n", " ")
    return text if len(text) <= n else text[: n - 1] + "…"


def _plots(run: TrainRun, margins: list[float]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "loss_curve": run.curve(
            "reward model loss curve",
            [("loss", "train loss"), ("accuracy", "train pair accuracy")],
            baseline=(math.log(2), "chance loss (ln 2)"),
        ),
    }
    fig, ax = small_figure()
    if margins:
        ax.hist(margins, bins=min(30, max(5, len(margins) // 3)), color="tab:blue", alpha=0.8)
    ax.axvline(0, color="black", lw=1)
    ax.set_xlabel("reward(chosen) − reward(rejected), held-out pairs")
    ax.set_ylabel("pairs")
    out["margin_histogram"] = figure_markdown(fig, "held-out reward margins")
    return out


# ---------------------------------------------------------------- stage


def run_reward_model(ctx: StageContext, config: RewardModelConfig, inputs: dict[str, Artifact]) -> StageResult:
    """Train a scalar reward model on preference pairs and measure pair accuracy on held-out prompts."""
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    from gristmill.lib.models import save_model_dir
    from gristmill.lib.models.chat import trl_pair
    from gristmill.lib.models.lora import finish, peft_config
    from gristmill.lib.post_training import (
        context_length,
        load_preferences,
        reward_scores,
        run_trainer,
        stage_callback,
        training_args,
    )

    model_art, prefs = inputs["model"], inputs["preferences"]
    pairs_path = dataset_file(prefs, config.file)
    pairs = load_preferences(pairs_path)
    ranked_path = _optional_file(prefs, config.ranked_file, pairs_path)
    ranked_lists = 0
    if ranked_path is not None:
        ranked, ranked_lists = load_ranked(ranked_path)
        pairs += ranked
    if config.max_pairs is not None and len(pairs) > config.max_pairs:
        order = list(range(len(pairs)))
        random.Random(f"reward-pairs:{ctx.seed}").shuffle(order)
        pairs = [pairs[i] for i in sorted(order[: config.max_pairs])]

    model, tokenizer = load_backbone(model_art, config, ctx.seed)
    context = context_length(model) or config.max_length or 2048
    if config.max_length is not None and config.max_length > context:
        raise RewardModelInputError(
            f"reward_model: max_length {config.max_length} exceeds the {context}-token context of "
            f"{model_art.describe()}"
        )
    limit = config.max_length or context
    kept = [p for p in pairs if _fits(tokenizer, p, limit, pairs_path)]
    dropped = len(pairs) - len(kept)
    if dropped:
        ctx.log.warning("%s: dropped %d of %d pairs longer than %d tokens", ctx.instance, dropped, len(pairs), limit)
    train_pairs, heldout = split_by_prompt(kept, config.heldout_fraction, ctx.seed)
    if not train_pairs:
        raise RewardModelInputError(
            f"reward_model: no training pairs left in {pairs_path} ({len(pairs)} pairs, {dropped} longer than "
            f"{limit} tokens)"
        )

    per_step = config.batch_size * config.gradient_accumulation_steps
    steps = config.max_steps or max(1, math.ceil(len(train_pairs) / per_step * config.epochs))
    history: list[dict[str, float]] = []
    args = RewardConfig(
        **training_args(
            ctx,
            config,
            max_length=limit,
            center_rewards_coefficient=config.center_rewards_coefficient,
            logging_steps=max(5, steps // 100),
        )
    )
    trainer = RewardTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list([trl_pair(tokenizer, p) for p in train_pairs]),
        processing_class=tokenizer,
        callbacks=[stage_callback(ctx, history)],
        peft_config=peft_config(config.peft, model, "SEQ_CLS", "reward_model") if config.peft else None,
    )
    run = run_trainer(ctx, trainer, history=history, tokenizer_from=None)  # a classifier: saved below, not as an LM
    if run is None:
        return StageResult()

    model = run.model
    model.eval()
    chosen = reward_scores(model, tokenizer, [p["prompt"] + p["chosen"] for p in heldout], config.eval_batch_size)
    rejected = reward_scores(model, tokenizer, [p["prompt"] + p["rejected"] for p in heldout], config.eval_batch_size)
    margins = [c - r for c, r in zip(chosen, rejected, strict=True)]
    accuracy = sum(m > 0 for m in margins) / len(margins) if margins else math.nan

    if config.peft is not None and not config.peft.merge:
        ctx.log.warning("%s: peft.merge false: a reward model is always saved merged", ctx.instance)
    model = finish(model, config.peft.model_copy(update={"merge": True}) if config.peft else None)
    save_model_dir(model, ctx.output_dir, tokenizer=tokenizer, tokenizer_from=model_art.path)

    counts: dict[str, int | float] = {
        "pairs": len(pairs),
        "ranked_lists": ranked_lists,
        "train_pairs": len(train_pairs),
        "heldout_pairs": len(heldout),
        "dropped_too_long": dropped,
        "heldout_accuracy": round(accuracy, 4) if margins else math.nan,
        "heldout_margin": round(sum(margins) / len(margins), 4) if margins else math.nan,
        "first_loss": run.first_loss,
        "final_loss": run.final_loss,
        "steps": run.steps,
        "train_seconds": run.train_seconds,
        **run.params,
        "peak_memory_mb": run.peak_memory_mb,
    }
    rows = [
        {
            "prompt": _short(p["prompt"]),
            "chosen": _short(p["chosen"]),
            "rejected": _short(p["rejected"]),
            "reward_chosen": round(c, 4),
            "reward_rejected": round(r, 4),
            "correct": c > r,
        }
        for p, c, r in list(zip(heldout, chosen, rejected, strict=True))[:8]
    ]
    metadata: dict[str, Any] = {
        **_plots(run, margins),
        "heldout_pairs": Table(rows),
        "files": [pairs_path.name] + ([ranked_path.name] if ranked_path else []),
        "split": f"by prompt, seed {ctx.seed}: {len(heldout)} held-out pairs",
    }
    return StageResult(counts=counts, metadata=metadata)


def _pair_accuracy(counts: Mapping[str, Any], config: RewardModelConfig) -> CheckOutcome:
    acc = float(counts.get("heldout_accuracy", math.nan))
    n = int(counts.get("heldout_pairs", 0))
    ok = math.isfinite(acc) and acc >= config.min_pair_accuracy
    return CheckOutcome(ok, f"held-out pair accuracy {acc:.3f} on {n} pairs (min {config.min_pair_accuracy})")


SPEC = StageSpec(
    name="reward_model",
    version="1",
    inputs={"model": "model", "preferences": "dataset"},
    output="model",
    config=RewardModelConfig,
    run=run_reward_model,
    description="Train a scalar reward model (policy backbone + score head) on preference pairs (TRL RewardTrainer).",
    policy=TRAINING,
    checks=(
        CheckSpec(
            name="pair_accuracy",
            description="held-out pair accuracy is at least config.min_pair_accuracy",
            check=_pair_accuracy,
        ),
    ),
    group="training",
)


@hookimpl
def gristmill_register_stages() -> list[StageSpec]:
    return [SPEC]
