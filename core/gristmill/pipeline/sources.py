"""Raw sources: files matched by globs, turned into input artifacts with a data version."""

import glob
import hashlib
import json
import os
from pathlib import Path

from gristmill.errors import StageInputError
from gristmill.hashing import file_sha256
from gristmill.pipeline.config import SourceDef
from gristmill.stage import Artifact


class SourceError(StageInputError):
    """A source whose files cannot be found; the message names the source and its path."""


def matched_files(source: SourceDef) -> list[Path]:
    """Files the source's path(s) match: a glob, a file, or a directory (with the kind's default glob)."""
    patterns = [source.path] if isinstance(source.path, str) else list(source.path)
    found: set[Path] = set()
    for pattern in patterns:
        expanded = Path(pattern).expanduser()
        if expanded.is_dir():
            found.update(p for p in expanded.rglob(source.directory_glob) if p.is_file())
        else:
            found.update(Path(p) for p in glob.glob(str(expanded), recursive=True) if Path(p).is_file())
    return sorted(p.resolve() for p in found)


def fingerprint(files: list[Path], content: bool = False) -> str:
    """Data version of a file set: names, sizes and mtimes (or contents when ``content``)."""
    rows = []
    for p in files:
        st = p.stat()
        rows.append([str(p), st.st_size, file_sha256(p) if content else st.st_mtime_ns])
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:20]


def source_version(source: SourceDef) -> tuple[str | None, list[Path]]:
    """The source's data version and matched files — the one fingerprint that the runner, the rounds sensor and
    the Dagster source assets use (None when no file matches)."""
    files = matched_files(source)
    return (fingerprint(files, source.hash_content) if files else None), files


def resolve_source(name: str, source: SourceDef) -> Artifact:
    """The source as an input artifact; raises :class:`SourceError` when nothing matches."""
    version, files = source_version(source)
    if version is None:
        raise SourceError(f"source {name!r}: no files match {source.path!r} (kind {source.kind!r})")
    base = Path(os.path.commonpath([p.parent for p in files]))
    return Artifact(
        kind=source.kind,
        path=base,
        id=version,
        content_hash=version,
        files=tuple(files),
        manifest={"asset": name, "source": True},
    )
