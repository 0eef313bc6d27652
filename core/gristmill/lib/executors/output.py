"""Deterministic datatrove output: a gzip codec with a fixed header and a JSONL writer using it."""

import gzip
import json
from pathlib import Path
from typing import Any

import fsspec.compression
from datatrove.data import Document
from datatrove.pipeline.writers.disk_base import DiskWriter

# Deterministic output: fsspec's "gzip" stamps the current time and a file name into every header, which would
# change an artifact's content hash on each run; this codec writes mtime 0 and no name.
GZIP_DETERMINISTIC = "gristmill_gzip"


def _deterministic_gzip(fileobj: Any, mode: str = "rb", **kwargs: Any) -> gzip.GzipFile:
    return gzip.GzipFile(fileobj=fileobj, mode=mode, mtime=0, filename="", compresslevel=6)


if GZIP_DETERMINISTIC not in fsspec.compression.compr:
    fsspec.compression.register_compression(GZIP_DETERMINISTIC, _deterministic_gzip, [])


class DeterministicJsonlWriter(DiskWriter):
    """datatrove writer of ``{"text", "id", "metadata"}`` lines (compact UTF-8 JSON, as
    :class:`gristmill.lib.documents.DocumentWriter`) into ``${rank}.jsonl.gz`` (``00000.jsonl.gz`` …) with a fixed gzip
    header, so equal input gives equal bytes on every executor. Reads back with datatrove's ``JsonlReader``;
    unlike datatrove's ``JsonlWriter`` it needs no ``orjson``."""

    default_output_filename = "${rank}.jsonl.gz"
    name = "🐿 Jsonl.gz (deterministic)"

    def __init__(self, output_folder: str | Path, output_filename: str | None = None) -> None:
        super().__init__(str(output_folder), output_filename=output_filename, compression=GZIP_DETERMINISTIC, mode="wb")

    def _default_adapter(self, document: Document) -> dict:
        return {"text": document.text, "id": document.id, "metadata": document.metadata}

    def _write(self, document: dict, file_handler: Any, _filename: str) -> None:
        line = json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n"
        file_handler.write(line.encode("utf-8"))
