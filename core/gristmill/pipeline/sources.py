"""Raw sources: files matched by globs, turned into input artifacts with a data version.

Files are named as the user sees them, symbolic links included (a Hugging Face cache snapshot works); links that
leave the source's folder are skipped unless the source sets ``follow_external_links``, and loops end
(:mod:`gristmill.globs`). What was skipped is logged, kept in the source artifact's manifest (``skipped``) and shown
in the source's observation metadata.
"""

import hashlib
import json
import logging
import os
from pathlib import Path

from gristmill.errors import StageInputError
from gristmill.globs import Matches, match_files
from gristmill.hashing import file_sha256
from gristmill.pipeline.config import SourceDef
from gristmill.stage import Artifact

log = logging.getLogger("gristmill.pipeline.sources")


class SourceError(StageInputError):
    """A source whose files cannot be found; the message names the source and its path."""


def source_matches(source: SourceDef) -> Matches:
    """What the source's path(s) match — a glob, a file, or a directory (with the kind's default glob) — and what
    was skipped (links outside the source's folder, broken links, loops)."""
    patterns = [source.path] if isinstance(source.path, str) else list(source.path)
    external = bool(source.follow_external_links)
    found, skipped = set(), []
    for pattern in patterns:
        matches = match_files(pattern, source.directory_glob, external)
        found.update(matches.files)
        skipped.extend(s for s in matches.skipped if s not in skipped)
    return Matches(sorted(found), skipped)


def matched_files(source: SourceDef) -> list[Path]:
    """Files the source's path(s) match (see :func:`source_matches`)."""
    return source_matches(source).files


def fingerprint(files: list[Path], content: bool = False) -> str:
    """Data version of a file set: names, sizes and mtimes (or contents when ``content``); for a symbolic link also
    its target, so pointing it at another file is a change."""
    rows = []
    for p in files:
        st = p.stat()
        row = [str(p), st.st_size, file_sha256(p) if content else st.st_mtime_ns]
        rows.append([*row, os.path.realpath(p)] if p.is_symlink() else row)
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:20]


def source_version(source: SourceDef) -> tuple[str | None, list[Path]]:
    """The source's data version and matched files — the one fingerprint that the runner, the rounds sensor and
    the Dagster source assets use (None when no file matches)."""
    files = matched_files(source)
    return (fingerprint(files, source.hash_content) if files else None), files


def resolve_source(name: str, source: SourceDef) -> Artifact:
    """The source as an input artifact; raises :class:`SourceError` when nothing matches."""
    matches = source_matches(source)
    files = matches.files
    for skip in matches.skipped:
        log.warning("source %r: skipped %s", name, skip)
    if not files:
        why = f"; skipped: {'; '.join(map(str, matches.skipped[:5]))}" if matches.skipped else ""
        raise SourceError(f"source {name!r}: no files match {source.path!r} (kind {source.kind!r}){why}")
    version = fingerprint(files, source.hash_content)
    base = Path(os.path.commonpath([p.parent for p in files]))
    return Artifact(
        kind=source.kind,
        path=base,
        id=version,
        content_hash=version,
        files=tuple(files),
        manifest={"asset": name, "source": True, "skipped": [str(s) for s in matches.skipped]},
    )
