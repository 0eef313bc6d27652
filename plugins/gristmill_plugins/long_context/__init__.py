"""``long_context``: model + tokens → the model with a longer context, extended in steps and gated.

Each entry of ``steps`` raises the context length (``max_position_embeddings``), optionally changes RoPE (a new
``rope_theta`` — "adjusted base frequency" — and/or ``rope_parameters`` scaling ``linear``/``yarn`` with a factor of
new length / original length) and continues training with :func:`gristmill.lib.train.train` from the previous step's
weights on packed sequences of the new length. The ``tokens`` input must have ``seq_len`` ≥ the longest step;
for shorter steps its rows are re-chunked into a scratch copy. Checkpoints and per-step weights live in the
run's resume folder, so a failed run continues where it stopped.

After every step two gates run (:mod:`gristmill.lib.needle` defines the format):

1. **Needle retrieval** at the new length: a pass-key fact at several depths of real filler text (``short_tokens``
   when given, else ``tokens``' validation split), scored by likelihood ranking against ``needle_candidates - 1``
   random values (chance = 1 / candidates) and by greedy exact match; the pre-extension model is scored too.
2. **Short-context recovery**: validation perplexity at the original length (``short_tokens``' validation split,
   else ``tokens``' cut to the original length) relative to the pre-extension model.

The blocking checks ``needle_retrieval`` and ``short_context_recovery`` compare the final step's numbers with
``min_needle_pass_rate`` and ``short_ppl_tolerance``. The output is an HF model folder (tokenizer copied from the
input model) whose ``config.json`` holds the new ``max_position_embeddings`` and ``rope_parameters``.

Modules: :mod:`~gristmill_plugins.long_context.config` (options), :mod:`~gristmill_plugins.long_context.data`
(re-chunked tokens, needle filler), :mod:`~gristmill_plugins.long_context.gates` (needle grid, perplexity, charts);
this one runs the steps.
"""

import json
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gristmill import (
    TRAINING,
    Artifact,
    CheckOutcome,
    CheckSpec,
    Input,
    StageContext,
    StageResult,
    StageSpec,
    Table,
    hookimpl,
)
from gristmill.lib.train.config import ModelConfig
from gristmill_plugins.long_context.config import ExtensionStep, LongContextConfig, LongContextInputError
from gristmill_plugins.long_context.data import filler_ids, rechunk
from gristmill_plugins.long_context.gates import grid_rate, loss_curve, needle_grid, needle_heatmap, perplexity

MIN_HAYSTACK = 8  # filler tokens a needle prompt needs at least


def _step_model(prev: ModelConfig, step: ExtensionStep, original: int) -> ModelConfig:
    scaling = step.rope_scaling or prev.rope_scaling
    factor = 1.0
    if scaling != "default":
        factor = step.rope_factor or step.seq_len / original
    return prev.model_copy(
        update={
            "max_seq_len": step.seq_len,
            "rope_theta": step.rope_theta or prev.rope_theta,
            "rope_scaling": scaling,
            "rope_factor": factor,
            "original_max_seq_len": original if scaling != "default" else prev.original_max_seq_len,
        }
    )


def _load_inputs(config: LongContextConfig, inputs: dict[str, Artifact]) -> tuple[ModelConfig, dict, Any]:
    from tokenizers import Tokenizer

    from gristmill.lib.tokens import read_index
    from gristmill.lib.train.export import ModelArtifactError, open_model_artifact

    model_art, tokens = inputs["model"], inputs["tokens"]
    try:
        base = open_model_artifact(model_art.path)
    except ModelArtifactError as exc:
        raise LongContextInputError(f"long_context: input model {model_art.describe()}: {exc}") from exc
    tok_path = model_art.path / "tokenizer.json"
    if not tok_path.is_file():
        raise LongContextInputError(f"long_context: input model {model_art.describe()} has no tokenizer.json")
    index = read_index(tokens)
    longest = config.steps[-1].seq_len
    if index["seq_len"] < longest:
        raise LongContextInputError(
            f"long_context: tokens {tokens.describe()} has seq_len {index['seq_len']}, shorter than the longest "
            f"steps[].seq_len {longest}; tokenize with seq_len ≥ {longest}"
        )
    if index["vocab_size"] > base.vocab_size:
        raise LongContextInputError(
            f"long_context: tokens {tokens.describe()} vocab_size {index['vocab_size']} exceeds the model's "
            f"{base.vocab_size} (input model {model_art.describe()})"
        )
    if config.steps[0].seq_len <= base.max_seq_len:
        raise LongContextInputError(
            f"long_context: steps[0].seq_len {config.steps[0].seq_len} must exceed the context "
            f"{base.max_seq_len} of input model {model_art.describe()}"
        )
    return base, index, Tokenizer.from_file(str(tok_path))


def run_long_context(ctx: StageContext, config: LongContextConfig, inputs: dict[str, Artifact]) -> StageResult:
    """Extend the model's context step by step (RoPE + continued training), gating each step on needle
    retrieval at the new length and perplexity at the original length."""
    from safetensors.torch import save_model

    from gristmill.engine.launch import process_state
    from gristmill.lib.needle import make_cases, needle_overhead
    from gristmill.lib.tokens import TokenDataset, read_index
    from gristmill.lib.train.export import save_model_dir
    from gristmill.lib.train.loop import history, load_weights, train
    from gristmill.lib.train.model import build_model

    t_start = time.monotonic()
    base, index, tok = _load_inputs(config, inputs)
    model_art, tokens = inputs["model"], inputs["tokens"]
    short_src = inputs.get("short_tokens") or tokens
    state = process_state()  # rank and world size, also under accelerate launch on CPU
    scratch = Path(ctx.resume_dir or ctx.work_dir)
    scratch.mkdir(parents=True, exist_ok=True)
    original = base.max_seq_len
    lengths = [original] + [s.seq_len for s in config.steps]
    train_cfg = config.train
    if "seed" not in config.train.model_fields_set:
        train_cfg = train_cfg.model_copy(update={"seed": ctx.seed})

    # -- data: re-chunked copies (rank 0 writes, the others wait)
    short_index = read_index(short_src)
    short_split = "validation" if short_index["splits"].get("validation", {}).get("sequences") else "train"
    if short_split == "train":
        ctx.log.warning("long_context: %s has no validation sequences; scoring its train split", short_src.describe())
    if short_index["seq_len"] < original:
        raise LongContextInputError(
            f"long_context: short-context tokens {short_src.describe()} have seq_len {short_index['seq_len']} < the "
            f"model's original context {original}"
        )
    short_dir = scratch / f"short_{original}"
    if state.is_main_process:
        rechunk(short_src.path, short_split, short_dir, original, config.short_eval_sequences)
        for step in config.steps:
            if step.seq_len != index["seq_len"]:
                rechunk(tokens.path, "train", scratch / f"data_{step.seq_len}", step.seq_len)
    state.wait_for_everyone()
    short_data = TokenDataset(short_dir, short_split)

    encode = lambda text: tok.encode(text, add_special_tokens=False).ids  # noqa: E731
    overhead = needle_overhead(encode, config.needle_digits)
    grid_lengths = [n for n in lengths if n >= overhead + MIN_HAYSTACK]
    if config.steps[-1].seq_len not in grid_lengths:
        raise LongContextInputError(
            f"long_context: a needle takes up to {overhead} tokens with this tokenizer: the longest steps[].seq_len "
            f"must be ≥ {overhead + MIN_HAYSTACK}"
        )
    filler = filler_ids(short_src, max(lengths), config.needle_trials)
    cases = make_cases(
        encode,
        filler,
        grid_lengths,
        config.needle_depths,
        config.needle_trials,
        config.needle_candidates,
        config.needle_digits,
        seed=ctx.seed,
    )
    chance = 1 / config.needle_candidates

    # -- the pre-extension model
    model = build_model(base)
    load_weights(model, model_art.path)
    ctx.progress(0, None, "scoring the pre-extension model")
    before = needle_grid(model, cases, config.eval_batch_size)
    ppl_before = perplexity(model, short_data, config.short_eval_sequences, config.eval_batch_size)
    ctx.log.info(
        "long_context: before: needle pass %s, short ppl %.3f",
        {n: round(grid_rate(before, n), 3) for n in grid_lengths},
        ppl_before,
    )
    del model

    total_steps = sum(s.train_steps for s in config.steps)
    done_before = 0
    prev_cfg, prev_weights = base, model_art.path
    rows: list[dict[str, Any]] = []
    curves: list[tuple[int, list[list[float]]]] = []
    counts: dict[str, int | float] = {}
    train_s = 0.0
    for i, step in enumerate(config.steps):
        cfg = _step_model(prev_cfg, step, original)
        lr = step.lr or train_cfg.lr
        step_train = train_cfg.model_copy(
            update={"steps": step.train_steps, "lr": lr, "min_lr": min(train_cfg.min_lr, lr)}
        )
        data_dir = tokens.path if step.seq_len == index["seq_len"] else scratch / f"data_{step.seq_len}"
        dataset = TokenDataset(data_dir, "train", shuffle=True, seed=step_train.seed)
        run_dir = scratch / f"step{i}_{step.seq_len}"

        def log_step(m: dict[str, Any], offset: int = done_before, n: int = step.seq_len) -> None:
            ctx.progress(offset + m["step"], total_steps, f"seq_len {n}: loss {m['loss']:.3f}")
            if m["step"] % config.log_every == 0:
                ctx.log.info(
                    "long_context %d: step %d loss %.4f tokens/s %.0f", n, m["step"], m["loss"], m["tokens_per_s"]
                )

        t0 = time.monotonic()
        result = train(cfg, step_train, dataset, run_dir, log_fn=log_step, init_from=prev_weights)
        train_s += time.monotonic() - t0
        if result.resumed_from is not None:
            ctx.log.warning("long_context: seq_len %d resumed from %s", step.seq_len, result.resumed_from)
        model = result.model
        weights = run_dir / "weights"
        if state.is_main_process and not (weights / "model.safetensors").is_file():
            weights.mkdir(exist_ok=True)
            save_model(model, str(weights / "model.safetensors.tmp"))
            os.replace(weights / "model.safetensors.tmp", weights / "model.safetensors")
        state.wait_for_everyone()

        # -- gates
        last = i == len(config.steps) - 1
        step_cases = cases if last else [c for c in cases if c.length == step.seq_len]  # may be none: too short
        grid = needle_grid(model, step_cases, config.eval_batch_size)
        ppl = perplexity(model, short_data, config.short_eval_sequences, config.eval_batch_size)
        hist, _ = history(run_dir)
        window = [loss for _, loss in hist[-5:]] or [float("nan")]
        row = {
            "seq_len": step.seq_len,
            "rope": json.dumps(cfg.rope_parameters()),
            "train_steps": result.step,
            "final_loss": round(sum(window) / len(window), 4),
            "needle_pass_rate": round(grid_rate(grid, step.seq_len), 4),
            "needle_exact_rate": round(grid_rate(grid, step.seq_len, "exact_rate"), 4),
            "needle_pass_rate_before": round(grid_rate(before, step.seq_len), 4),
            "short_ppl": round(ppl, 4),
            "short_ppl_ratio": round(ppl / ppl_before, 4),
        }
        for key in ("needle_pass_rate", "short_ppl_ratio", "final_loss"):
            if math.isfinite(row[key]):
                counts[f"{key}_{step.seq_len}"] = row[key]
        rows.append({k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()})
        curves.append((step.seq_len, hist))
        ctx.log.info("long_context: %s", row)
        prev_cfg, prev_weights, done_before = cfg, weights, done_before + step.train_steps
    after = grid

    if not state.is_main_process:
        return StageResult()
    save_model_dir(model, ctx.output_dir, tokenizer_dir=model_art.path)
    final = rows[-1]
    counts |= {
        "seq_len": final["seq_len"],
        "original_seq_len": original,
        "needle_pass_rate": final["needle_pass_rate"],
        "needle_exact_rate": final["needle_exact_rate"],
        "needle_pass_rate_before": final["needle_pass_rate_before"],
        "needle_pass_rate_original": round(grid_rate(before, grid_lengths[0]), 4),
        "needle_chance": round(chance, 4),
        "short_ppl_before": round(ppl_before, 4),
        "short_ppl": final["short_ppl"],
        "short_ppl_ratio": final["short_ppl_ratio"],
        "train_steps": total_steps,
        "processes": result.world_size,
        "train_seconds": round(train_s, 1),
        "seconds": round(time.monotonic() - t_start, 1),
    }
    for n in grid_lengths[:-1]:
        counts[f"needle_pass_rate_before_{n}"] = round(grid_rate(before, n), 4)
        counts[f"needle_pass_rate_after_{n}"] = round(grid_rate(after, n), 4)
    cells = [
        {
            "seq_len": n,
            "depth": d,
            "pass_rate_before": round(before[(n, d)]["pass_rate"], 3),
            "pass_rate_after": round(after[(n, d)]["pass_rate"], 3),
            "exact_after": round(after[(n, d)]["exact_rate"], 3),
        }
        for n in grid_lengths
        for d in config.needle_depths
    ]
    metadata: dict[str, Any] = {
        "steps": Table(rows),
        "needle_grid": Table(cells),
        "needle_heatmap": needle_heatmap(before, after, grid_lengths, config.needle_depths, chance),
        "loss_curve": loss_curve(curves),
        "rope_parameters": prev_cfg.rope_parameters(),
        "max_position_embeddings": prev_cfg.max_seq_len,
    }
    return StageResult(counts=counts, metadata=metadata)


def _needle_ok(counts: Mapping[str, Any], config: LongContextConfig) -> CheckOutcome:
    rate = float(counts.get("needle_pass_rate", 0.0))
    ok = math.isfinite(rate) and rate >= config.min_needle_pass_rate
    base = float(counts.get("needle_pass_rate_original", 0.0))
    drop = ""
    if config.max_needle_drop is not None:
        ok = ok and rate >= base - config.max_needle_drop
        drop = f"; ≥ {base:.3f} − {config.max_needle_drop} (the base model at its original length)"
    return CheckOutcome(
        ok,
        (
            f"needle pass rate {rate:.3f} at seq_len {counts.get('seq_len')} (min {config.min_needle_pass_rate}{drop}; "
            f"chance {counts.get('needle_chance')}, base model at this length {counts.get('needle_pass_rate_before')})"
        ),
    )


def _short_ok(counts: Mapping[str, Any], config: LongContextConfig) -> CheckOutcome:
    ratio = float(counts.get("short_ppl_ratio", math.inf))
    ok = math.isfinite(ratio) and ratio <= 1 + config.short_ppl_tolerance
    return CheckOutcome(
        ok,
        (
            f"short-context perplexity {counts.get('short_ppl')} vs {counts.get('short_ppl_before')} before: "
            f"ratio {ratio:.3f} (max {1 + config.short_ppl_tolerance:.3f})"
        ),
    )


SPEC = StageSpec(
    name="long_context",
    version="1",
    inputs={"model": "model", "tokens": "tokens", "short_tokens": Input("tokens", optional=True)},
    output="model",
    config=LongContextConfig,
    run=run_long_context,
    description="Extend a model's context in steps (RoPE + continued training), gated by needle retrieval and "
    "short-context perplexity.",
    policy=TRAINING,
    checks=(
        CheckSpec(
            name="needle_retrieval",
            description="needle pass rate at the final length ≥ config.min_needle_pass_rate (and, with "
            "config.max_needle_drop, not more than that below the base model's at its original length)",
            check=_needle_ok,
        ),
        CheckSpec(
            name="short_context_recovery",
            description="perplexity at the original length ≤ (1 + config.short_ppl_tolerance) × the pre-extension "
            "model's",
            check=_short_ok,
        ),
    ),
    group="training",
)


@hookimpl
def gristmill_register_stages() -> list[StageSpec]:
    return [SPEC]
