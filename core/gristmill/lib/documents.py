"""Reading and writing ``documents`` artifacts: datatrove-compatible JSONL(.gz) shards.

Each line is ``{"text": str, "id": str, "metadata": {...}}``; shards are named
``NNNNN.jsonl.gz`` (or ``.jsonl``) and read in name order. Written gzip is deterministic
(no timestamp, no file name), so equal documents give equal content hashes.
"""

import gzip
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from gristmill.errors import StageInputError
from gristmill.stage import Artifact

SHARD_GLOBS = ("*.jsonl.gz", "*.jsonl")


class DocumentsError(StageInputError):
    """A ``documents`` artifact that cannot be read or is empty; the message names it."""


def parse_document_line(line: str, where: str) -> dict[str, Any]:
    """One JSONL line as a document dict; :class:`DocumentsError` naming ``where`` (``file:line``) if it is not."""
    try:
        doc = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DocumentsError(f"{where}: not a JSON document: {exc.msg}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("text"), str):
        raise DocumentsError(f"{where}: a document needs a string 'text' field")
    return doc


def _name(source: Artifact | Path) -> str:
    return source.describe() if isinstance(source, Artifact) else str(source)


def document_shards(source: Artifact | Path) -> list[Path]:
    """The shard files of an artifact (or directory), in name order."""
    if isinstance(source, Artifact):
        found = {p for pattern in SHARD_GLOBS for p in source.glob(pattern)}
    else:
        found = {p for pattern in SHARD_GLOBS for p in Path(source).rglob(pattern) if p.is_file()}
    return sorted(found)


def iter_documents(source: Artifact | Path) -> Iterator[dict[str, Any]]:
    """Every document, shard by shard; a malformed line raises :class:`DocumentsError` naming file and line."""
    for path in document_shards(source):
        opener = gzip.open if path.name.endswith(".gz") else open
        try:
            with opener(path, "rt", encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    yield parse_document_line(line, f"{path}:{lineno}")
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise DocumentsError(f"{path}: unreadable documents shard: {type(exc).__name__}: {exc}") from exc


def require_documents(source: Artifact | Path, stage: str) -> list[Path]:
    """The shards of ``source``, or a clear error when it holds no document at all."""
    shards = document_shards(source)
    if not shards or next(iter_documents(source), None) is None:
        raise DocumentsError(f"{stage}: input {_name(source)} holds no documents (empty corpus or all filtered)")
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
        self._file: io.TextIOWrapper | None = None

    def _open_next(self) -> None:
        self.close()
        path = self.folder / f"{len(self.shards):05d}.jsonl.gz"
        raw = open(path, "wb")  # noqa: SIM115 - closed in close()
        gz = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="", compresslevel=self.compresslevel)
        self._raw = raw
        self._file = io.TextIOWrapper(gz, encoding="utf-8", newline="\n")
        self.shards.append(path)

    def write(self, doc: dict[str, Any]) -> None:
        if self._file is None or self.count % self.shard_size == 0 and self.count:
            self._open_next()
        self._file.write(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n")
        self.count += 1

    def write_all(self, docs: Iterable[dict[str, Any]]) -> int:
        for doc in docs:
            self.write(doc)
        return self.count

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._raw.close()
            self._file = None

    def __enter__(self) -> "DocumentWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
