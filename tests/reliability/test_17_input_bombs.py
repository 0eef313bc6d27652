"""Case 17a: input bombs. A WARC whose header line inflates to hundreds of MB (or a gzip member of zeros), a record
declaring ``Content-Length: 10^15``, a JSONL line of 200 MB and repeated document ids are each bounded, counted
and survived: no quadratic reading, no record silently swallowed, no line held whole, no id twice in the output.
Narrower tests of the same code: ``tests/core/lib/test_jsonl.py``, ``tests/plugins/test_crawl_filter.py``,
``tests/plugins/test_minhash_dedup.py``."""

import contextlib
import gzip
import json
import os
import resource
import signal
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from gristmill.lib.documents import DocumentWriter, iter_documents
from gristmill.testing import artifact_from_dir, run_stage
from gristmill_plugins import crawl_filter, minhash_dedup
from tests.plugins.test_crawl_filter import BREAD, FAST, GARDEN, _article, _assert_consistent, _docs, _good_warc

MB = 1 << 20
HUGE = 256  # MB inflated from a ~1 MB member: a header line, a run of zeros


class DeadlineExceeded(BaseException):  # not an Exception: the reader's "count the file as failed" cannot catch it
    pass


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Fail instead of hanging when the code under test is quadratic (main thread only; fires again each second
    until it lands in Python code)."""

    def expire(signum: int, frame: object) -> None:
        raise DeadlineExceeded(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _response(url: str, html: str, declared: int | None = None) -> bytes:
    """One WARC response record (HTTP 200, text/html) written by hand; ``declared`` overrides its Content-Length."""
    block = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html.encode()
    head = (
        f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, url)}>\r\n"
        f"WARC-Target-URI: {url}\r\nWARC-Date: 2024-01-01T00:00:00Z\r\n"
        f"Content-Type: application/http; msgtype=response\r\nContent-Length: {declared or len(block)}\r\n\r\n"
    )
    return head.encode() + block + b"\r\n\r\n"


def _member(*chunks: bytes, repeat_last: int = 1) -> bytes:
    """One gzip member of ``chunks``, the last one repeated ``repeat_last`` times (streamed: never held inflated)."""
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    out = [z.compress(c) for c in chunks[:-1]]
    out += [z.compress(chunks[-1]) for _ in range(repeat_last)]
    return b"".join(out) + z.flush()


def _page(n: int) -> tuple[str, str]:
    return f"https://bread-notes.org/loaf-{n}.html", _article(f"Bread {n}", BREAD)


@pytest.fixture(scope="module")
def crawl_bombs(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    folder = tmp_path_factory.mktemp("bombs") / "in"
    folder.mkdir()
    good = _response("https://tomato-notes.org/a.html", _article("Tomatoes", GARDEN))
    # a good record, then one whose header line never ends: 256 MB of "a" (1 MB compressed)
    (folder / "a-long-header.warc.gz").write_bytes(
        gzip.compress(good, mtime=0)
        + _member(b"WARC/1.0\r\nWARC-Type: response\r\nX-Junk: ", b"a" * MB, repeat_last=HUGE)
    )
    (folder / "b-zeros.warc.gz").write_bytes(_member(bytes(MB), repeat_last=HUGE))  # 256 MB of zeros, no newline
    # Content-Length: 10^15, then three good records, one gzip member each (as WARC writers do)
    records = [_response("https://bread-notes.org/absurd.html", _article("Absurd", BREAD), declared=10**15)]
    records += [_response(*_page(n)) for n in range(3)]
    (folder / "c-absurd-length.warc.gz").write_bytes(b"".join(gzip.compress(r, mtime=0) for r in records))
    # the same records uncompressed: the absurd record hides the rest, so the file counts as failed, not swallowed
    (folder / "d-absurd-length-plain.warc").write_bytes(b"".join(records))
    # a record with a 64 MB payload (declared right): drained linearly, skipped as too large, the next one read
    big_head = _response("https://bread-notes.org/big.html", "", declared=0).split(b"Content-Length: ")[0]
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n"
    big = _member(
        big_head + f"Content-Length: {len(http) + 64 * MB}\r\n\r\n".encode() + http, b" " * MB, repeat_last=64
    )
    tail = gzip.compress(b"\r\n\r\n" + _response(*_page(9)), mtime=0)
    (folder / "e-big-payload.warc.gz").write_bytes(big + tail)
    _good_warc(folder / "f-good.warc.gz")
    start = time.perf_counter()
    with deadline(90):  # before the fix: the 256 MB line alone reads for tens of minutes (quadratic)
        result, art = run_stage(
            crawl_filter.SPEC, folder.parent / "out", FAST, {"warcs": artifact_from_dir("warc", folder)}
        )
    return result, art, time.perf_counter() - start


def test_huge_header_lines_fail_their_file_fast(crawl_bombs: tuple) -> None:
    result, art, seconds = crawl_bombs
    counts = result.counts
    assert seconds < 60, seconds  # about 5 s on 2 cores, most of it the extractor and language model
    assert counts["warc_files"] == 6
    assert counts["warc_files_failed"] == 3  # the long header, the zeros, the plain file whose record hides the rest
    urls = [d["metadata"]["url"] for d in _docs(art.path)]
    assert "https://tomato-notes.org/a.html" in urls  # read before the long header line
    _assert_consistent(counts)


def test_an_absurd_content_length_is_counted_and_the_next_records_are_read(crawl_bombs: tuple) -> None:
    result, art, _ = crawl_bombs
    counts = result.counts
    assert counts["records_malformed"] == 2  # the absurd record, in the gzip file and in the plain one
    by_file: dict[str, list[str]] = {}
    for doc in _docs(art.path):
        by_file.setdefault(doc["metadata"]["warc_file"], []).append(doc["metadata"]["url"])
    assert sorted(by_file["c-absurd-length.warc.gz"]) == [_page(n)[0] for n in range(3)]
    assert "d-absurd-length-plain.warc" not in by_file  # its one record was cut short: nothing kept from it
    assert by_file["e-big-payload.warc.gz"] == [_page(9)[0]]
    assert counts["records_skipped_too_large"] == 1
    assert "files_failed: 3" in {r["step"]: r for r in result.metadata["filters"].rows}["reader"]["reasons"]


# --- JSONL: a line over max_line_bytes, and its memory ---------------------------------------------------------

LONG_LINE_CHILD = """
import json, resource, sys
from pathlib import Path
from gristmill.testing import artifact_from_dir, run_stage
from gristmill_plugins import minhash_dedup
folder = Path(sys.argv[1])
inputs = {"documents": artifact_from_dir("documents", folder)}
result, art = run_stage(minhash_dedup.SPEC, folder.parent / "out", {}, inputs)
print(json.dumps({"counts": result.counts, "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))
"""


def _texts(n: int) -> list[str]:
    return [f"Document {i} talks about {' and '.join(GARDEN[i % len(GARDEN)].split()[:12])}." for i in range(n)]


def test_a_jsonl_line_over_the_cap_is_skipped_without_reading_it_whole(tmp_path: Path) -> None:
    """A 200 MB document line (default cap 64 MiB): counted and skipped by minhash_dedup in bounded memory (it took
    5.5 GB before); the process runs under a 3 GB address-space limit so the old behaviour fails instead of
    swapping."""
    folder = tmp_path / "in"
    folder.mkdir()
    texts = _texts(4)
    with gzip.open(folder / "00000.jsonl.gz", "wt", encoding="utf-8", compresslevel=1) as f:
        f.write(json.dumps({"text": texts[0], "id": "d0", "metadata": {}}) + "\n")
        f.write('{"text": "')
        for _ in range(200):
            f.write("word " * (MB // 5))
        f.write('", "id": "huge", "metadata": {}}\n')
        for i, text in enumerate(texts[1:], 1):
            f.write(json.dumps({"text": text, "id": f"d{i}", "metadata": {}}) + "\n")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", LONG_LINE_CHILD, str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["counts"]["documents_skipped_too_long"] == 1
    assert out["counts"]["documents_in"] == 4 and out["counts"]["documents_out"] == 4
    assert out["maxrss_mb"] < 1000, out  # the 64 MiB cap at most, never the 200 MB line (or its copies)


def test_the_line_cap_is_a_config_field(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    texts = _texts(3)
    with DocumentWriter(folder) as writer:
        writer.write({"text": texts[0], "id": "a", "metadata": {}})
        writer.write({"text": "x" * (2 * MB), "id": "long", "metadata": {}})
        writer.write({"text": texts[1], "id": "b", "metadata": {}})
    result, art = run_stage(
        minhash_dedup.SPEC,
        tmp_path / "out",
        {"max_line_bytes": MB},
        {"documents": artifact_from_dir("documents", folder)},
    )
    assert result.counts["documents_skipped_too_long"] == 1
    assert [d["id"] for d in iter_documents(art.path)] == ["a", "b"]


# --- repeated document ids ------------------------------------------------------------------------------------


def test_repeated_document_ids_are_counted_and_dropped(tmp_path: Path) -> None:
    """The first document with an id is kept, later ones are dropped before clustering and counted, whatever their
    text (the same document read twice, or two sources reusing an id); documents without an id are left alone."""
    texts = _texts(6)
    docs = [
        {"text": texts[0], "id": "a"},
        {"text": texts[1], "id": "b"},
        {"text": texts[2], "id": "a"},  # another text under a seen id
        {"text": texts[1], "id": "b"},  # the same document again
        {"text": texts[3]},
        {"text": texts[4]},  # no ids: never a repeat
        {"text": texts[5], "id": 7},
        {"text": texts[0] + " More.", "id": "7"},  # the same id as text
    ]
    folder = tmp_path / "in"
    with DocumentWriter(folder, shard_size=3) as writer:  # repeats across shards too
        writer.write_all({**d, "metadata": {}} for d in docs)
    for method in ("minhash", "exact"):
        result, art = run_stage(
            minhash_dedup.SPEC,
            tmp_path / method,
            {"method": method},
            {"documents": artifact_from_dir("documents", folder)},
        )
        out = list(iter_documents(art.path))
        assert result.counts["duplicate_ids_dropped"] == 3, method
        assert [d.get("id") for d in out] == ["a", "b", None, None, 7], method
        assert result.counts["documents_in"] == 8 and result.counts["documents_out"] == 5
