"""Policies: a ``model`` artifact of any causal-LM architecture as ``(model, tokenizer)`` (safetensors only),
batched sampling through the chat
template (left padding, K samples per prompt: the part TRL no longer ships) and greedy held-out accuracy."""

import math
from collections.abc import Callable, Sequence
from typing import Any

from gristmill.errors import StageInputError
from gristmill.lib.models.chat import render, text_adds_special_tokens
from gristmill.lib.post_training.datasets import Messages
from gristmill.lib.verify import is_correct
from gristmill.stage import Artifact


def load_policy(
    artifact: Artifact,
    for_generation: bool = True,
    dtype: str = "auto",
    chat_template: str | None = None,
    device: Any = None,
) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of a ``model`` artifact of any causal-LM architecture (validated; safetensors only;
    model in eval mode, in ``dtype``; tokenizer with ``chat_template`` applied and a pad token chosen).

    A tokenizer without a chat template is fine: prompts are then plain text (a base model).
    ``for_generation`` pads on the left, as batched ``generate`` needs; trainers get right padding.
    """
    from gristmill.lib.models import inspect_model_folder, load_causal_lm, load_tokenizer

    inspect_model_folder(artifact.path)
    model = load_causal_lm(artifact.path, dtype=dtype, device=device)
    tokenizer = load_tokenizer(artifact.path, artifact.describe(), chat_template)
    tokenizer.padding_side = "left" if for_generation else "right"
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    return model, tokenizer


# Tokens that end an assistant turn in the templates families ship (ChatML, Llama-3, Gemma, Phi-3).
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>")


def end_of_turn_ids(tokenizer: Any, model: Any = None) -> list[int]:
    """Token ids that end an assistant turn: the tokenizer's eos, the model's generation-config eos ids (Llama-3
    lists several) and the end-of-turn tokens of known templates that the vocabulary has."""
    ids = {tokenizer.eos_token_id}
    gen = getattr(model, "generation_config", None)
    stated = getattr(gen, "eos_token_id", None)
    ids.update(stated if isinstance(stated, list) else [stated])
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in END_OF_TURN if t in vocab)
    return sorted(i for i in ids if isinstance(i, int))


def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Messages],
    num_samples: int = 1,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_p: float = 1.0,
    batch_size: int = 32,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> list[list[str]]:
    """``num_samples`` completions for every prompt (chat template + generation prompt), decoded without
    special tokens. Prompts are batched ``batch_size`` sequences at a time, each prompt repeated
    ``num_samples`` times in the batch; ``temperature == 0`` is greedy. Deterministic for a seed."""
    import torch

    texts = [render(tokenizer, p, add_generation_prompt=True) for p in prompts]
    flat = [t for t in texts for _ in range(num_samples)]
    sampling = temperature > 0
    kwargs: dict[str, Any] = {
        "max_new_tokens": max_new_tokens,
        "do_sample": sampling,
        "eos_token_id": end_of_turn_ids(tokenizer, model),
        "pad_token_id": tokenizer.pad_token_id,
        "use_cache": True,  # models saved from training may say False; without the KV cache decoding is O(n²)
    }
    if sampling:
        kwargs.update(temperature=temperature, top_p=top_p, top_k=0)
    device = next(model.parameters()).device
    limit = context_length(model)
    out: list[str] = []
    torch.manual_seed(seed)
    for start in range(0, len(flat), batch_size):
        batch = tokenizer(
            flat[start : start + batch_size],
            return_tensors="pt",
            padding=True,
            add_special_tokens=text_adds_special_tokens(tokenizer),
        ).to(device)
        width = batch["input_ids"].shape[1]
        if limit is not None and width + max_new_tokens > limit:
            raise StageInputError(
                f"prompt of {width} tokens + max_new_tokens {max_new_tokens} exceeds the model's "
                f"context of {limit} tokens"
            )
        with torch.no_grad():
            ids = model.generate(**batch, **kwargs)
        out.extend(tokenizer.batch_decode(ids[:, width:], skip_special_tokens=True))
        if progress is not None:
            progress(min(start + batch_size, len(flat)), len(flat))
    return [out[i * num_samples : (i + 1) * num_samples] for i in range(len(prompts))]


def score_accuracy(
    model: Any,
    tokenizer: Any,
    rows: Sequence[dict[str, Any]],
    max_new_tokens: int = 64,
    batch_size: int = 32,
) -> dict[str, Any]:
    """Greedy held-out accuracy on ``{"prompt", "answer"}`` rows: ``{"accuracy", "correct", "total", "samples"}``
    (``samples``: the first five question/completion/correct rows, for a metadata table)."""
    completions = [
        c[0] for c in generate(model, tokenizer, [r["prompt"] for r in rows], 1, max_new_tokens, batch_size=batch_size)
    ]
    verdicts = [is_correct(c, r["answer"]) for c, r in zip(completions, rows, strict=True)]
    samples = [
        {"question": r["prompt"][-1]["content"], "completion": c, "answer": r["answer"], "correct": ok}
        for r, c, ok in list(zip(rows, completions, verdicts, strict=True))[:5]
    ]
    correct = sum(verdicts)
    return {
        "accuracy": correct / len(rows) if rows else math.nan,
        "correct": correct,
        "total": len(rows),
        "samples": samples,
    }


def context_length(model: Any) -> int | None:
    """The model's context in tokens (``max_position_embeddings``, GPT-2's ``n_positions``), None when unbounded."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    for key in ("max_position_embeddings", "n_positions", "seq_length"):
        value = getattr(config, key, None)
        if isinstance(value, int):
            return value
    return None
