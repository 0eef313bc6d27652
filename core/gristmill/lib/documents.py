"""Reading and writing ``documents`` artifacts: datatrove-compatible JSONL(.gz) shards.

Each line is ``{"text": str, "id": str, "metadata": {...}}``; shards are named
``NNNNN.jsonl.gz`` (or ``.jsonl``) and read in name order. Written gzip is deterministic
(no timestamp, no file name), so equal documents give equal content hashes. Lines are read and
written by :mod:`gristmill.lib.jsonl`.
"""

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from gristmill.lib.jsonl import MAX_LINE_BYTES, JsonlError, JsonlWriter, SkippedLines, parse_line, read_jsonl
from gristmill.stage import Artifact

SHARD_GLOBS = ("*.jsonl.gz", "*.jsonl")
TEXT_REQUIRED = "a document needs a string 'text' field"


class DocumentsError(JsonlError):
    """A ``documents`` artifact that cannot be read or is empty; the message names it."""

    not_json = "not a JSON document: {msg}"
    not_object = TEXT_REQUIRED
    unreadable = "unreadable documents shard: {exc}"


def _document(row: dict[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(row.get("text"), str):
        raise DocumentsError(f"{where}: {TEXT_REQUIRED}")
    return row


def parse_document_line(line: str, where: str) -> dict[str, Any]:
    """One JSONL line as a document dict; :class:`DocumentsError` naming ``where`` (``file:line``) if it is not."""
    return _document(parse_line(line, where, DocumentsError), where)


def _name(source: Artifact | Path) -> str:
    return source.describe() if isinstance(source, Artifact) else str(source)


def document_shards(source: Artifact | Path) -> list[Path]:
    """The shard files of an artifact (or directory), in name order."""
    if isinstance(source, Artifact):
        found = {p for pattern in SHARD_GLOBS for p in source.glob(pattern)}
    else:
        found = {p for pattern in SHARD_GLOBS for p in Path(source).rglob(pattern) if p.is_file()}
    return sorted(found)


def iter_documents(
    source: Artifact | Path, *, max_line_bytes: int | None = MAX_LINE_BYTES, skipped: SkippedLines | None = None
) -> Iterator[dict[str, Any]]:
    """Every document, shard by shard; a malformed line raises :class:`DocumentsError` naming file and line. A line
    over ``max_line_bytes`` is counted in ``skipped`` and skipped, or without ``skipped`` raises (never read whole:
    :func:`gristmill.lib.jsonl.read_jsonl`)."""
    for path in document_shards(source):
        for lineno, row in read_jsonl(path, DocumentsError, max_line_bytes=max_line_bytes, skipped=skipped):
            yield _document(row, f"{path}:{lineno}")


def require_documents(
    source: Artifact | Path, stage: str, *, max_line_bytes: int | None = MAX_LINE_BYTES, skip_long: bool = False
) -> list[Path]:
    """The shards of ``source``, or a clear error when it holds no document at all (with ``skip_long``, lines over
    ``max_line_bytes`` are passed over, as the stage will)."""
    shards = document_shards(source)
    skipped = SkippedLines() if skip_long else None
    if not shards or next(iter_documents(source, max_line_bytes=max_line_bytes, skipped=skipped), None) is None:
        why = f"{skipped.count} line(s) over max_line_bytes skipped" if skipped and skipped.count else ""
        raise DocumentsError(
            f"{stage}: input {_name(source)} holds no documents ({why or 'empty corpus or all filtered'})"
        )
    return shards


class DocumentWriter:
    """Writes documents into ``NNNNN.jsonl.gz`` shards of at most ``shard_size`` documents.

    Use as a context manager; ``count`` is the number written.
    """

    def __init__(self, folder: Path, shard_size: int = 100_000, compresslevel: int = 6) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.shard_size = shard_size
        self.compresslevel = compresslevel
        self.count = 0
        self.shards: list[Path] = []
        self._shard: JsonlWriter | None = None

    def _open_next(self) -> JsonlWriter:
        self.close()
        path = self.folder / f"{len(self.shards):05d}.jsonl.gz"
        self._shard = JsonlWriter(path, compact=True, compresslevel=self.compresslevel)
        self.shards.append(path)
        return self._shard

    def write(self, doc: dict[str, Any]) -> None:
        shard = self._shard
        if shard is None or self.count % self.shard_size == 0 and self.count:
            shard = self._open_next()
        shard.write(doc)
        self.count += 1

    def write_all(self, docs: Iterable[dict[str, Any]]) -> int:
        for doc in docs:
            self.write(doc)
        return self.count

    def close(self) -> None:
        if self._shard is not None:
            self._shard.close()
            self._shard = None

    def __enter__(self) -> "DocumentWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
