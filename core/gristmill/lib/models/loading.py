"""Loading and saving ``model`` folders of any architecture transformers ships: local files, safetensors only,
never ``trust_remote_code``, the checkpoint's dtype kept.

- :func:`resolve_dtype`: a stage's ``dtype: auto | bfloat16 | float16 | float32`` for this folder and device.
- :func:`load_causal_lm` / :func:`load_classifier`: ``AutoModelForCausalLM`` / ``AutoModelForSequenceClassification``
  (a one-label score head on any causal LM's backbone), validated first; a LoRA adapter folder loads as its base
  with the adapter merged.
- :func:`load_tokenizer`: ``AutoTokenizer`` with a stage's chat-template override and a pad token chosen.
- :func:`save_model_dir`: ``save_pretrained`` (sharded above ``max_shard_size``) + the tokenizer, ready for
  ``generate``.
"""

import logging
import os
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from gristmill.lib.models.chat import prepare_tokenizer, write_tokenizer_changes
from gristmill.lib.models.folder import ModelArtifactError, ModelFolder, check_tokenizer_code, inspect_model_folder

log = logging.getLogger("gristmill.models")

DtypeName = Literal["auto", "bfloat16", "float16", "float32"]
MAX_SHARD_SIZE = "5GB"
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
)


def resolve_dtype(choice: str, folder: ModelFolder, device: Any = None) -> Any:
    """The torch dtype to load ``folder`` in: ``auto`` keeps the checkpoint's (float16 becomes float32 on a CPU,
    where half-precision training is not supported well; a GPU without bf16 gets float16 for bfloat16)."""
    import torch

    name = folder.dtype if choice == "auto" else choice
    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}.get(
        name or "", torch.float32
    )
    on_gpu = device is not None and getattr(device, "type", str(device)) == "cuda"
    if choice == "auto" and dtype == torch.float16 and not on_gpu:
        return torch.float32
    if choice == "auto" and dtype == torch.bfloat16 and on_gpu and not torch.cuda.is_bf16_supported():
        return torch.float16
    return dtype


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """No transformers progress bars ("Loading weights", "Writing model shards"), notices or warnings inside: the
    stage reports its own progress, and a new score head being "newly initialized" is the point of a reward model."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _quiet_load(loader: Any, path: Path, **kwargs: Any) -> Any:
    """``loader.from_pretrained`` from local safetensors only, never custom code, quietly."""
    with quiet_transformers():
        return loader.from_pretrained(
            str(path), local_files_only=True, use_safetensors=True, trust_remote_code=False, **kwargs
        )


def load_causal_lm(path: str | os.PathLike[str], dtype: str = "auto", device: Any = None) -> Any:
    """``AutoModelForCausalLM`` of a validated model folder (a LoRA adapter folder: its base + the adapter,
    merged), in :func:`resolve_dtype`'s dtype."""
    from transformers import AutoModelForCausalLM

    folder = inspect_model_folder(path, need_tokenizer=False)
    if folder.is_classifier:
        raise ModelArtifactError(
            f"{folder.path / 'config.json'}: a sequence classifier (reward model), not a causal LM"
        )
    torch_dtype = resolve_dtype(dtype, folder, device)
    if folder.adapter is not None:
        from gristmill.lib.models.lora import load_adapter

        base = _quiet_load(AutoModelForCausalLM, Path(folder.adapter["base_model_name_or_path"]), dtype=torch_dtype)
        return load_adapter(base, folder.path, merge=True)
    return _quiet_load(AutoModelForCausalLM, folder.path, dtype=torch_dtype)


def load_classifier(path: str | os.PathLike[str], dtype: str = "auto", device: Any = None, num_labels: int = 1) -> Any:
    """``AutoModelForSequenceClassification`` of a folder: a reward model as saved, or a causal LM's backbone with
    a new ``num_labels`` score head (its ``lm_head`` unused). Seed torch first: the head is initialised from it."""
    from transformers import AutoModelForSequenceClassification

    folder = inspect_model_folder(path, need_tokenizer=False)
    if folder.adapter is not None:
        raise ModelArtifactError(
            f"{folder.path}: a LoRA adapter folder; a reward model needs a full model (merge: true)"
        )
    torch_dtype = resolve_dtype(dtype, folder, device)
    if not folder.is_classifier:
        from gristmill.lib.models.folder import check_architecture

        check_architecture(folder.path / "config.json", folder.config, classifier=True)
    model = _quiet_load(AutoModelForSequenceClassification, folder.path, dtype=torch_dtype, num_labels=num_labels)
    return model


def load_tokenizer(path: str | os.PathLike[str], where: str, chat_template: str | None = None, **checks: Any) -> Any:
    """``AutoTokenizer`` of a model folder (a LoRA adapter folder holds its own copy), with
    :func:`~gristmill.lib.models.chat.prepare_tokenizer` applied (template override, assistant role, pad token)."""
    from transformers import AutoTokenizer

    root = Path(path)
    check_tokenizer_code(root)
    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(str(root), local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError, TypeError) as exc:
        raise ModelArtifactError(f"{root}: the tokenizer does not load ({type(exc).__name__}: {exc})") from exc
    prepare_tokenizer(tokenizer, where, chat_template, **checks)
    return tokenizer


def copy_tokenizer(src: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> list[str]:
    """Copy the tokenizer files of a folder (``tokenizer`` or ``model`` artifact) into ``out_dir``."""
    source, dst = Path(src), Path(out_dir)
    copied = [name for name in TOKENIZER_FILES if (source / name).is_file()]
    if not copied:
        raise ModelArtifactError(f"{source}: no tokenizer files ({', '.join(TOKENIZER_FILES[:4])} …)")
    dst.mkdir(parents=True, exist_ok=True)
    for name in copied:
        shutil.copyfile(source / name, dst / name)
    return copied


def save_model_dir(
    model: Any,
    out_dir: str | os.PathLike[str],
    tokenizer: Any = None,
    tokenizer_from: str | os.PathLike[str] | None = None,
    max_shard_size: str | int = MAX_SHARD_SIZE,
    special_ids_from_tokenizer: bool = False,
) -> None:
    """Write ``model`` (any ``PreTrainedModel``, in its dtype; sharded above ``max_shard_size``) and its tokenizer
    as a folder ready for ``generate``: ``tokenizer_from``'s files copied with what the stage changed in ``tokenizer``
    (template override, chosen pad token) written into them (no ``tokenizer_from``: ``tokenizer.save_pretrained``).
    Special-token ids missing from the configs are filled from the tokenizer; ids the checkpoint already states
    (Llama-3's list of eos ids) are kept, unless ``special_ids_from_tokenizer`` (a model built from scratch,
    whose config holds transformers' defaults)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.config.use_cache = True  # training turns the KV cache off; generation wants it
    gen = getattr(model, "generation_config", None)
    if gen is not None:
        gen.use_cache = True
    if tokenizer is not None:
        for key in ("bos", "eos", "pad"):
            value = getattr(tokenizer, f"{key}_token_id", None)
            if value is None:
                continue
            if special_ids_from_tokenizer or getattr(model.config, f"{key}_token_id", None) is None:
                setattr(model.config, f"{key}_token_id", value)
            if gen is not None and (special_ids_from_tokenizer or getattr(gen, f"{key}_token_id", None) is None):
                setattr(gen, f"{key}_token_id", value)
    with quiet_transformers():  # also generation-config notes about unset sampling fields
        model.save_pretrained(str(out), safe_serialization=True, max_shard_size=max_shard_size)
    if tokenizer_from is not None:
        copy_tokenizer(tokenizer_from, out)
        write_tokenizer_changes(tokenizer, out)
    elif tokenizer is not None:
        tokenizer.save_pretrained(str(out))
