"""The ``model`` folder contract (gristmill.lib.models) on tiny checkpoints of real architectures: what is accepted
(sharded safetensors, any shipped architecture, the checkpoint's dtype), what is refused and how the error reads."""

import json
import logging
import shutil
from pathlib import Path

import pytest

from gristmill.lib.models import (
    ChatTemplateError,
    ModelArtifactError,
    inspect_model_folder,
    load_causal_lm,
    load_tokenizer,
    save_model_dir,
)
from gristmill.lib.models.chat import render
from gristmill.lib.models.lora import LoraOptions, peft_config
from tests.support.hf_models import make_model_folder


@pytest.fixture(scope="module")
def sharded(tmp_path_factory) -> Path:
    """A Llama-3-style bf16 checkpoint in several shards (as 7B+ checkpoints ship)."""
    return make_model_folder("llama3", tmp_path_factory.mktemp("m") / "llama3", dtype="bfloat16", max_shard_size="60KB")


@pytest.fixture
def copy(sharded: Path, tmp_path: Path) -> Path:
    shutil.copytree(sharded, tmp_path / "copy")
    return tmp_path / "copy"


def test_a_sharded_bf16_checkpoint_is_validated_loaded_in_bf16_and_resaved_sharded(sharded, tmp_path):
    import torch

    folder = inspect_model_folder(sharded)
    assert folder.sharded and len(folder.weight_files) > 1 and folder.dtype == "bfloat16"
    assert folder.model_type == "llama" and folder.parameters() > 0
    model = load_causal_lm(sharded)
    assert model.dtype == torch.bfloat16
    assert model.config.rope_parameters["rope_type"] == "llama3" and model.config.head_dim == 16
    assert load_causal_lm(sharded, dtype="float32").dtype == torch.float32
    tok = load_tokenizer(sharded, "llama3")
    save_model_dir(model, tmp_path / "out", tokenizer=tok, tokenizer_from=sharded, max_shard_size="60KB")
    again = inspect_model_folder(tmp_path / "out")
    assert again.sharded and again.dtype == "bfloat16" and again.tensors == folder.tensors
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["rms_norm_eps"] == 1e-5 and config["rope_parameters"]["rope_type"] == "llama3"
    gen = json.loads((tmp_path / "out" / "generation_config.json").read_text())
    assert isinstance(gen["eos_token_id"], list) and len(gen["eos_token_id"]) == 2  # Llama-3's eos list is kept


def test_a_missing_shard_a_bad_index_and_a_truncated_shard_are_named(copy):
    index = json.loads((copy / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    (copy / shards[-1]).rename(copy / "moved.safetensors")
    with pytest.raises(ModelArtifactError, match=rf"{shards[-1]}: missing \(named by model.safetensors.index.json"):
        inspect_model_folder(copy)
    (copy / "moved.safetensors").rename(copy / shards[-1])

    raw = (copy / shards[0]).read_bytes()
    (copy / shards[0]).write_bytes(raw[: len(raw) - 10])
    with pytest.raises(ModelArtifactError, match=rf"{shards[0]}: truncated"):
        inspect_model_folder(copy)
    (copy / shards[0]).write_bytes(raw)

    bad = dict(index, weight_map={**index["weight_map"], "extra.weight": shards[0]})
    (copy / "model.safetensors.index.json").write_text(json.dumps(bad))
    with pytest.raises(ModelArtifactError, match=r"tensors differ from model.safetensors.index.json"):
        inspect_model_folder(copy)
    outside = dict(index, weight_map={k: "../outside.safetensors" for k in index["weight_map"]})
    (copy / "model.safetensors.index.json").write_text(json.dumps(outside))
    with pytest.raises(ModelArtifactError, match=r"is not a .safetensors file name"):
        inspect_model_folder(copy)
    sizes = dict(index, metadata={"total_size": 12})
    (copy / "model.safetensors.index.json").write_text(json.dumps(sizes))
    with pytest.raises(ModelArtifactError, match=r"metadata.total_size 12 but the shards hold"):
        inspect_model_folder(copy)


def test_pickles_unknown_architectures_and_missing_tokenizers_are_refused_with_a_remedy(copy, tmp_path):
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "model_type": "gristmill_unknown"}))
    with pytest.raises(
        ModelArtifactError, match=r"config.json: unknown model_type 'gristmill_unknown' .*tested: llama"
    ):
        inspect_model_folder(copy)
    (copy / "config.json").write_text(json.dumps(config))

    pickled = tmp_path / "pickled"
    pickled.mkdir()
    shutil.copy(copy / "config.json", pickled / "config.json")
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ModelArtifactError, match=r"pytorch_model.bin: weights only as a pickle; .*safetensors only"):
        inspect_model_folder(pickled)

    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        (copy / name).unlink(missing_ok=True)
    with pytest.raises(ModelArtifactError, match=r"copy: no tokenizer files"):
        inspect_model_folder(copy)


def test_custom_code_is_never_run(copy, tmp_path):
    """auto_map naming code in the folder: an unknown model_type is refused naming auto_map; a shipped one loads
    with transformers' own classes and the folder's module is never imported."""
    marker = tmp_path / "ran"
    (copy / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    config = json.loads((copy / "config.json").read_text())
    auto_map = {"AutoModelForCausalLM": "modeling_evil.EvilForCausalLM", "AutoConfig": "modeling_evil.EvilConfig"}
    (copy / "config.json").write_text(json.dumps({**config, "model_type": "evil", "auto_map": auto_map}))
    with pytest.raises(ModelArtifactError, match=r"needs the custom code its auto_map names .*never runs code"):
        load_causal_lm(copy)
    (copy / "config.json").write_text(json.dumps({**config, "auto_map": auto_map}))
    assert load_causal_lm(copy).config.model_type == "llama"
    assert not marker.exists()


def test_templates_as_shipped_overrides_and_pad_tokens(tmp_path, caplog):
    qwen = make_model_folder("qwen2", tmp_path / "qwen2")
    gpt2 = make_model_folder("gpt2", tmp_path / "gpt2")
    llama = make_model_folder("llama3", tmp_path / "llama3")
    convo = [{"role": "user", "content": "2 + 2?"}]

    tok = load_tokenizer(qwen, "qwen2")
    assert render(tok, convo, True).endswith("<|im_start|>assistant\n") and tok.pad_token == "<|endoftext|>"
    with caplog.at_level(logging.INFO, logger="gristmill.models"):
        llama_tok = load_tokenizer(llama, "llama3")
    assert llama_tok.pad_token == "<|finetune_right_pad_id|>"  # a reserved token, not eos
    assert "has no pad token: padding with '<|finetune_right_pad_id|>'" in caplog.text
    base = load_tokenizer(gpt2, "gpt2")
    assert base.pad_token == base.eos_token and render(base, convo, True) == "2 + 2?\n\n"  # plain text

    inline = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
    assert render(load_tokenizer(gpt2, "gpt2", inline), convo) == "[user] 2 + 2?\n"
    (tmp_path / "t.jinja").write_text(inline)
    assert render(load_tokenizer(qwen, "qwen2", str(tmp_path / "t.jinja")), convo) == "[user] 2 + 2?\n"
    no_assistant = "{% for m in messages %}{% if m['role'] == 'user' %}{{ m['content'] }}{% endif %}{% endfor %}"
    with pytest.raises(ChatTemplateError, match=r"qwen2: the chat template has no assistant role"):
        load_tokenizer(qwen, "qwen2", no_assistant)
    with pytest.raises(ChatTemplateError, match=r"not inline Jinja and not a readable file"):
        load_tokenizer(qwen, "qwen2", "no/such/template.jinja")


def test_lora_target_modules_that_match_nothing_are_named(sharded):
    model = load_causal_lm(sharded)
    config = peft_config(LoraOptions(target_modules=["q_proj", "v_proj"]), model, "CAUSAL_LM", "sft")
    assert set(config.target_modules) == {"q_proj", "v_proj"}
    with pytest.raises(
        ModelArtifactError, match=r"sft: peft.target_modules \['c_attn'\] match no linear layer .*q_proj"
    ):
        peft_config(LoraOptions(target_modules=["c_attn", "q_proj"]), model, "CAUSAL_LM", "sft")
