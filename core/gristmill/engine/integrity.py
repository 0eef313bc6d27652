"""What an artifact's manifest may say, and whether the artifact's files still match it.

A manifest's ``files`` lists every data file (relative path, size, SHA-256; ``mtime_ns`` holds their mtimes at
commit); the content hash is the SHA-256 of the (path, size, SHA-256) rows. A manifest is refused on read when a
path leaves the artifact (absolute, ``..``, or a symlink out) or its content hash does not match its own list;
:func:`file_problems` compares the files on disk with the list — what a cache hit, an input and
``gristmill store verify`` rely on.
"""

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from gristmill.hashing import file_sha256

MANIFEST = "manifest.json"
FULL_CHECK_BYTES = 8 << 20  # a cache hit re-hashes artifacts up to this size; larger ones: names, sizes, mtimes


class StoreError(RuntimeError):
    """The store cannot serve or commit an artifact, and re-running the same thing cannot help; the message names
    the store, artifact or file."""


def hash_files(root: Path, exclude: frozenset[str] = frozenset({MANIFEST})) -> tuple[str, list[dict[str, Any]]]:
    """Content hash of every file under ``root`` (streamed), and the per-file listing."""
    listing = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and rel not in exclude:
            listing.append({"path": rel, "size": p.stat().st_size, "sha256": file_sha256(p)})
    return listing_hash(listing), listing


def listing_hash(listing: list[Mapping[str, Any]]) -> str:
    """The content hash of a file listing: SHA-256 over its sorted (path, size, SHA-256) rows."""
    blob = json.dumps([(f["path"], f["size"], f["sha256"]) for f in listing], separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the artifact folder ``path``, validated: required keys, every listed file inside ``path``,
    the content hash equal to the hash of its own list. Raises :class:`StoreError` naming the artifact."""
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        if not isinstance(manifest, dict):
            raise TypeError(f"a JSON object expected, got {type(manifest).__name__}")
        missing = [key for key in ("kind", "id", "content_hash", "files") if key not in manifest]
        if missing:
            raise KeyError(f"no {', '.join(missing)}")
        files = manifest["files"]
        if not isinstance(files, list) or not all(_file_entry(f) for f in files):
            raise TypeError("'files' is not a list of {path, size, sha256}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"artifact {path}: unreadable {MANIFEST}: {exc}") from exc
    real = path.resolve()
    for entry in files:
        rel = entry["path"]
        if not _safe_relative(rel) or not (path / rel).resolve().is_relative_to(real):
            raise StoreError(f"artifact {path}: {MANIFEST} lists {str(rel)[:200]!r}, a path outside the artifact")
    if listing_hash(files) != manifest["content_hash"]:
        raise StoreError(f"artifact {path}: {MANIFEST}'s content_hash does not match its own files list")
    return manifest


def _safe_relative(rel: Any) -> bool:
    if not isinstance(rel, str) or not rel or "\\" in rel or "\0" in rel:
        return False
    path = PurePosixPath(rel)
    return not path.is_absolute() and all(part not in ("", ".", "..") for part in path.parts) and rel == path.as_posix()


def _file_entry(entry: Any) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("path"), str)
        and isinstance(entry.get("size"), int)
        and isinstance(entry.get("sha256"), str)
    )


def file_problems(path: Path, manifest: Mapping[str, Any], full: bool = False) -> list[str]:
    """How the files in artifact folder ``path`` differ from its manifest's ``files`` (empty: they match).

    Names and sizes always; contents (SHA-256) for every file when ``full`` or the artifact is at most
    :data:`FULL_CHECK_BYTES`, else for the files whose mtime differs from the one recorded at commit.
    """
    listed = {f["path"]: f for f in manifest.get("files", [])}
    mtimes = manifest.get("mtime_ns") if isinstance(manifest.get("mtime_ns"), dict) else {}
    found: dict[str, Path] = {}
    for p in path.rglob("*"):
        rel = p.relative_to(path).as_posix()
        if rel != MANIFEST and (p.is_file() or p.is_symlink()):
            found[rel] = p
    problems = [f"{rel} added (not in the manifest)" for rel in sorted(found.keys() - listed.keys())]
    problems += [f"{rel} missing" for rel in sorted(listed.keys() - found.keys())]
    full = full or sum(int(f.get("size", 0)) for f in listed.values()) <= FULL_CHECK_BYTES
    for rel in sorted(found.keys() & listed.keys()):
        entry, file = listed[rel], found[rel]
        try:
            st = file.stat()
        except OSError as exc:
            problems.append(f"{rel} unreadable ({exc.strerror or exc})")
            continue
        if st.st_size != entry.get("size"):
            problems.append(f"{rel} changed ({st.st_size} bytes; the manifest says {entry.get('size')})")
        elif (full or st.st_mtime_ns != mtimes.get(rel)) and file_sha256(file) != entry.get("sha256"):
            problems.append(f"{rel} changed (its content no longer matches the manifest's SHA-256)")
    return problems
