"""Files a glob (or a folder) matches, following symbolic links safely: raw sources and the library's config globs.

* A file is named as the user sees it: by the link's path, never by its target's. A Hugging Face cache snapshot
  (``snapshots/<rev>/data/train.jsonl`` → ``../../../blobs/<hash>``) therefore matches ``*.jsonl`` and a model
  snapshot folder holds ``config.json``, not ``blobs/<hash>``.
* Links to folders are followed. A folder is read once per remaining pattern, so link loops end (``a -> .`` under a
  ``**`` glob) and a folder reached again through another link is not read twice.
* A link whose target lies outside the root — the folder the glob starts from (its part before the first wildcard)
  or the folder given — is skipped unless ``follow_external`` (a source's ``follow_external_links: true``); a link
  into the ``blobs/`` folder of the Hugging Face cache repository that holds the root counts as inside. A broken
  link or an unreadable folder is skipped too. Every skipped path is returned with the reason.
* ``glob.glob`` conventions otherwise: ``**`` spans folders, ``*`` and ``**`` do not match names starting with a dot
  (unless the pattern's part does); for a folder and its kind's file glob (``directory_glob``) every file below it
  whose name matches, hidden ones too (``Path.rglob``).
"""

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path

_MAGIC = frozenset("*?[")


@dataclass(frozen=True)
class Skipped:
    """A file or folder not read, and why."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class Matches:
    """The matched files (sorted, as the user names them) and what was skipped."""

    files: list[Path] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def _magic(part: str) -> bool:
    return any(c in _MAGIC for c in part)


def _hf_blobs(real_root: str) -> str | None:
    """The ``blobs`` folder of the Hugging Face cache repository whose ``snapshots/`` holds ``real_root``."""
    parts = Path(real_root).parts
    if "snapshots" not in parts:
        return None
    at = len(parts) - 1 - parts[::-1].index("snapshots")
    blobs = Path(*parts[:at], "blobs")
    return str(blobs) if blobs.is_dir() else None


class _Walk:
    def __init__(self, root: Path, follow_external: bool, hidden: bool) -> None:
        self.root, self.follow_external, self.hidden = root, follow_external, hidden
        real = os.path.realpath(root)
        self.inside = [real] + [b for b in [_hf_blobs(real)] if b]
        self.seen: set[tuple[int, int, tuple[str, ...]]] = set()
        self.files: set[Path] = set()
        self.skipped: list[Skipped] = []

    def _link_ok(self, path: Path) -> bool:
        """Whether the link ``path`` may be followed (its target exists, and lies inside or outside is allowed)."""
        target = os.path.realpath(path)
        if not os.path.exists(target):
            self.skipped.append(Skipped(path, f"broken symbolic link (to {os.readlink(path)})"))
            return False
        if self.follow_external or any(
            target == r or target.startswith(r.rstrip(os.sep) + os.sep) for r in self.inside
        ):
            return True
        self.skipped.append(
            Skipped(path, f"symbolic link to {target}, outside {self.root} (follow_external_links: true reads it)")
        )
        return False

    def _entries(self, folder: Path) -> list[os.DirEntry]:
        try:
            with os.scandir(folder) as it:
                return sorted(it, key=lambda e: e.name)
        except OSError as exc:
            self.skipped.append(Skipped(folder, f"folder not readable ({exc.strerror or exc})"))
            return []

    def _name_ok(self, name: str, part: str) -> bool:
        if name.startswith(".") and not self.hidden and not part.startswith("."):
            return False
        return fnmatch.fnmatchcase(name, part)

    def _enter(self, folder: Path, rest: tuple[str, ...]) -> bool:
        """Mark ``folder`` read for ``rest``; False when it was (a loop, or a folder reached twice)."""
        try:
            st = folder.stat()
        except OSError:
            return False
        key = (st.st_dev, st.st_ino, rest)
        if key in self.seen:
            self.skipped.append(Skipped(folder, "folder already read through another path (a symbolic link loop?)"))
            return False
        self.seen.add(key)
        return True

    def walk(self, folder: Path, rest: tuple[str, ...]) -> None:
        if not rest or not self._enter(folder, rest):
            return
        head, tail = rest[0], rest[1:]
        if head == "**":
            self.walk(folder, tail)  # zero folders
        for entry in self._entries(folder):
            path = folder / entry.name
            try:
                is_dir, is_link = entry.is_dir(), entry.is_symlink()
            except OSError:
                continue
            if head == "**":
                if is_dir and self._name_ok(entry.name, "*") and (not is_link or self._link_ok(path)):
                    self.walk(path, rest)
                continue
            if not self._name_ok(entry.name, head):
                continue
            if is_link and not self._link_ok(path):
                continue
            if tail:
                if is_dir:
                    self.walk(path, tail)
            elif entry.is_file():
                self.files.add(path)


def match_files(pattern: str, directory_glob: str | None = None, follow_external: bool = False) -> Matches:
    """The files ``pattern`` matches (``~`` expanded; relative to the working directory): a glob, a file, or — with
    ``directory_glob`` — a folder's files whose names match it at any depth. See the module docstring for links."""
    path = Path(pattern).expanduser()
    if directory_glob is not None and path.is_dir():
        walk = _Walk(path.absolute(), follow_external, hidden=True)
        walk.walk(walk.root, ("**", directory_glob))
        return Matches(sorted(walk.files), walk.skipped)
    parts = path.parts
    first = next((i for i, part in enumerate(parts) if _magic(part)), None)
    if first is None:  # one file, named by the user: taken as it is
        if path.is_file():
            return Matches([path.absolute()])
        if path.is_symlink():
            return Matches([], [Skipped(path, f"broken symbolic link (to {os.readlink(path)})")])
        return Matches()
    root = Path(*parts[:first]) if first else Path()
    if not root.absolute().is_dir():
        return Matches()
    walk = _Walk(root.absolute(), follow_external, hidden=False)
    rest: list[str] = []
    for part in parts[first:]:
        if not (part == "**" and rest[-1:] == ["**"]):  # `**/**` is `**`
            rest.append(part)
    walk.walk(walk.root, tuple(rest))
    return Matches(sorted(walk.files), walk.skipped)
