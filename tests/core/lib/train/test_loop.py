"""The training loop: learning, exact resume, checkpoint fallback, safe loading."""

import math

import pytest

from gristmill.lib.train import latest_valid, train
from gristmill.lib.train.checkpoint import list_checkpoints
from tests.core.lib.train.helpers import dataset, tiny_model, tiny_train


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
    cfg = tiny_train(gradient_accumulation_steps=2, batch_size=2)
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
    from gristmill.lib.tokens import TokenDataset, TokensWriter

    # one short document per sequence, the rest padding: pads must not count in the loss or accuracy
    with TokensWriter(tmp_path / "tok", seq_len=32, vocab_size=256, eos_id=1, pad_id=2, remainder="pad") as w:
        w.add("train", [5, 6, 7, 1])
    res = train(tiny_model(), tiny_train(steps=2, warmup=0), TokenDataset(tmp_path / "tok"), tmp_path / "run")
    assert all(math.isfinite(v) for v in res.losses.values())
    assert res.metrics[0]["token_accuracy"] in {0.0, 1 / 3, 2 / 3, 1.0}  # 3 real targets per sequence
