"""Saving a model trained from scratch (``pretrain``) with a ``tokenizer`` artifact as a ``model`` folder::

    config.json  generation_config.json  model.safetensors      (``save_pretrained``, safetensors only)
    tokenizer.json  tokenizer_config.json  [special_tokens_map.json, chat_template.jinja]   (copied)

Validating and loading model folders of any architecture lives in :mod:`gristmill.lib.models` (re-exported here);
:func:`output_dtype` is the dtype a training stage (trained in float32) saves its output in.
"""

import json
import os
from pathlib import Path
from typing import Any

import torch

from gristmill.lib.models import ModelArtifactError, ModelFolder, inspect_model_folder, load_causal_lm
from gristmill.lib.models import save_model_dir as models_save_model_dir

__all__ = [
    "ModelArtifactError",
    "load_causal_lm",
    "open_model_artifact",
    "hf_config",
    "output_dtype",
    "save_model_dir",
]


def _special_ids(tokenizer_dir: Path) -> dict[str, int | None]:
    """bos/eos/pad token ids from ``tokenizer_config.json`` + ``tokenizer.json`` (for generation_config)."""
    from tokenizers import Tokenizer

    cfg_path = tokenizer_dir / "tokenizer_config.json"
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8")) if cfg_path.is_file() else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelArtifactError(f"{cfg_path}: not valid JSON: {exc}") from exc
    tok = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    out: dict[str, int | None] = {}
    for key in ("bos", "eos", "pad"):
        value = cfg.get(f"{key}_token")
        value = value.get("content") if isinstance(value, dict) else value
        out[f"{key}_token_id"] = tok.token_to_id(value) if isinstance(value, str) else None
    return out


def save_model_dir(
    model: Any, out_dir: str | os.PathLike[str], tokenizer_dir: str | os.PathLike[str], max_shard_size: str = "5GB"
) -> None:
    """Write a model trained from scratch and the ``tokenizer`` artifact's files as an HF folder ready for
    ``generate`` (bos/eos/pad ids from the tokenizer; sharded above ``max_shard_size``). A model loaded from a
    folder is saved with :func:`gristmill.lib.models.save_model_dir`, which keeps the ids its checkpoint states."""
    tok_dir = Path(tokenizer_dir)
    if not (tok_dir / "tokenizer.json").is_file():
        raise ModelArtifactError(f"{tok_dir}: no tokenizer.json (is it a tokenizer artifact?)")
    for key, value in _special_ids(tok_dir).items():  # the config holds transformers' defaults, not the tokenizer's
        setattr(model.config, key, value)
        if model.generation_config is not None:
            setattr(model.generation_config, key, value)
    models_save_model_dir(model, out_dir, tokenizer_from=tok_dir, max_shard_size=max_shard_size)


def open_model_artifact(path: str | os.PathLike[str]) -> ModelFolder:
    """Validate a ``model`` folder without loading it (:func:`gristmill.lib.models.inspect_model_folder`)."""
    return inspect_model_folder(path, need_tokenizer=False)


def hf_config(folder: ModelFolder) -> Any:
    """The transformers config object of a validated folder's ``config.json`` (no weights read, no custom code)."""
    from transformers import AutoConfig

    data = dict(folder.config)
    try:
        return AutoConfig.for_model(str(data.pop("model_type")), **data)
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelArtifactError(f"{folder.path / 'config.json'}: unusable config ({exc})") from exc


def output_dtype(choice: str, folder: ModelFolder | None = None) -> torch.dtype:
    """The dtype a stage that trains in float32 saves its output in: a stage's ``dtype`` option, where ``auto`` is
    the input checkpoint's dtype (``folder``) and float32 for a model trained from scratch."""
    name = (folder.dtype if folder is not None else None) if choice == "auto" else choice
    return {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(name or "", torch.float32)
