"""Reward models: the ``reward_model`` stage's output loaded as ``(model, tokenizer)`` and scalar rewards of whole
conversations."""

from collections.abc import Sequence
from typing import Any

from gristmill.lib.post_training.datasets import Messages
from gristmill.stage import Artifact


def load_reward_model(artifact: Artifact) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of a reward-model artifact (the ``reward_model`` stage's output: a
    ``LlamaForSequenceClassification`` folder with one label), validated first, safetensors only, in eval mode.

    The tokenizer pads on the right (the Llama classification head scores the last non-pad token)."""
    import json

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from gristmill.lib.train.export import ModelArtifactError, open_model_artifact

    open_model_artifact(artifact.path)
    config = json.loads((artifact.path / "config.json").read_text(encoding="utf-8"))
    archs = config.get("architectures") or []
    labels = len(config.get("id2label") or {}) or config.get("num_labels", 1)
    if not any(a.endswith("ForSequenceClassification") for a in archs) or labels != 1:
        raise ModelArtifactError(
            f"{artifact.describe()}: config.json has architectures {archs} — not a reward model "
            "(a one-label *ForSequenceClassification folder, as the reward_model stage writes)"
        )
    model = AutoModelForSequenceClassification.from_pretrained(
        str(artifact.path), local_files_only=True, use_safetensors=True
    )
    if model.config.num_labels != 1:
        raise ModelArtifactError(f"{artifact.describe()}: {model.config.num_labels} labels; a reward model has 1")
    tokenizer = AutoTokenizer.from_pretrained(str(artifact.path), local_files_only=True)
    if not tokenizer.chat_template or tokenizer.pad_token_id is None:
        raise ModelArtifactError(f"{artifact.describe()}: the tokenizer needs a chat template and a pad token")
    tokenizer.padding_side = "right"
    model.config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    return model, tokenizer


def reward_scores(
    model: Any,
    tokenizer: Any,
    conversations: Sequence[Messages],
    batch_size: int = 16,
    max_length: int | None = None,
) -> list[float]:
    """The scalar reward of each full conversation (prompt + assistant reply), rendered with the chat template
    exactly as TRL's ``RewardTrainer`` tokenizes pairs, scored ``batch_size`` at a time by a one-label
    sequence-classification ``model`` (right padding; the head reads the last non-pad token).

    A conversation longer than ``max_length`` tokens (default: the model's context) keeps its last tokens, so the
    reply being scored stays in view. The model's train/eval mode is restored afterwards."""
    import torch

    limit = max_length or getattr(model.config, "max_position_embeddings", None)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = pad
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    scores: list[float] = []
    try:
        for start in range(0, len(conversations), batch_size):
            ids = [
                tokenizer.apply_chat_template(list(conv), tokenize=True, return_dict=True)["input_ids"]
                for conv in conversations[start : start + batch_size]
            ]
            ids = [x[-limit:] if limit else x for x in ids]
            width = max(len(x) for x in ids)
            input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
            attention = torch.zeros((len(ids), width), dtype=torch.long)
            for row, x in enumerate(ids):
                input_ids[row, : len(x)] = torch.tensor(x, dtype=torch.long)
                attention[row, : len(x)] = 1
            with torch.no_grad():
                logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits
            scores.extend(float(v) for v in logits[:, 0].float().cpu())
    finally:
        model.train(was_training)
    return scores
