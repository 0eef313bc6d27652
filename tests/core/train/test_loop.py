"""The training loop: learning, exact resume, checkpoint fallback, safe loading."""

import json
import math
import warnings

import pytest
import torch

from gristmill.train import latest_valid, train
from gristmill.train.checkpoint import list_checkpoints
from tests.core.train.helpers import dataset, tiny_model, tiny_train


def test_loss_decreases_and_metrics_are_logged(tokens, tmp_path):
    logged = []
    res = train(tiny_model(), tiny_train(), dataset(tokens), tmp_path / "run", log_fn=logged.append)
    assert res.step == 20 and sorted(res.losses) == list(range(1, 21))
    first, last = sum(res.losses[s] for s in (1, 2, 3)) / 3, sum(res.losses[s] for s in (18, 19, 20)) / 3
    assert last < first - 0.5, res.losses
    assert [m["step"] for m in logged] == list(range(1, 21))
    for key in ("loss", "lr", "grad_norm", "tokens_per_s", "token_accuracy", "perplexity"):
        assert key in logged[-1]
    assert logged[-1]["token_accuracy"] > logged[0]["token_accuracy"]
    # keep_checkpoints=3 of steps 5, 10, 15, 20; no temp folders left
    ckpts = list_checkpoints(tmp_path / "run" / "checkpoints")
    assert [p.name for p in ckpts] == ["ckpt-000010", "ckpt-000015", "ckpt-000020"]
    assert not list((tmp_path / "run" / "checkpoints").glob("*.tmp"))
    assert res.checkpoint == ckpts[-1]


def test_resumed_run_is_bitwise_identical(tokens, tmp_path):
    cfg = tiny_train(grad_accum=2, batch_size=2)
    full = train(tiny_model(), cfg, dataset(tokens), tmp_path / "full")

    part = train(tiny_model(), cfg, dataset(tokens), tmp_path / "part", stop_after=12)  # "crash" after step 12
    assert part.step == 12 and part.checkpoint.name == "ckpt-000010"
    resumed = train(tiny_model(), cfg, dataset(tokens), tmp_path / "part")
    assert resumed.resumed_from.name == "ckpt-000010"
    assert sorted(resumed.losses) == list(range(11, 21))
    for step in range(11, 21):
        assert resumed.losses[step] == full.losses[step], step  # exact, not approx
    for step in range(1, 13):
        assert part.losses[step] == full.losses[step], step


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
        "model.safetensors", "optimizer.pt", "scheduler.pt", "rng.pt", "state.json", "manifest.json",
    }  # fmt: skip


def test_nan_loss_rolls_back_and_skips_the_batch(tokens, tmp_path, monkeypatch, caplog):
    from gristmill.train import loop

    calls = {"n": 0}
    original_build = loop.build_model

    def poisoned_build(cfg):
        model = original_build(cfg)

        def hook(module, args, kwargs, output):
            calls["n"] += 1
            if calls["n"] == 8:  # the forward of step 8
                output.loss = output.loss * float("nan")
            return output

        model.register_forward_hook(hook, with_kwargs=True)
        return model

    monkeypatch.setattr(loop, "build_model", poisoned_build)
    with caplog.at_level("WARNING", logger="gristmill.train.loop"):
        res = train(tiny_model(), tiny_train(steps=12), dataset(tokens), tmp_path / "run")
    assert res.spikes == 1 and res.step == 12
    assert "loss spike at step 8" in caplog.text and "rolled back to ckpt-000005" in caplog.text
    # steps 1-7, then 6-12 again after the rollback (on later data)
    assert [m["step"] for m in res.metrics] == [*range(1, 8), *range(6, 13)]
    assert all(math.isfinite(v) for v in res.losses.values())
    state = json.loads((res.checkpoint / "state.json").read_text())
    assert state["counters"]["spikes"] == 1


def test_spike_limit_raises(tokens, tmp_path):
    from gristmill.train.loop import LossSpikeError

    with pytest.raises(LossSpikeError, match="exceed max_spikes=0"):
        # lr=1e3 blows up within a few steps; a spike factor of 1.0 catches the first rise
        train(tiny_model(), tiny_train(lr=1e3, min_lr=1.0, warmup=0, max_spikes=0, spike_warmup=1, spike_factor=1.0),
              dataset(tokens), tmp_path / "run")  # fmt: skip


@pytest.mark.parametrize("overrides", [{"optimizer": "lion", "lr": 1e-3, "min_lr": 1e-4}, {"precision": "bf16"}])
def test_other_optimizer_and_bf16_train(tokens, tmp_path, overrides):
    res = train(tiny_model(), tiny_train(steps=4, warmup=1, **overrides), dataset(tokens), tmp_path / "run")
    assert res.step == 4 and all(math.isfinite(v) for v in res.losses.values())


def test_stale_tmp_folder_is_ignored_and_replaced(tokens, tmp_path):
    ckpt_dir = tmp_path / "run" / "checkpoints"
    (ckpt_dir / "ckpt-000005.tmp").mkdir(parents=True)  # a crash while writing step 5
    (ckpt_dir / "ckpt-000005.tmp" / "model.safetensors").write_bytes(b"partial")
    assert latest_valid(ckpt_dir) is None
    res = train(tiny_model(), tiny_train(steps=5), dataset(tokens), tmp_path / "run")
    assert res.resumed_from is None and res.checkpoint == ckpt_dir / "ckpt-000005"
    assert not (ckpt_dir / "ckpt-000005.tmp").exists()


def test_pad_tokens_get_no_loss(tmp_path):
    from gristmill.tokens import TokenDataset, TokensWriter

    # one short document per sequence, the rest padding: pads must not count in the loss or accuracy
    with TokensWriter(tmp_path / "tok", seq_len=32, vocab_size=256, eos_id=1, pad_id=2, remainder="pad") as w:
        w.add("train", [5, 6, 7, 1])
    res = train(tiny_model(), tiny_train(steps=2, warmup=0), TokenDataset(tmp_path / "tok"), tmp_path / "run")
    assert all(math.isfinite(v) for v in res.losses.values())
    assert res.metrics[0]["token_accuracy"] in {0.0, 1 / 3, 2 / 3, 1.0}  # 3 real targets per sequence
