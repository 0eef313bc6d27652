"""Bring your own model through the real CLI: two published-style checkpoints — a Llama-3.2-style folder stored
sharded in bf16 and a Qwen2 folder with its shipped ChatML template (tiny random weights, tests/support/hf_models.py)
— each go sft → rejection_sampling → reward_model → dpo (2 rounds) with ``gristmill run``, then one eval_accuracy
over both chains. Every trained output reloads with the standard ``Auto*`` class from the store, generates, and keeps
its architecture (and the Llama chain its bf16 weights and Llama-3 RoPE). The pipeline has the shape of the documented
example docs/examples/byo_model.yaml (two chains, tiny sizes); that file itself is checked to be a valid pipeline.

Random tiny models never answer an arithmetic problem correctly, so the verifier alone would score every sample 0
and give no preference pairs: ``rejection_sampling`` also asks an off-the-shelf reward model brought as a source
(``judge``: an untrained score head on the Qwen2 backbone; ``scorer: both``, so it breaks the verifier's ties), and
``dpo`` scores with the chain's own trained reward model.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from gristmill.engine.store import ArtifactStore
from tests.support.hf_models import CHATML, make_model_folder, reload_and_generate, stored_dtypes

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "byo_model.yaml"
CHAINS = {"llama": "llama", "qwen": "qwen2"}  # chain prefix → model_type it must keep
TRAIN = {"max_steps": 2, "batch_size": 2, "lr": 1.0e-3, "min_loss_drop": 0.0}
SAMPLE = {"max_new_tokens": 6, "samples_per_prompt": 3}


def _chain(name: str) -> dict[str, Any]:
    """The four stages of one model's chain, at test sizes."""
    return {
        f"{name}_sft": {
            "stage": "sft",
            "inputs": {"model": f"{name}_base", "dataset": "tasks"},
            "config": {**TRAIN, "max_examples": 8, "eval_examples": 4, "max_new_tokens": 6},
        },
        f"{name}_rejection": {
            "stage": "rejection_sampling",
            "inputs": {"model": f"{name}_sft", "prompts": "tasks", "reward_model": "judge"},
            "config": {**SAMPLE, "max_prompts": 4, "batch_size": 12, "scorer": "both"},
        },
        f"{name}_reward": {
            "stage": "reward_model",
            "inputs": {"model": f"{name}_sft", "preferences": f"{name}_rejection"},
            "config": {**TRAIN, "heldout_fraction": 0.25, "eval_batch_size": 4, "min_pair_accuracy": 0.0},
        },
        f"{name}_dpo": {
            "stage": "dpo",
            "inputs": {"policy": f"{name}_sft", "prompts": "tasks", "reward_model": f"{name}_reward"},
            "partitions": "rounds",
            "config": {
                **TRAIN,
                **SAMPLE,
                "scorer": "reward_model",
                "prompts_per_round": 4,
                "generation_batch_size": 12,
                "eval_examples": 4,
                "max_accuracy_drop": 1.0,
            },
        },
    }


def _judge(base: Path, out: Path) -> Path:
    """A reward-model folder (Qwen2ForSequenceClassification, one label, untrained head) with its tokenizer."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from gristmill.lib.models import copy_tokenizer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(str(base), num_labels=1)
    model.save_pretrained(str(out))
    copy_tokenizer(base, out)
    return out


def _pipeline(tmp_path: Path) -> Path:
    """docs/examples/byo_model.yaml's shape, two chains at tiny sizes, written into ``tmp_path``."""
    llama = make_model_folder("llama3", tmp_path / "models" / "llama", dtype="bfloat16", max_shard_size="60KB")
    assert (llama / "model.safetensors.index.json").is_file() and len(list(llama.glob("model-*.safetensors"))) > 1
    qwen = make_model_folder("qwen2", tmp_path / "models" / "qwen")
    judge = _judge(qwen, tmp_path / "models" / "judge")
    stages: dict[str, Any] = {
        "tasks": {"stage": "arithmetic_tasks", "config": {"sft_examples": 16, "prompts": 12, "eval_examples": 4}}
    }
    for name in CHAINS:
        stages.update(_chain(name))
    stages["eval"] = {
        "stage": "eval_accuracy",
        "inputs": {"models": [f"{n}_{s}" for n in CHAINS for s in ("sft", "dpo")], "tasks": "tasks"},
        "config": {"max_examples": 4, "max_new_tokens": 6},
    }
    pipeline = {
        "name": "byo_model",
        "store": "./.gristmill",
        "seed": 0,
        "sources": {
            "llama_base": {"kind": "model", "path": str(llama)},
            "qwen_base": {"kind": "model", "path": str(qwen)},
            "judge": {"kind": "model", "path": str(judge)},
        },
        "stages": stages,
        "rounds": {"initial": 2},
    }
    path = tmp_path / "byo_model.yaml"
    path.write_text(yaml.safe_dump(pipeline, sort_keys=False), encoding="utf-8")
    return path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    offline = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY", "TRANSFORMERS_OFFLINE")
    return {**env, **dict.fromkeys(offline, "1"), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def test_the_documented_example_is_a_valid_pipeline():
    from gristmill.pipeline.config import load_pipeline

    pipeline = load_pipeline(EXAMPLE)
    text = EXAMPLE.read_text(encoding="utf-8")
    assert all(option in text for option in ("dtype:", "chat_template:", "peft: {r: 16, alpha: 32}"))
    assert {"sft", "rejection", "reward", "dpo", "eval"} <= set(pipeline.stages), sorted(pipeline.stages)


def test_two_published_checkpoints_through_every_post_training_stage_with_gristmill_run(tmp_path):
    pipeline = _pipeline(tmp_path)
    store = tmp_path / "store"
    proc = subprocess.run(
        [str(BIN / "gristmill"), "run", str(pipeline), "--store", str(store)],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr

    artifacts = ArtifactStore(store, clean=False, pipeline="byo_model")
    for name, model_type in CHAINS.items():
        assert artifacts.partitions(f"{name}_dpo") == ["round-001", "round-002"]
        policies = [artifacts.latest(f"{name}_sft")] + [
            artifacts.latest(f"{name}_dpo", key) for key in ("round-001", "round-002")
        ]
        for art in policies:
            assert art is not None
            config, _ = reload_and_generate(art.path)
            assert config.model_type == model_type, art.path
            if name == "llama":  # bf16 in, bf16 out (never silently widened to fp32); Llama-3 RoPE kept
                assert stored_dtypes(art.path) == {"BF16"}, art.path
                assert config.rope_parameters["rope_type"] == "llama3", art.path
        reward = artifacts.latest(f"{name}_reward")
        assert reward is not None
        config, score_shape = reload_and_generate(reward.path, classifier=True)
        assert config.model_type == model_type and score_shape == "(1, 1)"
        if name == "llama":
            assert stored_dtypes(reward.path) == {"BF16"}
        round2 = json.loads((artifacts.latest(f"{name}_dpo", "round-002").path / "training_log.json").read_text())
        assert round2["started_from"]["partition"] == "round-001"  # round 2 trained on round 1's policy

    qwen_sft = artifacts.latest("qwen_sft").path
    template = qwen_sft / "chat_template.jinja"
    shipped = (
        template.read_text(encoding="utf-8")
        if template.is_file()
        else json.loads((qwen_sft / "tokenizer_config.json").read_text())["chat_template"]
    )
    assert shipped == CHATML  # the shipped ChatML template, not one gristmill wrote

    report = json.loads((artifacts.latest("eval").path / "report.json").read_text())
    assert [r["model"] for r in report["models"]] == [
        f"{name}_{stage}" for name in CHAINS for stage in ("sft", "dpo[round-001]", "dpo[round-002]")
    ]
