"""Bring your own model: every post-training stage on tiny random checkpoints of the architectures users bring.

Each family (tests/support/hf_models.py: Llama-3 with rope_type llama3 stored sharded in bf16, Qwen2 with ChatML,
Mistral, Gemma-2, Phi-3 with their shipped templates, GPT-NeoX and GPT-2 as base models without a template) goes
sft → reward_model → rejection_sampling → dpo (2 rounds) → eval_accuracy, a few steps each; every output reloads
with the standard ``Auto*`` classes, keeps its architecture and dtype, and generates.
"""

import json
from pathlib import Path

import pytest

from gristmill.testing import artifact_from_dir, run_stage
from gristmill_plugins import dpo, eval_accuracy, rejection_sampling, reward_model, sft
from tests.support.hf_models import FAMILIES, make_model_folder, reload_and_generate, stored_dtypes

TRAIN = {"max_steps": 2, "batch_size": 2, "lr": 1e-3, "bf16": False, "min_loss_drop": 0.0}


@pytest.fixture(scope="module")
def preferences(arithmetic: Path, tmp_path_factory) -> Path:
    """24 arithmetic pairs: the worked solution vs the same with the answer off by one."""
    out = tmp_path_factory.mktemp("prefs")
    rows = [json.loads(line) for line in (arithmetic / "sft.jsonl").read_text().splitlines()[:24]]
    with open(out / "pairs.jsonl", "w") as f:
        for r in rows:
            good = r["messages"][1]["content"]
            bad = good.replace(f"The answer is {r['answer']}", f"The answer is {int(r['answer']) + 1}")
            assert bad != good
            pair = {
                "prompt": r["messages"][:1],
                "chosen": [{"role": "assistant", "content": good}],
                "rejected": [{"role": "assistant", "content": bad}],
            }
            f.write(json.dumps(pair) + "\n")
    return out


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_post_training_stage_runs_on_the_architecture(family, arithmetic, preferences, tmp_path, one_thread):
    sharded_bf16 = family == "llama3"
    base = make_model_folder(
        family, tmp_path / "base", **({"dtype": "bfloat16", "max_shard_size": "60KB"} if sharded_bf16 else {})
    )
    want_dtype = {"BF16"} if sharded_bf16 else {"F32"}
    model_type = json.loads((base / "config.json").read_text())["model_type"]
    tasks = artifact_from_dir("dataset", arithmetic)

    cfg = {**TRAIN, "max_examples": 8, "eval_examples": 4, "max_new_tokens": 6}
    result, tuned = run_stage(
        sft.SPEC, tmp_path / "sft", cfg, {"model": artifact_from_dir("model", base), "dataset": tasks}
    )
    want_format = "plain" if FAMILIES[family]["template"] is None else "prompt_completion"
    assert result.metadata["loss_format"] == want_format and result.counts["steps"] == 2
    assert result.metadata["model_type"] == model_type
    assert stored_dtypes(tuned.path) == want_dtype

    prefs = artifact_from_dir("dataset", preferences)
    cfg = {**TRAIN, "heldout_fraction": 0.25, "eval_batch_size": 4}
    result, rm = run_stage(reward_model.SPEC, tmp_path / "rm", cfg, {"model": tuned, "preferences": prefs})
    rm_config = json.loads((rm.path / "config.json").read_text())
    assert rm_config["model_type"] == model_type and rm_config["architectures"][0].endswith("ForSequenceClassification")
    assert stored_dtypes(rm.path) == want_dtype and result.counts["heldout_pairs"] > 0

    cfg = {"max_prompts": 4, "samples_per_prompt": 2, "max_new_tokens": 6, "batch_size": 8, "scorer": "both"}
    result, ranked = run_stage(
        rejection_sampling.SPEC, tmp_path / "rs", cfg, {"model": tuned, "prompts": tasks, "reward_model": rm}
    )
    assert result.counts["prompts"] == 4

    cfg = {
        **TRAIN,
        "scorer": "reward_model",
        "prompts_per_round": 4,
        "samples_per_prompt": 2,
        "max_new_tokens": 6,
        "eval_examples": 4,
        "max_accuracy_drop": 1.0,
    }
    inputs = {"policy": tuned, "prompts": tasks, "reward_model": rm}
    _, round1 = run_stage(dpo.SPEC, tmp_path / "dpo1", cfg, inputs, round=1)
    result, round2 = run_stage(dpo.SPEC, tmp_path / "dpo2", cfg, inputs, round=2, previous=round1)
    assert result.counts["round"] == 2 and result.counts["steps"] == 2
    assert stored_dtypes(round2.path) == want_dtype
    assert json.loads((round2.path / "config.json").read_text())["model_type"] == model_type

    result, _ = run_stage(
        eval_accuracy.SPEC,
        tmp_path / "eval",
        {"max_examples": 4, "max_new_tokens": 6},
        {"models": [tuned, round2], "tasks": tasks},
    )
    assert result.counts["models"] == 2
    for folder in (tuned.path, round2.path):
        reload_and_generate(folder)  # asserts that new tokens come out
    assert reload_and_generate(rm.path, classifier=True)[1] == "(1, 1)"


def test_lora_sft_as_an_adapter_folder_then_lora_dpo_on_it(arithmetic, tmp_path, one_thread):
    """peft on sft with merge: false writes an adapter folder on the base artifact; dpo loads base + adapter,
    trains its own LoRA without a reference copy and saves a merged, plain model."""
    from gristmill.lib.models import inspect_model_folder, load_causal_lm

    base = make_model_folder("qwen2", tmp_path / "base")
    tasks = artifact_from_dir("dataset", arithmetic)
    lora = {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"], "merge": False}
    cfg = {**TRAIN, "max_examples": 8, "eval_examples": 4, "max_new_tokens": 6, "peft": lora}
    result, adapter = run_stage(
        sft.SPEC, tmp_path / "sft", cfg, {"model": artifact_from_dir("model", base), "dataset": tasks}
    )
    c = result.counts
    assert 0 < c["trainable_params"] < c["total_params"] / 10 and c["peak_memory_mb"] > 0
    names = {p.name for p in adapter.path.iterdir()}
    assert {
        "adapter_config.json",
        "adapter_model.safetensors",
        "tokenizer.json",
    } <= names and "config.json" not in names
    assert inspect_model_folder(adapter.path).adapter["base_model_name_or_path"] == str(base.resolve())
    assert load_causal_lm(adapter.path).config.model_type == "qwen2"  # base + adapter, merged on load

    cfg = {
        **TRAIN,
        "scorer": "reward_model",
        "prompts_per_round": 4,
        "samples_per_prompt": 4,
        "max_new_tokens": 6,
        "eval_examples": 4,
        "max_accuracy_drop": 1.0,
        "peft": {"r": 4},
        "min_pairs": 1,
    }
    inputs = {"policy": adapter, "prompts": tasks}
    result, merged = run_stage(
        dpo.SPEC,
        tmp_path / "dpo",
        cfg,
        {**inputs, "reward_model": _rm(tmp_path, base, arithmetic)},
    )
    assert 0 < result.counts["trainable_params"] < result.counts["total_params"]
    assert (merged.path / "model.safetensors").is_file() and not (merged.path / "adapter_config.json").exists()
    reload_and_generate(merged.path)


def _rm(tmp_path: Path, base: Path, arithmetic: Path):
    """An untrained reward model on ``base`` (a fresh score head): enough to give samples different scores."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from gristmill.lib.models import copy_tokenizer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(str(base), num_labels=1)
    model.save_pretrained(str(tmp_path / "rm"))
    copy_tokenizer(base, tmp_path / "rm")
    return artifact_from_dir("model", tmp_path / "rm")
