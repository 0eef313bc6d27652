"""``rejection_sampling``: K on-policy samples per prompt, scored → best-of-K SFT data and best-vs-worst pairs.

The policy samples ``samples_per_prompt`` completions of every prompt of the pool (batched: prompts shortest
first, each prompt's K samples in one batch). A verifier (:func:`gristmill.lib.verify.is_correct` against the prompt's
``answer``: 1.0 / 0.0), a reward model, or both (the verifier decides, the reward model breaks ties) scores them.
The output ``dataset`` holds, in TRL's formats::

    sft.jsonl     {"messages": prompt + [best sample], "answer"}          best-of-K, for SFT
    pairs.jsonl   {"prompt": [...], "chosen": [best], "rejected": [worst]} explicit-prompt preference pairs, for DPO
    ranked.jsonl  {"prompt", "responses": [K, best first], "scores", "answer", "correct"?, "rewards"?}
    eval.jsonl    the prompts dataset's held-out set, copied unchanged (when it has one)

Metadata: pass@1 (unbiased: mean fraction of correct samples per prompt), pass@k for k = 1, 2, 4, …, K with the
unbiased estimator ``1 - C(n-c, k) / C(n, k)``, a histogram of the scores, best/worst samples, samples/s.
Deterministic for a seed.
"""

import shutil
from typing import Any, Literal

from pydantic import Field

from gristmill import (
    Artifact,
    CheckOutcome,
    CheckSpec,
    Input,
    StageConfig,
    StageContext,
    StageResult,
    StageSpec,
    Table,
    hookimpl,
)
from gristmill.errors import StageInputError
from gristmill.lib.jsonl import write_jsonl
from gristmill.lib.models.options import ModelOptions


class RejectionSamplingConfig(StageConfig, ModelOptions):
    """Options of the ``rejection_sampling`` stage."""

    file: str = Field("prompts.jsonl", description="Prompt pool file of the prompts dataset ({'prompt', 'answer'}).")
    max_prompts: int | None = Field(None, ge=1, description="Use at most this many prompts (the file's first).")
    samples_per_prompt: int = Field(8, ge=2, description="K: completions sampled per prompt.")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling threshold (1: off).")
    max_new_tokens: int = Field(128, ge=1, description="Longest completion, in tokens.")
    batch_size: int = Field(64, ge=1, description="Sequences per generate call (rounded down to a multiple of K).")
    scorer: Literal["verifier", "reward_model", "both"] = Field(
        "verifier",
        description="verifier: exact answer 1/0; reward_model: the reward_model input's score; both: the verifier "
        "decides and the reward model breaks ties (score = correct + sigmoid(reward)).",
    )
    reward_batch_size: int = Field(32, ge=1, description="Conversations per reward-model forward pass.")
    min_score_gap: float = Field(
        0.0, ge=0, description="A pair needs best − worst score > 0 and ≥ this (verifier scores differ by 1)."
    )
    keep_only_correct: bool | None = Field(
        None,
        description="Write a best-of-K SFT row only when the verifier says the best sample is correct; None: true "
        "when the scorer uses the verifier, else false.",
    )
    min_sft_rows: int = Field(0, ge=0, description="Check: at least this many best-of-K SFT rows.")
    seed: int | None = Field(None, description="Sampling seed; None: the instance seed.")


class RejectionSamplingError(StageInputError):
    """Inputs or config that cannot work together; the message names the input or field."""


def run_rejection_sampling(
    ctx: StageContext, config: RejectionSamplingConfig, inputs: dict[str, Artifact]
) -> StageResult:
    """Sample K completions per prompt, score them, write best-of-K SFT rows, preference pairs and ranked lists."""
    import torch

    from gristmill.lib import post_training as pt

    policy, prompts_art, rm_art = inputs["model"], inputs["prompts"], inputs.get("reward_model")
    if config.scorer != "verifier" and rm_art is None:
        raise RejectionSamplingError(
            f"rejection_sampling: scorer {config.scorer!r} needs the reward_model input (none is wired); "
            "wire a reward model or use scorer: verifier"
        )
    path = pt.dataset_file(prompts_art, config.file)
    rows = pt.load_prompts(path, config.max_prompts)
    uses_verifier = config.scorer != "reward_model"
    if uses_verifier:
        pt.require_answers(path, rows)
    keep_only_correct = uses_verifier if config.keep_only_correct is None else config.keep_only_correct
    if keep_only_correct and any(r["answer"] is None for r in rows):
        pt.require_answers(path, rows, "keep_only_correct needs answers to verify the best sample")
    seed = ctx.seed if config.seed is None else config.seed
    k = config.samples_per_prompt
    device = "cuda" if torch.cuda.is_available() else "cpu"

    model, tokenizer = pt.load_policy(policy, True, config.dtype, config.chat_template)
    model.to(device)
    reward = None
    if rm_art is not None and config.scorer != "verifier":
        reward = pt.load_reward_model(rm_art, config.dtype)
        reward[0].to(device)
    ctx.log.info("%s: sampling %d × %d completions from %s", ctx.instance, len(rows), k, policy.describe())
    scored = pt.sample_and_score(
        model,
        tokenizer,
        rows,
        num_samples=k,
        max_new_tokens=config.max_new_tokens,
        temperature=config.temperature,
        top_p=config.top_p,
        batch_size=config.batch_size,
        seed=seed,
        scorer=config.scorer,
        reward_model=reward,
        reward_batch_size=config.reward_batch_size,
        progress=lambda done, total: ctx.progress(done, total, "samples"),
    )

    sft_rows, ranked = [], []
    for i, row in enumerate(rows):
        samples, scores = scored.samples[i], scored.scores[i]
        best, _ = pt.best_and_worst(scores)
        if not keep_only_correct or (scored.correct is not None and scored.correct[i][best]):
            sft_rows.append(
                {"messages": [*row["prompt"], {"role": "assistant", "content": samples[best]}], "answer": row["answer"]}
            )
        order = sorted(range(k), key=lambda j: (-scores[j], j))
        entry: dict[str, Any] = {
            "prompt": row["prompt"],
            "responses": [samples[j] for j in order],
            "scores": [scores[j] for j in order],
            "answer": row["answer"],
        }
        if scored.correct is not None:
            entry["correct"] = [scored.correct[i][j] for j in order]
        if scored.rewards is not None:
            entry["rewards"] = [scored.rewards[i][j] for j in order]
        ranked.append(entry)
    pairs = pt.preference_pairs(rows, scored, config.min_score_gap)

    out = ctx.output_dir
    write_jsonl(out / "sft.jsonl", sft_rows, sort_keys=True)
    write_jsonl(out / "pairs.jsonl", pairs, sort_keys=True)
    write_jsonl(out / "ranked.jsonl", ranked, sort_keys=True)
    eval_files = [p for p in prompts_art.glob("eval.jsonl") if p.name == "eval.jsonl"]
    if eval_files:
        shutil.copyfile(eval_files[0], out / "eval.jsonl")

    counts: dict[str, int | float] = {
        "prompts": len(rows),
        "samples": scored.total,
        "sft_rows": len(sft_rows),
        "pairs": len(pairs),
        "samples_per_second": round(scored.total / scored.seconds, 2) if scored.seconds > 0 else 0.0,
        "mean_score": round(sum(map(sum, scored.scores)) / scored.total, 4),
    }
    metadata: dict[str, Any] = {
        "score_distribution": pt.score_histogram(scored, f"scores ({config.scorer})"),
        "samples": Table(pt.samples_table(rows, scored)),
        "scorer": config.scorer,
        "policy": policy.id,
        "seed": seed,
    }
    if scored.correct is not None:
        counts["pass_at_1"] = round(scored.pass_at(1) or 0.0, 4)
        counts["pass_at_k"] = round(scored.pass_any() or 0.0, 4)
        metadata["pass_at_k"] = Table(
            [{"k": n, "pass_at_k": round(scored.pass_at(n) or 0.0, 4)} for n in pt.pass_at_k_ks(k)]
        )
    if scored.rewards is not None:
        counts["mean_reward"] = round(sum(map(sum, scored.rewards)) / scored.total, 4)
        metadata["reward_model"] = rm_art.id if rm_art is not None else None
    ctx.log.info(
        "%s: %d SFT rows, %d pairs, %.1f samples/s",
        ctx.instance,
        len(sft_rows),
        len(pairs),
        counts["samples_per_second"],
    )
    return StageResult(counts=counts, metadata=metadata)


def _enough_sft_rows(counts: dict[str, Any], config: RejectionSamplingConfig) -> CheckOutcome:
    rows = int(counts.get("sft_rows", 0))
    return CheckOutcome(rows >= config.min_sft_rows, f"{rows} best-of-K SFT rows (min {config.min_sft_rows})")


SPEC = StageSpec(
    name="rejection_sampling",
    version="1",
    inputs={"model": "model", "prompts": "dataset", "reward_model": Input("model", optional=True)},
    output="dataset",
    config=RejectionSamplingConfig,
    run=run_rejection_sampling,
    description="K samples per prompt from the policy, scored by a verifier and/or reward model: best-of-K SFT "
    "rows, best-vs-worst preference pairs, ranked lists.",
    checks=(
        CheckSpec(
            name="min_sft_rows",
            description="at least config.min_sft_rows best-of-K SFT rows were written",
            check=_enough_sft_rows,
        ),
    ),
    group="training",
)


@hookimpl
def gristmill_register_stages() -> list[StageSpec]:
    return [SPEC]
