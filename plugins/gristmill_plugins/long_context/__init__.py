"""``long_context``: model + tokens → the model with a longer context, extended in steps and gated.

Any RoPE architecture transformers ships works (Llama incl. ``rope_type: llama3``, Qwen2, Mistral, Gemma-2, Phi-3,
GPT-NeoX): the model is loaded from its folder in float32 and each step is built from the model's **own** HF config
(:mod:`~gristmill_plugins.long_context.rope`), so every other ``config.json`` field (``rms_norm_eps``, ``head_dim``,
attention bias, tied embeddings …) comes out as it went in. Models with absolute position embeddings (GPT-2) are
refused with a clear error: RoPE scaling cannot extend them.

Each entry of ``steps`` raises the context length (``max_position_embeddings``), optionally changes RoPE (a new
``rope_theta`` — "adjusted base frequency" — and/or ``rope_parameters`` scaling ``linear``/``yarn`` with a factor of
new length / original length; without ``rope_scaling`` the input's own RoPE, e.g. ``llama3``, is kept) and continues
training with :func:`gristmill.lib.train.train` from the previous step's weights on packed sequences of the new
length. The ``tokens`` input must have ``seq_len`` ≥ the longest step; for shorter steps its rows are re-chunked into
a scratch copy. Checkpoints live in the run's resume folder, so a failed run continues where it stopped.

After every step two gates run (:mod:`gristmill.lib.needle` defines the format):

1. **Needle retrieval** at the new length: a pass-key fact at several depths of real filler text (``short_tokens``
   when given, else ``tokens``' validation split), scored by likelihood ranking against ``needle_candidates - 1``
   random values (chance = 1 / candidates) and by greedy exact match; the pre-extension model is scored too.
2. **Short-context recovery**: validation perplexity at the original length (``short_tokens``' validation split,
   else ``tokens``' cut to the original length) relative to the pre-extension model.

The blocking checks ``needle_retrieval`` and ``short_context_recovery`` compare the final step's numbers with
``min_needle_pass_rate`` and ``short_ppl_tolerance``. The output is an HF model folder in ``dtype`` (``auto``: the
input checkpoint's; tokenizer, generation config and special ids of the input model) whose ``config.json`` holds the
new ``max_position_embeddings`` and ``rope_parameters``.

Modules: :mod:`~gristmill_plugins.long_context.config` (options), :mod:`~gristmill_plugins.long_context.rope` (the
step configs, rebuilding), :mod:`~gristmill_plugins.long_context.data` (re-chunked tokens, needle filler),
:mod:`~gristmill_plugins.long_context.gates` (needle grid, perplexity, charts); this one runs the steps.
"""

import json
import math
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
from gristmill_plugins.long_context.config import LongContextConfig, LongContextInputError
from gristmill_plugins.long_context.data import filler_ids, rechunk
from gristmill_plugins.long_context.gates import grid_rate, loss_curve, needle_grid, needle_heatmap, perplexity
from gristmill_plugins.long_context.rope import input_rope, rebuild, step_configs

MIN_HAYSTACK = 8  # filler tokens a needle prompt needs at least


def _load_inputs(config: LongContextConfig, inputs: dict[str, Artifact]) -> tuple[Any, int, list[Any], dict, Any]:
    """Validate the inputs: (model folder, original context, the HF config of every step, tokens index, tokenizer)."""
    from transformers import AutoTokenizer

    from gristmill.lib.models import ModelArtifactError, inspect_model_folder
    from gristmill.lib.models.loading import quiet_transformers
    from gristmill.lib.tokens import read_index
    from gristmill.lib.train.export import hf_config
    from gristmill.lib.train.loop import position_limit

    model_art, tokens = inputs["model"], inputs["tokens"]
    name = f"input model {model_art.describe()}"
    try:
        folder = inspect_model_folder(model_art.path)
        base = hf_config(folder)
    except ModelArtifactError as exc:
        raise LongContextInputError(f"long_context: {name}: {exc}") from exc
    where = f"{name}: {model_art.path / 'config.json'}"
    input_rope(base, where)  # absolute positions: refused before anything else
    original = position_limit(base)
    if original is None:
        raise LongContextInputError(f"long_context: {where}: no max_position_embeddings (the context to extend)")
    index = read_index(tokens)
    longest = config.steps[-1].seq_len
    if index["seq_len"] < longest:
        raise LongContextInputError(
            f"long_context: tokens {tokens.describe()} has seq_len {index['seq_len']}, shorter than the longest "
            f"steps[].seq_len {longest}; tokenize with seq_len ≥ {longest}"
        )
    rows = base.get_text_config().vocab_size
    if index["vocab_size"] > rows:
        raise LongContextInputError(
            f"long_context: tokens {tokens.describe()} vocab_size {index['vocab_size']} exceeds the model's "
            f"{rows} embedding rows ({where}): tokenize with the model's tokenizer"
        )
    if config.steps[0].seq_len <= original:
        raise LongContextInputError(
            f"long_context: steps[0].seq_len {config.steps[0].seq_len} must exceed the context {original} of {name}"
        )
    configs = step_configs(base, config.steps, original, where)
    try:
        with quiet_transformers():
            tok = AutoTokenizer.from_pretrained(str(model_art.path), local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError, TypeError) as exc:
        raise LongContextInputError(f"long_context: {name}: the tokenizer does not load ({exc})") from exc
    return folder, original, configs, index, tok


def run_long_context(ctx: StageContext, config: LongContextConfig, inputs: dict[str, Artifact]) -> StageResult:
    """Extend the model's context step by step (RoPE + continued training), gating each step on needle
    retrieval at the new length and perplexity at the original length."""
    from gristmill.engine.launch import process_state
    from gristmill.lib.models import load_causal_lm, save_model_dir
    from gristmill.lib.needle import make_cases, needle_overhead
    from gristmill.lib.tokens import TokenDataset, read_index
    from gristmill.lib.train.export import output_dtype
    from gristmill.lib.train.loop import history, train

    t_start = time.monotonic()
    folder, original, step_cfgs, index, tok = _load_inputs(config, inputs)
    model_art, tokens = inputs["model"], inputs["tokens"]
    short_src = inputs.get("short_tokens") or tokens
    state = process_state()  # rank and world size, also under accelerate launch on CPU
    scratch = Path(ctx.resume_dir or ctx.work_dir)
    scratch.mkdir(parents=True, exist_ok=True)
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

    encode = lambda text: tok.encode(text, add_special_tokens=False)  # noqa: E731
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

    # -- the pre-extension model, in float32 (master weights for training)
    model = load_causal_lm(model_art.path, dtype="float32").to(state.device)  # scored where it will train
    ctx.progress(0, None, "scoring the pre-extension model")
    before = needle_grid(model, cases, config.eval_batch_size)
    ppl_before = perplexity(model, short_data, config.short_eval_sequences, config.eval_batch_size)
    ctx.log.info(
        "long_context: before: needle pass %s, short ppl %.3f",
        {n: round(grid_rate(before, n), 3) for n in grid_lengths},
        ppl_before,
    )

    total_steps = sum(s.train_steps for s in config.steps)
    done_before = 0
    rows: list[dict[str, Any]] = []
    curves: list[tuple[int, list[list[float]]]] = []
    counts: dict[str, int | float] = {}
    train_s = 0.0
    for i, (step, cfg) in enumerate(zip(config.steps, step_cfgs, strict=True)):
        model = rebuild(model, cfg)  # the same architecture and weights; the new length and RoPE
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
        result = train(None, step_train, dataset, run_dir, log_fn=log_step, model=model)
        train_s += time.monotonic() - t0
        if result.resumed_from is not None:
            ctx.log.warning("long_context: seq_len %d resumed from %s", step.seq_len, result.resumed_from)
        model, result.model = result.model, None  # one reference: the next rebuild frees it

        # -- gates
        last = i == len(config.steps) - 1
        step_cases = cases if last else [c for c in cases if c.length == step.seq_len]  # may be none: too short
        grid = needle_grid(model, step_cases, config.eval_batch_size)
        ppl = perplexity(model, short_data, config.short_eval_sequences, config.eval_batch_size)
        hist, _ = history(run_dir)
        window = [loss for _, loss in hist[-5:]] or [float("nan")]
        row = {
            "seq_len": step.seq_len,
            "rope": json.dumps(cfg.rope_parameters),
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
        done_before += step.train_steps
    after = grid

    if not state.is_main_process:
        return StageResult()
    save_model_dir(model.to(output_dtype(config.dtype, folder)), ctx.output_dir, tokenizer_from=model_art.path)
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
        "rope_parameters": step_cfgs[-1].rope_parameters,
        "max_position_embeddings": step_cfgs[-1].max_position_embeddings,
        "model_type": folder.model_type,
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
