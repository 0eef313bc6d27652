"""The library's one JSONL reader and writer: one JSON object per line, plain or gzip by the file's ``.gz`` suffix.

:func:`read_jsonl` yields ``(line number, object)`` and raises a :class:`JsonlError` (or the caller's subclass, which
may reword the messages) naming file and line. Lines are read in bounded chunks: a line longer than
``max_line_bytes`` (default :data:`MAX_LINE_BYTES`, 64 MiB) is never held whole; it is counted in a
:class:`SkippedLines` and skipped when the caller passes one, else it is an error naming file and line.
:class:`JsonlWriter` / :func:`write_jsonl` write deterministic bytes: UTF-8 (``ensure_ascii=False``), ``\\n`` line
ends, gzip without timestamp or file name, so equal rows give equal content hashes.
"""

import gzip
import io
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

from gristmill.errors import StageInputError

PathLike = str | os.PathLike[str]

MAX_LINE_BYTES = 64 << 20
_CHUNK = 1 << 20  # a long line is read (or skipped) this many bytes at a time


class JsonlError(StageInputError):
    """A JSONL file that cannot be read or a line that is not a JSON object; the message names file and line.

    Subclasses reword the messages through the ``str.format`` templates below (``{msg}``: the JSON error,
    ``{type}``: the line's JSON type, ``{exc}``: the I/O error)."""

    not_json = "not valid JSON ({msg})"
    not_object = "expected a JSON object, got {type}"
    unreadable = "unreadable JSONL file: {exc}"
    too_long = "a line of {size:,} bytes, over the limit of {limit:,} (max_line_bytes)"


@dataclass
class SkippedLines:
    """Lines :func:`read_jsonl` skipped for being longer than its ``max_line_bytes``: how many, and where the first
    few were (``file:line (N bytes)``)."""

    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, where: str, size: int) -> None:
        self.count += 1
        if len(self.examples) < 5:
            self.examples.append(f"{where} ({size:,} bytes)")


def parse_line(line: str, where: str, error: type[JsonlError] = JsonlError) -> dict[str, Any]:
    """One line as a JSON object; ``error`` naming ``where`` (``file:line``) if it is not one."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise error(f"{where}: " + error.not_json.format(msg=exc.msg)) from exc
    if not isinstance(row, dict):
        raise error(f"{where}: " + error.not_object.format(type=type(row).__name__))
    return row


def matching_files(pattern: str, what: str, follow_external_links: bool = False) -> list[Path]:
    """The files a glob (``~`` expanded, ``**`` recursive) matches, sorted and named as the user sees them: symbolic
    links are followed, loops end, and links out of the glob's folder are skipped unless ``follow_external_links``
    (:mod:`gristmill.globs`); each skipped path is logged as a warning naming ``what``. ``FileNotFoundError`` naming
    ``what`` (e.g. ``"topic_classifier: labels_path"``) when there is none."""
    import logging

    from gristmill.globs import match_files

    matches = match_files(pattern, follow_external=follow_external_links)
    for skip in matches.skipped:
        logging.getLogger("gristmill.lib.jsonl").warning("%s: skipped %s", what, skip)
    if not matches.files:
        why = f" (skipped: {'; '.join(map(str, matches.skipped[:5]))})" if matches.skipped else ""
        raise FileNotFoundError(f"{what} {pattern!r} matches no file{why}")
    return matches.files


def open_text(path: PathLike) -> IO[str]:
    """``path`` opened for reading UTF-8 text, through gzip when its name ends in ``.gz``."""
    if os.fspath(path).endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")  # noqa: SIM115 - returned to a with block


def _bounded_lines(f: BinaryIO, limit: int | None) -> Iterator[tuple[bytes | None, int]]:
    """``(line, size in bytes without the line end)`` per line of ``f``; ``line`` is None when ``size`` is over
    ``limit``: such a line is read and dropped a chunk at a time, never held whole."""
    while True:
        part = f.readline(_CHUNK)
        if not part:
            return
        if part.endswith(b"\n"):  # the common case: a whole line in one read
            size = len(part) - 1
            yield (part if limit is None or size <= limit else None), size
            continue
        parts: list[bytes] | None = [part]
        size = len(part)
        while not part.endswith(b"\n"):
            part = f.readline(_CHUNK)
            if not part:
                break
            size += len(part)
            if parts is not None:
                parts.append(part)
                if limit is not None and size > limit + 1:
                    parts = None  # over the limit: drop what was read, skip the rest
        size -= part.endswith(b"\n")
        yield (b"".join(parts) if parts is not None and (limit is None or size <= limit) else None), size


def read_jsonl(
    path: PathLike,
    error: type[JsonlError] = JsonlError,
    stage: str = "",
    *,
    max_line_bytes: int | None = MAX_LINE_BYTES,
    skipped: SkippedLines | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for every non-blank line of ``path`` (gzip when it ends in ``.gz``).

    A line that is not a JSON object, or a file that cannot be opened or decoded (missing, truncated gzip, not
    UTF-8), raises ``error`` naming the file (and line), after ``stage: `` when a stage name is given. A line longer
    than ``max_line_bytes`` (None: no limit) is counted in ``skipped`` and skipped, or without ``skipped`` raises
    ``error``; it is read in chunks and never held in memory whole."""
    prefix = f"{stage}: " if stage else ""
    try:
        with gzip.open(path, "rb") if os.fspath(path).endswith(".gz") else open(path, "rb") as f:
            for lineno, (raw, size) in enumerate(_bounded_lines(f, max_line_bytes), 1):
                if raw is None:
                    where = f"{prefix}{path}:{lineno}"
                    if skipped is None:
                        raise error(f"{where}: " + error.too_long.format(size=size, limit=max_line_bytes))
                    skipped.add(where, size)
                    continue
                line = raw.decode("utf-8")
                if line.strip():
                    yield lineno, parse_line(line, f"{prefix}{path}:{lineno}", error)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise error(f"{prefix}{path}: " + error.unreadable.format(exc=f"{type(exc).__name__}: {exc}")) from exc


class JsonlWriter:
    """Writes rows to ``path``, one JSON object per line; gzip (``compresslevel``, no timestamp, no file name) when
    the name ends in ``.gz``. ``sort_keys`` and ``compact`` (no spaces after ``,`` and ``:``) are ``json.dumps``
    options; ``append`` adds to an existing file. Use as a context manager; ``count`` is the rows written."""

    def __init__(
        self,
        path: PathLike,
        *,
        sort_keys: bool = False,
        compact: bool = False,
        compresslevel: int = 6,
        append: bool = False,
    ) -> None:
        self.path = Path(path)
        self.count = 0
        self._sort_keys = sort_keys
        self._separators = (",", ":") if compact else None
        self._raw = open(self.path, "ab" if append else "wb")  # noqa: SIM115 - closed in close()
        self._gzip: gzip.GzipFile | None = None
        if self.path.name.endswith(".gz"):
            self._gzip = gzip.GzipFile(fileobj=self._raw, mode="wb", mtime=0, filename="", compresslevel=compresslevel)
        self._file: io.TextIOWrapper | None = io.TextIOWrapper(self._gzip or self._raw, encoding="utf-8", newline="\n")

    def write(self, row: dict[str, Any]) -> None:
        if self._file is None:
            raise ValueError(f"{self.path}: the writer is closed")
        line = json.dumps(row, ensure_ascii=False, sort_keys=self._sort_keys, separators=self._separators)
        self._file.write(line + "\n")
        self.count += 1

    def write_all(self, rows: Iterable[dict[str, Any]]) -> int:
        """Write every row; returns ``count``."""
        for row in rows:
            self.write(row)
        return self.count

    def close(self) -> None:
        if self._file is not None:
            self._file.close()  # flushes the text layer (and writes the gzip trailer, which leaves the file open)
            self._raw.close()
            self._file = None

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_jsonl(
    path: PathLike, rows: Iterable[dict[str, Any]], *, sort_keys: bool = False, compact: bool = False
) -> int:
    """Write ``rows`` to ``path`` (a new file) with a :class:`JsonlWriter`; returns how many."""
    with JsonlWriter(path, sort_keys=sort_keys, compact=compact) as writer:
        return writer.write_all(rows)
