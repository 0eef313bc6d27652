"""Artifact store: content-addressed artifact directories with manifests and atomic commits.

Layout (DESIGN §5)::

    <root>/<asset>/<partition or "_">/<artifact id>/   data files + manifest.json
    <root>/<asset>/<partition or "_">/latest           id of the newest committed artifact
    <root>/.tmp/<uuid>/{out,work,owner.json}           a run in progress (never read)

The artifact id is a hash of stage, stage version, config, seed, partition and the input
artifacts' content hashes: the same inputs and config find the committed artifact (cache hit).
A stage writes into ``.tmp/<uuid>/out``; the store hashes the files, writes ``manifest.json``
and renames the directory into place (atomic on one filesystem), then replaces ``latest``.
A killed run leaves only its ``.tmp`` entry, removed when the next store opens once the
owning process is gone.
"""

import contextlib
import datetime as dt
import errno
import hashlib
import json
import os
import shutil
import socket
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from gristmill.hashing import file_sha256
from gristmill.stage import Artifact

MANIFEST = "manifest.json"
LATEST = "latest"
NO_PARTITION = "_"
TMP = ".tmp"
RESUME = ".resume"


class StoreError(RuntimeError):
    """The store cannot serve or commit an artifact; the message names it."""


def hash_files(root: Path, exclude: frozenset[str] = frozenset({MANIFEST})) -> tuple[str, list[dict[str, Any]]]:
    """Content hash of every file under ``root`` (streamed), and the per-file listing."""
    listing = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and rel not in exclude:
            listing.append({"path": rel, "size": p.stat().st_size, "sha256": file_sha256(p)})
    blob = json.dumps([(f["path"], f["size"], f["sha256"]) for f in listing], separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest(), listing


def cache_key(
    stage: str,
    version: str,
    config_hash: str,
    inputs: Mapping[str, str],
    seed: int,
    partition: str | None = None,
) -> str:
    """Artifact id for a stage run: equal for equal stage version, config, seed and input contents."""
    blob = json.dumps(
        {
            "stage": stage,
            "version": version,
            "config": config_hash,
            "inputs": dict(sorted(inputs.items())),
            "seed": seed,
            "partition": partition,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _write_atomic(path: Path, data: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # e.g. the disk filled up: the old file stays, no half-written copy
        raise


DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def disk_full_error(exc: OSError, root: Path, what: str) -> "StoreError | None":
    """A clear :class:`StoreError` when ``exc`` is a full disk (or quota) under the store ``root``, else None."""
    if exc.errno not in DISK_FULL:
        return None
    try:
        free = f"{shutil.disk_usage(root).free / 1e6:.1f} MB free now"
    except OSError:
        free = "free space unknown"
    return StoreError(
        f"no space left on the device of the store {root} ({free}) while {what}: {exc.strerror or exc}. "
        "Nothing was committed; the previous artifact and `latest` are unchanged. Free space and run again."
    )


def _process_alive(pid: int, started: float) -> bool:
    try:
        proc = psutil.Process(pid)
        return abs(proc.create_time() - started) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


@dataclass(frozen=True)
class Staging:
    """A run in progress: the stage writes ``out``; ``work`` is scratch."""

    root: Path

    @property
    def out(self) -> Path:
        return self.root / "out"

    @property
    def work(self) -> Path:
        return self.root / "work"


class ArtifactStore:
    """A local-filesystem artifact store rooted at ``root``."""

    def __init__(self, root: str | Path, clean: bool = True) -> None:
        self.root = Path(root).expanduser().resolve()
        self.tmp = self.root / TMP
        self.tmp.mkdir(parents=True, exist_ok=True)
        if clean:
            self.clean_tmp()

    # -- reading ---------------------------------------------------------------------------
    def slot(self, asset: str, partition: str | None = None) -> Path:
        return self.root / asset / (partition or NO_PARTITION)

    def load(self, path: Path) -> Artifact:
        """The committed artifact in directory ``path`` (must hold a valid manifest)."""
        try:
            manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(f"artifact {path}: unreadable {MANIFEST}: {exc}") from exc
        return Artifact.from_manifest(path, manifest)

    def lookup(self, asset: str, artifact_id: str, partition: str | None = None) -> Artifact | None:
        """The committed artifact with this id, or None."""
        path = self.slot(asset, partition) / artifact_id
        return self.load(path) if (path / MANIFEST).is_file() else None

    def latest(self, asset: str, partition: str | None = None) -> Artifact | None:
        """The artifact the ``latest`` pointer names, or None if the asset was never committed."""
        pointer = self.slot(asset, partition) / LATEST
        try:
            artifact_id = pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        found = self.lookup(asset, artifact_id, partition)
        if found is None:
            raise StoreError(f"{pointer} names artifact {artifact_id!r}, which is missing")
        return found

    def partitions(self, asset: str) -> list[str]:
        """Partition keys of ``asset`` with a committed artifact, sorted."""
        root = self.root / asset
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if p.name != NO_PARTITION and (p / LATEST).is_file())

    def set_latest(self, asset: str, artifact_id: str, partition: str | None = None) -> None:
        _write_atomic(self.slot(asset, partition) / LATEST, artifact_id + "\n")

    # -- writing ---------------------------------------------------------------------------
    def resume_dir(self, asset: str, artifact_id: str, partition: str | None = None) -> Path:
        """Scratch that survives a failed run of this exact artifact (same stage, config, inputs, seed), for
        training checkpoints; :meth:`drop_resume_dir` removes it once the artifact is committed."""
        path = self.root / RESUME / asset / (partition or NO_PARTITION) / artifact_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def drop_resume_dir(self, asset: str, artifact_id: str, partition: str | None = None) -> None:
        shutil.rmtree(self.root / RESUME / asset / (partition or NO_PARTITION) / artifact_id, ignore_errors=True)

    @contextlib.contextmanager
    def staging(self) -> Iterator[Staging]:
        """A fresh ``.tmp/<uuid>`` for one run; removed afterwards, whatever happens."""
        staging = Staging(self.tmp / uuid.uuid4().hex)
        staging.out.mkdir(parents=True)
        staging.work.mkdir()
        me = psutil.Process()
        owner = {"pid": me.pid, "started": me.create_time(), "host": socket.gethostname()}
        (staging.root / "owner.json").write_text(json.dumps(owner), encoding="utf-8")
        try:
            yield staging
        finally:
            shutil.rmtree(staging.root, ignore_errors=True)

    def commit(
        self,
        staging: Staging,
        asset: str,
        artifact_id: str,
        kind: str,
        manifest: Mapping[str, Any],
        partition: str | None = None,
    ) -> Artifact:
        """Hash ``staging.out``, write its manifest, rename it into place and point ``latest`` at it.

        If another run committed the same id meanwhile, that artifact is kept and ours dropped.
        """
        content_hash, files = hash_files(staging.out)
        full = {
            **manifest,
            "id": artifact_id,
            "asset": asset,
            "partition": partition,
            "kind": kind,
            "content_hash": content_hash,
            "files": files,
            "bytes": sum(f["size"] for f in files),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        # Insertion order kept: stages list their headline counts first.
        _write_atomic(staging.out / MANIFEST, json.dumps(full, indent=2, default=str))
        slot = self.slot(asset, partition)
        slot.mkdir(parents=True, exist_ok=True)
        final = slot / artifact_id
        try:
            os.rename(staging.out, final)
        except OSError:
            if not (final / MANIFEST).is_file():
                raise
        self.set_latest(asset, artifact_id, partition)
        return self.load(final)

    # -- housekeeping ----------------------------------------------------------------------
    def clean_tmp(self) -> list[Path]:
        """Remove ``.tmp`` entries whose owning process is gone; return what was removed."""
        removed = []
        for entry in self.tmp.iterdir():
            try:
                owner = json.loads((entry / "owner.json").read_text(encoding="utf-8"))
                alive = owner.get("host") == socket.gethostname() and _process_alive(owner["pid"], owner["started"])
            except (OSError, json.JSONDecodeError, KeyError):
                alive = False
            if not alive:
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                removed.append(entry)
        return removed

    def artifacts(self) -> Iterator[Path]:
        """Every committed artifact directory."""
        for manifest in sorted(self.root.glob(f"*/*/*/{MANIFEST}")):
            if not manifest.parent.parts[-3].startswith("."):
                yield manifest.parent

    def verify(self) -> list[str]:
        """Check every manifest's files and hashes, and every ``latest`` pointer; return the problems."""
        problems = []
        for path in self.artifacts():
            try:
                art = self.load(path)
            except StoreError as exc:
                problems.append(str(exc))
                continue
            content_hash, files = hash_files(path)
            if content_hash != art.content_hash:
                listed = {f["path"]: f for f in art.manifest.get("files", [])}
                found = {f["path"]: f for f in files}
                diff = sorted(p for p in listed.keys() | found.keys() if listed.get(p) != found.get(p))
                problems.append(f"artifact {path}: content differs from manifest in {', '.join(diff) or '?'}")
        for pointer in sorted(self.root.glob(f"*/*/{LATEST}")):
            target = pointer.parent / pointer.read_text(encoding="utf-8").strip()
            if not (target / MANIFEST).is_file():
                problems.append(f"{pointer} names missing artifact {target.name!r}")
        problems += [f"orphan: {path} (not a committed artifact; safe to delete)" for path in self.orphans()]
        return problems

    def orphans(self) -> list[Path]:
        """Entries in artifact slots that no commit made: folders without a manifest, leftover temp files.

        A slot is ``<asset>/<partition or _>/`` holding a ``latest`` pointer or a committed artifact; other
        folders in the store's root (the Dagster instance's ``dagster_home``, ``.tmp``, ``.resume``) are not looked in.
        """
        found = []
        for slot in sorted(self.root.glob("*/*")):
            if slot.parts[-2].startswith(".") or not slot.is_dir():
                continue
            if not (slot / LATEST).is_file() and not any(slot.glob(f"*/{MANIFEST}")):
                continue
            for entry in sorted(slot.iterdir()):
                if entry.name == LATEST:
                    continue
                if entry.is_dir() and (entry / MANIFEST).is_file():
                    continue
                found.append(entry)
        return found
