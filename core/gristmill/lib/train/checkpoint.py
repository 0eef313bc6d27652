"""Atomic, checksummed training checkpoints with everything needed for an exact resume.

Layout of ``<dir>/ckpt-000010/`` (written as ``ckpt-000010.tmp/``, every file fsynced, then renamed)::

    model.safetensors   model weights (tied weights stored once; ``safetensors.torch.save_model``)
    optimizer.pt        optimizer state_dict        (torch.save; loaded with weights_only=True)
    scheduler.pt        LR scheduler state_dict     (torch.save; loaded with weights_only=True)
    rng.pt              python / numpy / torch CPU / CUDA RNG states, as tensors and plain lists
    state.json          step, data position (``TokenDataset.state_dict()``), loop counters
    manifest.json       sha256 and size of every file above; written last

Nothing is ever unpickled: weights go through safetensors, the rest through ``weights_only`` loading.
"""

import json
import logging
import os
import pickle
import random
import re
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_model, save_model

from gristmill.hashing import file_sha256

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
_NAME = re.compile(r"^ckpt-(\d{6,})$")


class CheckpointError(RuntimeError):
    """A checkpoint folder that fails verification; the message names it and the file."""


def checkpoint_name(step: int) -> str:
    return f"ckpt-{step:06d}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


# --------------------------------------------------------------------------------------------------
# RNG states (no pickles: numpy's state goes out as a plain list)


def rng_state() -> dict[str, Any]:
    version, mt, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state = {
        "python": [version, list(mt), gauss],
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    n = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": n["bit_generator"],
            "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
            "has_gauss": n["has_gauss"],
            "gauss": n["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------------------------------------
# Save


def save_checkpoint(
    directory: str | os.PathLike[str],
    step: int,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: dict[str, Any],
    keep: int | None = None,
) -> Path:
    """Write checkpoint ``step`` atomically into ``directory``; then keep only the newest ``keep``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / checkpoint_name(step)
    tmp = directory / f"{final.name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_model(model, str(tmp / "model.safetensors"))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    torch.save(rng_state(), tmp / "rng.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step, **state}, indent=2) + "\n", encoding="utf-8")
    files = sorted(p.name for p in tmp.iterdir())
    manifest = {
        "step": step,
        "files": {name: {"size": (tmp / name).stat().st_size, "sha256": file_sha256(tmp / name)} for name in files},
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    for name in [*files, MANIFEST]:
        _fsync_file(tmp / name)
    _fsync_dir(tmp)
    if final.exists():  # a re-run of the same step (e.g. after a rollback) replaces it
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(directory)
    if keep is not None and keep > 0:
        for old in list_checkpoints(directory)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


# --------------------------------------------------------------------------------------------------
# Find, verify, load


def list_checkpoints(directory: str | os.PathLike[str]) -> list[Path]:
    """Finished checkpoint folders (``*.tmp`` excluded), oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if p.is_dir() and (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def verify(path: Path) -> None:
    """Raise :class:`CheckpointError` unless every file in the manifest exists with its size and sha256."""
    manifest_path = path / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{manifest_path}: missing or corrupt manifest ({type(exc).__name__}: {exc})") from exc
    for name, meta in files.items():
        f = path / name
        if not f.is_file():
            raise CheckpointError(f"{f}: listed in the manifest but missing")
        if f.stat().st_size != meta["size"] or file_sha256(f) != meta["sha256"]:
            raise CheckpointError(f"{f}: checksum mismatch (corrupt or partially written)")


def skip_warning(path: Path, exc: Exception) -> None:
    """Log and warn that checkpoint ``path`` is skipped (the message names it and why)."""
    msg = f"skipping invalid checkpoint {path.name}: {exc}"
    log.warning(msg)
    warnings.warn(msg, RuntimeWarning, stacklevel=3)


def valid_checkpoints(directory: str | os.PathLike[str]) -> Iterator[Path]:
    """Checkpoints that pass :func:`verify`, newest first; each one that fails is skipped with a warning."""
    for path in reversed(list_checkpoints(directory)):
        try:
            verify(path)
        except CheckpointError as exc:
            skip_warning(path, exc)
            continue
        yield path


def latest_valid(directory: str | os.PathLike[str]) -> Path | None:
    """The newest checkpoint that passes :func:`verify`; each newer one that fails is skipped with a warning
    naming it. ``None`` when there is no valid checkpoint."""
    return next(valid_checkpoints(directory), None)


@dataclass
class Loaded:
    step: int
    state: dict[str, Any]
    path: Path


def load_tensors(path: Path) -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain containers only, never arbitrary objects.

    A file whose pickle asks for anything else (e.g. a crafted payload that would run code) is refused with a
    :class:`CheckpointError` naming it; nothing in it is executed.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path}: refused: not plain tensor data (weights_only loading rejected it: {first})"
        ) from exc


def load_checkpoint(
    path: Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    restore_rng: bool = True,
    device: str | torch.device = "cpu",
) -> Loaded:
    """Load a (verified) checkpoint into ``model`` / ``optimizer`` / ``scheduler``; restore RNG states."""
    device = torch.device(device)
    load_model(model, str(path / "model.safetensors"), device="cpu" if device.type == "cpu" else str(device))
    if optimizer is not None:
        optimizer.load_state_dict(load_tensors(path / "optimizer.pt"))
    if scheduler is not None:
        scheduler.load_state_dict(load_tensors(path / "scheduler.pt"))
    if restore_rng:
        set_rng_state(load_tensors(path / "rng.pt"))
    state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    return Loaded(step=int(state["step"]), state=state, path=path)
