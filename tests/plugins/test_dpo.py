"""dpo rounds on the tiny policy: real TRL DPOTrainer training, the held-out gate, rounds chained by ctx.previous."""

import json
import logging
import math
from pathlib import Path

import pytest

from gristmill.pipeline.rounds import round_number
from gristmill.stage import StageContext
from gristmill.testing import artifact_from_dir
from gristmill_plugins.dpo import SPEC, DPOStageError, heldout_accuracy_check, round_prompts

TINY = {
    "prompts_per_round": 10,
    "samples_per_prompt": 4,
    "max_new_tokens": 32,
    "generation_batch_size": 40,
    "scorer": "reward_model",
    "max_steps": 6,
    "batch_size": 4,
    "lr": 1e-3,
    "beta": 0.1,
    "eval_examples": 8,
    "max_accuracy_drop": 1.0,
}


pytestmark = pytest.mark.usefixtures("one_thread")


def _run(tmp_path: Path, name: str, config: dict, inputs: dict, partition: str | None = None, previous=None):
    """Run the stage as the engine does for round ``partition``: ``ctx.round`` and ``ctx.previous`` set."""
    out, work = tmp_path / name / "out", tmp_path / name / "work"
    out.mkdir(parents=True)
    work.mkdir()
    ctx = StageContext(
        instance="dpo",
        output_dir=out,
        work_dir=work,
        log=logging.getLogger("test.dpo"),
        partition_key=partition,
        round=round_number(partition) if partition else None,
        previous=previous,
    )
    return SPEC.run(ctx, SPEC.config.model_validate(config), inputs), out


def _inputs(arithmetic: Path, policy: Path, rm: Path | None = None) -> dict:
    inputs = {"policy": artifact_from_dir("model", policy), "prompts": artifact_from_dir("dataset", arithmetic)}
    if rm is not None:
        inputs["reward_model"] = artifact_from_dir("model", rm)
    return inputs


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


@pytest.fixture(scope="module")
def round_one(arithmetic, tiny_policy, reward_model, tmp_path_factory):
    return _run(
        tmp_path_factory.mktemp("dpo_round1"), "r1", TINY, _inputs(arithmetic, tiny_policy, reward_model), "round-001"
    )


def test_a_round_trains_with_dpo_and_saves_a_loadable_policy(round_one, tiny_policy):
    from gristmill.lib.train.export import load_causal_lm

    result, out = round_one
    c = result.counts
    assert c["round"] == 1 and c["prompts"] == 10 and c["samples"] == 40 and c["steps"] == 6
    assert c["pairs"] == 10  # the reward model gives every sample its own score: one pair per prompt
    assert c["first_loss"] == pytest.approx(math.log(2), abs=1e-3)  # step 1: policy == reference
    assert c["final_loss"] < c["first_loss"] - 0.01 and c["margins"] > 0  # it learned the pairs
    assert 0 <= c["rewards_accuracy"] <= 1 and c["steps_per_second"] > 0 and c["train_seconds"] > 0
    assert {"accuracy_before", "accuracy_after", "accuracy_drop"} <= set(c) and c["eval_examples"] == 8
    assert c["accuracy_drop"] == pytest.approx(c["accuracy_before"] - c["accuracy_after"])
    assert math.isfinite(c["mean_reward"]) and 0 <= c["pass_at_1"] <= 1

    start, trained = _weights(tiny_policy), _weights(out)
    assert start.keys() == trained.keys()
    assert any(not (start[k] == trained[k]).all() for k in start)
    model = load_causal_lm(out)  # reloads as a causal LM from safetensors, with the tokenizer next to it
    assert model.config.use_cache and (out / "tokenizer.json").is_file() and (out / "chat_template.jinja").is_file()
    pairs = [json.loads(line) for line in (out / "dpo_pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == 10 and all(set(p) == {"prompt", "chosen", "rejected"} for p in pairs)
    log = json.loads((out / "training_log.json").read_text())
    assert log["round"] == "round-001" and log["started_from"]["input"] == "policy" and log["history"]
    md = result.metadata
    assert md["round"] == "round-001" and md["started_from"]["input"] == "policy"
    for key in ("loss_curve", "margins_curve", "score_distribution"):
        assert md[key].text.startswith("![")
    assert md["samples"].rows and md["heldout_samples"].rows
    assert SPEC.checks[0].check(c, SPEC.config.model_validate(TINY)).passed


def test_round_two_starts_from_the_previous_round(round_one, arithmetic, tiny_policy, reward_model, tmp_path):
    import torch

    _, previous = round_one
    # A learning rate too small to move the weights: the output equals the round's starting weights.
    config = {**TINY, "lr": 1e-12, "max_steps": 2}
    inputs = _inputs(arithmetic, tiny_policy, reward_model)
    result, out = _run(tmp_path, "r2", config, inputs, "round-002", previous=artifact_from_dir("model", previous))
    prev, policy, trained = _weights(previous), _weights(tiny_policy), _weights(out)
    assert all(torch.allclose(trained[k], prev[k], atol=1e-6) for k in prev)
    assert any(not torch.allclose(trained[k], policy[k], atol=1e-4) for k in policy)
    # The reference is the same starting point: DPO's first loss is exactly ln 2 only when policy == reference.
    assert result.counts["first_loss"] == pytest.approx(math.log(2), abs=1e-3)
    assert result.counts["round"] == 2
    assert result.metadata["started_from"]["input"] == "previous"
    assert result.metadata["started_from"]["artifact"] == artifact_from_dir("model", previous).id
    # Round 2 samples the next window of the prompt pool.
    first = {json.dumps(p["prompt"]) for p in map(json.loads, (previous / "dpo_pairs.jsonl").read_text().splitlines())}
    second = {json.dumps(p["prompt"]) for p in map(json.loads, (out / "dpo_pairs.jsonl").read_text().splitlines())}
    assert first.isdisjoint(second)


def test_heldout_check_fails_beyond_the_tolerance():
    config = SPEC.config.model_validate({"max_accuracy_drop": 0.02})
    check = SPEC.checks[0].check
    assert heldout_accuracy_check is check
    assert check({"accuracy_before": 0.5, "accuracy_after": 0.49, "accuracy_drop": 0.01}, config).passed
    assert check({"accuracy_before": 0.5, "accuracy_after": 0.48, "accuracy_drop": 0.02}, config).passed
    assert check({"accuracy_before": 0.4, "accuracy_after": 0.6, "accuracy_drop": -0.2}, config).passed
    failed = check({"accuracy_before": 0.5, "accuracy_after": 0.45, "accuracy_drop": 0.05}, config)
    assert not failed.passed and "0.500 → 0.450" in failed.description
    no_eval = check({"pairs": 3}, config)
    assert no_eval.passed and "no held-out eval set" in no_eval.description


def test_round_prompt_windows():
    assert round_prompts(5, None, 3, 0) == [0, 1, 2, 3, 4]
    assert round_prompts(5, 8, 1, 0) == [0, 1, 2, 3, 4]
    windows = [set(round_prompts(12, 4, r, seed=1)) for r in (1, 2, 3, 4)]
    assert all(len(w) == 4 for w in windows)
    assert set().union(*windows[:3]) == set(range(12))  # three rounds cover the pool once
    assert windows[3] == windows[0]  # then it wraps around
    assert round_prompts(12, 4, 2, seed=1) == round_prompts(12, 4, 2, seed=1) != round_prompts(12, 4, 2, seed=2)


def test_no_pairs_and_missing_reward_model_fail_clearly(arithmetic, tiny_policy, reward_model, tmp_path):
    with pytest.raises(DPOStageError, match="needs the reward_model input"):
        _run(tmp_path, "a", TINY, _inputs(arithmetic, tiny_policy))
    tiny = {
        **TINY,
        "prompts_per_round": 3,
        "samples_per_prompt": 2,
        "max_new_tokens": 8,
        "eval_file": None,
        "min_score_gap": 100.0,
    }
    with pytest.raises(DPOStageError, match=r"only 0 preference pairs from 3 prompts × 2 samples.*nothing to train"):
        _run(tmp_path, "b", tiny, _inputs(arithmetic, tiny_policy, reward_model))
    with pytest.raises(DPOStageError, match="eval_file 'missing.jsonl' not found"):
        _run(tmp_path, "c", {**tiny, "eval_file": "missing.jsonl"}, _inputs(arithmetic, tiny_policy, reward_model))


def test_training_defaults_are_the_stages_own():
    c = SPEC.config()
    assert (c.lr, c.lr_scheduler, c.warmup_ratio, c.warmup_steps, c.weight_decay) == (5e-6, "linear", 0.0, 0, 0.0)
    assert (c.epochs, c.max_steps, c.batch_size, c.gradient_accumulation_steps, c.bf16) == (1.0, None, 8, 1, True)
