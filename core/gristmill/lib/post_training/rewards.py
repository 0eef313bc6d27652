"""Reward models: the ``reward_model`` stage's output loaded as ``(model, tokenizer)`` and scalar rewards of whole
conversations."""

from collections.abc import Sequence
from typing import Any

from gristmill.lib.models.chat import encode
from gristmill.lib.post_training.datasets import Messages
from gristmill.lib.post_training.generation import context_length
from gristmill.stage import Artifact


def load_reward_model(artifact: Artifact, dtype: str = "auto", device: Any = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of a reward-model artifact (the ``reward_model`` stage's output: a one-label
    ``*ForSequenceClassification`` folder of any architecture), validated first, safetensors only, in eval mode.

    The tokenizer pads on the right (classification heads score the last non-pad token)."""
    from gristmill.lib.models import ModelArtifactError, inspect_model_folder, load_classifier, load_tokenizer

    folder = inspect_model_folder(artifact.path)
    labels = len(folder.config.get("id2label") or {}) or folder.config.get("num_labels", 1)
    if not folder.is_classifier or labels != 1:
        raise ModelArtifactError(
            f"{artifact.describe()}: config.json has architectures {folder.architectures} — not a reward model "
            "(a one-label *ForSequenceClassification folder, as the reward_model stage writes)"
        )
    model = load_classifier(artifact.path, dtype=dtype, device=device)
    if model.config.num_labels != 1:
        raise ModelArtifactError(f"{artifact.describe()}: {model.config.num_labels} labels; a reward model has 1")
    tokenizer = load_tokenizer(artifact.path, artifact.describe())
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
    (or as plain text without one) exactly as TRL's ``RewardTrainer`` tokenizes pairs, scored ``batch_size`` at a
    time by a one-label sequence-classification ``model`` (right padding; the head reads the last non-pad token).

    A conversation longer than ``max_length`` tokens (default: the model's context) keeps its last tokens, so the
    reply being scored stays in view. The model's train/eval mode is restored afterwards."""
    import torch

    limit = max_length or context_length(model)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = pad
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    scores: list[float] = []
    try:
        for start in range(0, len(conversations), batch_size):
            ids = [encode(tokenizer, conv) for conv in conversations[start : start + batch_size]]
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
