"""Whole-store maintenance behind ``gristmill store``: verify (re-hash every artifact, check the ``latest`` pointers,
find orphans), repair (move what is bad aside so the next run recomputes it) and migrate (a store in the layout
before each pipeline had its own folder)."""

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from gristmill.engine.store import (
    LATEST,
    MANIFEST,
    ArtifactStore,
    StoreError,
    _write_atomic,
    folder_name_problem,
    hash_files,
)

MOVE, UNLINK = "move aside", "remove"


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a store; ``repair`` says what ``--repair`` does about it ("" for nothing)."""

    message: str
    path: Path
    repair: str = ""

    def __str__(self) -> str:
        return self.message


def orphans(store: ArtifactStore) -> list[Path]:
    """Entries in artifact slots that no commit made: folders without a manifest, leftover temp files.

    A slot is ``<pipeline>/<instance>/<partition or _>/`` holding a ``latest`` pointer or a committed artifact; other
    folders in the store's root (``dagster_home``, ``.tmp``, ``.resume``, ``.quarantine``) are not looked in.
    """
    found = []
    for slot in store.slots():
        if not (slot / LATEST).is_file() and not any(slot.glob(f"*/{MANIFEST}")):
            continue
        for entry in sorted(slot.iterdir()):
            if entry.name == LATEST or (entry.is_dir() and (entry / MANIFEST).is_file()):
                continue
            found.append(entry)
    return found


def find_problems(store: ArtifactStore) -> list[Problem]:
    """Every artifact re-hashed against its manifest (files changed, added, missing, paths outside the artifact),
    every ``latest`` pointer, orphans, and slots in the old layout."""
    problems = []
    old = store.old_layout()
    if old:
        problems.append(
            Problem(
                f"store {store.root}: {len(old)} slot(s) in the layout before each pipeline had its own folder "
                f"({old[0]} …): run `gristmill store migrate --store {store.root} --pipeline NAME`",
                store.root,
            )
        )
    for path in store.artifacts():
        try:
            issues = store.check(store.load(path), full=True)
        except StoreError as exc:
            issues = [str(exc).split(": ", 1)[-1]]
        if issues:
            problems.append(Problem(f"artifact {path}: {'; '.join(issues)}", path, MOVE))
    for slot in store.slots():
        pointer = slot / LATEST
        if not pointer.is_file():
            continue
        name = pointer.read_text(encoding="utf-8").strip()
        if folder_name_problem(name) is not None or not (slot / name / MANIFEST).is_file():
            problems.append(Problem(f"{pointer} names missing artifact {name[:80]!r}", pointer, UNLINK))
    problems += [
        Problem(f"orphan: {path} (not a committed artifact: no {MANIFEST}); --repair moves it aside", path, MOVE)
        for path in orphans(store)
    ]
    return problems


def repair(store: ArtifactStore, problems: list[Problem]) -> tuple[list[str], list[Problem]]:
    """Move bad artifacts and orphans aside (to ``.quarantine/``), remove pointers to missing artifacts; return what
    was done and the problems left."""
    done, left = [], []
    for problem in sorted(problems, key=lambda p: p.repair != MOVE):  # a moved artifact takes its pointer along
        path = problem.path
        try:
            if problem.repair == MOVE and (path.exists() or path.is_symlink()):
                done.append(f"{path} moved aside to {store.move_aside(path)}")
            elif problem.repair == UNLINK and path.is_file():
                path.unlink()
                done.append(f"removed {path}: the next run of its asset commits a new artifact")
            elif not problem.repair:
                left.append(problem)
        except (StoreError, OSError) as exc:
            left.append(Problem(f"{problem.message} (repair failed: {exc})", path))
    return done, left


def migrate(root: str | Path, pipeline: str) -> list[str]:
    """Move a store's artifacts from the old layout ``<root>/<instance>/…`` to ``<root>/<pipeline>/<instance>/…``;
    return what was moved. Training checkpoints of failed runs (``.resume``) are not moved."""
    store = ArtifactStore(root, clean=False, check_layout=False).for_pipeline(pipeline)
    assets = sorted({slot.parent for slot in store.old_layout()})
    target = store.root / pipeline
    if target.exists() and target not in assets:
        clash = [a.name for a in assets if (target / a.name).exists()]
        if clash:
            raise StoreError(f"store {store.root}: {target} already holds {', '.join(clash)}; nothing was moved")
    holding = store.root / f".migrating-{uuid.uuid4().hex[:8]}"  # an asset may share the pipeline's name
    holding.mkdir()
    for asset in assets:
        os.rename(asset, holding / asset.name)
    if target.exists():
        for asset in holding.iterdir():
            os.rename(asset, target / asset.name)
        holding.rmdir()
    else:
        os.rename(holding, target)
    for path in sorted(p.parent for p in target.glob(f"*/*/*/{MANIFEST}")):
        _record_mtimes(path, pipeline)
    store.mark()
    return [f"{asset.name} → {pipeline}/{asset.name}" for asset in assets]


def _record_mtimes(path: Path, pipeline: str) -> None:
    """Add what the new layout's manifests hold (the pipeline, each file's mtime) to a migrated artifact whose files
    match its manifest; one that does not is left for ``store verify`` to report."""
    manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    _, files = hash_files(path)
    if files != manifest.get("files"):
        return
    mtimes = {f["path"]: (path / f["path"]).stat().st_mtime_ns for f in files}
    manifest.update(pipeline=pipeline, mtime_ns=mtimes)
    _write_atomic(path / MANIFEST, json.dumps(manifest, indent=2, default=str))
