"""Pure parts of gristmill.lib.post_training: preference pairs (verified-only), hh-rlhf transcripts, the shared
training options and the TrainingArguments they map to."""

import json
import logging

import pytest
from pydantic import ValidationError

from gristmill.lib.post_training import (
    DatasetError,
    ScoredSamples,
    TrainingConfig,
    load_preferences,
    preference_pairs,
    training_args,
)
from gristmill.stage import StageContext

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


def test_training_args_map_the_shared_options(tmp_path):
    ctx = StageContext(instance="t", output_dir=tmp_path, work_dir=tmp_path, log=logging.getLogger("t"), seed=7)
    config = TrainingConfig(lr=1e-3, max_steps=5, batch_size=2, gradient_accumulation_steps=3, warmup_steps=2)
    args = training_args(ctx, config, logging_steps=1, max_length=64)
    assert {k: args[k] for k in ("learning_rate", "max_steps", "per_device_train_batch_size", "warmup_steps")} == {
        "learning_rate": 1e-3,
        "max_steps": 5,
        "per_device_train_batch_size": 2,
        "warmup_steps": 2,
    }
    assert args["gradient_accumulation_steps"] == 3 and args["lr_scheduler_type"] == "cosine"
    assert args["activation_checkpointing"] is False and args["logging_first_step"] is True
    assert args["logging_steps"] == 1 and args["max_length"] == 64 and args["seed"] == args["data_seed"] == 7
    assert args["output_dir"] == str(tmp_path / "trainer") and args["save_strategy"] == "no"
    defaults = training_args(ctx, TrainingConfig())
    assert defaults["max_steps"] == -1 and defaults["num_train_epochs"] == 1.0 and defaults["warmup_steps"] == 0
    assert training_args(ctx, TrainingConfig(warmup_ratio=0.1))["warmup_steps"] == 0.1  # transformers 5: a ratio
    with pytest.raises(ValidationError, match="set warmup_ratio or warmup_steps, not both"):
        TrainingConfig(warmup_ratio=0.1, warmup_steps=3)
    with pytest.raises(ValidationError) as info:
        TrainingConfig.model_validate({"grad_accum": 2})
    assert [(e["loc"], e["msg"]) for e in info.value.errors()] == [
        (("grad_accum",), "'grad_accum' was renamed 'gradient_accumulation_steps'")
    ]
