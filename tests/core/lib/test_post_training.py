"""Pure parts of gristmill.lib.post_training: preference pairs (verified-only) and hh-rlhf transcripts."""

import json

import pytest

from gristmill.lib.post_training import DatasetError, ScoredSamples, load_preferences, preference_pairs

ROWS = [{"prompt": [{"role": "user", "content": f"q{i}"}], "answer": "1"} for i in range(3)]


def test_verified_only_pairs_need_a_correct_chosen_and_a_wrong_rejected():
    samples = [["a", "b", "c"], ["d", "e", "f"], ["g", "h", "i"]]
    # "both" scores: correct + sigmoid(reward). Prompt 0: one right; prompt 1: none right; prompt 2: all right.
    scores = [[1.7, 0.2, 0.6], [0.9, 0.1, 0.5], [1.9, 1.2, 1.5]]
    correct = [[True, False, False], [False, False, False], [True, True, True]]
    scored = ScoredSamples(samples, scores, correct, None, 1.0)
    every = preference_pairs(ROWS, scored)
    assert [(p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in every] == [
        ("a", "b"),
        ("d", "e"),
        ("g", "h"),
    ]
    verified = preference_pairs(ROWS, scored, verified_only=True)
    assert [(p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in verified] == [("a", "b")]


def test_hh_transcripts_split_at_the_first_difference(tmp_path):
    path = tmp_path / "hh.jsonl"
    same = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: help?"
    rows = [
        {"chosen": same + "\n\nAssistant: sure", "rejected": same + "\n\nAssistant: no"},
        {
            "chosen": "\n\nHuman: hi\n\nAssistant: A\n\nHuman: x\n\nAssistant: y",
            "rejected": "\n\nHuman: hi\n\nAssistant: B\n\nHuman: x\n\nAssistant: z",
        },
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    first, second = load_preferences(path)
    assert [m["content"] for m in first["prompt"]] == ["hi", "hello", "help?"]
    assert first["chosen"] == [{"role": "assistant", "content": "sure"}]
    assert second["prompt"] == [{"role": "user", "content": "hi"}]
    assert [m["content"] for m in second["chosen"]] == ["A", "x", "y"]
    path.write_text('{"chosen": "no transcript", "rejected": "x"}\n')
    with pytest.raises(DatasetError, match=r"hh.jsonl:1: not a"):
        load_preferences(path)
