"""Case 2: a corrupt newest checkpoint → the previous valid one is used, with a warning naming the bad one."""

import warnings

import pytest

from gristmill.lib.train import latest_valid, train
from tests.core.lib.train.helpers import dataset, tiny_model, tiny_train


def test_corrupt_newest_checkpoint_falls_back_with_warning(tokens, tmp_path):
    cfg = tiny_train(steps=10)
    train(tiny_model(), cfg, dataset(tokens), tmp_path / "run")
    ckpt_dir = tmp_path / "run" / "checkpoints"
    newest = ckpt_dir / "ckpt-000010" / "model.safetensors"
    data = bytearray(newest.read_bytes())
    data[-10:] = bytes(b ^ 0xFF for b in data[-10:])
    newest.write_bytes(bytes(data))

    with pytest.warns(RuntimeWarning, match="ckpt-000010"):
        assert latest_valid(ckpt_dir) == ckpt_dir / "ckpt-000005"
    with pytest.warns(RuntimeWarning, match="ckpt-000010"):
        res = train(tiny_model(), cfg, dataset(tokens), tmp_path / "run")
    assert res.resumed_from.name == "ckpt-000005" and sorted(res.losses) == list(range(6, 11))


def test_missing_manifest_is_invalid(tmp_path):
    (tmp_path / "ckpt-000001").mkdir()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert latest_valid(tmp_path) is None
    assert any("ckpt-000001" in str(w.message) for w in caught)
    assert latest_valid(tmp_path / "nowhere") is None
