"""tokens stage on real text: encode + pack into shards, read back with TokenDataset, errors and determinism."""

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from gristmill import Input
from gristmill.lib.documents import DocumentsError, DocumentWriter, iter_documents
from gristmill.lib.tokens import TokenDataset, TokensFormatError
from gristmill.plugins import collect_stages, create_plugin_manager
from gristmill.testing import artifact_from_dir, run_stage
from gristmill_plugins import tokenizer as tokenizer_stage
from gristmill_plugins.tokens import SPEC, TokenizerArtifactError, TokensConfig, split_bucket

pytestmark = pytest.mark.shared_data

BOOKS = ("tinyshakespeare.txt", "pride_and_prejudice.txt")
EXTRA = [
    "Emoji 🙂🚀 and ünïcödé survive packing.",
    "A scraped page that mentions <|eos|> and <|im_end|> as text must not create separators.",
    "",  # an empty document still gets its EOS
]
SEQ = 256


def _write_documents(shared_data: Path, folder: Path) -> Path:
    with DocumentWriter(folder, shard_size=4000) as writer:
        for book in BOOKS:
            text = (shared_data / "pretrain" / book).read_text(encoding="utf-8")
            for i, para in enumerate(p for p in text.split("\n\n") if p.strip()):
                writer.write({"text": para + "\n", "id": f"{book}#{i}", "metadata": {}})
        for i, text in enumerate(EXTRA):
            writer.write({"text": text, "id": f"extra#{i}", "metadata": {}})
    return folder


@pytest.fixture(scope="module")
def books(shared_data: Path, tmp_path_factory) -> Path:
    return _write_documents(shared_data, tmp_path_factory.mktemp("books"))


@pytest.fixture(scope="module")
def tokenizer_dir(books: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tokenizer")
    run_stage(tokenizer_stage.SPEC, out, {"vocab_size": 4096}, {"documents": _art("documents", books)})
    return out


@pytest.fixture(scope="module")
def packed(books: Path, tokenizer_dir: Path, tmp_path_factory):
    out = tmp_path_factory.mktemp("tokens")
    result, _ = run_stage(SPEC, out, {"shard_sequences": 1000}, _inputs(books, tokenizer_dir))
    return result, out


def _art(kind: str, path: Path):
    return artifact_from_dir(kind, path)


def _inputs(documents: Path, tokenizer: Path) -> dict:
    return {"documents": _art("documents", documents), "tokenizer": _art("tokenizer", tokenizer)}


def _split_texts(books: Path, validation: bool, fraction: float = 0.01, seed: int = 0) -> list[str]:
    return [d["text"] for d in iter_documents(books) if (split_bucket(d["id"], seed) < fraction) is validation]


def _stream(out: Path, split: str) -> np.ndarray:
    ds = TokenDataset(out, split)
    return np.concatenate([ds.array(i) for i in range(len(ds))]) if len(ds) else np.zeros(0, dtype=ds.dtype)


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_counts_and_index(packed, books: Path):
    result, out = packed
    c = result.counts
    assert list(c)[:4] == ["train_tokens", "train_sequences", "validation_tokens", "validation_sequences"]
    n_docs = sum(1 for _ in iter_documents(books))
    assert c["documents"] == c["train_documents"] + c["validation_documents"] == n_docs
    assert c["validation_documents"] == len(_split_texts(books, True)) > 50
    assert c["train_tokens"] == c["train_sequences"] * SEQ and c["validation_sequences"] > 0
    assert c["train_tokens"] + c["validation_tokens"] + c["dropped_tokens"] == c["document_tokens"]
    assert c["waste_fraction"] <= 0.01 and c["dropped_tokens"] < 2 * SEQ and c["padding_tokens"] == 0
    assert c["bytes"] == sum(len(d["text"].encode()) for d in iter_documents(books))
    assert 2.5 < c["bytes_per_token"] < 5.0 and c["shards"] == 4  # train: 1000 + 1000 + rest; validation: 1
    assert result.metadata["document_length_histogram"].text.startswith("![document lengths in tokens](data:image/png")
    assert {p.name for p in out.iterdir()} == {"index.json", "train", "validation"}  # no plot files in the artifact

    ds = TokenDataset(out, "train")
    assert ds.dtype == np.dtype("<u2") and len(ds) == c["train_sequences"]
    assert (out / "train" / "00000.bin").stat().st_size == 1000 * SEQ * 2
    item = ds[len(ds) - 1]
    assert item.shape == (SEQ,) and str(item.dtype) == "torch.int64" and int(item.max()) < 4096


@pytest.mark.parametrize("split", ["train", "validation"])
def test_documents_are_separated_by_eos_in_order(packed, books: Path, tokenizer_dir: Path, split: str):
    from tokenizers import Tokenizer

    _, out = packed
    tok = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    eos = tok.token_to_id("<|eos|>")
    assert TokenDataset(out, split).eos_id == eos
    stream = _stream(out, split)
    ends = np.flatnonzero(stream == eos)
    texts = _split_texts(books, split == "validation")
    # every EOS closes exactly one document, in document order; the tail after the last EOS was cut off
    assert len(texts) - 5 < len(ends) <= len(texts)
    starts = np.concatenate([[0], ends[:-1] + 1])
    decoded = tok.decode_batch(
        [stream[s:e].tolist() for s, e in zip(starts, ends, strict=True)], skip_special_tokens=False
    )
    assert decoded == texts[: len(ends)]


def test_special_token_text_stays_text(packed, books: Path):
    _, out = packed
    stream = _stream(out, "train")
    im_end = 4
    assert not np.any(stream == im_end) and not np.any(stream == 0)  # no <|im_end|> / <|bos|> ids from text


def test_resumable_iteration_on_real_tokens(packed):
    _, out = packed
    ds = TokenDataset(out, "train", shuffle=True, seed=11)
    it = iter(ds)
    for _ in range(37):
        next(it)
    state = ds.state_dict()
    expected = [next(it).tolist() for _ in range(20)]
    resumed = TokenDataset(out, "train", shuffle=True, seed=11)
    resumed.load_state_dict(state)
    it2 = iter(resumed)
    assert [next(it2).tolist() for _ in range(20)] == expected


def test_deterministic_output(packed, books: Path, tokenizer_dir: Path, tmp_path: Path):
    result, out = packed
    again, _ = run_stage(SPEC, tmp_path / "again", {"shard_sequences": 1000}, _inputs(books, tokenizer_dir))
    assert again.counts == result.counts
    assert _hashes(tmp_path / "again") == _hashes(out)


def test_pad_remainder_bos_and_small_batches(books: Path, tokenizer_dir: Path, tmp_path: Path):
    cfg = {"seq_len": 64, "remainder": "pad", "add_bos": True, "batch_size": 7, "max_documents": 300}
    result, _ = run_stage(SPEC, tmp_path / "p", cfg, _inputs(books, tokenizer_dir))
    c = result.counts
    assert c["documents"] == 300 and c["dropped_tokens"] == 0 and 0 < c["padding_tokens"] < 2 * 64
    assert c["train_tokens"] + c["validation_tokens"] == c["document_tokens"] + c["padding_tokens"]
    ds = TokenDataset(tmp_path / "p", "train")
    assert ds.bos_id == 0 and ds.pad_id == 2
    stream = _stream(tmp_path / "p", "train")
    assert stream[0] == 0 and np.all(stream[np.flatnonzero(stream == 1)[:-1] + 1] == 0)  # BOS after every EOS
    last = ds[-1].tolist()
    pad = last.index(2)
    assert last[pad - 1] == 1 and set(last[pad:]) == {2}  # the last document's EOS, then padding
    assert result.metadata["format"]["remainder"] == "pad"


def test_truncated_shard_is_named(packed, tmp_path: Path):
    _, out = packed
    copy = shutil.copytree(out, tmp_path / "copy")
    shard = copy / "train" / "00001.bin"
    shard.write_bytes(shard.read_bytes()[:-3])
    with pytest.raises(TokensFormatError, match=r"train/00001\.bin: size .* not a multiple of seq_len × itemsize"):
        TokenDataset(copy, "train")


def test_corrupt_or_missing_tokenizer_is_named(books: Path, tokenizer_dir: Path, tmp_path: Path):
    bad = shutil.copytree(tokenizer_dir, tmp_path / "bad")
    data = (bad / "tokenizer.json").read_bytes()
    (bad / "tokenizer.json").write_bytes(data[: len(data) // 2])
    with pytest.raises(TokenizerArtifactError, match=r"corrupt tokenizer.json in input tokenizer artifact .*bad"):
        run_stage(SPEC, tmp_path / "o1", {}, _inputs(books, bad))
    (bad / "tokenizer.json").write_text('{"model": {"type": "NoSuchModel"}}')
    with pytest.raises(TokenizerArtifactError, match=r"tokenizer.json in input tokenizer artifact .* does not load"):
        run_stage(SPEC, tmp_path / "o2", {}, _inputs(books, bad))
    (bad / "tokenizer.json").unlink()
    with pytest.raises(TokenizerArtifactError, match=r"input tokenizer artifact .*bad\) has no tokenizer.json"):
        run_stage(SPEC, tmp_path / "o3", {}, _inputs(books, bad))
    with pytest.raises(TokenizerArtifactError, match=r"eos_token '<\|nope\|>' is not in the vocabulary"):
        run_stage(SPEC, tmp_path / "o4", {"eos_token": "<|nope|>"}, _inputs(books, tokenizer_dir))


def test_empty_or_too_small_corpus(tokenizer_dir: Path, tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DocumentsError, match=r"tokens: input documents artifact .* holds no documents"):
        run_stage(SPEC, tmp_path / "o1", {}, _inputs(empty, tokenizer_dir))
    with DocumentWriter(tmp_path / "tiny") as writer:
        writer.write({"text": "Only a few words.", "id": "a"})
    with pytest.raises(ValueError, match=r"no full training sequence of 256 tokens .*lower seq_len"):
        run_stage(SPEC, tmp_path / "o2", {}, _inputs(tmp_path / "tiny", tokenizer_dir))


def test_config_and_registration():
    with pytest.raises(ValidationError, match="remainder"):
        TokensConfig(remainder="truncate")
    with pytest.raises(ValidationError, match="seq_len"):
        TokensConfig(seq_len=1)
    assert all(info.description for info in TokensConfig.model_fields.values())
    pm, errors = create_plugin_manager(autoload=False)
    spec = collect_stages(pm, errors).get("tokens")
    assert spec is SPEC and spec.inputs == {"documents": Input("documents"), "tokenizer": Input("tokenizer")}
    assert spec.output == "tokens" and spec.group == "data"
    assert [c.name for c in spec.checks] == ["packing_waste", "validation_sequences"]
    assert SPEC.checks[0].check({"waste_fraction": 0.002}, TokensConfig()).passed
    assert not SPEC.checks[0].check({"waste_fraction": 0.02}, TokensConfig()).passed
