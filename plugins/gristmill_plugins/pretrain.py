"""``pretrain``: tokens + tokenizer → a Llama-style causal LM trained from scratch, or tokens + model → that model
(any architecture transformers ships) pretrained further; a Hugging Face folder either way.

From scratch, ``model`` sets the shape and the ``tokenizer`` input's files go into the output. With a ``model``
input (continued pretraining) its weights are loaded in float32 (master weights; ``train.precision: bf16`` for
autocast), its architecture, config and tokenizer are kept (the tokens must be made with that tokenizer), and the
output is saved in ``dtype`` (``auto``: the input checkpoint's).

The loop is :func:`gristmill.lib.train.train` (accelerate: CPU, one or more GPUs, DDP; exact resume; loss-spike
rollback). Checkpoints live in the run's resume folder, so re-materializing after a crash continues from the
newest valid checkpoint instead of starting over. The output folder (``config.json``, ``generation_config.json``,
the safetensors weights and the tokenizer files) loads with ``AutoModelForCausalLM`` + ``AutoTokenizer``; the stage
reloads it that way and generates from ``sample_prompts`` before returning, so a folder that cannot generate never
becomes an artifact.

Metadata: loss curve (train + validation), final loss / perplexity / bits-per-byte / token accuracy, tokens/s and
MFU (GPUs in the peak-FLOP table, or a configured peak), the Chinchilla comparison of the run (tokens per
parameter, the compute-optimal split of the same compute), generated samples, ``model_type`` and ``started_from``
(the model input, if any).
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
    Input,
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
from gristmill.lib.models import DtypeName
from gristmill.lib.plots import figure_markdown, small_figure
from gristmill.lib.train.config import ModelConfig, TrainConfig

log = logging.getLogger("gristmill.pretrain")


class PretrainModel(ModelConfig):
    """Model shape of a model trained from scratch; vocabulary and context length default to the tokens artifact's.
    With a ``model`` input the shape is the input's: setting a field here is then an error."""

    vocab_size: int | None = Field(None, ge=2, description="Embedding rows; None: the tokens artifact's vocab_size.")
    max_seq_len: int | None = Field(None, ge=2, description="Context length; None: the tokens artifact's seq_len.")


class PretrainConfig(LaunchableConfig):
    """Options of the ``pretrain`` stage."""

    model: PretrainModel = Field(
        default_factory=PretrainModel,
        description="Model shape (see ModelConfig) from scratch; with a model input leave it unset (the input's).",
    )
    dtype: DtypeName = Field(
        "auto",
        description="Dtype of the saved weights (training keeps float32 master weights): auto = the model input's "
        "checkpoint dtype, float32 from scratch; bfloat16, float16 or float32 cast.",
    )
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


def _which_inputs(inputs: dict[str, Artifact]) -> tuple[Artifact | None, Artifact | None]:
    """(model, tokenizer): exactly one of them is wired."""
    model_art, tokenizer = inputs.get("model"), inputs.get("tokenizer")
    if model_art is None and tokenizer is None:
        raise PretrainInputError(
            "pretrain: wire inputs.tokenizer (train from scratch) or inputs.model (continue pretraining it)"
        )
    if model_art is not None and tokenizer is not None:
        raise PretrainInputError(
            f"pretrain: wire inputs.model or inputs.tokenizer, not both: continued pretraining uses the tokenizer of "
            f"input model {model_art.describe()}"
        )
    return model_art, tokenizer


def _load_start(
    cfg: PretrainConfig, model_art: Artifact, tokens: Artifact, index: Mapping[str, Any]
) -> tuple[Any, Any]:
    """Validate the ``model`` input against the config and the tokens (before loading a weight); the validated
    folder and the model, loaded in float32 (master weights)."""
    from gristmill.lib.models import ModelArtifactError, inspect_model_folder, load_causal_lm
    from gristmill.lib.train.export import hf_config
    from gristmill.lib.train.loop import position_limit

    name = model_art.describe()
    # set and not the default: a child launch re-validates the dumped config, where every field counts as set
    fixed = sorted(
        f for f in cfg.model.model_fields_set if getattr(cfg.model, f) != PretrainModel.model_fields[f].default
    )
    if fixed:
        raise PretrainInputError(
            f"pretrain: model.{fixed[0]} is set, but with input model {name} the shape is the input's: remove "
            f"model.{', model.'.join(fixed)} from the config"
        )
    try:
        folder = inspect_model_folder(model_art.path)
        config = hf_config(folder)
    except ModelArtifactError as exc:
        raise PretrainInputError(f"pretrain: input model {name}: {exc}") from exc
    if (model_art.path / "tokenizer.json").is_file():
        _check_tokenizer(model_art, index)
    text = config.get_text_config()
    rows = getattr(text, "vocab_size", None)
    if isinstance(rows, int) and index["vocab_size"] > rows:
        raise PretrainInputError(
            f"pretrain: {tokens.describe()} has vocab_size {index['vocab_size']}, more than the {rows} embedding "
            f"rows of input model {name} (config.json): tokenize with the model's tokenizer"
        )
    limit = position_limit(config)
    if limit is not None and index["seq_len"] > limit:
        raise PretrainInputError(
            f"pretrain: {tokens.describe()} has seq_len {index['seq_len']}, longer than max_position_embeddings "
            f"{limit} of input model {name} (config.json): tokenize with seq_len ≤ {limit} (or extend the context "
            "with long_context first)"
        )
    try:
        model = load_causal_lm(model_art.path, dtype="float32")
    except ModelArtifactError as exc:
        raise PretrainInputError(f"pretrain: input model {name}: {exc}") from exc
    return folder, model


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


def _shape(config: Any) -> dict[str, Any]:
    """The shape of a continued model, from its HF config (any architecture)."""
    from gristmill.lib.train.loop import position_limit
    from gristmill.lib.train.model import transformer_dims

    layers, width = transformer_dims(config)
    text = config.get_text_config()
    return {
        "model_type": config.model_type,
        "architectures": ", ".join(config.architectures or []),
        "layers": layers,
        "hidden_size": text.hidden_size,
        "attention_width": width,
        "vocab_size": text.vocab_size,
        "max_position_embeddings": position_limit(config),
    }


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
    """Reload the saved folder the way users will (any architecture, its dtype) and greedily continue each
    prompt (within the model's position limit)."""
    import torch
    from transformers import AutoTokenizer

    from gristmill.lib.models import load_causal_lm
    from gristmill.lib.train.loop import position_limit

    model = load_causal_lm(folder)
    tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id  # GPT-2, Llama-3 ship no pad
    limit = position_limit(model.config)
    rows = []
    with torch.no_grad():
        for prompt in prompts:
            ids = tok(prompt, return_tensors="pt").input_ids
            n = new_tokens if limit is None else max(0, min(new_tokens, limit - ids.shape[1]))
            out = model.generate(ids, max_new_tokens=n, do_sample=False, pad_token_id=pad) if n else ids
            continuation = tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
            rows.append({"prompt": prompt, "continuation": continuation})
    return rows


def run_pretrain(ctx: StageContext, config: PretrainConfig, inputs: dict[str, Artifact]) -> StageResult:
    """Train a model from scratch (or the ``model`` input further) on the tokens' train split; validate on their
    validation split."""
    from gristmill.engine.launch import process_state
    from gristmill.lib import models
    from gristmill.lib.tokens import TokenDataset, read_index
    from gristmill.lib.train import chinchilla
    from gristmill.lib.train.export import output_dtype, save_model_dir
    from gristmill.lib.train.loop import format_metrics, history, train

    tokens = inputs["tokens"]
    model_art, tokenizer = _which_inputs(inputs)
    index = read_index(tokens)
    model_cfg: ModelConfig | None = None
    folder, start = None, None
    if model_art is not None:
        folder, start = _load_start(config, model_art, tokens, index)
    else:
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
        model=start,
    )
    if result.resumed_from is not None:
        ctx.log.warning("%s: resumed from checkpoint %s", ctx.instance, result.resumed_from.name)
    if not state.is_main_process:
        return StageResult()

    dtype = output_dtype(config.dtype, folder)
    if model_art is not None:  # the checkpoint's architecture, config fields, special ids and generation config
        models.save_model_dir(result.model.to(dtype), ctx.output_dir, tokenizer_from=model_art.path)
    else:
        save_model_dir(result.model.to(dtype), ctx.output_dir, tokenizer.path)
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
        "model": Table([model_cfg.model_dump() if model_cfg is not None else _shape(result.model.config)]),
        "model_type": result.model.config.model_type,
        "started_from": model_art.describe() if model_art is not None else None,
        "dtype": str(dtype).removeprefix("torch."),
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
    inputs={
        "tokens": "tokens",
        "tokenizer": Input("tokenizer", optional=True, description="Train from scratch with this tokenizer."),
        "model": Input("model", optional=True, description="Continue pretraining this model (any architecture)."),
    },
    output="model",
    config=PretrainConfig,
    run=run_pretrain,
    description="Pretrain a Llama-style model from scratch, or continue pretraining a model of any architecture, on "
    "packed tokens (accelerate; exact resume).",
    policy=TRAINING,
    checks=(loss_decreased_check(),),
    group="training",
)


@hookimpl
def gristmill_register_stages() -> list[StageSpec]:
    return [SPEC]
