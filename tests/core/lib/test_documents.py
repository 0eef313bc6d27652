import gzip
import hashlib

import pytest

from gristmill.lib.documents import DocumentsError, DocumentWriter, iter_documents, require_documents


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_writer_shards_round_trip_and_is_deterministic(tmp_path):
    docs = [{"text": f"doc {i} é", "id": str(i), "metadata": {"n": i}} for i in range(25)]
    for name in ("a", "b"):
        with DocumentWriter(tmp_path / name, shard_size=10) as w:
            w.write_all(docs)
        assert w.count == 25 and [p.name for p in w.shards] == ["00000.jsonl.gz", "00001.jsonl.gz", "00002.jsonl.gz"]
    assert list(iter_documents(tmp_path / "a")) == docs
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")


def test_bad_input_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DocumentsError, match="holds no documents"):
        require_documents(tmp_path / "empty", "minhash_dedup")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "00000.jsonl").write_text('{"text": "ok", "id": "1"}\n{not json\n')
    with pytest.raises(DocumentsError, match=r"00000.jsonl:2: not a JSON document"):
        list(iter_documents(bad))
    (bad / "00000.jsonl").write_text('{"id": "1"}\n')
    with pytest.raises(DocumentsError, match="needs a string 'text'"):
        list(iter_documents(bad))
    trunc = tmp_path / "trunc"
    trunc.mkdir()
    data = gzip.compress(b'{"text": "x", "id": "1"}\n' * 1000)
    (trunc / "00000.jsonl.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DocumentsError, match="unreadable documents shard"):
        list(iter_documents(trunc))
