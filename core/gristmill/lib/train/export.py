"""``model`` artifacts: a Hugging Face model folder that ``AutoModelForCausalLM`` + ``AutoTokenizer`` load.

Layout written by :func:`save_model_dir`::

    config.json  generation_config.json  model.safetensors      (``save_pretrained``, safetensors only)
    tokenizer.json  tokenizer_config.json  [special_tokens_map.json, chat_template.jinja]   (copied)

:func:`open_model_artifact` validates such a folder before anything loads it and only ever reads weights from
``model.safetensors`` (a ``pytorch_model.bin`` or other pickle next to it is ignored, never unpickled).
"""

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from gristmill.errors import StageInputError
from gristmill.lib.train.model import ModelConfig

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")


class ModelArtifactError(StageInputError):
    """A ``model`` input that cannot be used; the message names the folder and the file."""


def copy_tokenizer(tokenizer_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> list[str]:
    """Copy the tokenizer files of a ``tokenizer`` artifact into ``out_dir``; returns the names copied."""
    src, dst = Path(tokenizer_dir), Path(out_dir)
    if not (src / "tokenizer.json").is_file():
        raise ModelArtifactError(f"{src}: no tokenizer.json (is it a tokenizer artifact?)")
    copied = []
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)
            copied.append(name)
    return copied


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


def save_model_dir(model: Any, out_dir: str | os.PathLike[str], tokenizer_dir: str | os.PathLike[str]) -> None:
    """Write ``model`` (a ``LlamaForCausalLM``) and the tokenizer as an HF folder ready for ``generate``."""
    out, tok_dir = Path(out_dir), Path(tokenizer_dir)
    out.mkdir(parents=True, exist_ok=True)
    ids = _special_ids(tok_dir)
    model.config.use_cache = True  # training turns the KV cache off; generation wants it
    if model.generation_config is not None:  # generate() reads this copy (without it: O(n²) decoding)
        model.generation_config.use_cache = True
    for key, value in ids.items():
        setattr(model.config, key, value)
        if model.generation_config is not None:
            setattr(model.generation_config, key, value)
    model.save_pretrained(str(out), safe_serialization=True)
    copy_tokenizer(tok_dir, out)


def open_model_artifact(path: str | os.PathLike[str]) -> ModelConfig:
    """Check a ``model`` folder (config.json is a Llama config, model.safetensors present and readable) and
    return its :class:`ModelConfig`. Raises :class:`ModelArtifactError` naming the file."""
    from safetensors import safe_open
    from transformers import LlamaConfig

    root = Path(path)
    cfg_path, weights = root / "config.json", root / "model.safetensors"
    try:
        data = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelArtifactError(f"{cfg_path}: missing or corrupt model config ({type(exc).__name__}: {exc})") from exc
    if not isinstance(data, dict) or data.get("model_type") != "llama":
        got = data.get("model_type") if isinstance(data, dict) else type(data).__name__
        raise ModelArtifactError(f"{cfg_path}: model_type must be 'llama' (got {got!r})")
    if not weights.is_file():
        raise ModelArtifactError(f"{weights}: missing (weights are only read from safetensors, never from pickles)")
    try:
        with safe_open(str(weights), framework="pt") as f:
            f.keys()
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own SafetensorError and others
        raise ModelArtifactError(f"{weights}: not a readable safetensors file ({exc})") from exc
    try:
        return ModelConfig.from_hf(LlamaConfig.from_dict(data))
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelArtifactError(f"{cfg_path}: unusable Llama config ({exc})") from exc


def load_causal_lm(path: str | os.PathLike[str], dtype: torch.dtype = torch.float32) -> Any:
    """``AutoModelForCausalLM`` from a validated model folder: local files, safetensors only."""
    from transformers import AutoModelForCausalLM

    open_model_artifact(path)
    return AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, use_safetensors=True, dtype=dtype)
