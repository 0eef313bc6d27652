"""The ``model`` artifact contract: a Hugging Face folder that ``AutoModelForCausalLM`` (or
``AutoModelForSequenceClassification``) loads from local files, validated before anything reads a weight.

Accepted layout::

    config.json                          a model_type transformers ships (never custom code)
    model.safetensors                    or  model.safetensors.index.json + the shards it names
    generation_config.json               optional
    tokenizer.json / tokenizer.model / vocab.json+merges.txt, tokenizer_config.json, chat_template.jinja …
    adapter_config.json + adapter_model.safetensors   instead of the weights: a LoRA adapter on a base folder

Why by hand: ``from_pretrained`` reports a missing shard, a truncated file or a folder that wants custom code
deep in a stack trace (or, in a terminal, asks whether to run that code); here every problem is one line naming
the file. Safetensors headers are read directly (8-byte length + JSON), so checking a 70B folder reads a few
kilobytes per shard, not the weights.
"""

import json
import logging
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gristmill.errors import StageInputError

log = logging.getLogger("gristmill.models")

# model_type values the test suite runs through every training stage (tests/core/lib/models).
TESTED_ARCHITECTURES = ("llama", "qwen2", "mistral", "gemma2", "phi3", "gpt_neox", "gpt2")
SINGLE_FILE, INDEX_FILE = "model.safetensors", "model.safetensors.index.json"
PICKLES = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.ckpt", "tf_model.h5", "flax_model.msgpack")
TOKENIZER_MARKERS = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")
_DTYPE_BYTES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U64": 8,
    "U32": 4,
    "U16": 2,
    "U8": 1,
    "BOOL": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
}
_MAX_HEADER = 100 * 1024 * 1024  # the safetensors format's own limit


class ModelArtifactError(StageInputError):
    """A ``model`` folder that cannot be used; the message names the file and says what to do."""


@dataclass(frozen=True)
class ModelFolder:
    """A validated model folder: its parsed ``config.json``, weight files and what they hold."""

    path: Path
    config: dict[str, Any]
    weight_files: tuple[Path, ...]
    tensors: dict[str, tuple[str, tuple[int, ...]]] = field(repr=False)  # name → (safetensors dtype, shape)
    adapter: dict[str, Any] | None = None  # adapter_config.json of a LoRA adapter folder

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type"))

    @property
    def architectures(self) -> list[str]:
        return list(self.config.get("architectures") or [])

    @property
    def is_classifier(self) -> bool:
        return any(a.endswith("ForSequenceClassification") for a in self.architectures)

    @property
    def dtype(self) -> str | None:
        """The checkpoint's dtype as config.json states it (``dtype``/``torch_dtype``), else its float tensors'."""
        stated = self.config.get("dtype") or self.config.get("torch_dtype")
        if isinstance(stated, str):
            return stated
        names = {"F32": "float32", "BF16": "bfloat16", "F16": "float16"}
        floats = [names[d] for d, _ in self.tensors.values() if d in names]
        return max(set(floats), key=floats.count) if floats else None

    @property
    def sharded(self) -> bool:
        return len(self.weight_files) > 1 or (self.path / INDEX_FILE).is_file()

    def parameters(self) -> int:
        """Stored tensor elements (tied weights stored once count once)."""
        total = 0
        for _, shape in self.tensors.values():
            n = 1
            for d in shape:
                n *= d
            total += n
        return total


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelArtifactError(f"{path}: missing ({what})") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelArtifactError(f"{path}: not valid JSON ({type(exc).__name__}: {exc})") from exc


def safetensors_header(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """``{tensor: (dtype, shape)}`` from a safetensors file's header; checks the file holds every tensor's bytes."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                raise ModelArtifactError(f"{path}: not a safetensors file ({size} bytes)")
            (n,) = struct.unpack("<Q", raw)
            if n > _MAX_HEADER or 8 + n > size:
                raise ModelArtifactError(f"{path}: not a safetensors file (header length {n}, file {size} bytes)")
            header = json.loads(f.read(n))
    except FileNotFoundError as exc:
        raise ModelArtifactError(f"{path}: missing") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelArtifactError(f"{path}: unreadable safetensors header ({exc})") from exc
    if not isinstance(header, dict):
        raise ModelArtifactError(f"{path}: unreadable safetensors header")
    tensors: dict[str, tuple[str, tuple[int, ...]]] = {}
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (start, stop) = info["dtype"], tuple(int(d) for d in info["shape"]), info["data_offsets"]
        except (TypeError, KeyError, ValueError) as exc:
            raise ModelArtifactError(f"{path}: tensor {name!r} has a malformed header entry") from exc
        elements = 1
        for d in shape:
            elements *= d
        if dtype in _DTYPE_BYTES and stop - start != elements * _DTYPE_BYTES[dtype]:
            raise ModelArtifactError(f"{path}: tensor {name!r} {dtype}{list(shape)} does not match its byte range")
        tensors[name] = (dtype, shape)
        end = max(end, int(stop))
    if 8 + n + end > size:
        raise ModelArtifactError(f"{path}: truncated ({size} bytes, the header needs {8 + n + end})")
    return tensors


def _tensor_bytes(tensors: dict[str, tuple[str, tuple[int, ...]]]) -> int:
    total = 0
    for dtype, shape in tensors.values():
        n = _DTYPE_BYTES.get(dtype, 0)
        for d in shape:
            n *= d
        total += n
    return total


def _weights(root: Path, stem: str = "model") -> tuple[tuple[Path, ...], dict[str, tuple[str, tuple[int, ...]]]]:
    single, index = root / f"{stem}.safetensors", root / f"{stem}.safetensors.index.json"
    if index.is_file():
        data = _read_json(index, "shard index")
        weight_map = data.get("weight_map") if isinstance(data, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            raise ModelArtifactError(f"{index}: no 'weight_map' (tensor name → shard file)")
        by_shard: dict[str, set[str]] = {}
        for tensor, shard in weight_map.items():
            if not isinstance(shard, str) or Path(shard).name != shard or not shard.endswith(".safetensors"):
                raise ModelArtifactError(f"{index}: weight_map[{tensor!r}] = {shard!r} is not a .safetensors file name")
            by_shard.setdefault(shard, set()).add(tensor)
        tensors: dict[str, tuple[str, tuple[int, ...]]] = {}
        files = []
        for shard, names in sorted(by_shard.items()):
            path = root / shard
            if not path.is_file():
                raise ModelArtifactError(f"{path}: missing (named by {index.name} for {len(names)} tensors)")
            held = safetensors_header(path)
            if set(held) != names:
                extra, lost = sorted(set(held) - names), sorted(names - set(held))
                raise ModelArtifactError(
                    f"{path}: tensors differ from {index.name} (not in the shard: {lost[:3]}, not in the index: "
                    f"{extra[:3]})"
                )
            tensors.update(held)
            files.append(path)
        stated = (data.get("metadata") or {}).get("total_size")
        if isinstance(stated, int) and stated != _tensor_bytes(tensors):
            raise ModelArtifactError(
                f"{index}: metadata.total_size {stated} but the shards hold {_tensor_bytes(tensors)} bytes of tensors"
            )
        return tuple(files), tensors
    if single.is_file():
        return (single,), safetensors_header(single)
    pickles = [p for p in PICKLES if (root / p).is_file()]
    if pickles:
        raise ModelArtifactError(
            f"{root / pickles[0]}: weights only as a pickle; gristmill reads safetensors only (a pickle can run code "
            "when loaded) — convert it once with save_pretrained(..., safe_serialization=True) where you trust it"
        )
    raise ModelArtifactError(f"{single}: missing (and no {index.name}): the folder holds no safetensors weights")


def check_architecture(cfg_path: Path, config: dict[str, Any], classifier: bool = False) -> None:
    """A ``model_type`` transformers ships, whose causal-LM (or classifier) class exists; custom code refused.

    An architecture transformers knows but the suite does not run gets a warning, not an error."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES,
    )

    model_type = config.get("model_type")
    tested = ", ".join(TESTED_ARCHITECTURES)
    if not isinstance(model_type, str) or model_type not in CONFIG_MAPPING_NAMES:
        if config.get("auto_map"):
            raise ModelArtifactError(
                f"{cfg_path}: model_type {model_type!r} needs the custom code its auto_map names "
                f"({', '.join(sorted(config['auto_map']))}); gristmill never runs code from a model folder "
                f"(trust_remote_code) — use an architecture transformers ships (tested: {tested})"
            )
        raise ModelArtifactError(
            f"{cfg_path}: unknown model_type {model_type!r} (transformers does not ship it; tested: {tested})"
        )
    mapping = MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES if classifier else MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    if model_type not in mapping:
        what = "sequence-classification (reward model)" if classifier else "causal-LM"
        raise ModelArtifactError(f"{cfg_path}: model_type {model_type!r} has no {what} class in transformers")
    if config.get("auto_map"):
        log.warning(
            "%s: auto_map ignored: the built-in %s classes are used, never the folder's code", cfg_path, model_type
        )
    if model_type not in TESTED_ARCHITECTURES:
        log.warning(
            "%s: model_type %r is not among the tested architectures (%s); it may still work",
            cfg_path,
            model_type,
            tested,
        )


def has_tokenizer(root: Path) -> bool:
    return any((root / name).is_file() for name in TOKENIZER_MARKERS)


def check_tokenizer_code(root: Path) -> None:
    """Refuse a tokenizer that needs code from the folder: ``tokenizer_config.json`` with an ``auto_map`` naming a
    tokenizer, or a ``tokenizer_class`` transformers does not ship (transformers would ask to run the folder's code,
    or run it)."""
    import transformers

    path = root / "tokenizer_config.json"
    if not path.is_file():
        return
    cfg = _read_json(path, "tokenizer config")
    if not isinstance(cfg, dict):
        raise ModelArtifactError(f"{path}: expected a JSON object")
    auto_map = cfg.get("auto_map")
    if auto_map and (not isinstance(auto_map, dict) or "AutoTokenizer" in auto_map):
        raise ModelArtifactError(
            f"{path}: auto_map names custom tokenizer code ({auto_map!r:.120}); gristmill never runs code from a model "
            "folder (trust_remote_code) — use a tokenizer class transformers ships"
        )
    cls = cfg.get("tokenizer_class")
    if cls is not None and not (isinstance(cls, str) and hasattr(transformers, cls)):
        raise ModelArtifactError(
            f"{path}: tokenizer_class {cls!r:.80} is not a class transformers ships (it would need the folder's own "
            "code, which gristmill never runs)"
        )


def inspect_model_folder(path: str | os.PathLike[str], *, need_tokenizer: bool = True) -> ModelFolder:
    """Validate a model folder (or LoRA adapter folder) without loading weights; :class:`ModelArtifactError`
    naming the file on every problem."""
    root = Path(path)
    if not root.is_dir():
        raise ModelArtifactError(f"{root}: not a folder")
    adapter = None
    if (root / "adapter_config.json").is_file() and not (root / "config.json").is_file():
        adapter = _read_json(root / "adapter_config.json", "LoRA adapter config")
        base = adapter_base(root, adapter)
        folder = inspect_model_folder(base, need_tokenizer=False)
        files, tensors = _weights(root, "adapter_model")
        config = folder.config
    else:
        cfg_path = root / "config.json"
        config = _read_json(cfg_path, "model config")
        if not isinstance(config, dict):
            raise ModelArtifactError(f"{cfg_path}: expected a JSON object")
        files, tensors = _weights(root)
        check_architecture(
            cfg_path,
            config,
            classifier=any(str(a).endswith("ForSequenceClassification") for a in config.get("architectures") or []),
        )
    if need_tokenizer and not has_tokenizer(root):
        raise ModelArtifactError(
            f"{root}: no tokenizer files ({', '.join(TOKENIZER_MARKERS)}): save the tokenizer into the model folder "
            "(tokenizer.save_pretrained(folder))"
        )
    check_tokenizer_code(root)
    return ModelFolder(root, config, files, tensors, adapter)


def adapter_base(root: Path, adapter: dict[str, Any]) -> Path:
    """The base model folder of a LoRA adapter folder (``base_model_name_or_path``; relative paths are taken
    from the adapter folder)."""
    base = adapter.get("base_model_name_or_path")
    if not isinstance(base, str) or not base:
        raise ModelArtifactError(f"{root / 'adapter_config.json'}: no base_model_name_or_path")
    path = Path(base) if Path(base).is_absolute() else (root / base)
    if not (path / "config.json").is_file():
        raise ModelArtifactError(
            f"{root / 'adapter_config.json'}: base_model_name_or_path {base!r} is not a local model folder"
        )
    return path.resolve()
