"""The tokens format: TokensWriter packing, TokenDataset reading, resumable iteration and clear errors."""

import json
import pickle
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch

from gristmill.lib.tokens import INDEX_NAME, TokenDataset, TokensFormatError, TokensWriter, dtype_for_vocab, read_index
from gristmill.testing import artifact_from_dir

EOS = 1
PAD = 2


def _documents(n: int, vocab: int, seed: int = 0) -> list[np.ndarray]:
    """Random documents of 1..40 ids in [3, vocab), each followed by EOS."""
    rng = np.random.default_rng(seed)
    return [np.append(rng.integers(3, vocab, rng.integers(1, 41)), EOS) for _ in range(n)]


def _write(folder: Path, docs: list[np.ndarray], **kwargs) -> dict:
    opts = {"seq_len": 8, "vocab_size": 1000, "eos_id": EOS, "pad_id": PAD, "shard_sequences": 5} | kwargs
    with TokensWriter(folder, **opts) as writer:
        for i, doc in enumerate(docs):
            writer.add("validation" if i % 10 == 0 else "train", doc, nbytes=3 * len(doc))
    return writer.index


@pytest.fixture
def packed(tmp_path: Path) -> tuple[Path, list[np.ndarray], dict]:
    docs = _documents(200, 1000)
    return tmp_path / "tok", docs, _write(tmp_path / "tok", docs)


def test_writer_packs_whole_sequences_into_shards(packed):
    folder, docs, index = packed
    stream = np.concatenate([d for i, d in enumerate(docs) if i % 10])
    train = index["splits"]["train"]
    assert index["dtype"] == "uint16" and index["seq_len"] == 8
    assert train["document_tokens"] == len(stream) and train["documents"] == 180
    assert train["sequences"] == len(stream) // 8 and train["dropped_tokens"] == len(stream) % 8
    assert train["bytes"] == 3 * len(stream)
    assert [s["file"] for s in train["shards"]][:2] == ["train/00000.bin", "train/00001.bin"]
    assert all(s["sequences"] == 5 for s in train["shards"][:-1]) and 1 <= train["shards"][-1]["sequences"] <= 5
    for shard in train["shards"]:
        assert (folder / shard["file"]).stat().st_size == shard["sequences"] * 8 * 2
    on_disk = np.concatenate([np.fromfile(folder / s["file"], dtype="<u2") for s in train["shards"]])
    assert np.array_equal(on_disk, stream[: len(on_disk)])
    assert json.loads((folder / INDEX_NAME).read_text()) == index


def test_dataset_items_are_long_tensors_of_seq_len(packed):
    folder, docs, index = packed
    ds = TokenDataset(folder, "train")
    stream = np.concatenate([d for i, d in enumerate(docs) if i % 10])
    assert len(ds) == index["splits"]["train"]["sequences"] and ds.num_tokens == len(ds) * 8
    for i in (0, 4, 5, len(ds) - 1):  # first/last of a shard, first of the next
        item = ds[i]
        assert item.dtype == torch.int64 and item.shape == (8,)
        assert item.tolist() == stream[i * 8 : (i + 1) * 8].tolist()
    assert torch.equal(ds[-1], ds[len(ds) - 1])
    with pytest.raises(IndexError):
        ds[len(ds)]
    val = TokenDataset(artifact_from_dir("tokens", folder), "validation")
    assert len(val) == index["splits"]["validation"]["sequences"]
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch.shape == (4, 8) and batch.dtype == torch.int64


def test_uint32_for_vocab_at_least_65536(tmp_path: Path):
    assert dtype_for_vocab(65_535) == "uint16"
    assert dtype_for_vocab(65_536) == "uint32"
    docs = [np.array([70_000, 65_536, 3, 65_535, EOS]), np.array([100_000 - 1, 5, EOS]), np.array([99_000, 7, EOS])]
    index = _write(tmp_path / "big", docs, seq_len=4, vocab_size=100_000, shard_sequences=2)
    assert index["dtype"] == "uint32"
    shard = tmp_path / "big" / index["splits"]["train"]["shards"][0]["file"]
    assert shard.stat().st_size == 4 * 4 * index["splits"]["train"]["sequences"]
    ds = TokenDataset(tmp_path / "big", "train")
    assert ds[0].tolist() == [99_999, 5, EOS, 99_000]


def test_ids_outside_vocab_are_rejected(tmp_path: Path):
    with TokensWriter(tmp_path / "t", seq_len=4, vocab_size=500, eos_id=EOS) as writer:
        with pytest.raises(ValueError, match="outside"):
            writer.add("train", [1, 2, 500])
        with pytest.raises(ValueError, match="outside"):
            writer.add("train", [-1])
        with pytest.raises(KeyError, match="unknown split"):
            writer.add("test", [1])
    with pytest.raises(ValueError, match="pad_id"):
        TokensWriter(tmp_path / "u", seq_len=4, vocab_size=500, eos_id=EOS, remainder="pad")


def test_pad_remainder(tmp_path: Path):
    docs = _documents(50, 1000, seed=1)
    index = _write(tmp_path / "p", docs, remainder="pad")
    for name, split in index["splits"].items():
        assert split["dropped_tokens"] == 0
        assert split["sequences"] * 8 == split["document_tokens"] + split["padding_tokens"]
        assert 0 <= split["padding_tokens"] < 8
        if split["padding_tokens"]:
            last = TokenDataset(tmp_path / "p", name)[-1].tolist()
            assert last[-split["padding_tokens"] :] == [PAD] * split["padding_tokens"]


@pytest.mark.parametrize("shuffle", [False, True])
def test_iteration_resumes_exactly(packed, shuffle: bool):
    folder, _, _ = packed
    ds = TokenDataset(folder, "train", shuffle=shuffle, seed=7)
    n = len(ds)
    reference = [t.tolist() for t in islice(_epochs(TokenDataset(folder, "train", shuffle=shuffle, seed=7)), n + 5)]
    it = iter(ds)
    first = [next(it).tolist() for _ in range(7)]
    state = ds.state_dict()
    assert state["position"] == 7 and state["epoch"] == 0
    resumed = TokenDataset(folder, "train", shuffle=shuffle, seed=7)
    resumed.load_state_dict(json.loads(json.dumps(state)))  # survives a JSON round trip (checkpoints)
    rest = [t.tolist() for t in resumed] + [t.tolist() for t in islice(resumed, 5)]  # into epoch 1
    assert first + rest == reference
    assert resumed.state_dict()["epoch"] == 1 and resumed.state_dict()["position"] == 5
    if shuffle:
        assert sorted(map(tuple, reference[:n])) == sorted(tuple(ds[i].tolist()) for i in range(n))
        assert not np.array_equal(ds.order(0), ds.order(1))
        assert np.array_equal(ds.order(1), TokenDataset(folder, "train", shuffle=True, seed=7).order(1))
    else:
        assert reference[:n] == [ds[i].tolist() for i in range(n)]


def _epochs(ds: TokenDataset):
    while True:
        yield from ds


def test_state_dict_mismatch_and_pickling(packed):
    folder, _, _ = packed
    ds = TokenDataset(folder, "train", shuffle=True, seed=1)
    ds[0]  # opens a memmap
    with pytest.raises(ValueError, match="seed"):
        ds.load_state_dict(TokenDataset(folder, "train", shuffle=True, seed=2).state_dict())
    with pytest.raises(ValueError, match="split"):
        ds.load_state_dict(TokenDataset(folder, "validation", shuffle=True, seed=1).state_dict())
    with pytest.raises(ValueError, match="out of range"):
        ds.load_state_dict(ds.state_dict() | {"position": len(ds) + 1})
    blob = pickle.dumps(ds)
    assert len(blob) < 10_000  # no token data travels to DataLoader workers
    assert torch.equal(pickle.loads(blob)[3], ds[3])


def test_clear_errors_for_broken_artifacts(packed, tmp_path: Path):
    folder, _, index = packed
    with pytest.raises(TokensFormatError, match="missing index.json"):
        TokenDataset(tmp_path / "nowhere")
    with pytest.raises(TokensFormatError, match="no split 'test'"):
        TokenDataset(folder, "test")

    shard = folder / index["splits"]["train"]["shards"][1]["file"]
    data = shard.read_bytes()
    shard.write_bytes(data[:-1])
    with pytest.raises(TokensFormatError, match=r"00001\.bin: size .* not a multiple of seq_len × itemsize"):
        TokenDataset(folder, "train")
    shard.write_bytes(data + data[:16])  # one whole extra sequence
    with pytest.raises(TokensFormatError, match=r"00001\.bin: holds 6 sequences but index.json says 5"):
        TokenDataset(folder, "train")
    shard.unlink()
    with pytest.raises(TokensFormatError, match=r"00001\.bin: shard listed in index.json is missing"):
        TokenDataset(folder, "train")
    TokenDataset(folder, "validation")  # the other split is intact

    (folder / INDEX_NAME).write_text('{"dtype": "uint16", "seq_len": 8')
    with pytest.raises(TokensFormatError, match="corrupt index.json"):
        read_index(folder)
    (folder / INDEX_NAME).write_text(json.dumps(index | {"seq_len": "8"}))
    with pytest.raises(TokensFormatError, match="'seq_len' missing or not int"):
        TokenDataset(folder)
    (folder / INDEX_NAME).write_text(json.dumps(index | {"dtype": "int8"}))
    with pytest.raises(TokensFormatError, match="unknown dtype 'int8'"):
        TokenDataset(folder)
