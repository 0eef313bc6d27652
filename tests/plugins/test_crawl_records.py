"""crawl_filter's bounded WARC record reading (``crawl_filter/records.py``) on hand-built files: one gzip member per
record, one member for all records, plain, zero padding, cut-short records, over-long headers."""

import gzip
import io
import time
import zlib

import pytest

from gristmill_plugins.crawl_filter.records import RecordStream, WarcLimitError, iter_records
from tests.reliability.test_17_input_bombs import _response


def _records(n: int, absurd: int | None = None) -> list[bytes]:
    return [
        _response(
            f"https://example.org/{i}.html", f"<html><body>page {i}</body></html>", 10**15 if i == absurd else None
        )
        for i in range(n)
    ]


def _read(data: bytes, max_header_bytes: int = 1 << 20) -> list[tuple[str, bool]]:
    """``(url, cut short)`` per record."""
    out = []
    for record, finish in iter_records(RecordStream(io.BytesIO(data), max_header_bytes)):
        record.content_stream().read(100)
        out.append((record.rec_headers.get_header("WARC-Target-URI"), finish()))
    return out


def _urls(n: int) -> list[tuple[str, bool]]:
    return [(f"https://example.org/{i}.html", False) for i in range(n)]


@pytest.mark.parametrize(
    "layout",
    ["member_per_record", "one_member", "plain", "zero_padding", "blank_lines_first"],
)
def test_every_layout_reads_every_record(layout: str) -> None:
    records = _records(4)
    data = {
        "member_per_record": b"".join(gzip.compress(r, mtime=0) for r in records),
        "one_member": gzip.compress(b"".join(records), mtime=0),  # warcio's ArchiveIterator refuses this one
        "plain": b"".join(records),
        "zero_padding": b"\0" * 3 + b"".join(gzip.compress(r, mtime=0) + b"\0" * 100 for r in records),
        "blank_lines_first": b"".join(gzip.compress(b"\r\n" + r, mtime=0) for r in records),
    }[layout]
    if layout == "zero_padding":
        data = data[3:]  # leading zeros are not gzip: only padding between and after members
    assert _read(data) == _urls(4)


def test_a_record_cut_short_is_reported_and_the_next_member_read() -> None:
    records = _records(4, absurd=1)
    got = _read(b"".join(gzip.compress(r, mtime=0) for r in records))
    assert [cut for _, cut in got] == [False, True, False, False]
    last = _read(b"".join(gzip.compress(r, mtime=0) for r in _records(3, absurd=2)))  # the last member
    assert [cut for _, cut in last] == [False, False, True]


@pytest.mark.parametrize("layout", ["one_member", "plain"])
def test_a_record_cut_short_that_may_hide_others_fails_the_file(layout: str) -> None:
    body = b"".join(_records(4, absurd=1))
    data = gzip.compress(body, mtime=0) if layout == "one_member" else body
    with pytest.raises(WarcLimitError, match="declares 1,000,000,000,000,000 bytes"):
        _read(data)


def test_header_runs_are_bounded_and_reading_is_linear() -> None:
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    line = b"".join(
        [z.compress(b"WARC/1.0\r\nX-Junk: "), *(z.compress(b"a" * (1 << 20)) for _ in range(64)), z.flush()]
    )
    start = time.perf_counter()
    with pytest.raises(WarcLimitError, match="longer than 1,048,576 bytes"):
        _read(line)
    with pytest.raises(WarcLimitError, match="longer than 4,096 bytes"):
        _read(gzip.compress(b"\r\n" * 5000, mtime=0), max_header_bytes=4096)  # blank lines count too
    assert time.perf_counter() - start < 5


def test_truncated_and_garbage_gzip_raise() -> None:
    data = b"".join(gzip.compress(r, mtime=0) for r in _records(3))
    with pytest.raises(EOFError):
        _read(data[: len(data) - 30])
    with pytest.raises(ValueError, match="not gzip"):
        _read(data + b"garbage")
