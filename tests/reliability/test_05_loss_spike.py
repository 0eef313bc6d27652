"""Case 5: an injected loss spike / NaN is detected, rolled back to the last checkpoint, the batch skipped and
counted; past ``max_spikes`` the run stops with a clear error."""

import json
import math

import pytest

from gristmill.lib.train import train
from tests.core.lib.train.helpers import dataset, tiny_model, tiny_train


def test_nan_loss_rolls_back_and_skips_the_batch(tokens, tmp_path, monkeypatch, caplog):
    from gristmill.lib.train import loop

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
    with caplog.at_level("WARNING", logger="gristmill.lib.train.loop"):
        res = train(tiny_model(), tiny_train(steps=12), dataset(tokens), tmp_path / "run")
    assert res.spikes == 1 and res.step == 12
    assert "loss spike at step 8" in caplog.text and "rolled back to ckpt-000005" in caplog.text
    # steps 1-7, then 6-12 again after the rollback (on later data)
    assert [m["step"] for m in res.metrics] == [*range(1, 8), *range(6, 13)]
    assert all(math.isfinite(v) for v in res.losses.values())
    state = json.loads((res.checkpoint / "state.json").read_text())
    assert state["counters"]["spikes"] == 1


def test_spike_limit_raises(tokens, tmp_path):
    from gristmill.lib.train.loop import LossSpikeError

    with pytest.raises(LossSpikeError, match="exceed max_spikes=0"):
        # lr=1e3 blows up within a few steps; a spike factor of 1.0 catches the first rise
        train(
            tiny_model(),
            tiny_train(lr=1e3, min_lr=1.0, warmup=0, max_spikes=0, spike_warmup=1, spike_factor=1.0),
            dataset(tokens),
            tmp_path / "run",
        )
