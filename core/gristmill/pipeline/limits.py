"""What a pipeline file may hold: bounded YAML, portable names, short excerpts in messages.

* **YAML** is read with libyaml's ``CSafeLoader`` (PyYAML's pure-Python ``SafeLoader`` only where libyaml is
  missing), from a file of at most :data:`MAX_YAML_BYTES`. Anchors and aliases are allowed, but what they repeat
  is bounded: the document, with every alias expanded, may hold at most :data:`MAX_ALIAS_NODES` nodes more than
  the file itself ("billion laughs" is refused in milliseconds, naming the anchor's line); a recursive alias is
  refused too.
* **Names** of the pipeline, its sources and its stage instances become Dagster asset and job names and store
  folder names: ASCII letters, digits and ``_``, not starting with a digit, at most :data:`MAX_NAME_CHARS`
  characters, and none of :data:`RESERVED_NAMES`.
* **Excerpts**: a value quoted in an error message is cut to :data:`EXCERPT_CHARS` characters, without
  expanding it first.
"""

import keyword
import re
import reprlib
from pathlib import Path
from typing import Any

import yaml

from gristmill.errors import StageInputError

MAX_YAML_BYTES = 4 << 20
MAX_ALIAS_NODES = 10_000
MAX_NAME_CHARS = 64
EXCERPT_CHARS = 200

NAME_RULE = f"ASCII letters, digits and _, not starting with a digit, at most {MAX_NAME_CHARS} characters"
_NAME = re.compile(rf"[A-Za-z_][A-Za-z0-9_]{{0,{MAX_NAME_CHARS - 1}}}")

# Dagster refuses these as asset, job and op names (dagster._core.definitions.utils.DISALLOWED_NAMES: Python
# keywords and a few of its own); ``dagster_home`` is the Dagster instance's folder in the store's root, beside
# the asset folders (the store's own folders, ``.tmp`` and ``.resume``, cannot match the name rule).
DAGSTER_RESERVED = frozenset(
    {"context", "conf", "config", "meta", "arg_dict", "dict", "input_arg_dict", "output_arg_dict"}
    | {"int", "str", "float", "bool", "input", "output", "type"}
    | set(keyword.kwlist)
)
STORE_RESERVED = frozenset({"dagster_home"})
RESERVED_NAMES = DAGSTER_RESERVED | STORE_RESERVED

YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _ShortRepr(reprlib.Repr):
    """``reprlib`` with room for a readable excerpt; bytes and huge ints are cut, never rendered whole."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxstring = self.maxother = self.maxlong = EXCERPT_CHARS

    def repr_bytes(self, value: bytes, level: int) -> str:
        return repr(value[: self.maxstring]) + ("..." if len(value) > self.maxstring else "")

    def repr_int(self, value: int, level: int) -> str:
        try:
            return super().repr_int(value, level)
        except ValueError:  # more digits than Python converts to text
            return f"<an int of about {value.bit_length() * 30103 // 100000} digits>"


_SHORT = _ShortRepr()


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> str:
    """``repr(value)``, at most ``limit`` characters, computed without expanding a large or shared structure."""
    return clip(_SHORT.repr(value), limit)


def clip(text: str, limit: int = EXCERPT_CHARS) -> str:
    """``text`` on one line (non-printable characters escaped), cut to at most ``limit`` characters."""
    head = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:limit])
    return head if len(head) <= limit and len(text) <= limit else head[: limit - 1] + "…"


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a pipeline, source or stage instance, or None when it can."""
    if not _NAME.fullmatch(name):
        if len(name) > MAX_NAME_CHARS:
            return f"is {len(name)} characters long; names are {NAME_RULE}"
        return f"must be {NAME_RULE}"
    if name in STORE_RESERVED:
        return "is reserved: the store keeps the Dagster instance in a folder of that name"
    if name in DAGSTER_RESERVED:
        return "is reserved by Dagster (a Python keyword or one of its own names)"
    return None


def check_names(data: Any, path: str, error: type[StageInputError] = StageInputError) -> None:
    """Refuse a bad pipeline, source or stage instance name in parsed pipeline YAML (other shapes are left to the
    schema), with a message naming the file and key."""
    if not isinstance(data, dict):
        return
    name = data.get("name")
    if isinstance(name, str) and (problem := name_problem(name)):
        raise error(f"{path}: name: the pipeline name {excerpt(name, 80)} {problem}")
    for section in ("sources", "stages"):
        entries = data.get(section)
        if not isinstance(entries, dict):
            continue
        for key in entries:
            if isinstance(key, str) and (problem := name_problem(key)):
                what = "source" if section == "sources" else "stage instance"
                raise error(f"{path}: {section}.{clip(key, 80)}: the {what} name {problem}")


def _expansion_problem(root: yaml.Node) -> str | None:
    """Why the aliases under ``root`` are refused (a line number first), or None: counts every node as often as
    aliases repeat it, in time linear in the distinct nodes."""
    sizes: dict[int, int] = {}  # id(node) → nodes in its expanded subtree
    on_path: set[int] = set()
    repeated: dict[int, yaml.Node] = {}
    distinct = 0
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        children = _children(node)
        if finished:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in children)
            continue
        if key in sizes:
            repeated[key] = node
            continue
        if key in on_path:
            return f"{node.start_mark.line + 1}: a recursive YAML alias (the anchor refers to itself)"
        on_path.add(key)
        distinct += 1
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(children))
    expanded = sizes[id(root)]
    if expanded - distinct <= MAX_ALIAS_NODES:
        return None
    worst = max(repeated.values(), key=lambda n: sizes[id(n)])
    return (
        f"{worst.start_mark.line + 1}: YAML aliases expand the document to {expanded:,} nodes, {expanded - distinct:,} "
        f"more than the file holds (at most {MAX_ALIAS_NODES:,} are allowed); the anchor on this line is repeated "
        "too often"
    )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def load_yaml_file(path: Path, error: type[StageInputError] = StageInputError) -> Any:
    """The parsed YAML of ``path``, bounded as the module describes; ``error`` naming the file (and line: column for
    syntax errors) otherwise."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise error(f"{path}: cannot read pipeline file: {exc.strerror or exc}") from exc
    if len(raw) > MAX_YAML_BYTES:
        raise error(f"{path}: the file is larger than {MAX_YAML_BYTES >> 20} MiB; a pipeline file is not that big")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    loader = YAML_LOADER(text)
    data, problem = None, None
    try:
        node = loader.get_single_node()
        problem = _expansion_problem(node) if node is not None and "&" in text else None
        if node is not None and problem is None:
            data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        problem = problem.removeprefix("did not find ")  # libyaml's wording → PyYAML's ("expected ',' or ']'")
        raise error(f"{path}{at}: invalid YAML: {clip(problem)}") from exc
    except (
        ValueError,
        OverflowError,
    ) as exc:  # a scalar the constructor cannot convert (a 10,000-digit int, a bad date)
        raise error(f"{path}: invalid YAML value: {clip(str(exc))}") from exc
    finally:
        loader.dispose()
    if problem is not None:
        raise error(f"{path}:{problem}")
    return data
