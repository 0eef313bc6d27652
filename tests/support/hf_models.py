"""Tiny randomly initialised "published" checkpoints of real architectures, built in the test (no hub).

:func:`make_model_folder` writes what ``save_pretrained`` of that family writes: ``config.json`` of the real
architecture (a few layers, a 48-wide hidden size), safetensors weights (single or sharded, in the dtype asked),
``generation_config.json`` and a tokenizer with the family's special tokens, pad token (or none, as shipped) and the
chat template the family ships (short, but the real ones). The tokenizer is a byte-level BPE trained on arithmetic
text, so the models can learn the demo's tasks.
"""

from pathlib import Path
from typing import Any

CHATML = (  # Qwen2.5 (its default system prompt shortened)
    "{%- if messages[0]['role'] != 'system' %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
LLAMA3 = (  # Meta-Llama-3-8B-Instruct
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
GEMMA = (  # gemma-2-2b-it
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"
)
MISTRAL = (  # Mistral-7B-Instruct-v0.1
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)
PHI3 = (  # Phi-3-mini-4k-instruct
    "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\\n' + message['content'] + "
    "'<|end|>\\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}"
    "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}"
)

H = 48  # hidden size of every tiny model
FAMILIES: dict[str, dict[str, Any]] = {
    "llama3": {  # Llama-3.2 style: rope_type llama3, GQA, tied embeddings, no pad token
        "model_type": "llama",
        "config": {
            "hidden_size": H,
            "intermediate_size": 96,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 256,
            "tie_word_embeddings": True,
            "rms_norm_eps": 1e-5,
            "head_dim": 16,  # head_dim != hidden / heads, as in Llama-3.2-3B's cousins
            "rope_parameters": {
                "rope_type": "llama3",
                "rope_theta": 500000.0,
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 64,
            },
        },
        "specials": [
            "<|begin_of_text|>",
            "<|end_of_text|>",
            "<|start_header_id|>",
            "<|end_header_id|>",
            "<|eot_id|>",
            "<|finetune_right_pad_id|>",
        ],
        "bos": "<|begin_of_text|>",
        "eos": "<|eot_id|>",
        "pad": None,
        "template": LLAMA3,
        "add_bos": True,
        "gen_eos": ["<|end_of_text|>", "<|eot_id|>"],
    },
    "qwen2": {
        "model_type": "qwen2",
        "config": {
            "hidden_size": H,
            "intermediate_size": 96,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 256,
            "tie_word_embeddings": True,
        },
        "specials": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        "bos": None,
        "eos": "<|im_end|>",
        "pad": "<|endoftext|>",
        "template": CHATML,
        "add_bos": False,
    },
    "mistral": {
        "model_type": "mistral",
        "config": {
            "hidden_size": H,
            "intermediate_size": 96,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 256,
            "sliding_window": 128,
        },
        "specials": ["<s>", "</s>", "[INST]", "[/INST]"],
        "bos": "<s>",
        "eos": "</s>",
        "pad": None,
        "template": MISTRAL,
        "add_bos": True,
    },
    "gemma2": {
        "model_type": "gemma2",
        "config": {
            "hidden_size": H,
            "intermediate_size": 96,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "max_position_embeddings": 256,
            "sliding_window": 64,
            "query_pre_attn_scalar": 16,
        },
        "specials": ["<pad>", "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"],
        "bos": "<bos>",
        "eos": "<eos>",
        "pad": "<pad>",
        "template": GEMMA,
        "add_bos": True,
        "gen_eos": ["<eos>", "<end_of_turn>"],
    },
    "phi3": {
        "model_type": "phi3",
        "config": {
            "hidden_size": H,
            "intermediate_size": 96,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
            "max_position_embeddings": 256,
            "original_max_position_embeddings": 256,
            "sliding_window": None,
        },
        "specials": ["<s>", "<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"],
        "bos": "<s>",
        "eos": "<|endoftext|>",
        "pad": "<|endoftext|>",
        "template": PHI3,
        "add_bos": False,
        "gen_eos": ["<|endoftext|>", "<|end|>"],
    },
    "gpt_neox": {  # Pythia: a base model, no chat template
        "model_type": "gpt_neox",
        "config": {
            "hidden_size": H,
            "intermediate_size": 96,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 256,
            "rotary_pct": 0.25,
        },
        "specials": ["<|endoftext|>", "<|padding|>"],
        "bos": "<|endoftext|>",
        "eos": "<|endoftext|>",
        "pad": None,
        "template": None,
        "add_bos": False,
    },
    "gpt2": {  # absolute positions, no chat template, no pad token
        "model_type": "gpt2",
        "config": {"n_embd": H, "n_layer": 2, "n_head": 4, "n_positions": 256},
        "specials": ["<|endoftext|>"],
        "bos": "<|endoftext|>",
        "eos": "<|endoftext|>",
        "pad": None,
        "template": None,
        "add_bos": False,
    },
}


def _corpus(n: int = 400) -> list[str]:
    """Questions and worked solutions of the demo's arithmetic tasks (what the tests train on)."""
    import random

    from gristmill_plugins.demo_data.tasks import make_task

    rng = random.Random(0)
    return [" ".join(make_task(rng)[:2]) for _ in range(n)]


def make_tokenizer(family: str, out: Path, vocab_size: int = 600) -> Any:
    """A byte-level BPE ``PreTrainedTokenizerFast`` with the family's special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    spec = FAMILIES[family]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=spec["specials"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    if spec["add_bos"]:
        from tokenizers import processors

        bos = spec["bos"]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))]
        )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=spec["bos"],
        eos_token=spec["eos"],
        pad_token=spec["pad"],
        chat_template=spec["template"],
    )
    fast.save_pretrained(str(out))
    return fast


def make_model_folder(
    family: str,
    out: Path,
    *,
    dtype: str = "float32",
    max_shard_size: str | None = None,
    seed: int = 0,
    **overrides: Any,
) -> Path:
    """Write a tiny random ``family`` checkpoint (see :data:`FAMILIES`) into ``out``; returns ``out``."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    spec = FAMILIES[family]
    out.mkdir(parents=True, exist_ok=True)
    tok = make_tokenizer(family, out)
    ids = {k: tok.convert_tokens_to_ids(spec[k]) if spec[k] else None for k in ("bos", "eos", "pad")}
    config = AutoConfig.for_model(
        spec["model_type"],
        vocab_size=len(tok),
        bos_token_id=ids["bos"],
        eos_token_id=ids["eos"],
        pad_token_id=ids["pad"],
        **{**spec["config"], **overrides},
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
    eos = [tok.convert_tokens_to_ids(t) for t in spec.get("gen_eos", [])] or ids["eos"]
    model.generation_config = GenerationConfig(bos_token_id=ids["bos"], eos_token_id=eos, pad_token_id=ids["pad"])
    kwargs = {"max_shard_size": max_shard_size} if max_shard_size else {}
    model.save_pretrained(str(out), safe_serialization=True, **kwargs)
    return out


def stored_dtypes(folder: Path) -> set[str]:
    """The safetensors dtypes (``"BF16"``, ``"F32"`` …) of a model folder's tensors."""
    from gristmill.lib.models import inspect_model_folder

    return {d for d, _ in inspect_model_folder(folder).tensors.values()}


def reload_and_generate(folder: Path, classifier: bool = False) -> tuple[Any, str]:
    """(config, generated text — or the score's shape for a classifier) of ``folder`` loaded the way users load it:
    the standard ``Auto*`` classes, safetensors only."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    auto = AutoModelForSequenceClassification if classifier else AutoModelForCausalLM
    model = auto.from_pretrained(str(folder), local_files_only=True, use_safetensors=True)
    tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    ids = tok("What is 3 + 4?", return_tensors="pt")
    with torch.no_grad():
        if classifier:
            return model.config, str(tuple(model(**ids).logits.shape))
        out = model.generate(**ids, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id or 0)
    assert out.shape[1] > ids["input_ids"].shape[1]
    return model.config, tok.decode(out[0])
