"""Policies: a ``model`` artifact as ``(model, tokenizer)`` (safetensors only), batched sampling through the chat
template (left padding, K samples per prompt: the part TRL no longer ships) and greedy held-out accuracy."""

import math
from collections.abc import Callable, Sequence
from typing import Any

from gristmill.errors import StageInputError
from gristmill.lib.post_training.datasets import Messages
from gristmill.lib.verify import is_correct
from gristmill.stage import Artifact


def load_policy(artifact: Artifact, for_generation: bool = True) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of a ``model`` artifact (validated; safetensors only; model in eval mode).

    The tokenizer must carry a chat template (the ``tokenizer`` stage writes one). ``for_generation`` pads
    on the left, as batched ``generate`` needs; trainers get right padding.
    """
    from transformers import AutoTokenizer

    from gristmill.lib.train.export import ModelArtifactError, load_causal_lm

    model = load_causal_lm(artifact.path)
    tokenizer = AutoTokenizer.from_pretrained(str(artifact.path), local_files_only=True)
    if not tokenizer.chat_template:
        raise ModelArtifactError(
            f"{artifact.describe()}: the tokenizer has no chat template (train it with chat_template: true)"
        )
    if tokenizer.pad_token_id is None:
        raise ModelArtifactError(f"{artifact.describe()}: the tokenizer has no pad token")
    tokenizer.padding_side = "left" if for_generation else "right"
    model.eval()
    return model, tokenizer


def end_of_turn_ids(tokenizer: Any) -> list[int]:
    """Token ids that end an assistant turn: ``<|im_end|>`` (ChatML) and the tokenizer's eos."""
    ids = {tokenizer.eos_token_id}
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(im_end, int) and im_end != tokenizer.unk_token_id:
        ids.add(im_end)
    return sorted(i for i in ids if i is not None)


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

    texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    flat = [t for t in texts for _ in range(num_samples)]
    sampling = temperature > 0
    kwargs: dict[str, Any] = {
        "max_new_tokens": max_new_tokens,
        "do_sample": sampling,
        "eos_token_id": end_of_turn_ids(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "use_cache": True,  # models saved from training may say False; without the KV cache decoding is O(n²)
    }
    if sampling:
        kwargs.update(temperature=temperature, top_p=top_p, top_k=0)
    device = next(model.parameters()).device
    limit = getattr(model.config, "max_position_embeddings", None)
    out: list[str] = []
    torch.manual_seed(seed)
    for start in range(0, len(flat), batch_size):
        batch = tokenizer(
            flat[start : start + batch_size], return_tensors="pt", padding=True, add_special_tokens=False
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
