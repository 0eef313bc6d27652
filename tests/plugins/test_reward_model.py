"""reward_model stage: ranked-list expansion, prompt split, a real TRL RewardTrainer run on the demo's arithmetic
preferences (learns to prefer the right final answer) and on real hh-rlhf pairs."""

import json
import random
import re
from pathlib import Path

import pytest

from gristmill.lib.post_training import DatasetError, load_reward_model, reward_scores
from gristmill.lib.train.export import ModelArtifactError
from gristmill.testing import artifact_from_dir, run_stage
from gristmill_plugins.reward_model import (
    SPEC,
    RewardModelConfig,
    RewardModelInputError,
    expand_ranked,
    split_by_prompt,
)

USER = [{"role": "user", "content": "Which is best?"}]


def _reply(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def test_expand_ranked_gives_every_ordered_pair():
    row = {"prompt": USER, "responses": ["a", "b", _reply("c"), "d"], "scores": [0.5, 2.0, 1.0, -1.0]}
    pairs = expand_ranked(row)
    assert len(pairs) == 6
    score = dict(zip("abcd", row["scores"], strict=True))
    for p in pairs:
        assert p["prompt"] == USER
        assert score[p["chosen"][0]["content"]] > score[p["rejected"][0]["content"]]
    assert [(p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in pairs] == [
        ("b", "a"),
        ("c", "a"),
        ("a", "d"),
        ("b", "c"),
        ("b", "d"),
        ("c", "d"),
    ]
    # message lists pass through, strings become one assistant turn
    assert pairs[1]["chosen"] == _reply("c") and pairs[0]["rejected"] == _reply("a")

    tie = expand_ranked({**row, "scores": [1.0, 2.0, 1.0, 0.0]})  # a and c tie: no pair between them
    assert len(tie) == 5
    assert ("a", "c") not in {(p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in tie}
    assert ("c", "a") not in {(p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in tie}
    assert expand_ranked({"prompt": USER, "responses": ["x", "y"], "scores": [3, 3]}) == []

    with pytest.raises(DatasetError, match=r"ranked\.jsonl:7: 'responses' and 'scores' must be lists of the same"):
        expand_ranked({"prompt": USER, "responses": ["a"], "scores": [1, 2]}, "ranked.jsonl:7")
    with pytest.raises(DatasetError, match=r"scores\[1\] must be a finite number"):
        expand_ranked({"prompt": USER, "responses": ["a", "b"], "scores": [1, float("nan")]})
    with pytest.raises(DatasetError, match=r"responses\[0\] must end with an assistant message"):
        expand_ranked({"prompt": USER, "responses": [USER, "b"], "scores": [1, 2]})


def test_split_by_prompt_keeps_each_prompt_on_one_side():
    pairs = [
        {"prompt": [{"role": "user", "content": f"q{i % 10}"}], "chosen": _reply(f"c{i}"), "rejected": _reply(f"r{i}")}
        for i in range(40)
    ]
    train, held = split_by_prompt(pairs, 0.2, seed=3)
    assert len(held) == 8 and len(train) == 32
    assert not {p["prompt"][0]["content"] for p in train} & {p["prompt"][0]["content"] for p in held}
    assert split_by_prompt(pairs, 0.2, seed=3) == (train, held)
    assert split_by_prompt(pairs, 0.2, seed=4) != (train, held)
    assert split_by_prompt(pairs, 0.0, seed=3) == (pairs, [])


def _wrong(solution: str, answer: str, rng: random.Random) -> str:
    """The same worked solution with its final answer changed to N + k."""
    bad = re.sub(r"The answer is -?\d+\.", f"The answer is {int(answer) + rng.randint(7, 40)}.", solution)
    assert bad != solution
    return bad


@pytest.fixture(scope="module")
def arithmetic_preferences(arithmetic: Path, tmp_path_factory) -> Path:
    """224 pairs (chosen: the worked solution; rejected: the same with a wrong final answer) + 8 ranked lists
    (the solution scored 1, two wrong answers scored 0 → 2 pairs each, the tie gives none): 240 pairs."""
    rng = random.Random(0)
    rows = [json.loads(line) for line in (arithmetic / "sft.jsonl").read_text().splitlines()[:232]]
    out = tmp_path_factory.mktemp("arith_prefs")
    with open(out / "pairs.jsonl", "w") as f:
        for r in rows[:224]:
            prompt, solution = r["messages"][:1], r["messages"][1]["content"]
            f.write(
                json.dumps(
                    {
                        "prompt": prompt,
                        "chosen": _reply(solution),
                        "rejected": _reply(_wrong(solution, r["answer"], rng)),
                    }
                )
                + "\n"
            )
    with open(out / "ranked.jsonl", "w") as f:
        for r in rows[224:]:
            solution = r["messages"][1]["content"]
            wrong = [_wrong(solution, r["answer"], rng) for _ in range(2)]
            f.write(
                json.dumps(
                    {"prompt": r["messages"][:1], "responses": [wrong[0], solution, wrong[1]], "scores": [0, 1, 0]}
                )
                + "\n"
            )
    return out


ARITH = {"max_steps": 40, "lr": 3e-3, "batch_size": 16, "heldout_fraction": 0.25}


def test_reward_model_learns_the_right_answer_on_arithmetic(arithmetic_preferences, tiny_policy, tmp_path):
    from transformers import AutoModelForSequenceClassification

    inputs = {
        "model": artifact_from_dir("model", tiny_policy),
        "preferences": artifact_from_dir("dataset", arithmetic_preferences),
    }
    import torch

    # The score head is initialised from torch's global RNG when the model loads, before the trainer seeds: pin it,
    # or the result depends on which tests ran before (known gap, see the issue-15 note).
    torch.manual_seed(0)
    result, art = run_stage(SPEC, tmp_path / "rm", ARITH, inputs)
    c = result.counts
    assert c["pairs"] == 240 and c["ranked_lists"] == 8 and c["dropped_too_long"] == 0
    assert c["train_pairs"] + c["heldout_pairs"] == 240 and 50 <= c["heldout_pairs"] <= 70
    assert c["steps"] == 40 and c["final_loss"] < c["first_loss"]
    assert c["heldout_accuracy"] > 0.6 and c["heldout_margin"] > 0, c
    assert SPEC.checks[0].check(c, RewardModelConfig.model_validate(ARITH)).passed
    assert not SPEC.checks[0].check(c, RewardModelConfig.model_validate({**ARITH, "min_pair_accuracy": 0.99})).passed
    assert result.metadata["margin_histogram"].text.startswith("![held-out reward margins](data:image/png;base64,")
    assert result.metadata["loss_curve"].text.startswith("![reward model loss curve](data:image/png;base64,")
    table = result.metadata["heldout_pairs"].rows
    assert table and {"prompt", "chosen", "rejected", "reward_chosen", "reward_rejected"} <= set(table[0])

    config = json.loads((art.path / "config.json").read_text())
    assert config["architectures"] == ["LlamaForSequenceClassification"] and len(config["id2label"]) == 1
    assert config["pad_token_id"] is not None and (art.path / "tokenizer.json").is_file()
    assert AutoModelForSequenceClassification.from_pretrained(str(art.path), local_files_only=True).num_labels == 1

    # reward_scores on the reloaded folder: the chosen reply outranks the rejected one for most pairs, and on the
    # held-out prompts it reproduces the stage's own accuracy
    model, tok = load_reward_model(art)
    pairs = [json.loads(line) for line in (arithmetic_preferences / "pairs.jsonl").read_text().splitlines()]
    chosen = reward_scores(model, tok, [p["prompt"] + p["chosen"] for p in pairs], batch_size=32)
    rejected = reward_scores(model, tok, [p["prompt"] + p["rejected"] for p in pairs], batch_size=32)
    assert sum(c > r for c, r in zip(chosen, rejected, strict=True)) / len(pairs) > 0.6
    assert reward_scores(model, tok, [pairs[0]["prompt"] + pairs[0]["chosen"]], batch_size=1) == pytest.approx(
        chosen[:1], abs=1e-4
    )  # padding in a batch does not change a score


def test_hh_rlhf_pairs_from_shared_data(shared_data, tiny_policy, tmp_path):
    """Real hh-rlhf transcripts (the first 300, as a single-file source): many are longer than the tiny model's
    256 tokens and are dropped (counted); a few steps on the rest give a finite held-out accuracy."""
    source = shared_data / "preference" / "hh_rlhf_harmless_base_test_shared.jsonl"
    hh = tmp_path / "hh" / "hh_first300.jsonl"
    hh.parent.mkdir()
    hh.write_text("".join(source.read_text(encoding="utf-8").splitlines(keepends=True)[:300]), encoding="utf-8")
    inputs = {
        "model": artifact_from_dir("model", tiny_policy),
        "preferences": artifact_from_dir("dataset", hh.parent, [hh]),
    }
    cfg = {"max_pairs": 120, "max_steps": 4, "batch_size": 4, "lr": 1e-3, "heldout_fraction": 0.25}
    result, art = run_stage(SPEC, tmp_path / "rm", cfg, inputs)
    c = result.counts
    assert c["pairs"] == 120 and c["ranked_lists"] == 0 and c["dropped_too_long"] > 0
    assert c["train_pairs"] + c["heldout_pairs"] + c["dropped_too_long"] == 120 and c["heldout_pairs"] > 0
    assert 0 <= c["heldout_accuracy"] <= 1 and c["steps"] == 4
    assert result.metadata["files"] == [hh.name]
    assert (art.path / "model.safetensors").is_file()


def test_bad_inputs_are_named(tiny_policy, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    pair = {"prompt": USER, "chosen": _reply("yes"), "rejected": _reply("no")}
    (data / "pairs.jsonl").write_text(json.dumps(pair) + "\n")
    (data / "ranked.jsonl").write_text(json.dumps({"prompt": USER, "responses": ["a", "b"], "scores": [1]}) + "\n")
    inputs = {"model": artifact_from_dir("model", tiny_policy), "preferences": artifact_from_dir("dataset", data)}
    with pytest.raises(DatasetError, match=r"ranked\.jsonl:1: 'responses' and 'scores'"):
        run_stage(SPEC, tmp_path / "a", {"max_steps": 1}, inputs)
    (data / "ranked.jsonl").unlink()
    (data / "pairs.jsonl").write_text(json.dumps(pair) + "\n" + json.dumps({"prompt": USER, "chosen": "x"}) + "\n")
    with pytest.raises(DatasetError, match=r"pairs\.jsonl:2: expected 'prompt', 'chosen' and 'rejected'"):
        run_stage(SPEC, tmp_path / "b", {"max_steps": 1}, inputs)
    (data / "pairs.jsonl").write_text(json.dumps(pair) + "\n")
    with pytest.raises(RewardModelInputError, match=r"max_length 4096 exceeds the 256-token context"):
        run_stage(SPEC, tmp_path / "c", {"max_steps": 1, "max_length": 4096}, inputs)
    with pytest.raises(ModelArtifactError, match=r"not a reward model"):
        load_reward_model(artifact_from_dir("model", tiny_policy))  # a causal LM folder


def test_training_defaults_are_the_stages_own():
    c = RewardModelConfig()
    assert (c.lr, c.lr_scheduler, c.warmup_ratio, c.warmup_steps, c.weight_decay) == (1e-4, "linear", 0.0, 0, 0.0)
    assert (c.epochs, c.max_steps, c.batch_size, c.gradient_accumulation_steps, c.bf16) == (1.0, None, 8, 1, True)
