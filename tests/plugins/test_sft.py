"""sft stage on the demo's arithmetic conversations and real GSM8K: real TRL SFTTrainer runs on the tiny policy."""

import json
import logging
import shutil
from pathlib import Path

import pytest

from gristmill.lib.post_training import DatasetError
from gristmill.stage import StageContext
from gristmill.testing import artifact_from_dir, run_stage
from gristmill_plugins.sft import SPEC, SFTInputError, SFTStageConfig, build_trainer

FAST = {
    "max_examples": 160,
    "max_steps": 20,
    "lr": 3e-3,
    "batch_size": 8,
    "warmup_ratio": 0.1,
    "eval_examples": 8,
    "max_new_tokens": 24,
}


def _inputs(policy: Path, data: Path, files: list[Path] | None = None) -> dict:
    return {"model": artifact_from_dir("model", policy), "dataset": artifact_from_dir("dataset", data, files)}


def test_twenty_steps_lower_the_loss_and_the_folder_reloads_and_generates(arithmetic, tiny_policy, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result, art = run_stage(SPEC, tmp_path / "sft", FAST, _inputs(tiny_policy, arithmetic))
    c = result.counts
    assert c["examples"] == 160 and c["truncated"] == 0 and c["dropped_too_long"] == 0
    assert c["steps"] == 20 and c["steps_per_second"] > 0 and c["train_seconds"] > 0
    assert c["final_loss"] < c["first_loss"] * 0.9, c
    assert SPEC.checks[0].check(c, SFTStageConfig.model_validate(FAST)).passed
    assert not SPEC.checks[0].check(c, SFTStageConfig.model_validate({**FAST, "min_loss_drop": 0.9})).passed
    assert c["eval_examples"] == 8 and 0 <= c["accuracy_before"] <= 1 and 0 <= c["accuracy_after"] <= 1
    rows = result.metadata["samples"].rows
    assert rows and set(rows[0]) == {"question", "completion", "answer", "correct"}
    assert result.metadata["loss_curve"].text.startswith("![sft loss curve](data:image/png;base64,")
    mask = result.metadata["loss_mask"].text
    assert "| **yes** |" in mask and "| no |" in mask and "<\\|im_end\\|>` |" in mask

    names = {p.name for p in art.path.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= names
    config = json.loads((art.path / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["use_cache"] is True
    model = AutoModelForCausalLM.from_pretrained(str(art.path), local_files_only=True)
    tok = AutoTokenizer.from_pretrained(str(art.path), local_files_only=True)
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "What is 2 + 3?"}], tokenize=False, add_generation_prompt=True
    )
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    out = model.generate(ids, max_new_tokens=6, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] > ids.shape[1]


def _runs(ids: list[int], labels: list[int]) -> list[tuple[bool, list[int]]]:
    runs: list[tuple[bool, list[int]]] = []
    for tok, lab in zip(ids, labels, strict=True):
        if lab != -100:
            assert lab == tok  # labels are the input ids themselves (the model shifts them)
        on = lab != -100
        if runs and runs[-1][0] == on:
            runs[-1][1].append(tok)
        else:
            runs.append((on, [tok]))
    return runs


def test_only_assistant_tokens_carry_loss(arithmetic, tiny_policy, tmp_path):
    """The real tokenized dataset and collated batch of the trainer the stage builds: the tokens with a label are
    exactly each assistant reply followed by its <|im_end|>; system and user turns and role headers have -100."""
    from gristmill.lib.post_training import load_conversations, load_policy

    model, tok = load_policy(artifact_from_dir("model", tiny_policy), for_generation=False)
    multi = {
        "messages": [
            {"role": "system", "content": "You add numbers."},
            {"role": "user", "content": "What is 2 + 2?"},
            {"role": "assistant", "content": "2 + 2 = 4. The answer is 4."},
            {"role": "user", "content": "And 3 + 5?"},
            {"role": "assistant", "content": "3 + 5 = 8. The answer is 8."},
        ],
        "answer": "8",
    }
    rows = [multi, *load_conversations(arithmetic / "sft.jsonl", limit=3)]
    work = tmp_path / "work"
    work.mkdir()
    ctx = StageContext(instance="sft", output_dir=tmp_path / "out", work_dir=work, log=logging.getLogger("t"))
    config = SFTStageConfig.model_validate({"max_steps": 1, "batch_size": 4})
    trainer = build_trainer(ctx, config, model, tok, rows, 256, [])
    data = trainer.train_dataset
    assert len(data) == len(rows)
    for row, example in zip(rows, data, strict=True):
        runs = _runs(example["input_ids"], example["labels"])
        trained = [tok.decode(t) for on, t in runs if on]
        assert trained == [m["content"] + "<|im_end|>" for m in row["messages"] if m["role"] == "assistant"]
        context = "".join(tok.decode(t) for on, t in runs if not on)
        for m in row["messages"]:
            if m["role"] != "assistant":
                assert m["content"] in context
        assert "<|im_start|>assistant\n" in context

    batch = trainer.data_collator([data[i] for i in range(len(data))])
    labels, input_ids = batch["labels"], batch["input_ids"]
    for i, example in enumerate(data):
        n = len(example["input_ids"])
        assert labels[i, :n].tolist() == example["labels"] and input_ids[i, :n].tolist() == example["input_ids"]
        assert (labels[i, n:] == -100).all()
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert ((input_ids == im_end) & (labels == im_end)).sum() == 2 + 3  # every assistant <|im_end|> is trained
    assert ((input_ids == im_end) & (labels == -100)).sum() == 3 + 3  # system/user ones are not


def test_packing_trains_and_saves_a_cache_enabled_model(arithmetic, tiny_policy, tmp_path):
    cfg = {
        "max_examples": 24,
        "max_steps": 2,
        "batch_size": 1,
        "max_length": 128,
        "packing": True,
        "eval_file": None,
        "max_new_tokens": 4,
        "lr": 1e-3,
    }
    result, art = run_stage(SPEC, tmp_path / "packed", cfg, _inputs(tiny_policy, arithmetic))
    assert result.counts["steps"] == 2 and result.counts["examples"] == 24
    assert "accuracy_after" not in result.counts and len(result.metadata["samples"].rows) == 5
    assert json.loads((art.path / "config.json").read_text())["use_cache"] is True


def test_gsm8k_from_shared_data(shared_data, tiny_policy, tmp_path):
    """The raw GSM8K file as a single-file source: {question, answer} rows, long for this 400-token vocabulary
    (cut at the tiny model's 256-token context or dropped — counted), no eval set."""
    gsm8k = shared_data / "sft" / "gsm8k_train_first2000.jsonl"
    cfg = {"max_examples": 12, "max_steps": 3, "batch_size": 2, "lr": 1e-3, "max_new_tokens": 8}
    result, art = run_stage(SPEC, tmp_path / "gsm", cfg, _inputs(tiny_policy, gsm8k.parent, [gsm8k]))
    c = result.counts
    assert c["examples"] + c["dropped_too_long"] == 12 and c["examples"] > 0
    assert c["steps"] == 3 and c["first_loss"] > 0 and c["final_loss"] > 0
    assert "accuracy_before" not in c  # a single-file source has no eval.jsonl
    assert result.metadata["files"] == [gsm8k.name]
    assert (art.path / "model.safetensors").is_file()


def test_bad_rows_are_named_by_file_and_line(tiny_policy, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    good = json.dumps({"messages": [{"role": "user", "content": "1 + 1?"}, {"role": "assistant", "content": "2"}]})
    (data / "sft.jsonl").write_text(good + "\n{not json\n")
    with pytest.raises(DatasetError, match=r"sft\.jsonl:2: not valid JSON"):
        run_stage(SPEC, tmp_path / "a", {"max_steps": 1}, _inputs(tiny_policy, data))
    no_reply = json.dumps({"messages": [{"role": "user", "content": "1 + 1?"}]})
    (data / "sft.jsonl").write_text(good + "\n\n" + no_reply + "\n")
    with pytest.raises(DatasetError, match=r"sft\.jsonl:3: the last message must be the assistant's"):
        run_stage(SPEC, tmp_path / "b", {"max_steps": 1}, _inputs(tiny_policy, data))
    (data / "sft.jsonl").write_text(good + "\n")
    with pytest.raises(SFTInputError, match=r"max_length 4096 exceeds the 256-token context"):
        run_stage(SPEC, tmp_path / "c", {"max_steps": 1, "max_length": 4096}, _inputs(tiny_policy, data))


def test_a_template_without_generation_blocks_trains_the_last_reply_as_a_completion(arithmetic, tiny_policy, tmp_path):
    """A template as models ship it (no {% generation %} blocks): TRL's prompt/completion format — the last assistant
    turn carries the loss, the earlier turns (an assistant reply included) are the prompt."""
    folder = tmp_path / "no_generation"
    shutil.copytree(tiny_policy, folder)
    template = (folder / "chat_template.jinja").read_text()
    (folder / "chat_template.jinja").write_text(
        template.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    )
    data = tmp_path / "data"
    data.mkdir()
    turns = [
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "2 + 2 = 4. The answer is 4."},
        {"role": "user", "content": "And 3 + 3?"},
        {"role": "assistant", "content": "3 + 3 = 6. The answer is 6."},
    ]
    (data / "sft.jsonl").write_text((json.dumps({"messages": turns}) + "\n") * 4)
    cfg = {"max_steps": 1, "batch_size": 2, "eval_file": None, "max_new_tokens": 4}
    result, _ = run_stage(SPEC, tmp_path / "out", cfg, _inputs(folder, data))
    assert result.metadata["loss_format"] == "prompt_completion"
    mask = result.metadata["loss_mask"].text
    with_loss = [line for line in mask.splitlines() if line.startswith("| **yes**")]
    assert len(with_loss) == 1 and "The answer is 6." in with_loss[0] and "The answer is 4." not in with_loss[0]
    result, _ = run_stage(SPEC, tmp_path / "own", cfg, _inputs(tiny_policy, data))
    assert result.metadata["loss_format"] == "assistant_only"  # gristmill's template marks both replies
    assert sum(line.startswith("| **yes**") for line in result.metadata["loss_mask"].text.splitlines()) == 2


def test_the_old_grad_accum_name_is_refused_naming_file_stage_and_new_field(tmp_path):
    from gristmill.pipeline.config import PipelineError, load_pipeline

    path = tmp_path / "pipe.yaml"
    path.write_text("stages:\n  tune: {stage: sft, config: {grad_accum: 4, lr: 1e-4}}\n", encoding="utf-8")
    with pytest.raises(PipelineError) as info:
        load_pipeline(path)
    assert str(info.value) == (
        f"{path}: stages.tune.config: grad_accum: 'grad_accum' was renamed 'gradient_accumulation_steps' (got 4)"
    )
    config = SFTStageConfig.model_validate({"gradient_accumulation_steps": 4})
    assert config.gradient_accumulation_steps == 4 and config.warmup_ratio == 0.03 and config.lr_scheduler == "cosine"
