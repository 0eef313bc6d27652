"""pretrain stage on real text: trains, saves an HF folder that loads and generates, resumes, runs as 2 processes."""

import json
import logging
from pathlib import Path

import pytest

import gristmill.lib.train.loop as loop
from gristmill.engine.launch import launch_stage
from gristmill.lib.documents import DocumentWriter
from gristmill.stage import StageContext
from gristmill.testing import artifact_from_dir, run_stage
from gristmill_plugins import tokenizer as tokenizer_stage
from gristmill_plugins import tokens as tokens_stage
from gristmill_plugins.pretrain import SPEC, PretrainConfig, PretrainInputError

pytestmark = pytest.mark.shared_data

SEQ = 64
TINY = {
    "model": {"d_model": 64, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "d_ff": 128},
    "train": {"steps": 20, "batch_size": 8, "lr": 3e-3, "warmup": 3, "checkpoint_every": 5, "eval_every": 10},
    "sample_prompts": ["ROMEO:", "The king"],
    "sample_tokens": 8,
}


@pytest.fixture(scope="module")
def data(shared_data: Path, tmp_path_factory) -> dict[str, Path]:
    """tinyshakespeare (first ~300 KB) → a 512-token BPE tokenizer → 64-token packed sequences."""
    root = tmp_path_factory.mktemp("pretrain_data")
    text = (shared_data / "pretrain" / "tinyshakespeare.txt").read_text(encoding="utf-8")[:300_000]
    with DocumentWriter(root / "docs") as writer:
        for i, para in enumerate(p for p in text.split("\n\n") if p.strip()):
            writer.write({"text": para, "id": f"shakespeare#{i}", "metadata": {}})
    docs = artifact_from_dir("documents", root / "docs")
    run_stage(tokenizer_stage.SPEC, root / "tokenizer", {"vocab_size": 512}, {"documents": docs})
    tok = artifact_from_dir("tokenizer", root / "tokenizer")
    run_stage(
        tokens_stage.SPEC,
        root / "tokens",
        {"seq_len": SEQ, "validation_fraction": 0.05},
        {"documents": docs, "tokenizer": tok},
    )
    return {"tokenizer": root / "tokenizer", "tokens": root / "tokens"}


def _inputs(data: dict[str, Path]) -> dict:
    return {kind: artifact_from_dir(kind, data[kind]) for kind in ("tokens", "tokenizer")}


def _ctx(tmp_path: Path, name: str, resume: Path | None = None) -> StageContext:
    out, work = tmp_path / name / "out", tmp_path / name / "work"
    out.mkdir(parents=True)
    work.mkdir()
    return StageContext(
        instance="pretrain", output_dir=out, work_dir=work, log=logging.getLogger("test.pretrain"), resume_dir=resume
    )


def test_twenty_steps_learn_and_the_folder_loads_and_generates(data, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result, art = run_stage(SPEC, tmp_path / "model", TINY, _inputs(data))
    c = result.counts
    assert c["steps"] == 20 and c["processes"] == 1 and c["tokens_trained"] == 20 * 8 * SEQ
    assert c["final_loss"] < c["first_loss"] - 0.5  # ln(512) ≈ 6.2 at init; real text is learnable
    assert c["val_loss"] < c["first_loss"] and 0 < c["val_bits_per_byte"] < 8
    assert SPEC.checks[0].check(c, PretrainConfig.model_validate(TINY)).passed
    assert not SPEC.checks[0].check(c, PretrainConfig.model_validate({**TINY, "min_loss_drop": 0.99})).passed
    assert [r["prompt"] for r in result.metadata["samples"].rows] == ["ROMEO:", "The king"]
    assert result.metadata["loss_curve"].text.startswith("![loss curve](data:image/png;base64,")
    assert result.metadata["chinchilla"].rows[0]["optimal_tokens_for_params"] == 20 * c["params"]

    names = {p.name for p in art.path.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"} <= names
    assert not any(n.endswith((".bin", ".pt")) for n in names)
    config = json.loads((art.path / "config.json").read_text())
    assert config["max_position_embeddings"] == SEQ and config["vocab_size"] == 512
    model = AutoModelForCausalLM.from_pretrained(str(art.path), local_files_only=True)
    tok = AutoTokenizer.from_pretrained(str(art.path), local_files_only=True)
    ids = tok("ROMEO:", return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] == ids.shape[1] + 5


def test_token_budget_sets_the_steps(data, tmp_path):
    cfg = {**TINY, "token_budget": 6 * 8 * SEQ - 1, "sample_prompts": []}
    result, _ = run_stage(SPEC, tmp_path / "m", cfg, _inputs(data))
    assert result.counts["steps"] == 6


def test_a_crashed_run_resumes_from_its_checkpoint(data, tmp_path, monkeypatch):
    """First attempt dies after step 8 (checkpoint at 8); the re-run continues from there and ends with the
    same loss history as an uninterrupted run."""
    train = {**TINY["train"], "steps": 12, "checkpoint_every": 4}
    cfg = PretrainConfig.model_validate({**TINY, "train": train, "sample_prompts": []})
    whole = launch_stage(SPEC, _ctx(tmp_path, "whole", tmp_path / "r0"), cfg, _inputs(data))
    history = json.loads((tmp_path / "whole" / "out" / "training_log.json").read_text())["history"]

    real_train = loop.train

    def crash_after_8(*args, **kwargs):
        real_train(*args, **kwargs, stop_after=8)
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(loop, "train", crash_after_8)
    with pytest.raises(RuntimeError, match="simulated crash"):
        launch_stage(SPEC, _ctx(tmp_path, "a", tmp_path / "r1"), cfg, _inputs(data))
    monkeypatch.setattr(loop, "train", real_train)
    again = launch_stage(SPEC, _ctx(tmp_path, "b", tmp_path / "r1"), cfg, _inputs(data))
    assert again.metadata["resumed_from"] == "ckpt-000008" and whole.metadata["resumed_from"] is None
    assert json.loads((tmp_path / "b" / "out" / "training_log.json").read_text())["history"] == history
    assert again.counts["final_loss"] == whole.counts["final_loss"]


def test_inputs_that_do_not_fit_are_named(data, tmp_path):
    with pytest.raises(PretrainInputError, match=r"max_seq_len 32 is shorter than the seq_len 64 of tokens artifact"):
        run_stage(SPEC, tmp_path / "a", {**TINY, "model": {**TINY["model"], "max_seq_len": 32}}, _inputs(data))
    with pytest.raises(PretrainInputError, match=r"vocab_size 100 is smaller than the vocab_size 512"):
        run_stage(SPEC, tmp_path / "b", {**TINY, "model": {**TINY["model"], "vocab_size": 100}}, _inputs(data))
    broken = tmp_path / "tok"
    broken.mkdir()
    (broken / "tokenizer.json").write_text("{not json")
    with pytest.raises(PretrainInputError, match=r"tokenizer artifact .* unreadable .*tokenizer.json"):
        run_stage(SPEC, tmp_path / "c", TINY, {**_inputs(data), "tokenizer": artifact_from_dir("tokenizer", broken)})


def test_two_processes_through_accelerate_launch(data, tmp_path, monkeypatch):
    """launch.processes=2 on CPU: a child `accelerate launch --multi_gpu` job over gloo; both ranks take part
    (the world size comes from an all-reduce at the end), logs stream back, rank 0 writes the folder."""
    cfg = PretrainConfig.model_validate({**TINY, "train": {**TINY["train"], "steps": 6}, "launch": {"processes": 2}})
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    ctx = _ctx(tmp_path, "ddp", tmp_path / "resume")
    ctx.log.addHandler(handler := Keep())
    ctx.log.setLevel(logging.INFO)
    progress: list[tuple] = []
    ctx.progress_fn = lambda done, total, msg: progress.append((done, total))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    try:
        result = launch_stage(SPEC, ctx, cfg, _inputs(data))
    finally:
        ctx.log.removeHandler(handler)
    assert result.counts["processes"] == 2 and result.counts["steps"] == 6
    assert result.counts["tokens_trained"] == 6 * 8 * SEQ * 2
    assert (ctx.output_dir / "model.safetensors").is_file()
    assert any("launching 2 process(es) on CPU" in r for r in records)
    assert any("step=6" in r for r in records), records[-5:]  # the child's log lines reached the parent
    assert (6, 6) in progress


def test_the_old_grad_accum_name_is_refused_naming_the_new_one():
    from gristmill.pipeline.config import PipelineError, validate_pipeline

    lm = {"stage": "pretrain", "inputs": {"tokens": "t", "tokenizer": "t"}, "config": {"train": {"grad_accum": 2}}}
    with pytest.raises(PipelineError) as info:
        validate_pipeline({"stages": {"t": {"stage": "arithmetic_tasks"}, "lm": lm}}, "p.yaml")
    renamed = "'grad_accum' was renamed 'gradient_accumulation_steps'"
    assert f"p.yaml: stages.lm.config: train.grad_accum: {renamed}" in str(info.value)
    config = PretrainConfig.model_validate({"train": {"gradient_accumulation_steps": 2}})
    assert config.train.gradient_accumulation_steps == 2
