"""``dpo``: one round of on-policy DPO — sample, score, pair best vs worst, train with TRL's ``DPOTrainer``.

Meant to be partitioned by rounds (``round-001``, ``round-002``, …): round 1 starts from the ``policy`` input,
round n from ``ctx.previous`` — this stage instance's own artifact of round n−1 (the stage chains rounds) — so
``policy_{n+1} = DPO(policy_n)``. Each round:

1. takes its slice of the prompt pool (a seeded permutation of ``file``, ``prompts_per_round`` prompts per round,
   consecutive rounds consecutive windows, wrapping around);
2. samples ``samples_per_prompt`` completions per prompt from the round's starting policy and scores them with
   the verifier (exact answer), the reward model, or both (see ``rejection_sampling``);
3. builds best-vs-worst preference pairs where the scores differ (by ≥ ``min_score_gap``) and fails when fewer
   than ``min_pairs`` exist — all samples scored the same, nothing to learn from;
4. trains with ``DPOTrainer`` against the round's starting policy as the frozen reference;
5. scores held-out accuracy (``eval_file``) before and after; the blocking check ``heldout_accuracy`` fails when it
   drops by more than ``max_accuracy_drop``.

The output is a ``model`` folder (``config.json``, ``model.safetensors``, tokenizer files) plus
``training_log.json`` (round, starting artifact, trainer logs) and ``dpo_pairs.jsonl`` (the round's pairs).
"""

import json
import math
import random
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

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
from gristmill.errors import StageInputError
from gristmill.lib.jsonl import write_jsonl
from gristmill.lib.post_training import LoraTrainingConfig, LrScheduler, TrainRun

LOSS_TYPES = Literal[
    "sigmoid",
    "hinge",
    "ipo",
    "exo_pair",
    "nca_pair",
    "robust",
    "bco_pair",
    "sppo_hard",
    "aot",
    "aot_unpaired",
    "apo_zero",
    "apo_down",
    "discopop",
    "sft",
    "sigmoid_norm",
]


class DPOStageConfig(LoraTrainingConfig):
    """Options of the ``dpo`` stage (plus the shared training options of :class:`TrainingConfig`)."""

    file: str = Field("prompts.jsonl", description="Prompt pool file of the prompts dataset ({'prompt', 'answer'}).")
    prompts_per_round: int | None = Field(
        64, ge=1, description="Prompts sampled per round (a seeded window of the pool); None: the whole pool."
    )
    samples_per_prompt: int = Field(8, ge=2, description="K: on-policy completions sampled per prompt.")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling threshold (1: off).")
    max_new_tokens: int = Field(128, ge=1, description="Longest completion, in tokens (sampling and held-out eval).")
    generation_batch_size: int = Field(
        64, ge=1, description="Sequences per generate call when sampling and evaluating (multiple of K when sampling)."
    )
    scorer: Literal["verifier", "reward_model", "both"] = Field(
        "verifier",
        description="verifier: exact answer 1/0; reward_model: the reward_model input's score; both: the verifier "
        "decides and the reward model breaks ties (score = correct + sigmoid(reward)).",
    )
    reward_batch_size: int = Field(32, ge=1, description="Conversations per reward-model forward pass.")
    min_score_gap: float = Field(0.0, ge=0, description="A pair needs best − worst score > 0 and ≥ this.")
    verified_pairs: bool = Field(
        True,
        description="With scorer both: pair only a verifier-correct chosen with a verifier-wrong rejected (the reward "
        "model picks which of them); False: the reward model alone may pair two wrong answers.",
    )
    min_pairs: int = Field(1, ge=1, description="Fail the round when fewer preference pairs than this can be built.")
    beta: float = Field(0.1, gt=0, description="DPO β: strength of the pull towards the reference policy.")
    loss_type: LOSS_TYPES = Field("sigmoid", description="TRL DPO loss (sigmoid = the DPO paper's; ipo, hinge, …).")
    nll_weight: float = Field(
        0.0,
        ge=0,
        description="Add this times the chosen answers' NLL (TRL loss 'sft') to the DPO loss, as iterative "
        "RPO does for reasoning (Pang et al. 2024): keeps DPO from lowering the likelihood of correct answers; 0: off.",
    )
    lr: float = Field(5e-6, gt=0, description="Peak learning rate (AdamW).")
    lr_scheduler: LrScheduler = Field("linear", description="Learning-rate schedule after warmup (transformers').")
    max_length: int | None = Field(
        None, ge=8, description="Longest prompt+completion in tokens (longer ones are truncated); None: the context."
    )
    precompute_ref_log_probs: bool = Field(
        False, description="Compute the reference log-probs once before training (no reference model kept in memory)."
    )
    eval_file: str | None = Field(
        "eval.jsonl",
        description="Held-out {'prompt', 'answer'} file of the prompts dataset, scored before and after; skipped "
        "when the dataset has none (an explicitly set name must exist). None: no held-out check.",
    )
    eval_examples: int = Field(200, ge=1, description="Score at most this many held-out prompts (greedy).")
    max_accuracy_drop: float = Field(
        0.02, ge=0, le=1, description="Check heldout_accuracy: accuracy may fall by at most this much in a round."
    )
    seed: int | None = Field(None, description="Seed of the prompt windows and sampling; None: the instance seed.")


class DPOStageError(StageInputError):
    """Inputs or config that cannot work together, or a round with nothing to train on; the message says which."""


def round_prompts(n_pool: int, per_round: int | None, round_no: int, seed: int) -> list[int]:
    """Indices (sorted) of the pool's prompts used by round ``round_no``: window ``round_no - 1`` of a seeded
    permutation, ``per_round`` long, wrapping around the pool."""
    if per_round is None or per_round >= n_pool:
        return list(range(n_pool))
    order = list(range(n_pool))
    random.Random(f"dpo-prompts:{seed}").shuffle(order)
    start = (round_no - 1) * per_round % n_pool
    return sorted(order[(start + i) % n_pool] for i in range(per_round))


def _eval_rows(config: DPOStageConfig, prompts: Artifact) -> tuple[list[dict[str, Any]], str | None]:
    from gristmill.lib import post_training as pt

    if config.eval_file is None:
        return [], None
    found = [p for p in prompts.glob(config.eval_file) if p.name == config.eval_file]
    if not found:
        if "eval_file" in config.model_fields_set:
            raise DPOStageError(f"dpo: eval_file {config.eval_file!r} not found in {prompts.describe()}")
        return [], None
    rows = pt.load_prompts(found[0], config.eval_examples)
    pt.require_answers(found[0], rows, "held-out accuracy is scored against it")
    return rows, found[0].name


def _curves(run: TrainRun) -> dict[str, Any]:
    return {
        "loss_curve": run.curve(
            "DPO loss curve", [("loss", "DPO loss")], baseline=(math.log(2), "start (ln 2)"), marker="."
        ),
        "margins_curve": run.curve(
            "DPO implicit reward margins",
            [("rewards/margins", "reward margin"), ("rewards/accuracies", "reward accuracy")],
            baseline=(0.0, "0"),
            legend_loc="upper left",
            marker=".",
        ),
    }


def _last(history: list[dict[str, float]], key: str) -> float:
    values = [h[key] for h in history if key in h]
    return round(values[-1], 4) if values else math.nan


def run_dpo(ctx: StageContext, config: DPOStageConfig, inputs: dict[str, Artifact]) -> StageResult:
    """One on-policy DPO round: sample K per prompt, pair best vs worst, train against the starting policy."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from gristmill.engine.launch import process_state
    from gristmill.lib import post_training as pt
    from gristmill.lib.models import load_causal_lm
    from gristmill.lib.models.chat import trl_pair
    from gristmill.lib.models.lora import peft_config

    policy, prompts_art, rm_art = inputs["policy"], inputs["prompts"], inputs.get("reward_model")
    previous = ctx.previous  # this instance's model of the round before (None in round 1)
    if config.scorer != "verifier" and rm_art is None:
        raise DPOStageError(
            f"dpo: scorer {config.scorer!r} needs the reward_model input (none is wired); "
            "wire a reward model or use scorer: verifier"
        )
    round_no = ctx.round if ctx.round is not None else 1
    start_art, started_from = (previous, "previous") if previous is not None else (policy, "policy")
    if round_no > 1 and previous is None:
        ctx.log.warning(
            "%s: round %d without a previous round's model: starting from the policy input", ctx.instance, round_no
        )
    seed = ctx.seed if config.seed is None else config.seed
    state = process_state()

    path = pt.dataset_file(prompts_art, config.file)
    pool = pt.load_prompts(path)
    if config.scorer != "reward_model":
        pt.require_answers(path, pool)
    rows = [pool[i] for i in round_prompts(len(pool), config.prompts_per_round, round_no, seed)]
    eval_rows, eval_name = _eval_rows(config, prompts_art)

    model, tokenizer = pt.load_policy(start_art, True, config.dtype, config.chat_template)
    model.to(state.device)
    context = pt.context_length(model) or config.max_length or 2048
    if config.max_length is not None and config.max_length > context:
        raise DPOStageError(
            f"dpo: max_length {config.max_length} exceeds the {context}-token context of {start_art.describe()}"
        )
    reward = None
    if config.scorer != "verifier":
        reward = pt.load_reward_model(rm_art)  # type: ignore[arg-type]
        reward[0].to(state.device)
    ctx.log.info(
        "%s: %s from %s (%s), %d prompts × %d samples",
        ctx.instance,
        ctx.partition_key or "single round",
        started_from,
        start_art.id,
        len(rows),
        config.samples_per_prompt,
    )

    before = None
    if eval_rows and state.is_main_process:
        ctx.progress(0, None, "held-out accuracy of the starting policy")
        before = pt.score_accuracy(model, tokenizer, eval_rows, config.max_new_tokens, config.generation_batch_size)
    scored = pt.sample_and_score(
        model,
        tokenizer,
        rows,
        num_samples=config.samples_per_prompt,
        max_new_tokens=config.max_new_tokens,
        temperature=config.temperature,
        top_p=config.top_p,
        batch_size=config.generation_batch_size,
        seed=seed + 1009 * (round_no - 1),
        scorer=config.scorer,
        reward_model=reward,
        reward_batch_size=config.reward_batch_size,
        progress=lambda done, total: ctx.progress(done, total, "on-policy samples"),
    )
    reward = None  # the reward model is not needed for training: free it
    verified = config.verified_pairs and config.scorer == "both"
    pairs = pt.preference_pairs(rows, scored, config.min_score_gap, verified_only=verified)
    if len(pairs) < config.min_pairs:
        raise DPOStageError(
            f"dpo ({ctx.partition_key or 'single round'}): only {len(pairs)} preference pairs from {len(rows)} prompts "
            f"× {config.samples_per_prompt} samples (min_pairs {config.min_pairs}): the {config.scorer} scorer gave "
            f"the samples of {len(rows) - len(pairs)} prompts equal scores (or gaps below min_score_gap "
            f"{config.min_score_gap}) — nothing to train on. Sample more (samples_per_prompt, prompts_per_round, "
            "temperature) or use a reward model (scorer: both)"
        )

    world = state.num_processes
    steps = config.max_steps or max(
        1, math.ceil(len(pairs) / (config.batch_size * config.gradient_accumulation_steps * world) * config.epochs)
    )
    history: list[dict[str, float]] = []
    losses = [config.loss_type, "sft"] if config.nll_weight else [config.loss_type]
    weights = [1.0, config.nll_weight] if config.nll_weight else None
    args = DPOConfig(
        **pt.training_args(
            ctx,
            config,
            max_length=config.max_length or context,
            beta=config.beta,
            loss_type=losses,
            loss_weights=weights,
            precompute_ref_log_probs=config.precompute_ref_log_probs,
            logging_steps=max(5, steps // 50),
        )
    )
    # The reference is the round's starting policy: loaded from its validated folder (safetensors only); with
    # precomputed reference log-probs TRL uses the policy itself before the first step and keeps no copy; with LoRA
    # the reference is the policy with its adapter disabled (TRL), so there is no second copy either.
    no_copy = config.precompute_ref_log_probs or config.peft is not None
    ref_model = None if no_copy else load_causal_lm(start_art.path, dtype=config.dtype)
    tokenizer.padding_side = "right"
    model.train()
    trainer = DPOTrainer(
        model=model,
        ref_model=ref_model,
        args=args,
        train_dataset=Dataset.from_list([trl_pair(tokenizer, p) for p in pairs]),
        processing_class=tokenizer,
        callbacks=[pt.stage_callback(ctx, history)],
        peft_config=peft_config(config.peft, model, "CAUSAL_LM", "dpo") if config.peft else None,
    )
    run = pt.run_trainer(ctx, trainer, history=history, tokenizer_from=None)  # saved after the held-out scoring
    if run is None:
        return StageResult()

    model = run.model
    model.eval()
    tokenizer.padding_side = "left"
    after = None
    if before is not None:
        ctx.progress(0, None, "held-out accuracy of the trained policy")
        after = pt.score_accuracy(model, tokenizer, eval_rows, config.max_new_tokens, config.generation_batch_size)

    out = ctx.output_dir
    pt.save_trained(model, out, tokenizer, start_art, config.peft)
    write_jsonl(out / "dpo_pairs.jsonl", pairs, sort_keys=True)
    origin = {"input": started_from, "artifact": start_art.id, "partition": start_art.manifest.get("partition")}
    (out / "training_log.json").write_text(
        json.dumps({"round": ctx.partition_key, "started_from": origin, "history": history}, separators=(",", ":"))
        + "\n",
        encoding="utf-8",
    )

    counts: dict[str, int | float] = {
        "round": round_no,
        "prompts": len(rows),
        "samples": scored.total,
        "pairs": len(pairs),
        "samples_per_second": round(scored.total / scored.seconds, 2) if scored.seconds > 0 else 0.0,
        "steps": run.steps,
        "first_loss": run.first_loss,
        "final_loss": run.last_loss,
        "rewards_accuracy": _last(history, "rewards/accuracies"),
        "margins": _last(history, "rewards/margins"),
        "steps_per_second": round(float(run.output.metrics.get("train_steps_per_second", 0.0)), 4),
        "train_seconds": run.train_seconds,
        **run.params,
        "peak_memory_mb": run.peak_memory_mb,
    }
    if scored.correct is not None:
        counts["pass_at_1"] = round(scored.pass_at(1) or 0.0, 4)
    if scored.rewards is not None:
        counts["mean_reward"] = round(sum(map(sum, scored.rewards)) / scored.total, 4)
    if before is not None and after is not None:
        counts["accuracy_before"] = round(before["accuracy"], 4)
        counts["accuracy_after"] = round(after["accuracy"], 4)
        counts["accuracy_drop"] = round(before["accuracy"] - after["accuracy"], 4)
        counts["eval_examples"] = len(eval_rows)
    metadata: dict[str, Any] = {
        **_curves(run),
        "score_distribution": pt.score_histogram(scored, f"on-policy sample scores ({config.scorer})"),
        "samples": Table(pt.samples_table(rows, scored)),
        "round": ctx.partition_key,
        "started_from": origin,
        "scorer": config.scorer,
    }
    if after is not None:
        metadata["heldout_samples"] = Table(after["samples"])
        metadata["eval_file"] = eval_name
    return StageResult(counts=counts, metadata=metadata)


def heldout_accuracy_check(counts: Mapping[str, Any], config: DPOStageConfig) -> CheckOutcome:
    """Passes when held-out accuracy fell by at most ``config.max_accuracy_drop`` (or there is no eval set)."""
    drop = counts.get("accuracy_drop")
    if drop is None or not math.isfinite(float(drop)):
        return CheckOutcome(True, "no held-out eval set: nothing to compare (set eval_file to gate rounds)")
    before, after = counts.get("accuracy_before", math.nan), counts.get("accuracy_after", math.nan)
    ok = float(drop) <= config.max_accuracy_drop + 1e-9
    return CheckOutcome(
        ok,
        f"held-out accuracy {float(before):.3f} → {float(after):.3f} (drop {float(drop):+.3f}, "
        f"max {config.max_accuracy_drop})",
    )


SPEC = StageSpec(
    name="dpo",
    version="1",
    inputs={"policy": "model", "prompts": "dataset", "reward_model": Input("model", optional=True)},
    output="model",
    config=DPOStageConfig,
    run=run_dpo,
    description="One on-policy DPO round (partition by rounds): sample K per prompt, score, pair best vs worst, "
    "train with TRL DPOTrainer from the previous round's policy.",
    policy=TRAINING,
    rounds=True,
    checks=(
        CheckSpec(
            name="heldout_accuracy",
            description="held-out accuracy dropped by at most config.max_accuracy_drop in the round",
            check=heldout_accuracy_check,
        ),
    ),
    group="training",
)


@hookimpl
def gristmill_register_stages() -> list[StageSpec]:
    return [SPEC]
