"""rejection_sampling on the tiny policy: K samples per prompt, best-of-K, pairs, pass@k, reward model, determinism."""

import hashlib
import itertools
import json
import math
from pathlib import Path

import pytest

from gristmill.lib.post_training import (
    DatasetError,
    ScoredSamples,
    best_and_worst,
    pass_at_k,
    pass_at_k_ks,
    preference_pairs,
)
from gristmill.lib.verify import is_correct
from gristmill.testing import artifact_from_dir, run_stage
from gristmill_plugins.rejection_sampling import SPEC, RejectionSamplingError

K = 4
SMALL = {"max_prompts": 6, "samples_per_prompt": K, "max_new_tokens": 24, "batch_size": 16}


pytestmark = pytest.mark.usefixtures("one_thread")


def _inputs(arithmetic: Path, tiny_policy: Path, rm: Path | None = None) -> dict:
    inputs = {"model": artifact_from_dir("model", tiny_policy), "prompts": artifact_from_dir("dataset", arithmetic)}
    if rm is not None:
        inputs["reward_model"] = artifact_from_dir("model", rm)
    return inputs


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_k_samples_best_of_k_and_pairs_with_verifier_and_reward_model(arithmetic, tiny_policy, reward_model, tmp_path):
    config = {**SMALL, "scorer": "both", "keep_only_correct": False}
    result, art = run_stage(SPEC, tmp_path / "out", config, _inputs(arithmetic, tiny_policy, reward_model))
    ranked = _rows(art.path / "ranked.jsonl")
    prompts = _rows(arithmetic / "prompts.jsonl")[:6]
    assert [r["prompt"] for r in ranked] == [p["prompt"] for p in prompts]
    for row in ranked:
        assert len(row["responses"]) == len(row["scores"]) == len(row["correct"]) == len(row["rewards"]) == K
        assert row["scores"] == sorted(row["scores"], reverse=True)  # ranked: best first
        for response, score, ok, reward in zip(
            row["responses"], row["scores"], row["correct"], row["rewards"], strict=True
        ):
            assert ok == is_correct(response, row["answer"])
            assert score == pytest.approx(float(ok) + 1 / (1 + math.exp(-reward)))  # verifier first, RM breaks ties
    by_prompt = {json.dumps(r["prompt"]): r for r in ranked}

    sft = _rows(art.path / "sft.jsonl")
    assert len(sft) == 6 == result.counts["sft_rows"]  # keep_only_correct off: one best-of-K row per prompt
    for row in sft:
        ranked_row = by_prompt[json.dumps(row["messages"][:-1])]
        assert row["messages"][-1]["role"] == "assistant"
        best = row["messages"][-1]["content"]
        top = max(ranked_row["scores"])
        assert any(r == best and s == top for r, s in zip(ranked_row["responses"], ranked_row["scores"], strict=True))
        assert row["answer"] == ranked_row["answer"]

    pairs = _rows(art.path / "pairs.jsonl")
    assert pairs and len(pairs) == result.counts["pairs"]
    for pair in pairs:
        ranked_row = by_prompt[json.dumps(pair["prompt"])]
        score = dict(zip(ranked_row["responses"], ranked_row["scores"], strict=True))
        assert [m["role"] for m in pair["chosen"] + pair["rejected"]] == ["assistant", "assistant"]
        assert score[pair["chosen"][0]["content"]] > score[pair["rejected"][0]["content"]]
        assert score[pair["chosen"][0]["content"]] == max(ranked_row["scores"])
        assert score[pair["rejected"][0]["content"]] == min(ranked_row["scores"])

    assert (art.path / "eval.jsonl").read_bytes() == (arithmetic / "eval.jsonl").read_bytes()
    c = result.counts
    assert c["prompts"] == 6 and c["samples"] == 6 * K and c["samples_per_second"] > 0
    correct = [row["correct"] for row in ranked]
    assert c["pass_at_1"] == pytest.approx(sum(sum(x) / K for x in correct) / 6, abs=1e-4)
    assert c["pass_at_k"] == pytest.approx(sum(any(x) for x in correct) / 6, abs=1e-4)
    assert math.isfinite(c["mean_reward"])
    assert [r["k"] for r in result.metadata["pass_at_k"].rows] == [1, 2, 4]
    assert result.metadata["score_distribution"].text.startswith("![scores (both)](data:image/png;base64,")
    assert {"prompt", "best", "worst", "best_score", "worst_score", "scores"} <= set(result.metadata["samples"].rows[0])


def test_verifier_scorer_is_deterministic_and_keeps_only_correct(arithmetic, tiny_policy, tmp_path):
    inputs = _inputs(arithmetic, tiny_policy)
    config = {**SMALL, "max_prompts": 4, "temperature": 0.8, "seed": 3}
    first, a = run_stage(SPEC, tmp_path / "a", config, inputs)
    _, b = run_stage(SPEC, tmp_path / "b", config, inputs)
    _, c = run_stage(SPEC, tmp_path / "c", {**config, "seed": 4}, inputs)
    assert _hashes(a.path) == _hashes(b.path)
    assert _hashes(a.path)["ranked.jsonl"] != _hashes(c.path)["ranked.jsonl"]
    ranked = _rows(a.path / "ranked.jsonl")
    for row in ranked:
        assert len(row["responses"]) == K and "rewards" not in row
        assert row["scores"] == [float(is_correct(r, row["answer"])) for r in row["responses"]]
    for row in _rows(a.path / "sft.jsonl"):  # only verified-correct best samples become SFT data
        assert is_correct(row["messages"][-1]["content"], row["answer"])
    assert first.counts["sft_rows"] == sum(any(r["correct"]) for r in ranked)
    for pair in _rows(a.path / "pairs.jsonl"):
        answer = next(r["answer"] for r in ranked if r["prompt"] == pair["prompt"])
        assert is_correct(pair["chosen"][0]["content"], answer)
        assert not is_correct(pair["rejected"][0]["content"], answer)
    assert "mean_reward" not in first.counts


def test_reward_model_scorer_needs_no_answers(tiny_policy, reward_model, tmp_path):
    data = tmp_path / "prompts"
    data.mkdir()
    questions = [
        "What is 2 plus 3?",
        "Sam has 4 apples and buys 5 more. How many apples does Sam have?",
        "What is 7 minus 2?",
    ]
    (data / "prompts.jsonl").write_text(
        "".join(json.dumps({"prompt": [{"role": "user", "content": q}]}) + "\n" for q in questions)
    )
    inputs = {
        "model": artifact_from_dir("model", tiny_policy),
        "prompts": artifact_from_dir("dataset", data),
        "reward_model": artifact_from_dir("model", reward_model),
    }
    result, art = run_stage(SPEC, tmp_path / "out", {**SMALL, "scorer": "reward_model"}, inputs)
    ranked = _rows(art.path / "ranked.jsonl")
    assert len(ranked) == 3 and all(len(r["responses"]) == K for r in ranked)
    for row in ranked:
        assert row["scores"] == row["rewards"] and "correct" not in row and row["answer"] is None
        assert len(set(row["scores"])) > 1  # a real forward pass per sample, not a constant
    assert len(_rows(art.path / "sft.jsonl")) == 3  # no verifier: best-of-K kept without verification
    assert result.counts["pairs"] == 3 and "pass_at_1" not in result.counts
    assert not (art.path / "eval.jsonl").exists()


def test_bad_inputs_fail_clearly(arithmetic, tiny_policy, tmp_path):
    data = tmp_path / "prompts"
    data.mkdir()
    rows = [
        {"prompt": [{"role": "user", "content": "What is 1 plus 1?"}], "answer": "2"},
        {"prompt": [{"role": "user", "content": "What is 2 plus 2?"}]},
    ]
    (data / "prompts.jsonl").write_text(json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]) + "\n")
    inputs = {"model": artifact_from_dir("model", tiny_policy), "prompts": artifact_from_dir("dataset", data)}
    with pytest.raises(DatasetError, match=r"prompts\.jsonl:3: the prompt has no 'answer'"):
        run_stage(SPEC, tmp_path / "out", SMALL, inputs)
    with pytest.raises(RejectionSamplingError, match="needs the reward_model input"):
        run_stage(SPEC, tmp_path / "out2", {**SMALL, "scorer": "reward_model"}, _inputs(arithmetic, tiny_policy))
    with pytest.raises(ValueError, match="samples_per_prompt"):
        run_stage(SPEC, tmp_path / "out3", {**SMALL, "samples_per_prompt": 1}, _inputs(arithmetic, tiny_policy))


def test_pass_at_k_estimator_is_exact():
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert pass_at_k(4, 2, 2) == pytest.approx(5 / 6)  # 1 - C(2,2)/C(4,2)
    assert pass_at_k(5, 2, 3) == pytest.approx(0.9)  # 1 - C(3,3)/C(5,3)
    assert pass_at_k(8, 0, 8) == 0.0 and pass_at_k(8, 8, 1) == 1.0 and pass_at_k(8, 1, 8) == 1.0
    for n in range(1, 7):  # equals the fraction of size-k subsets holding a correct sample
        for c in range(n + 1):
            for k in range(1, n + 1):
                subsets = list(itertools.combinations([True] * c + [False] * (n - c), k))
                assert pass_at_k(n, c, k) == pytest.approx(sum(any(s) for s in subsets) / len(subsets))
    assert pass_at_k_ks(8) == [1, 2, 4, 8] and pass_at_k_ks(6) == [1, 2, 4, 6] and pass_at_k_ks(2) == [1, 2]
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    scored = ScoredSamples(
        [["a", "b"], ["c", "d"]], [[1.0, 0.0], [0.0, 0.0]], [[True, False], [False, False]], None, 1.0
    )
    assert scored.pass_at(1) == pytest.approx(0.25) and scored.pass_at(2) == pytest.approx(0.5)
    assert scored.pass_any() == pytest.approx(0.5)


def test_pairs_take_best_and_worst_and_respect_the_gap():
    prompt = [{"role": "user", "content": "q"}]
    rows = [{"prompt": prompt, "answer": "1"}] * 3
    scored = ScoredSamples(
        [["w", "b", "m"], ["x", "y", "z"], ["p", "q", "r"]],
        [[0.1, 0.9, 0.5], [0.3, 0.3, 0.3], [0.5, 0.4, 0.45]],
        None,
        None,
        1.0,
    )
    assert best_and_worst([0.1, 0.9, 0.5]) == (1, 0)
    assert best_and_worst([0.3, 0.3, 0.3]) == (0, 0)
    pairs = preference_pairs(rows, scored)
    assert [(p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in pairs] == [("b", "w"), ("p", "q")]
    assert pairs[0]["prompt"] == prompt
    assert len(preference_pairs(rows, scored, min_score_gap=0.5)) == 1  # 0.8 gap kept, 0.1 gap dropped
