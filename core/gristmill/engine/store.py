"""Artifact store: content-addressed artifact directories with manifests and atomic commits, one folder per pipeline.

Layout (docs/store.md)::

    <root>/<pipeline>/<instance>/<partition or "_">/<artifact id>/   data files + manifest.json
    <root>/<pipeline>/<instance>/<partition or "_">/latest           id of the newest committed artifact
    <root>/.tmp/<uuid>/{out,work,owner.json}                         a run in progress (never read)
    <root>/.resume/<pipeline>/<instance>/<partition>/<artifact id>/  checkpoints of a failed training run
    <root>/.quarantine/<pipeline>/<instance>/<partition>/<id>.<time> artifacts moved aside (tampered, orphans, forced)
    <root>/.gristmill-store                                          marks the folder as a store (and its layout)

The artifact id is a hash of stage, stage version, config, seed, partition and the input artifacts' content hashes:
the same inputs and config find the committed artifact (cache hit) — after its files are checked against its
manifest (:func:`file_problems`); a mismatch is moved aside and recomputed. A stage writes into ``.tmp/<uuid>/out``;
the store hashes the files, writes ``manifest.json`` and renames the directory into place (atomic on one
filesystem), then replaces ``latest``. A killed run leaves only its ``.tmp`` entry, removed when the next store
opens once the owning process is gone. Whole-store checks, repair and migration: :mod:`gristmill.engine.store_admin`.
"""

import contextlib
import copy
import datetime as dt
import errno
import hashlib
import json
import logging
import os
import shutil
import socket
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from gristmill.engine.integrity import MANIFEST as MANIFEST
from gristmill.engine.integrity import StoreError as StoreError
from gristmill.engine.integrity import file_problems as file_problems
from gristmill.engine.integrity import hash_files as hash_files
from gristmill.engine.integrity import read_manifest
from gristmill.stage import Artifact

LATEST = "latest"
NO_PARTITION = "_"
TMP = ".tmp"
RESUME = ".resume"
QUARANTINE = ".quarantine"
MARKER = ".gristmill-store"
LAYOUT = 2  # 1: <root>/<instance>/…, shared by every pipeline; 2: <root>/<pipeline>/<instance>/…
RESERVED = frozenset({"dagster_home"})  # folders in a store's root that are not pipelines
NAME_MAX = 255  # bytes in one path component (Linux, macOS)
PATH_MAX = 4096
PATH_ROOM = 160  # kept free below PATH_MAX for the files a stage writes inside its artifact

log = logging.getLogger("gristmill.engine.store")


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
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)  # e.g. the disk filled up: the old file stays, no half-written copy
        raise


DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
NOT_WRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


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


def os_error(exc: OSError, root: Path, what: str) -> "StoreError | None":
    """A clear :class:`StoreError` for an ``OSError`` that re-running cannot fix: a full disk, or — for a path in
    the store — a read-only store or a path too long for the file system. None for anything else."""
    full = disk_full_error(exc, root, what)
    if full is not None:
        return full
    paths = [Path(os.path.abspath(p)) for p in (exc.filename, exc.filename2) if isinstance(p, str | os.PathLike)]
    if not any(p.is_relative_to(root) for p in paths):
        return None
    if exc.errno in NOT_WRITABLE:
        return StoreError(f"store {root} is read-only ({exc.strerror}: {paths[0]}) while {what}")
    if exc.errno == errno.ENAMETOOLONG:
        return StoreError(f"store {root}: a path is too long for the file system while {what}: {paths[0]}")
    return None


def _process_alive(pid: int, started: float) -> bool:
    try:
        proc = psutil.Process(pid)
        return abs(proc.create_time() - started) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def folder_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be one folder of the store's layout (a pipeline, instance or partition), or None."""
    if not isinstance(name, str) or not name or name in (".", "..") or any(c in name for c in "/\\\0"):
        return "must be one folder name (no '/', not '.' or '..')"
    if name.startswith("."):
        return "must not start with '.' (the store's own folders do)"
    if name in RESERVED:
        return "is reserved: the store keeps the Dagster instance in a folder of that name"
    if len(name.encode()) > NAME_MAX:
        return f"is too long for the file system ({len(name.encode())} bytes; at most {NAME_MAX})"
    return None


def enclosing_store(root: Path) -> Path | None:
    """The store that ``root`` lies inside (a folder marked as a store, or whose ``.tmp``/``.resume``/``.quarantine``
    holds it), or None."""
    for parent in root.parents:
        if (parent / MARKER).is_file():
            return parent
        if parent.name in (TMP, RESUME, QUARANTINE) and (parent.parent / TMP).is_dir():
            return parent.parent
    return None


def check_root(root: Path) -> None:
    """Refuse a store path that cannot work: a file (or under one), or a folder inside another store."""
    if root.exists() and not root.is_dir():
        raise StoreError(f"store {root} is a file, not a folder; point `store:` (or --store) at a folder")
    blocker = next((p for p in root.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise StoreError(f"store {root} cannot be created: {blocker} is a file")
    outer = enclosing_store(root)
    if outer is not None:
        raise StoreError(
            f"store {root} is inside the store {outer} (whose housekeeping would move or delete it); "
            "choose a folder outside it"
        )


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
    """A local-filesystem artifact store rooted at ``root``; reading and committing artifacts needs a pipeline
    (``pipeline=`` or :meth:`for_pipeline`), whose folder holds them."""

    def __init__(
        self, root: str | Path, clean: bool = True, pipeline: str | None = None, check_layout: bool = True
    ) -> None:
        self.root = Path(root).expanduser().resolve()
        self.tmp = self.root / TMP
        self.pipeline = None if pipeline is None else self._folder("pipeline name", pipeline)
        check_root(self.root)
        try:
            self.tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"store {self.root} cannot be created: {exc.strerror or exc}") from exc
        if not (self.root / MARKER).is_file():
            old = self.old_layout()
            if old and check_layout:
                raise StoreError(
                    f"store {self.root} is in the layout before each pipeline had its own folder ({old[0]} …): run "
                    f"`gristmill store migrate --store {self.root} --pipeline NAME` to move it under the pipeline "
                    "that made it, or use a new store"
                )
            if not old:
                self.mark()
        if clean:
            self.clean_tmp()

    def mark(self) -> None:
        """Write the marker that makes the folder a store of this layout (a read-only store stays unmarked)."""
        with contextlib.suppress(OSError):
            _write_atomic(self.root / MARKER, json.dumps({"layout": LAYOUT}) + "\n")

    def _folder(self, what: str, name: str) -> str:
        problem = folder_name_problem(name)
        if problem:
            shown = name if len(str(name)) <= 80 else f"{name[:77]}…"
            raise StoreError(f"store {self.root}: the {what} {shown!r} {problem}")
        return name

    def for_pipeline(self, name: str) -> "ArtifactStore":
        """This store, reading and committing the artifacts of pipeline ``name``."""
        if name == self.pipeline:
            return self
        view = copy.copy(self)
        view.pipeline = self._folder("pipeline name", name)
        return view

    # -- reading ---------------------------------------------------------------------------
    def slot(self, asset: str, partition: str | None = None) -> Path:
        if self.pipeline is None:
            raise StoreError(f"store {self.root}: no pipeline chosen (ArtifactStore(..., pipeline=NAME))")
        partition = NO_PARTITION if partition is None else self._folder("partition", partition)
        return self.root / self.pipeline / self._folder("instance name", asset) / partition

    def load(self, path: Path) -> Artifact:
        """The committed artifact in directory ``path``: a valid manifest whose files all lie inside ``path``
        (:func:`~gristmill.engine.integrity.read_manifest`)."""
        return Artifact.from_manifest(path, read_manifest(path))

    def check(self, art: Artifact, full: bool = False) -> list[str]:
        """:func:`file_problems` of a loaded artifact."""
        return file_problems(art.path, art.manifest, full)

    def lookup(self, asset: str, artifact_id: str, partition: str | None = None) -> Artifact | None:
        """The committed artifact with this id, or None (its files are not checked: see :meth:`hit`)."""
        path = self.slot(asset, partition) / artifact_id
        return self.load(path) if (path / MANIFEST).is_file() else None

    def hit(
        self,
        asset: str,
        artifact_id: str,
        partition: str | None = None,
        full: bool = False,
        logger: logging.Logger | None = None,
    ) -> Artifact | None:
        """The committed artifact with this id if its files match its manifest, pointed at by ``latest``; else None.

        Anything else in its place — a folder without a manifest, a manifest naming paths outside the artifact,
        files changed, added or missing — is moved aside (the log says where) so that the caller recomputes it.
        """
        path = self.slot(asset, partition) / artifact_id
        if not path.exists() and not path.is_symlink():
            return None
        if not (path / MANIFEST).is_file():
            problems = [f"no {MANIFEST}: an orphan no commit made"]
        else:
            try:
                art = self.load(path)
                problems = self.check(art, full)
            except StoreError as exc:
                problems = [str(exc).split(": ", 1)[-1]]
        if not problems:
            self.set_latest(asset, artifact_id, partition)
            return art
        dest = self.move_aside(path)
        (logger or log).warning(
            f"{asset}: artifact {artifact_id} does not match its manifest ({'; '.join(problems[:5])}): "
            f"moved aside to {dest}; computing it again"
        )
        return None

    def latest_id(self, asset: str, partition: str | None = None) -> str | None:
        try:
            return (self.slot(asset, partition) / LATEST).read_text(encoding="utf-8").strip()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def latest(self, asset: str, partition: str | None = None) -> Artifact | None:
        """The artifact the ``latest`` pointer names, or None if the asset was never committed."""
        artifact_id = self.latest_id(asset, partition)
        if artifact_id is None:
            return None
        found = self.lookup(asset, artifact_id, partition)
        if found is None:
            raise StoreError(
                f"{self.slot(asset, partition) / LATEST} names artifact {artifact_id!r}, which is missing "
                "(`gristmill store verify --repair` removes the pointer)"
            )
        return found

    def partitions(self, asset: str) -> list[str]:
        """Partition keys of ``asset`` with a committed artifact, sorted."""
        root = self.slot(asset).parent
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if p.name != NO_PARTITION and (p / LATEST).is_file())

    def set_latest(self, asset: str, artifact_id: str, partition: str | None = None) -> None:
        """Point ``latest`` at ``artifact_id`` (not written when it already does: a cache hit on a read-only store)."""
        if self.latest_id(asset, partition) != artifact_id:
            _write_atomic(self.slot(asset, partition) / LATEST, artifact_id + "\n")

    # -- writing ---------------------------------------------------------------------------
    def check_writable(self, asset: str, artifact_id: str, partition: str | None = None) -> None:
        """Before running a stage: the store can take its commit (writable, paths not too long)."""
        what = f"{asset!r}" + (f" ({partition})" if partition else "")
        final = self.slot(asset, partition) / artifact_id
        if len(os.fsencode(final)) + PATH_ROOM > PATH_MAX:
            raise StoreError(
                f"store {self.root}: the artifact path of {what} ({len(os.fsencode(final))} bytes) is too long for "
                f"the file system (at most {PATH_MAX - PATH_ROOM}, leaving room for its files); use a shorter path"
            )
        if not os.access(self.root, os.W_OK) or not os.access(self.tmp, os.W_OK):
            raise StoreError(
                f"store {self.root} is read-only: {what} is not a cache hit, so it must run and commit; "
                "make the store writable or run with a writable --store"
            )

    def resume_dir(self, asset: str, artifact_id: str, partition: str | None = None) -> Path:
        """Scratch that survives a failed run of this exact artifact (same stage, config, inputs, seed), for
        training checkpoints; :meth:`drop_resume_dir` removes it once the artifact is committed."""
        path = self.root / RESUME / self.slot(asset, partition).relative_to(self.root) / artifact_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def drop_resume_dir(self, asset: str, artifact_id: str, partition: str | None = None) -> None:
        rel = self.slot(asset, partition).relative_to(self.root)
        shutil.rmtree(self.root / RESUME / rel / artifact_id, ignore_errors=True)

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
        replace: bool = False,
        logger: logging.Logger | None = None,
    ) -> Artifact:
        """Hash ``staging.out``, write its manifest, rename it into place and point ``latest`` at it.

        If another run committed the same id meanwhile, that artifact is kept and ours dropped — unless ``replace``
        (``--force``): then it is moved aside. A folder without a manifest in the way (an orphan) is moved aside.
        """
        content_hash, files = hash_files(staging.out)
        full = {
            **manifest,
            "id": artifact_id,
            "pipeline": self.pipeline,
            "asset": asset,
            "partition": partition,
            "kind": kind,
            "content_hash": content_hash,
            "files": files,
            # the mtimes let a cache hit skip re-hashing a large file that was not touched (renames keep them)
            "mtime_ns": {f["path"]: (staging.out / f["path"]).stat().st_mtime_ns for f in files},
            "bytes": sum(f["size"] for f in files),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        # Insertion order kept: stages list their headline counts first.
        _write_atomic(staging.out / MANIFEST, json.dumps(full, indent=2, default=str))
        slot = self.slot(asset, partition)
        slot.mkdir(parents=True, exist_ok=True)
        final = slot / artifact_id
        for _ in range(3):
            try:
                os.rename(staging.out, final)
                break
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR):
                    raise
                committed = (final / MANIFEST).is_file()
                if committed and not replace:
                    break  # a concurrent run committed the same id: keep theirs
                why = "replaced (forced)" if committed else f"was in the way (no {MANIFEST}: an orphan)"
                (logger or log).warning(f"{asset}: {final} {why}: moved aside to {self.move_aside(final)}")
                replace = False
        self.set_latest(asset, artifact_id, partition)
        return self.load(final)

    def move_aside(self, path: Path) -> Path:
        """Move ``path`` (an artifact folder or a stray entry of a slot) to ``.quarantine/`` and drop a ``latest``
        pointer naming it; return where it went."""
        rel = path.relative_to(self.root)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        dest = self.root / QUARANTINE / rel.parent / f"{rel.name}.{stamp}.{uuid.uuid4().hex[:6]}"
        pointer = path.parent / LATEST
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.rename(path, dest)
            if pointer.is_file() and pointer.read_text(encoding="utf-8").strip() == path.name:
                pointer.unlink()
        except OSError as exc:
            raise StoreError(f"{path} must be moved aside but cannot be: {exc.strerror or exc}") from exc
        return dest

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
                    with contextlib.suppress(OSError):
                        entry.unlink(missing_ok=True)
                removed.append(entry)
        return removed

    def pipelines(self) -> list[Path]:
        """The pipeline folders in the store's root."""
        return sorted(p for p in self.root.iterdir() if p.is_dir() and folder_name_problem(p.name) is None)

    def slots(self) -> Iterator[Path]:
        """Every ``<pipeline>/<instance>/<partition>`` folder."""
        for pipeline in self.pipelines():
            yield from sorted(p for p in pipeline.glob("*/*") if p.is_dir())

    def artifacts(self) -> Iterator[Path]:
        """Every committed artifact directory (of every pipeline)."""
        for slot in self.slots():
            yield from sorted(p.parent for p in slot.glob(f"*/{MANIFEST}"))

    def old_layout(self) -> list[Path]:
        """Slots in the layout before pipelines had their own folder: ``<root>/<instance>/<partition>/``."""
        found = {p.parent for p in self.root.glob(f"*/*/{LATEST}")}
        found |= {p.parent.parent for p in self.root.glob(f"*/*/*/{MANIFEST}")}
        return sorted(p for p in found if folder_name_problem(p.parent.name) is None)

    def orphans(self) -> list[Path]:
        """Entries in artifact slots that no commit made: folders without a manifest, leftover temp files."""
        from gristmill.engine.store_admin import orphans

        return orphans(self)

    def verify(self) -> list[str]:
        """Re-hash every artifact against its manifest, check every ``latest`` pointer, find orphans; the problems."""
        from gristmill.engine.store_admin import find_problems

        return [str(p) for p in find_problems(self)]
