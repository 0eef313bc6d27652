"""Case 6: files carrying a pickle payload are refused and never executed. Weights are read only from safetensors;
optimizer/scheduler/RNG state only with ``torch.load(weights_only=True)``.

The payload is real: an object whose ``__reduce__`` calls ``Path.touch`` on a marker file, pickled by
``torch.save``. Had anything unpickled it the usual way, the marker would exist.
"""

import json
import pathlib
import warnings

import pytest
import torch

from gristmill.hashing import file_sha256
from gristmill.lib.train import train
from gristmill.lib.train.checkpoint import CheckpointError, load_tensors
from gristmill.lib.train.export import ModelArtifactError, load_causal_lm
from tests.core.lib.train.helpers import dataset, tiny_model, tiny_train


class Payload:
    """Unpickling this calls ``Path(marker).touch()``: code execution, in miniature."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def _plant(path: pathlib.Path, marker: pathlib.Path) -> None:
    """Replace ``path`` with the payload and re-sign the checkpoint manifest, so only the loader can catch it."""
    torch.save({"state": {}, "param_groups": [], "evil": Payload(marker)}, path)
    manifest_path = path.parent / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"][path.name] = {"size": path.stat().st_size, "sha256": file_sha256(path)}
    manifest_path.write_text(json.dumps(manifest))


def test_checkpoint_files_load_without_unpickling(tokens, tmp_path):
    train(tiny_model(), tiny_train(steps=5), dataset(tokens), tmp_path / "run")
    ckpt = tmp_path / "run" / "checkpoints" / "ckpt-000005"
    opt = torch.load(ckpt / "optimizer.pt", weights_only=True)
    assert opt["state"] and len(opt["param_groups"]) == 2
    sched = torch.load(ckpt / "scheduler.pt", weights_only=True)
    assert sched["last_epoch"] == 5
    rng = torch.load(ckpt / "rng.pt", weights_only=True)
    assert set(rng) >= {"python", "numpy", "torch"}
    assert {p.name for p in ckpt.iterdir()} == {
        "model.safetensors",
        "optimizer.pt",
        "scheduler.pt",
        "rng.pt",
        "state.json",
        "manifest.json",
    }


def test_crafted_checkpoint_is_refused_and_the_previous_one_used(tokens, tmp_path):
    cfg = tiny_train(steps=10)
    full = train(tiny_model(), cfg, dataset(tokens), tmp_path / "full")
    train(tiny_model(), cfg, dataset(tokens), tmp_path / "run")
    marker = tmp_path / "PWNED"
    newest = tmp_path / "run" / "checkpoints" / "ckpt-000010"
    _plant(newest / "optimizer.pt", marker)

    with pytest.raises(CheckpointError, match=r"optimizer\.pt: refused: not plain tensor data"):
        load_tensors(newest / "optimizer.pt")
    with pytest.warns(RuntimeWarning, match=r"ckpt-000010.*optimizer\.pt: refused"):
        res = train(tiny_model(), cfg, dataset(tokens), tmp_path / "run")
    assert not marker.exists()
    assert res.resumed_from.name == "ckpt-000005"
    assert [res.losses[s] for s in range(6, 11)] == [full.losses[s] for s in range(6, 11)]  # nothing leaked in


def test_no_usable_checkpoint_left_is_an_error_not_a_silent_restart(tokens, tmp_path):
    cfg = tiny_train(steps=5)
    train(tiny_model(), cfg, dataset(tokens), tmp_path / "run")
    marker = tmp_path / "PWNED"
    _plant(tmp_path / "run" / "checkpoints" / "ckpt-000005" / "rng.pt", marker)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(CheckpointError, match=r"no usable checkpoint .*rng\.pt: refused"):
            train(tiny_model(), cfg, dataset(tokens), tmp_path / "run")
    assert not marker.exists()


def _llama_folder(folder: pathlib.Path) -> pathlib.Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=32,
    )
    LlamaForCausalLM(config).save_pretrained(str(folder), safe_serialization=True)
    return folder


def test_model_artifact_weights_come_only_from_safetensors(tmp_path):
    marker = tmp_path / "PWNED"
    folder = _llama_folder(tmp_path / "model")
    torch.save({"model.embed_tokens.weight": Payload(marker)}, folder / "pytorch_model.bin")
    model = load_causal_lm(folder)  # a .bin beside the safetensors is never opened
    assert model.config.model_type == "llama" and not marker.exists()

    (folder / "model.safetensors").unlink()  # only the pickle left: refused before transformers sees it
    with pytest.raises(
        ModelArtifactError,
        match=r"pytorch_model\.bin: weights only as a pickle; gristmill reads safetensors only",
    ):
        load_causal_lm(folder)
    assert not marker.exists()
