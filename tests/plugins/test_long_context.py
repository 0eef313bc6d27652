"""``long_context`` on a real tiny setup: synthetic reference articles → BPE tokenizer → a model pretrained at 32
tokens → extended to 64 and 128 on retrieval documents; gates, saved config, bad inputs, resume."""

import json
import logging
import shutil
from pathlib import Path

import pytest

from gristmill.lib.tokens import TokenDataset
from gristmill.lib.train import ModelConfig, TrainConfig, train
from gristmill.lib.train.export import save_model_dir
from gristmill.stage import StageContext
from gristmill.testing import artifact_from_dir, run_stage
from gristmill_plugins import tokenizer as tokenizer_stage
from gristmill_plugins import tokens as tokens_stage
from gristmill_plugins.demo_data.reference import REFERENCE_SPEC
from gristmill_plugins.long_context import SPEC, LongContextConfig, LongContextInputError
from gristmill_plugins.retrieval_docs import SPEC as RETRIEVAL_SPEC

ORIGINAL = 32
CONFIG = {
    "steps": [
        {"seq_len": 64, "train_steps": 12, "rope_theta": 40000.0},
        {"seq_len": 128, "train_steps": 12, "rope_scaling": "yarn"},
    ],
    "train": {"batch_size": 8, "lr": 2e-3, "min_lr": 2e-4, "warmup": 2, "checkpoint_every": 6},
    "needle_depths": [0.0, 1.0],
    "needle_trials": 3,
    "needle_digits": 3,
    "short_eval_sequences": 32,
    "min_needle_pass_rate": 0.0,
    "short_ppl_tolerance": 0.25,
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    """Filler articles, a 512-token BPE tokenizer, 32-token pretraining tokens, a pretrained base model and
    128-token retrieval-document tokens."""
    root = tmp_path_factory.mktemp("long_context")
    run_stage(REFERENCE_SPEC, root / "articles", {"documents": 40, "min_words": 150, "max_words": 300})
    articles = artifact_from_dir("documents", root / "articles")
    run_stage(tokenizer_stage.SPEC, root / "tokenizer", {"vocab_size": 512}, {"documents": articles})
    tok = artifact_from_dir("tokenizer", root / "tokenizer")
    run_stage(
        tokens_stage.SPEC,
        root / "short",
        {"seq_len": ORIGINAL, "validation_fraction": 0.1},
        {"documents": articles, "tokenizer": tok},
    )
    run_stage(
        RETRIEVAL_SPEC,
        root / "retrieval",
        {"documents": 300, "lengths": [100, 300], "digits": 3},
        {"documents": articles},
    )
    retrieval = artifact_from_dir("documents", root / "retrieval")
    run_stage(
        tokens_stage.SPEC,
        root / "long",
        {"seq_len": 128, "validation_fraction": 0.05},
        {"documents": retrieval, "tokenizer": tok},
    )
    cfg = ModelConfig(d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=128, vocab_size=512, max_seq_len=ORIGINAL)
    data = TokenDataset(root / "short", "train", shuffle=True)
    train_cfg = TrainConfig(steps=40, batch_size=8, lr=3e-3, warmup=3, checkpoint_every=100)
    result = train(cfg, train_cfg, data, root / "pretrain_run", log_fn=lambda m: None)
    save_model_dir(result.model, root / "model", tokenizer_dir=root / "tokenizer")
    return {"model": root / "model", "long": root / "long", "short": root / "short", "tokenizer": root / "tokenizer"}


def _inputs(setup: dict[str, Path], short: bool = True) -> dict:
    inputs = {"model": artifact_from_dir("model", setup["model"]), "tokens": artifact_from_dir("tokens", setup["long"])}
    if short:
        inputs["short_tokens"] = artifact_from_dir("tokens", setup["short"])
    return inputs


@pytest.fixture(scope="module")
def extended(setup, tmp_path_factory):
    out = tmp_path_factory.mktemp("extended")
    return run_stage(SPEC, out / "model", CONFIG, _inputs(setup))


def test_extends_context_and_rope_in_the_saved_folder(extended):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result, art = extended
    config = json.loads((art.path / "config.json").read_text())
    assert config["max_position_embeddings"] == 128
    rope = config["rope_parameters"]
    assert rope["rope_type"] == "yarn" and rope["factor"] == 128 / ORIGINAL
    assert rope["original_max_position_embeddings"] == ORIGINAL and rope["rope_theta"] == 40000.0
    steps = result.metadata["steps"].rows
    assert [r["seq_len"] for r in steps] == [64, 128]
    assert json.loads(steps[0]["rope"]) == {"rope_type": "default", "rope_theta": 40000.0}
    assert all(r["train_steps"] == 12 for r in steps)
    assert result.metadata["needle_heatmap"].text.startswith("![needle pass rate")
    # a needle takes > 50 tokens with this 512-token vocabulary: only the 128-token context holds a haystack
    assert {(r["seq_len"], r["depth"]) for r in result.metadata["needle_grid"].rows} == {(128, 0.0), (128, 1.0)}
    assert steps[0]["needle_pass_rate"] is None and "needle_pass_rate_64" not in result.counts

    model = AutoModelForCausalLM.from_pretrained(str(art.path), local_files_only=True)
    tok = AutoTokenizer.from_pretrained(str(art.path), local_files_only=True)
    assert model.config.max_position_embeddings == 128
    ids = tok("The pass key of Ada is", return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] == ids.shape[1] + 4


def test_counts_and_gates_pass_on_a_learnable_setup(extended):
    result, _ = extended
    c = result.counts
    assert c["seq_len"] == 128 and c["original_seq_len"] == ORIGINAL and c["needle_chance"] == 0.25
    assert 0 <= c["needle_pass_rate"] <= 1 and c["needle_pass_rate"] == c["needle_pass_rate_128"]
    # continued training on similar text keeps (or improves) the short-context perplexity
    assert c["short_ppl_ratio"] == pytest.approx(c["short_ppl"] / c["short_ppl_before"], rel=1e-3)
    cfg = LongContextConfig.model_validate(CONFIG)
    outcomes = {check.name: check.check(c, cfg) for check in SPEC.checks}
    assert outcomes["short_context_recovery"].passed, outcomes
    assert outcomes["needle_retrieval"].passed  # threshold 0 here; the real gate is measured in the slow test
    strict = LongContextConfig.model_validate({**CONFIG, "min_needle_pass_rate": 1.0, "short_ppl_tolerance": 0.0})
    assert not SPEC.checks[0].check({**c, "needle_pass_rate": 0.9}, strict).passed
    assert not SPEC.checks[1].check({**c, "short_ppl_ratio": 1.01}, strict).passed


def test_a_broken_configuration_fails_the_recovery_gate(setup, tmp_path):
    broken = {
        **CONFIG,
        "train": {**CONFIG["train"], "lr": 1.0, "min_lr": 1.0, "warmup": 0, "spike_factor": None},
        "steps": [{"seq_len": 128, "train_steps": 8, "rope_theta": 1.0}],
    }
    result, _ = run_stage(SPEC, tmp_path / "model", broken, _inputs(setup, short=False))
    c = result.counts
    cfg = LongContextConfig.model_validate(broken)
    assert c["short_ppl_ratio"] > 2, c
    assert not SPEC.checks[1].check(c, cfg).passed


def test_bad_inputs_are_named(setup, tmp_path):
    too_long = {**CONFIG, "steps": [{"seq_len": 256}]}
    with pytest.raises(LongContextInputError, match=r"tokens .*seq_len 128.*steps\[\]\.seq_len 256"):
        run_stage(SPEC, tmp_path / "a", too_long, _inputs(setup))
    broken_model = tmp_path / "broken_model"
    shutil.copytree(setup["model"], broken_model)
    (broken_model / "model.safetensors").unlink()
    inputs = {**_inputs(setup), "model": artifact_from_dir("model", broken_model)}
    with pytest.raises(LongContextInputError, match=r"input model .*broken_model.*model\.safetensors"):
        run_stage(SPEC, tmp_path / "b", CONFIG, inputs)
    not_longer = {**CONFIG, "steps": [{"seq_len": ORIGINAL}]}
    with pytest.raises(LongContextInputError, match=r"steps\[0\]\.seq_len 32 must exceed"):
        run_stage(SPEC, tmp_path / "c", not_longer, _inputs(setup))
    with pytest.raises(ValueError, match="strictly increase"):
        LongContextConfig.model_validate({"steps": [{"seq_len": 128}, {"seq_len": 64}]})


def test_a_rerun_resumes_from_the_checkpoints(setup, tmp_path):
    cfg = LongContextConfig.model_validate(
        {**CONFIG, "steps": [{"seq_len": 64, "train_steps": 3}, {"seq_len": 128, "train_steps": 3}]}
    )
    resume = tmp_path / "resume"
    results = []
    for name in ("first", "second"):
        out, work = tmp_path / name / "out", tmp_path / name / "work"
        out.mkdir(parents=True)
        work.mkdir()
        ctx = StageContext(
            instance="long_context",
            output_dir=out,
            work_dir=work,
            resume_dir=resume,
            log=logging.getLogger("test.long_context"),
        )
        results.append(SPEC.run(ctx, cfg, _inputs(setup)))
    assert (resume / "step1_128" / "checkpoints").is_dir() and (resume / "data_64" / "index.json").is_file()
    a, b = (r.counts for r in results)
    assert a["final_loss_128"] == b["final_loss_128"] and a["short_ppl"] == b["short_ppl"]
    assert a["train_seconds"] > 0 and b["train_seconds"] < a["train_seconds"]
    assert (tmp_path / "first" / "out" / "model.safetensors").read_bytes() == (
        tmp_path / "second" / "out" / "model.safetensors"
    ).read_bytes()


def test_needle_gate_can_require_no_drop_from_the_base_model():
    check = next(c for c in SPEC.checks if c.name == "needle_retrieval").check
    cfg = LongContextConfig.model_validate({**CONFIG, "min_needle_pass_rate": 0.2, "max_needle_drop": 0.1})
    counts = {"needle_pass_rate": 0.5, "needle_pass_rate_original": 0.7, "seq_len": 128}
    outcome = check(counts, cfg)
    assert not outcome.passed and "≥ 0.700 − 0.1" in outcome.description
    assert check({**counts, "needle_pass_rate": 0.65}, cfg).passed
    assert not check({**counts, "needle_pass_rate": 0.1, "needle_pass_rate_original": 0.1}, cfg).passed  # floor
    assert check(counts, cfg.model_copy(update={"max_needle_drop": None})).passed


def test_a_failed_gate_stops_the_downstream_asset_in_dagster(setup, tmp_path):
    """Through Dagster: `extend` fails its blocking needle check (an unreachable threshold), so `extend_more`,
    which reads its model, is not materialized; the failed check is recorded with its numbers."""
    import dagster as dg

    from gristmill.dagster.assets import build_assets
    from gristmill.lib.tokens import TokensWriter, read_index
    from gristmill.pipeline.config import validate_pipeline
    from gristmill.plugins import get_registry

    longer = tmp_path / "long256"  # the 128-token rows joined in pairs: data for a second extension to 256
    index = read_index(setup["long"])
    with TokensWriter(longer, seq_len=256, vocab_size=index["vocab_size"], eos_id=index["eos_id"]) as writer:
        for split in ("train", "validation"):
            data = TokenDataset(setup["long"], split)
            for i in range(len(data)):
                writer.add(split, data.array(i))
    strict = {**CONFIG, "steps": [CONFIG["steps"][1]]}
    follow = {**CONFIG, "steps": [{"seq_len": 256, "train_steps": 2}], "needle_depths": [0.5]}

    def pipeline(threshold: float):
        return validate_pipeline(
            {
                "name": "gate",
                "sources": {
                    "base": {"kind": "model", "path": str(setup["model"])},
                    "long": {"kind": "tokens", "path": str(setup["long"])},
                    "longer": {"kind": "tokens", "path": str(longer)},
                    "short": {"kind": "tokens", "path": str(setup["short"])},
                },
                "stages": {
                    "extend": {
                        "stage": "long_context",
                        "inputs": {"model": "base", "tokens": "long", "short_tokens": "short"},
                        "config": {**strict, "min_needle_pass_rate": threshold},
                    },
                    "extend_more": {
                        "stage": "long_context",
                        "inputs": {"model": "extend", "tokens": "longer"},
                        "config": follow,
                    },
                },
            },
            "gate.yaml",
            get_registry(),
            store=tmp_path / "store",
        )

    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(build_assets(pipeline(1.0)), instance=instance, raise_on_error=False)
    assert not result.success
    done = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "extend" in done and "extend_more" not in done
    checks = {
        c.check_name: c
        for c in (
            e.asset_check_evaluation_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
        )
    }
    assert not checks["needle_retrieval"].passed and "(min 1.0" in checks["needle_retrieval"].description
    # the same pipeline with a reachable threshold runs through: the block above was the gate, not an error
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(build_assets(pipeline(0.0)), instance=instance, raise_on_error=False)
    assert result.success
    done = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"extend", "extend_more"} <= done


def test_two_processes_through_accelerate_launch(setup, tmp_path, monkeypatch):
    """launch.processes=2 on CPU: both ranks train (DDP over gloo) and run the gates; rank 0 writes the folder."""
    from gristmill.engine.launch import launch_stage

    cfg = LongContextConfig.model_validate({**CONFIG, "steps": [CONFIG["steps"][1]], "launch": {"processes": 2}})
    ctx = StageContext(
        instance="lc",
        output_dir=tmp_path / "out",
        work_dir=tmp_path / "work",
        log=logging.getLogger("test.lc"),
        resume_dir=tmp_path / "resume",
    )
    ctx.output_dir.mkdir()
    ctx.work_dir.mkdir()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    result = launch_stage(SPEC, ctx, cfg, _inputs(setup))
    assert result.counts["seq_len"] == 128 and result.counts["train_steps"] == 12
    assert result.counts["processes"] == 2  # an all-reduce over every rank at the end of training
    assert json.loads((ctx.output_dir / "config.json").read_text())["max_position_embeddings"] == 128
    log = (ctx.work_dir / "launch" / "accelerate.log").read_text()
    assert "Traceback" not in log


# --------------------------------------------------------------------------------------------------
# Any RoPE architecture (tiny random checkpoints, tests/support/hf_models.py)

PLUMBING = {  # a few steps: the gates' numbers are not the point here, the saved architecture is
    "train": {"batch_size": 2, "lr": 1e-3, "min_lr": 1e-4, "warmup": 0, "checkpoint_every": 100},
    "needle_depths": [0.5],
    "needle_trials": 2,
    "needle_digits": 3,
    "short_eval_sequences": 4,
    "eval_batch_size": 4,
    "min_needle_pass_rate": 0.0,
    "short_ppl_tolerance": 100.0,
}
LLAMA3_ROPE = {  # Llama-3.2's rope_type llama3, scaled down to a 64-token context
    "rope_type": "llama3",
    "rope_theta": 500000.0,
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 32,
}


@pytest.fixture(scope="module")
def texts(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lc_texts")
    run_stage(REFERENCE_SPEC, root / "articles", {"documents": 12, "min_words": 150, "max_words": 300})
    articles = artifact_from_dir("documents", root / "articles")
    run_stage(
        RETRIEVAL_SPEC, root / "retrieval", {"documents": 40, "lengths": [200], "digits": 3}, {"documents": articles}
    )
    return {"articles": root / "articles", "retrieval": root / "retrieval"}


def _family(family: str, texts: dict[str, Path], root: Path, **overrides) -> dict:
    """A tiny ``family`` checkpoint with a 64-token context, and 64-/128-token tokens made with its tokenizer."""
    from tests.support.hf_models import make_model_folder

    model = make_model_folder(family, root / "model", max_position_embeddings=64, **overrides)
    tok = artifact_from_dir("tokenizer", model)
    for name, source, seq_len in (("short", "articles", 64), ("long", "retrieval", 128)):
        docs = artifact_from_dir("documents", texts[source])
        cfg = {"seq_len": seq_len, "validation_fraction": 0.1}
        run_stage(tokens_stage.SPEC, root / name, cfg, {"documents": docs, "tokenizer": tok})
    return {
        "model": artifact_from_dir("model", model),
        "tokens": artifact_from_dir("tokens", root / "long"),
        "short_tokens": artifact_from_dir("tokens", root / "short"),
    }


def _extend_and_reload(inputs: dict, step: dict, out: Path) -> tuple[dict, dict, set[str], object]:
    """Run one 64 → 128 step; (config.json before, after, saved tensor names, the stage result) after reloading
    the output with AutoModelForCausalLM and generating from it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gristmill.lib.models import inspect_model_folder

    result, art = run_stage(SPEC, out, {**PLUMBING, "steps": [{"seq_len": 128, "train_steps": 2, **step}]}, inputs)
    model = AutoModelForCausalLM.from_pretrained(str(art.path), local_files_only=True)
    tok = AutoTokenizer.from_pretrained(str(art.path), local_files_only=True)
    ids = tok("What is 3 + 4?", return_tensors="pt")
    generated = model.generate(**ids, max_new_tokens=3, do_sample=False, pad_token_id=tok.eos_token_id)
    assert generated.shape[1] == ids.input_ids.shape[1] + 3 and model.config.max_position_embeddings == 128
    before, after = (json.loads((p / "config.json").read_text()) for p in (inputs["model"].path, art.path))
    return before, after, set(inspect_model_folder(art.path).tensors), result


def test_a_llama3_with_its_own_head_dim_eps_bias_and_rope_type_keeps_them(texts, tmp_path):
    """head_dim 16 ≠ 48 / 4, rms_norm_eps 1e-5, attention bias and rope_type llama3, stored sharded in bf16: only
    the length changes (rope_scaling unset keeps the input's rope_parameters, rope_theta replaced), bf16 out."""
    folder = {"dtype": "bfloat16", "max_shard_size": "60KB", "attention_bias": True, "rope_parameters": LLAMA3_ROPE}
    inputs = _family("llama3", texts, tmp_path, **folder)
    before, after, tensors, result = _extend_and_reload(inputs, {"rope_theta": 1e6}, tmp_path / "out")
    assert after["dtype"] == "bfloat16" and _stored_dtypes(tmp_path / "out") == {"BF16"}
    assert after["head_dim"] == 16 and after["rms_norm_eps"] == 1e-5 and after["attention_bias"] is True
    assert after["rope_parameters"] == {**LLAMA3_ROPE, "rope_theta": 1e6}
    assert {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)} == {
        "max_position_embeddings",
        "rope_parameters",
    }
    assert "model.layers.0.self_attn.q_proj.bias" in tensors
    assert result.metadata["model_type"] == "llama" and result.metadata["max_position_embeddings"] == 128


def test_a_qwen2_with_attention_bias_gets_yarn(texts, tmp_path):
    inputs = _family("qwen2", texts, tmp_path)
    before, after, tensors, result = _extend_and_reload(inputs, {"rope_scaling": "yarn"}, tmp_path / "out")
    assert after["rope_parameters"] == {
        "rope_type": "yarn",
        "rope_theta": before["rope_parameters"]["rope_theta"],
        "factor": 2.0,
        "original_max_position_embeddings": 64,
    }
    assert {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)} == {
        "max_position_embeddings",
        "rope_parameters",
    }
    assert {"model.layers.0.self_attn.q_proj.bias", "model.layers.1.self_attn.v_proj.bias"} <= tensors
    assert result.counts["seq_len"] == 128 and result.counts["original_seq_len"] == 64


@pytest.mark.parametrize("family", ["mistral", "gemma2", "phi3", "gpt_neox"])
def test_other_rope_families_extend_with_their_config_intact(family, texts, tmp_path):
    """Sliding windows (Mistral, Gemma-2), soft-capping (Gemma-2), Phi-3's own config, GPT-NeoX's partial rotary."""
    inputs = _family(family, texts, tmp_path)
    before, after, _, _ = _extend_and_reload(inputs, {"rope_theta": 20000.0}, tmp_path / "out")
    assert after["rope_parameters"] == {**before["rope_parameters"], "rope_theta": 20000.0}
    assert {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)} == {
        "max_position_embeddings",
        "rope_parameters",
    }


def _stored_dtypes(folder: Path) -> set[str]:
    from gristmill.lib.models import inspect_model_folder

    return {d for d, _ in inspect_model_folder(folder).tensors.values()}


def test_absolute_positions_and_unsupported_rope_types_are_named(texts, tmp_path):
    from tests.support.hf_models import make_model_folder

    qwen = _family("qwen2", texts, tmp_path / "qwen")
    gpt2 = make_model_folder("gpt2", tmp_path / "gpt2", n_positions=64)
    step = {**PLUMBING, "steps": [{"seq_len": 128, "train_steps": 1}]}
    with pytest.raises(LongContextInputError, match=r"gpt2/config\.json: model_type 'gpt2' uses absolute position"):
        run_stage(SPEC, tmp_path / "a", step, {**qwen, "model": artifact_from_dir("model", gpt2)})
    phi3 = make_model_folder("phi3", tmp_path / "phi3", max_position_embeddings=64, original_max_position_embeddings=64)
    yarn = {**PLUMBING, "steps": [{"seq_len": 128, "train_steps": 1, "rope_scaling": "yarn"}]}
    with pytest.raises(LongContextInputError, match=r"steps\[0\]: rope_parameters .*yarn.* model_type 'phi3'"):
        run_stage(SPEC, tmp_path / "b", yarn, {**qwen, "model": artifact_from_dir("model", phi3)})
    with pytest.raises(ValueError, match="rope_factor needs rope_scaling linear or yarn"):
        LongContextConfig.model_validate({"steps": [{"seq_len": 128, "rope_scaling": "default", "rope_factor": 2}]})
