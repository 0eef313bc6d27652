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


def _crash_and_resume(tmp_path, monkeypatch, cfg, inputs, stop_after: int):
    """(uninterrupted result, its loss history, result of a re-run after a crash at ``stop_after``) — the crashed
    and the re-run attempt share one resume folder."""
    whole = launch_stage(SPEC, _ctx(tmp_path, "whole", tmp_path / "r0"), cfg, inputs)
    history = json.loads((tmp_path / "whole" / "out" / "training_log.json").read_text())["history"]
    real_train = loop.train

    def crash(*args, **kwargs):
        real_train(*args, **kwargs, stop_after=stop_after)
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(loop, "train", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        launch_stage(SPEC, _ctx(tmp_path, "a", tmp_path / "r1"), cfg, inputs)
    monkeypatch.setattr(loop, "train", real_train)
    return whole, history, launch_stage(SPEC, _ctx(tmp_path, "b", tmp_path / "r1"), cfg, inputs)


def test_a_crashed_run_resumes_from_its_checkpoint(data, tmp_path, monkeypatch):
    """First attempt dies after step 8 (checkpoint at 8); the re-run continues from there and ends with the
    same loss history as an uninterrupted run."""
    train = {**TINY["train"], "steps": 12, "checkpoint_every": 4}
    cfg = PretrainConfig.model_validate({**TINY, "train": train, "sample_prompts": []})
    whole, history, again = _crash_and_resume(tmp_path, monkeypatch, cfg, _inputs(data), stop_after=8)
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


# --------------------------------------------------------------------------------------------------
# Continued pretraining of a model folder of any architecture (tiny random checkpoints, tests/support/hf_models.py)

CONTINUED = {
    "train": {"steps": 3, "batch_size": 4, "lr": 1e-3, "warmup": 0, "checkpoint_every": 100, "seed": 3},
    "sample_prompts": ["What is 3 + 4?"],
    "sample_tokens": 4,
    "min_loss_drop": 0.0,
}


def _model_tokens(family: str, root: Path, seq_len: int = 32, **folder_args) -> tuple[Path, Path]:
    """A tiny ``family`` checkpoint and arithmetic text tokenized with its own tokenizer (the folder serves as the
    tokens stage's tokenizer input)."""
    from tests.support.hf_models import make_model_folder

    model = make_model_folder(family, root / "model", **folder_args)
    with DocumentWriter(root / "docs") as writer:
        for i in range(120):
            a, b = 7 * i % 50, 3 * i % 40
            text = f"What is {a} + {b}? {a} + {b} = {a + b}. The answer is {a + b}."
            writer.write({"text": text, "id": f"sum#{i}", "metadata": {}})
    docs = artifact_from_dir("documents", root / "docs")
    run_stage(
        tokens_stage.SPEC,
        root / "tokens",
        {"seq_len": seq_len, "validation_fraction": 0.1},
        {"documents": docs, "tokenizer": artifact_from_dir("tokenizer", model)},
    )
    return model, root / "tokens"


def _continued_inputs(model: Path, tokens: Path) -> dict:
    return {"model": artifact_from_dir("model", model), "tokens": artifact_from_dir("tokens", tokens)}


def _input_loss_on_first_batch(model: Path, tokens: Path) -> float:
    """The input model's loss (float32, eval mode) on the first batch the training loop draws from ``tokens``."""
    import torch
    from transformers import AutoModelForCausalLM

    from gristmill.lib.tokens import TokenDataset

    data = TokenDataset(tokens, "train", shuffle=True, seed=CONTINUED["train"]["seed"])
    ids = torch.stack([row for row, _ in zip(data, range(CONTINUED["train"]["batch_size"]), strict=False)])
    source = AutoModelForCausalLM.from_pretrained(str(model), local_files_only=True, dtype=torch.float32).eval()
    with torch.no_grad():
        return source(input_ids=ids, labels=loop._labels(ids, data.pad_id)).loss.item()


def test_continued_pretraining_starts_from_the_model_and_keeps_its_architecture(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokens = _model_tokens("qwen2", tmp_path)
    result, art = run_stage(SPEC, tmp_path / "out", CONTINUED, _continued_inputs(model, tokens))

    expected = _input_loss_on_first_batch(model, tokens)  # the first step's loss must be this
    history = json.loads((art.path / "training_log.json").read_text())["history"]
    assert [s for s, _ in history] == [1, 2, 3]
    assert history[0][1] == pytest.approx(expected, abs=1e-4)

    before, after = (json.loads((p / "config.json").read_text()) for p in (model, art.path))
    assert after["model_type"] == "qwen2" and after["architectures"] == before["architectures"]
    for key in ("hidden_size", "num_key_value_heads", "tie_word_embeddings", "eos_token_id", "rope_parameters"):
        assert after[key] == before[key], key
    assert (art.path / "tokenizer.json").read_bytes() == (model / "tokenizer.json").read_bytes()
    assert json.loads((art.path / "generation_config.json").read_text())["eos_token_id"] == before["eos_token_id"]
    assert result.metadata["model_type"] == "qwen2" and str(model) in result.metadata["started_from"]
    assert result.metadata["model"].rows[0]["model_type"] == "qwen2" and result.counts["steps"] == 3
    assert result.metadata["samples"].rows[0]["prompt"] == "What is 3 + 4?"

    reloaded = AutoModelForCausalLM.from_pretrained(str(art.path), local_files_only=True)
    source = AutoModelForCausalLM.from_pretrained(str(model), local_files_only=True, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(str(art.path), local_files_only=True)
    with torch.no_grad():
        moved = (reloaded.lm_head.weight - source.lm_head.weight).abs().max().item()
    assert type(reloaded).__name__ == "Qwen2ForCausalLM" and moved > 0  # trained, not copied
    prompt = tok("What is 3 + 4?", return_tensors="pt")
    out = reloaded.generate(**prompt, max_new_tokens=3, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] == prompt.input_ids.shape[1] + 3


def test_continued_pretraining_saves_in_the_checkpoints_dtype(tmp_path):
    """A bf16 GPT-2 (absolute positions, no pad token) trains in float32 and comes out bf16."""
    from gristmill.lib.models import inspect_model_folder

    model, tokens = _model_tokens("gpt2", tmp_path, dtype="bfloat16")
    cfg = {**CONTINUED, "train": {**CONTINUED["train"], "steps": 2}}
    result, art = run_stage(SPEC, tmp_path / "out", cfg, _continued_inputs(model, tokens))
    folder = inspect_model_folder(art.path)
    assert {d for d, _ in folder.tensors.values()} == {"BF16"} and folder.dtype == "bfloat16"
    assert folder.model_type == "gpt2" and result.metadata["dtype"] == "bfloat16"
    assert result.metadata["samples"].rows[0]["continuation"] is not None
    as_f32, art32 = run_stage(SPEC, tmp_path / "out32", {**cfg, "dtype": "float32"}, _continued_inputs(model, tokens))
    assert {d for d, _ in inspect_model_folder(art32.path).tensors.values()} == {"F32"}
    assert as_f32.metadata["model"].rows[0]["max_position_embeddings"] == 256  # GPT-2's n_positions


def test_continued_pretraining_inputs_that_do_not_fit_are_named(tmp_path):
    from gristmill.testing import artifact_from_dir as art

    model, tokens = _model_tokens("qwen2", tmp_path, max_position_embeddings=16)
    inputs = _continued_inputs(model, tokens)
    with pytest.raises(PretrainInputError, match=r"seq_len 32, longer than max_position_embeddings 16 of input model"):
        run_stage(SPEC, tmp_path / "a", CONTINUED, inputs)
    with pytest.raises(PretrainInputError, match=r"model\.d_model is set, .* remove model\.d_model"):
        run_stage(SPEC, tmp_path / "b", {**CONTINUED, "model": {"d_model": 32}}, inputs)
    with pytest.raises(PretrainInputError, match=r"wire inputs\.model or inputs\.tokenizer, not both"):
        run_stage(SPEC, tmp_path / "c", CONTINUED, {**inputs, "tokenizer": art("tokenizer", model)})
    with pytest.raises(PretrainInputError, match=r"wire inputs\.tokenizer .* or inputs\.model"):
        run_stage(SPEC, tmp_path / "d", CONTINUED, {"tokens": inputs["tokens"]})
    (model / "model.safetensors").unlink()
    with pytest.raises(PretrainInputError, match=r"input model .*model\.safetensors: missing"):
        run_stage(SPEC, tmp_path / "e", CONTINUED, inputs)


def test_continued_pretraining_resumes_exactly(tmp_path, monkeypatch):
    """A crash after step 2 (checkpoint at 2): the re-run loads the input model again, then the checkpoint's
    weights into it, and ends with the losses of an uninterrupted run."""
    model, tokens = _model_tokens("llama3", tmp_path, max_position_embeddings=64)
    train = {**CONTINUED["train"], "steps": 4, "checkpoint_every": 2}
    cfg = PretrainConfig.model_validate({**CONTINUED, "train": train, "sample_prompts": []})
    whole, history, again = _crash_and_resume(
        tmp_path, monkeypatch, cfg, _continued_inputs(model, tokens), stop_after=2
    )
    assert again.metadata["resumed_from"] == "ckpt-000002" and whole.metadata["resumed_from"] is None
    assert json.loads((tmp_path / "b" / "out" / "training_log.json").read_text())["history"] == history
    assert (tmp_path / "b" / "out" / "model.safetensors").read_bytes() == (
        tmp_path / "whole" / "out" / "model.safetensors"
    ).read_bytes()


@pytest.mark.parametrize("family", ["llama3", "mistral", "gemma2", "phi3", "gpt_neox"])
def test_continued_pretraining_on_each_rope_family(family, tmp_path):
    """The first step's loss is the input's on the first batch; the output keeps the architecture and generates
    (GPT-2 is covered above: its default dropout makes a training step's loss differ from an evaluation)."""

    model, tokens = _model_tokens(family, tmp_path, max_position_embeddings=64)
    cfg = {**CONTINUED, "train": {**CONTINUED["train"], "steps": 1}}
    result, art = run_stage(SPEC, tmp_path / "out", cfg, _continued_inputs(model, tokens))
    expected = _input_loss_on_first_batch(model, tokens)
    history = json.loads((art.path / "training_log.json").read_text())["history"]
    assert history[0][1] == pytest.approx(expected, abs=1e-4)
    before, after = (json.loads((p / "config.json").read_text()) for p in (model, art.path))
    assert {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)} <= {"transformers_version"}
    assert len(result.metadata["samples"].rows) == 1
