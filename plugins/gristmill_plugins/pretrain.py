"""``pretrain``: tokens + tokenizer → a Llama-style causal LM trained from scratch, as a Hugging Face folder.

The loop is :func:`gristmill.lib.train.train` (accelerate: CPU, one or more GPUs, DDP; exact resume; loss-spike
rollback). Checkpoints live in the run's resume folder, so re-materializing after a crash continues from the
newest valid checkpoint instead of starting over. The output folder (``config.json``, ``generation_config.json``,
``model.safetensors`` and the tokenizer files) loads with ``AutoModelForCausalLM`` + ``AutoTokenizer``; the stage
reloads it that way and generates from ``sample_prompts`` before returning, so a folder that cannot generate never
becomes an artifact.

Metadata: loss curve (train + validation), final loss / perplexity / bits-per-byte / token accuracy, tokens/s and
MFU (GPUs in the peak-FLOP table, or a configured peak), the Chinchilla comparison of the run (tokens per
parameter, the compute-optimal split of the same compute) and generated samples.
"""

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from gristmill import (
    TRAINING,
    Artifact,
    Markdown,
    StageContext,
    StageResult,
    StageSpec,
    Table,
    hookimpl,
)
from gristmill.checks import loss_decreased_check
from gristmill.configs import LaunchableConfig
from gristmill.errors import StageInputError
from gristmill.lib.plots import figure_markdown, small_figure
from gristmill.lib.train.config import ModelConfig, TrainConfig

log = logging.getLogger("gristmill.pretrain")


class PretrainModel(ModelConfig):
    """Model shape; vocabulary and context length default to the tokens artifact's."""

    vocab_size: int | None = Field(None, ge=2, description="Embedding rows; None: the tokens artifact's vocab_size.")
    max_seq_len: int | None = Field(None, ge=2, description="Context length; None: the tokens artifact's seq_len.")


class PretrainConfig(LaunchableConfig):
    """Options of the ``pretrain`` stage."""

    model: PretrainModel = Field(default_factory=PretrainModel, description="Model shape (see ModelConfig).")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Training loop options (see TrainConfig).")
    token_budget: int | None = Field(
        None, ge=1, description="Train on this many tokens (sets train.steps from the tokens per step); None: steps."
    )
    compute_budget_flops: float | None = Field(
        None, gt=0, description="A compute budget to size against: metadata shows its Chinchilla-optimal split."
    )
    sample_prompts: list[str] = Field(
        default_factory=lambda: ["The"], description="Prompts greedily continued by the saved model (metadata)."
    )
    sample_tokens: int = Field(24, ge=1, description="New tokens generated per sample prompt.")
    min_loss_drop: float = Field(
        0.1, ge=0, lt=1, description="Check: the final loss is at least this fraction below the first step's."
    )
    log_every: int = Field(10, ge=1, description="Log a metrics line every N steps (progress is reported always).")


class PretrainInputError(StageInputError):
    """An input artifact the stage cannot use; the message names it."""


def _resolve_model(cfg: PretrainConfig, index: Mapping[str, Any], tokens: Artifact) -> ModelConfig:
    data = cfg.model.model_dump()
    data["vocab_size"] = data["vocab_size"] or index["vocab_size"]
    data["max_seq_len"] = data["max_seq_len"] or index["seq_len"]
    if data["vocab_size"] < index["vocab_size"]:
        raise PretrainInputError(
            f"pretrain: model.vocab_size {data['vocab_size']} is smaller than the vocab_size {index['vocab_size']} "
            f"of {tokens.describe()}"
        )
    if data["max_seq_len"] < index["seq_len"]:
        raise PretrainInputError(
            f"pretrain: model.max_seq_len {data['max_seq_len']} is shorter than the seq_len {index['seq_len']} "
            f"of {tokens.describe()}"
        )
    return ModelConfig(**data)


def _check_tokenizer(tokenizer: Artifact, index: Mapping[str, Any]) -> None:
    path = tokenizer.path / "tokenizer.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        vocab, added = data["model"]["vocab"], data.get("added_tokens") or []
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PretrainInputError(f"pretrain: {tokenizer.describe()}: unreadable {path} ({exc})") from exc
    size = max([len(vocab), *(t.get("id", 0) + 1 for t in added)])
    if size > index["vocab_size"]:
        raise PretrainInputError(
            f"pretrain: {tokenizer.describe()} has {size} tokens but the tokens artifact was written "
            f"with vocab_size {index['vocab_size']}: were they made with the same tokenizer?"
        )


def _steps(cfg: PretrainConfig, seq_len: int, world: int) -> TrainConfig:
    train = cfg.train
    if cfg.token_budget is not None:
        per_step = train.batch_size * train.gradient_accumulation_steps * seq_len * world
        train = train.model_copy(update={"steps": max(1, math.ceil(cfg.token_budget / per_step))})
    return train


def _loss_curve(history: list[list[float]], evals: list[dict[str, Any]]) -> Markdown:
    fig, ax = small_figure()
    if history:
        steps, losses = zip(*history, strict=True)
        ax.plot(steps, losses, lw=1, label="train")
    if evals:
        ax.plot([e["step"] for e in evals], [e["val_loss"] for e in evals], "o-", ms=3, label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/token)")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    return figure_markdown(fig, "loss curve")


def _samples(folder: Path, prompts: list[str], new_tokens: int) -> list[dict[str, str]]:
    """Reload the saved folder the way users will and greedily continue each prompt."""
    import torch
    from transformers import AutoTokenizer

    from gristmill.lib.train.export import load_causal_lm

    model = load_causal_lm(folder)
    tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    rows = []
    with torch.no_grad():
        for prompt in prompts:
            ids = tok(prompt, return_tensors="pt").input_ids
            out = model.generate(ids, max_new_tokens=new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
            continuation = tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
            rows.append({"prompt": prompt, "continuation": continuation})
    return rows


def run_pretrain(ctx: StageContext, config: PretrainConfig, inputs: dict[str, Artifact]) -> StageResult:
    """Train a model from scratch on the tokens' train split; validate on their validation split."""
    from gristmill.engine.launch import process_state
    from gristmill.lib.tokens import TokenDataset, read_index
    from gristmill.lib.train import chinchilla
    from gristmill.lib.train.export import save_model_dir
    from gristmill.lib.train.loop import format_metrics, history, train

    tokens, tokenizer = inputs["tokens"], inputs["tokenizer"]
    index = read_index(tokens)
    _check_tokenizer(tokenizer, index)
    model_cfg = _resolve_model(config, index, tokens)
    state = process_state()
    train_cfg = _steps(config, index["seq_len"], state.num_processes)
    if "seed" not in config.train.model_fields_set:
        train_cfg = train_cfg.model_copy(update={"seed": ctx.seed})

    dataset = TokenDataset(tokens, "train", shuffle=True, seed=train_cfg.seed)
    split = index["splits"]["train"]
    validation = None
    if index["splits"].get("validation", {}).get("sequences"):
        validation = TokenDataset(tokens, "validation")
    bytes_per_token = split["bytes"] / split["document_tokens"] if split.get("document_tokens") else None
    run_dir = ctx.resume_dir or ctx.work_dir

    def log_step(m: dict[str, Any]) -> None:
        ctx.progress(m["step"], train_cfg.steps, f"loss {m['loss']:.3f}")
        if m["step"] % config.log_every == 0 or m["step"] == train_cfg.steps or "val_loss" in m:
            ctx.log.info("%s: %s", ctx.instance, format_metrics(m))

    result = train(
        model_cfg,
        train_cfg,
        dataset,
        run_dir,
        log_fn=log_step,
        validation=validation,
        bytes_per_token=bytes_per_token,
    )
    if result.resumed_from is not None:
        ctx.log.warning("%s: resumed from checkpoint %s", ctx.instance, result.resumed_from.name)
    if not state.is_main_process:
        return StageResult()

    save_model_dir(result.model, ctx.output_dir, tokenizer.path)
    steps_loss, evals = history(run_dir)
    (ctx.output_dir / "training_log.json").write_text(
        json.dumps({"history": steps_loss, "evals": evals}, separators=(",", ":")) + "\n", encoding="utf-8"
    )
    ctx.progress(1, 2, "saved; reloading with AutoModelForCausalLM and generating")
    samples = _samples(ctx.output_dir, config.sample_prompts, config.sample_tokens)

    last = result.metrics[-1] if result.metrics else {}
    final_eval = evals[-1] if evals else {}
    window = [loss for _, loss in steps_loss[-10:]]
    per_step = train_cfg.batch_size * train_cfg.gradient_accumulation_steps * index["seq_len"] * result.world_size
    tokens_trained = result.step * per_step
    rates = [m["tokens_per_s"] for m in result.metrics[1:]] or [last.get("tokens_per_s", 0.0)]  # step 1 warms up
    counts: dict[str, int | float] = {
        "params": result.n_params,
        "steps": result.step,
        "tokens_trained": tokens_trained,
        "first_loss": round(steps_loss[0][1], 4) if steps_loss else float("nan"),
        "final_loss": round(sum(window) / len(window), 4) if window else float("nan"),
        "tokens_per_s": round(sorted(rates)[len(rates) // 2], 1),
        "processes": result.world_size,
        "loss_spikes": result.spikes,
    }
    for key in ("val_loss", "val_perplexity", "val_bits_per_byte", "val_token_accuracy"):
        if key in final_eval:
            counts[key] = round(final_eval[key], 4)
    if "mfu" in last:
        counts["mfu"] = round(last["mfu"], 4)
    sizing = chinchilla.report(result.n_params, tokens_trained)
    if config.compute_budget_flops:
        best = chinchilla.optimal_for_compute(config.compute_budget_flops)
        sizing |= {
            "budget_flops": config.compute_budget_flops,
            "budget_optimal_params": round(best["params"]),
            "budget_optimal_tokens": round(best["tokens"]),
        }
    metadata: dict[str, Any] = {
        "loss_curve": _loss_curve(steps_loss, evals),
        "model": Table([model_cfg.model_dump()]),
        "chinchilla": Table([sizing]),
        "samples": Table(samples),
        "flops_per_token": result.flops_per_token,
        "bytes_per_token": bytes_per_token,
        "resumed_from": result.resumed_from.name if result.resumed_from else None,
    }
    return StageResult(counts=counts, metadata=metadata)


SPEC = StageSpec(
    name="pretrain",
    version="1",
    inputs={"tokens": "tokens", "tokenizer": "tokenizer"},
    output="model",
    config=PretrainConfig,
    run=run_pretrain,
    description="Pretrain a Llama-style model from scratch on packed tokens (accelerate; exact resume).",
    policy=TRAINING,
    checks=(loss_decreased_check(),),
    group="training",
)


@hookimpl
def gristmill_register_stages() -> list[StageSpec]:
    return [SPEC]
