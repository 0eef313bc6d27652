"""WARC records from a raw file with bounded work per record: gristmill's replacement for warcio's ArchiveIterator.

Why not warcio's own reading: its ``BufferedReader.readline`` grows a line with ``linebuff += …`` one 16 KiB block
at a time, so a header line of n bytes costs O(n²) time and is held whole (a 1 MB ``.warc.gz`` inflating to one
1 GiB line took crawl_filter past 400 s); and reading an already-inflated stream (as datatrove's ``WarcReader``
does, through fsspec) loses the gzip member boundaries, so a record declaring ``Content-Length: 10^15`` read every
later record as its content, unnoticed.

:class:`RecordStream` inflates one gzip member at a time (or reads a plain file as is) and serves warcio's record
loader: ``read``/``readline`` are linear, a run of header lines (blank lines, WARC and HTTP headers) longer than
``max_header_bytes`` raises :class:`WarcLimitError`, and reading stops at the end of a member, as warcio's does.
:func:`iter_records` parses records with warcio's ``ArcWarcRecordLoader`` and reports, after each record is read to
its end, whether the record was cut short of its declared length (its member or the file ended first).
"""

import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

from warcio.recordloader import ArcWarcRecordLoader

MAX_HEADER_BYTES = 1 << 20
_RAW_BLOCK = 1 << 16
_BLOCK = 1 << 18  # at most this many inflated bytes per step: a gzip bomb is inflated a block at a time
GZIP_MAGIC = b"\x1f\x8b"


class WarcLimitError(ValueError):
    """A WARC file exceeds a bound (an over-long header, a record that hides what follows it); the file is counted
    as failed."""


class RecordStream:
    """The inflated bytes of a WARC file, one gzip member at a time, with warcio's ``read``/``readline``/``tell``."""

    def __init__(self, raw: BinaryIO, max_header_bytes: int = MAX_HEADER_BYTES) -> None:
        self.raw = raw
        self.max_header_bytes = max_header_bytes
        self._pending = raw.read(_RAW_BLOCK)  # raw bytes not yet inflated
        self.gzip = self._pending.startswith(GZIP_MAGIC)
        self._z: Any = zlib.decompressobj(16 + zlib.MAX_WBITS) if self.gzip else None
        self._buf = b""
        self._pos = 0
        self.offset = 0  # inflated bytes served so far (warcio's tell())
        self.member_offset = 0  # … since the current member began
        self.members = 1
        self._header_run = 0  # bytes of consecutive readline() calls: one record's headers

    # -- inflating -----------------------------------------------------------------------------------------------
    def _raw(self) -> bytes:
        data, self._pending = self._pending or self.raw.read(_RAW_BLOCK), b""
        return data

    def _inflate(self) -> bytes:
        """The next inflated bytes of the current member; b"" at its end (or the file's)."""
        if self._z is None:
            return self._raw()
        while not self._z.eof:
            src = self._z.unconsumed_tail or self._raw()
            out = self._z.decompress(src, _BLOCK)  # with no input left, still flushes what zlib holds back
            if out:
                return out
            if not src and not self._z.eof:
                raise EOFError("the gzip stream ends inside a member (a truncated file)")
        return b""

    def _fill(self) -> bool:
        if self._pos < len(self._buf):
            return True
        self._buf, self._pos = self._inflate(), 0
        return bool(self._buf)

    def next_member(self) -> bool:
        """Go on with the next gzip member once this one is read; False at the end of the file."""
        if self._z is None or not self._z.eof or self._pos < len(self._buf):
            return False
        rest = self._z.unused_data
        while True:
            rest = rest.lstrip(b"\0")  # zero padding between or after members, as gzip allows
            more = self.raw.read(_RAW_BLOCK) if len(rest) < 2 else b""
            if not more:
                break
            rest += more
        if not rest:
            return False
        if not rest.startswith(GZIP_MAGIC):
            raise ValueError("bytes after a gzip member are not gzip")
        self._pending = rest
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.members += 1
        self.member_offset = 0
        return True

    # -- warcio's reader interface -------------------------------------------------------------------------------
    def _take(self, n: int) -> bytes:
        out = self._buf[self._pos : self._pos + n]
        self._pos += len(out)
        self.offset += len(out)
        self.member_offset += len(out)
        return out

    def read(self, length: int | None = None) -> bytes:
        self._header_run = 0
        parts, want = [], length if length is not None and length >= 0 else None
        while (want is None or want > 0) and self._fill():
            part = self._take(len(self._buf) if want is None else want)
            parts.append(part)
            if want is not None:
                want -= len(part)
        return b"".join(parts)

    def readline(self, length: int | None = None) -> bytes:
        budget = self.max_header_bytes - self._header_run
        limit = budget + 1 if length is None or length < 0 else min(length, budget + 1)
        parts: list[bytes] = []
        size = 0
        while size < limit and self._fill():
            end = self._buf.find(b"\n", self._pos, self._pos + (limit - size))
            part = self._take((end + 1 - self._pos) if end >= 0 else limit - size)
            parts.append(part)
            size += len(part)
            if end >= 0:
                break
        self._header_run += size
        if self._header_run > self.max_header_bytes:
            raise WarcLimitError(
                f"record headers (or blank lines) longer than {self.max_header_bytes:,} bytes at offset "
                f"{self.offset - size:,}"
            )
        return b"".join(parts)

    def tell(self) -> int:
        return self.offset

    def close(self) -> None:
        self.raw.close()


def _statusline(stream: RecordStream) -> tuple[bytes | None, bool]:
    """The first line of the next record (blank lines and member ends passed over; None at the end of the file),
    and whether it is the first line of its gzip member but for blank lines."""
    blank = 0
    while True:
        line = stream.readline()
        if not line:
            if stream.next_member():
                blank = 0
                continue
            return None, False
        if line.strip():
            return line, stream.member_offset - len(line) == blank
        blank += len(line)


def iter_records(stream: RecordStream) -> Iterator[tuple[Any, Any]]:
    """``(record, finish)`` per record; call ``finish()`` once done with the record: it reads the record to its
    declared end and returns whether it was cut short (then the record is to be counted as malformed). A record
    cut short that may have hidden later records (the file is not one gzip member per record) raises
    :class:`WarcLimitError` there; so does a record without a Content-Length."""
    loader = ArcWarcRecordLoader(verify_http=False, arc2warc=False)
    known_format = None
    while True:
        line, aligned = _statusline(stream)
        if line is None:
            return
        start = stream.offset - len(line)
        record = loader.parse_record_stream(stream, line, known_format)
        known_format = record.format
        if record.raw_stream is stream:
            raise WarcLimitError(f"the record at offset {start:,} has no Content-Length")

        def finish(record: Any = record, start: int = start, aligned: bool = aligned) -> bool:
            body = record.raw_stream
            while body.read(_BLOCK):
                pass
            if body.limit <= 0:
                return False
            more = stream.next_member()  # the record ended with its gzip member (or the file): is there another?
            if aligned and (more or stream.members > 1):
                return True  # one record per member: the next record is where the next member starts
            raise WarcLimitError(
                f"the record at offset {start:,} declares {record.length:,} bytes but its data ends "
                f"{record.length - body.limit:,} bytes in; any records after it were read as its content"
            )

        yield record, finish
