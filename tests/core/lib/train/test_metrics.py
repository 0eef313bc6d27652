"""Metrics, validation, optimizers, TensorBoard, pre-built models, history, device peaks, Chinchilla sizing and the
``model`` artifact: real tiny training runs, nothing mocked but the GPU name."""

import json
import math
import pickle
from pathlib import Path

import pytest
import torch

from gristmill.errors import StageInputError
from gristmill.lib.tokens import TokenDataset
from gristmill.lib.train import build_model, flops_per_token, train
from gristmill.lib.train.chinchilla import optimal_for_compute, optimal_for_params, report
from gristmill.lib.train.devices import peak_flops
from gristmill.lib.train.export import ModelArtifactError, load_causal_lm, open_model_artifact, save_model_dir
from gristmill.lib.train.loop import history
from tests.core.lib.train.helpers import dataset, tiny_model, tiny_train, write_tokens

# --------------------------------------------------------------------------------------------------
# Metrics and validation


def test_validation_and_bits_per_byte(tokens, tmp_path):
    val = TokenDataset(write_tokens(tmp_path / "val", sequences=12, seed=1), "train")
    bpt = 2.5
    cfg = tiny_train(steps=6, eval_every=2, checkpoint_every=100)
    res = train(tiny_model(), cfg, dataset(tokens), tmp_path / "run", validation=val, bytes_per_token=bpt)
    assert [e["step"] for e in res.evals] == [2, 4, 6]
    assert [m["step"] for m in res.metrics if "val_loss" in m] == [2, 4, 6]
    for e in res.evals:
        assert e["val_bits_per_byte"] == pytest.approx(e["val_loss"] / math.log(2) / bpt)
        assert e["val_perplexity"] == pytest.approx(math.exp(e["val_loss"]))
        assert e["val_tokens"] == len(val) * (val.seq_len - 1)  # 12 sequences < eval_batches × batch_size
    for m in res.metrics:
        assert m["bits_per_byte"] == pytest.approx(m["loss"] / math.log(2) / bpt)

    # the last evaluation, recomputed independently with the returned model: token-weighted mean loss
    model = res.model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(len(val)):
            ids = val[i][None]
            logits = model(input_ids=ids).logits[0, :-1]
            total += torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="sum").item()
            count += ids.shape[1] - 1
    assert res.evals[-1]["val_loss"] == pytest.approx(total / count, rel=1e-5)
    assert res.evals[-1]["val_loss"] < res.evals[0]["val_loss"]
    assert history(tmp_path / "run")[1] == res.evals  # kept in the checkpoint state


def test_update_ratio_every_n_steps_and_peak_memory(tokens, tmp_path):
    res = train(tiny_model(), tiny_train(steps=9, update_ratio_every=3), dataset(tokens), tmp_path / "run")
    assert [m["step"] for m in res.metrics if "update_ratio" in m] == [3, 6, 9]
    for m in res.metrics:
        assert m["peak_memory_bytes"] > 0 and m["flops_per_s"] > 0
        if "update_ratio" in m:
            assert math.isfinite(m["update_ratio"]) and 0 < m["update_ratio"] < 1
    assert "mfu" not in res.metrics[-1]  # CPU: no peak FLOP/s entry
    with_peak = train(tiny_model(), tiny_train(steps=1, peak_flops=1e12), dataset(tokens), tmp_path / "peak")
    m = with_peak.metrics[0]
    assert m["mfu"] == pytest.approx(m["flops_per_s"] / 1e12)


@pytest.mark.parametrize(
    "overrides",
    [{"optimizer": "adafactor", "lr": 0.1, "min_lr": 0.01}, {"optimizer": "lion", "lr": 3e-3, "min_lr": 3e-4}],
)
def test_adafactor_and_lion_learn(tokens, tmp_path, overrides):
    res = train(tiny_model(), tiny_train(checkpoint_every=100, **overrides), dataset(tokens), tmp_path / "run")
    first, last = sum(res.losses[s] for s in (1, 2, 3)) / 3, sum(res.losses[s] for s in (18, 19, 20)) / 3
    assert last < first - 0.5, res.losses


def test_tensorboard_writes_event_files(tokens, tmp_path):
    train(tiny_model(), tiny_train(steps=2, tensorboard=True), dataset(tokens), tmp_path / "run")
    events = list((tmp_path / "run").rglob("events.out.tfevents.*"))
    assert events and all(e.stat().st_size > 0 for e in events)


# --------------------------------------------------------------------------------------------------
# pre-built models, history


def test_a_prebuilt_model_starts_from_its_weights(tokens, tmp_path):
    source = train(tiny_model(), tiny_train(steps=10, checkpoint_every=100), dataset(tokens), tmp_path / "src").model
    source.save_pretrained(tmp_path / "model")  # model.safetensors with the tied embedding stored once

    with torch.no_grad():  # the source model's loss on the first batch the next run will see
        first = torch.stack([row for row, _ in zip(dataset(tokens), range(4), strict=False)])
        expected = source.eval()(input_ids=first, labels=first).loss.item()
    cfg = tiny_train(steps=1, warmup=0, lr=1e-12, min_lr=0.0, seed=5)  # another seed: the init must not matter
    loaded = load_causal_lm(tmp_path / "model", dtype="float32")
    res = train(None, cfg, dataset(tokens), tmp_path / "ft", model=loaded)
    assert res.losses[1] == pytest.approx(expected, abs=1e-5)
    assert res.flops_per_token == flops_per_token(tiny_model(), 32)  # from the HF config: the same numbers
    state = json.loads((res.checkpoint / "state.json").read_text())
    assert state["model_config"]["model_type"] == "llama" and state["model_config"]["hidden_size"] == 64
    scratch = train(tiny_model(), cfg, dataset(tokens), tmp_path / "scratch")
    assert scratch.losses[1] > expected + 0.25


def test_a_prebuilt_model_that_does_not_fit_the_data_is_refused(tokens, tmp_path):
    small_vocab = build_model(tiny_model().model_copy(update={"vocab_size": 100}))
    with pytest.raises(StageInputError, match=r"vocab_size 256 exceeds the model's 100 embedding rows"):
        train(None, tiny_train(steps=1), dataset(tokens), tmp_path / "a", model=small_vocab)
    short = build_model(tiny_model().model_copy(update={"max_seq_len": 16}))
    with pytest.raises(StageInputError, match=r"seq_len 32 exceeds the model's max_position_embeddings 16"):
        train(None, tiny_train(steps=1), dataset(tokens), tmp_path / "b", model=short)
    with pytest.raises(TypeError, match="model_cfg"):
        train(None, tiny_train(steps=1), dataset(tokens), tmp_path / "c")


def test_history_spans_stop_and_resume(tokens, tmp_path):
    cfg = tiny_train(steps=8, checkpoint_every=3)
    part = train(tiny_model(), cfg, dataset(tokens), tmp_path / "run", stop_after=7)  # newest checkpoint: 6
    rest = train(tiny_model(), cfg, dataset(tokens), tmp_path / "run")
    assert rest.resumed_from.name == "ckpt-000006"
    steps, evals = history(tmp_path / "run")
    expected = [[s, part.losses[s]] for s in range(1, 7)] + [[s, rest.losses[s]] for s in (7, 8)]
    assert steps == expected and evals == []
    assert history(tmp_path / "nowhere") == ([], [])


# --------------------------------------------------------------------------------------------------
# Device peaks, Chinchilla


def test_peak_flops_table(monkeypatch):
    assert peak_flops("cpu", 123e12) == 123e12  # configured wins
    assert peak_flops("cpu") is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    expected = {
        "NVIDIA H100 80GB HBM3": 989e12,
        "NVIDIA H100 PCIe": 756e12,
        "NVIDIA A100-SXM4-80GB": 312e12,
        "Some Future GPU": None,
    }
    for name, peak in expected.items():
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None, name=name: name)
        assert peak_flops("cuda") == peak, name
    assert peak_flops("cuda", 1e15) == 1e15


def test_chinchilla_arithmetic():
    n = 1e9
    p = optimal_for_params(n)
    assert p["tokens"] == 20 * n and p["flops"] == 6 * n * 20 * n
    c = optimal_for_compute(p["flops"])  # the inverse
    assert c["params"] == pytest.approx(n) and c["tokens"] == pytest.approx(20 * n)
    r = report(params=1_000_000, tokens=5_000_000)
    assert r["tokens_per_param"] == 5 and r["compute_flops"] == 6 * 1e6 * 5e6
    assert r["optimal_tokens_for_params"] == 20_000_000
    assert r["optimal_params_for_compute"] == round(math.sqrt(6 * 1e6 * 5e6 / 120))  # C = 6·N·20N
    assert r["optimal_tokens_for_compute"] == pytest.approx(20 * r["optimal_params_for_compute"], abs=20)


# --------------------------------------------------------------------------------------------------
# model artifact


def _tokenizer_dir(folder: Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    text = ["the quick brown fox jumps over the lazy dog", "a stitch in time saves nine"] * 20
    tok.train_from_iterator(text, trainers.BpeTrainer(vocab_size=120, special_tokens=["<unk>", "<s>", "</s>", "<pad>"]))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    fast.save_pretrained(folder)
    return folder


def test_save_model_dir_round_trip_generates(tmp_path):
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    model = build_model(tiny_model())
    save_model_dir(model, tmp_path / "model", _tokenizer_dir(tmp_path / "tok"))
    folder = open_model_artifact(tmp_path / "model")
    assert folder.model_type == "llama" and folder.config["hidden_size"] == tiny_model().d_model
    loaded = load_causal_lm(tmp_path / "model")
    tok = AutoTokenizer.from_pretrained(tmp_path / "model")
    assert loaded.generation_config.eos_token_id == tok.eos_token_id == tok.convert_tokens_to_ids("</s>")
    ids = tok("the quick brown fox", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=ids).logits, model.eval()(input_ids=ids).logits)
    out = loaded.generate(ids, max_new_tokens=5, do_sample=False, min_new_tokens=5)
    assert out.shape == (1, ids.shape[1] + 5) and torch.equal(out[:, : ids.shape[1]], ids)
    assert isinstance(tok.decode(out[0]), str)


class _Trap:
    """Unpickling this creates ``path``: proof that a loader unpickled the file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


def test_open_model_artifact_errors_name_the_file(tmp_path):
    config = build_model(tiny_model()).config

    def folder(name: str) -> Path:
        root = tmp_path / name
        root.mkdir()
        config.to_json_file(root / "config.json")
        return root

    bad = folder("corrupt")
    (bad / "config.json").write_text("{not json")
    with pytest.raises(ModelArtifactError, match=r"corrupt/config\.json"):
        open_model_artifact(bad)

    unknown = folder("unknown")
    build_model(tiny_model()).save_pretrained(unknown)
    (unknown / "config.json").write_text(json.dumps({"model_type": "not_a_model"}))
    with pytest.raises(ModelArtifactError, match=r"unknown/config\.json: unknown model_type 'not_a_model'"):
        open_model_artifact(unknown)

    pickled = folder("pickled")
    sentinel = tmp_path / "unpickled"
    (pickled / "pytorch_model.bin").write_bytes(pickle.dumps(_Trap(sentinel)))
    for opener in (open_model_artifact, load_causal_lm):
        with pytest.raises(ModelArtifactError, match=r"pickled/pytorch_model\.bin: weights only as a pickle"):
            opener(pickled)
    assert not sentinel.exists()

    garbage = folder("garbage")
    (garbage / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelArtifactError, match=r"garbage/model\.safetensors"):
        open_model_artifact(garbage)
