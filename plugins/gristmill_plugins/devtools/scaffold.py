"""``gristmill new-stage``: a plugin package for a new :mod:`gristmill.lib.kit` stage to start from.

The package holds a ``pyproject.toml`` with the ``gristmill`` entry point, a module with the stage (a filter,
mapper or trainer built with the kit), a test that passes as written and a README.
"""

from pathlib import Path

__all__ = ["KINDS", "ScaffoldError", "write_stage_package"]

KINDS = ("filter", "mapper", "trainer")


class ScaffoldError(ValueError):
    """A stage package that cannot be written (bad name, folder exists)."""


TEMPLATES = Path(__file__).parent / "templates"


def _template(name: str) -> str:
    return (TEMPLATES / f"{name}.tmpl").read_text(encoding="utf-8")


def write_stage_package(name: str, kind: str = "filter", parent: Path | str = ".") -> Path:
    """Write a plugin package for a new kit stage ``name`` into ``parent/gristmill-<name>``; return its folder.

    The package (``pyproject.toml`` with the ``gristmill`` entry point, module ``gristmill_<name>``, a test, a
    README) installs and passes its test as written; edit the function and config from there.
    """
    if not name.isidentifier() or not name.islower() or name.startswith("_"):
        raise ScaffoldError(f"stage name {name!r} must be a lower-case Python identifier, e.g. short_docs")
    if kind not in KINDS:
        raise ScaffoldError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    module = f"gristmill_{name}"
    dist = f"gristmill-{name.replace('_', '-')}"
    root = Path(parent) / dist
    if root.exists():
        raise ScaffoldError(f"{root} already exists")
    source = _template(f"{kind}.py")
    if kind == "trainer":
        test, inputs = _template("trainer_test.py"), "model: pretrain, dataset: tasks"
    else:
        test = _template("docs_test.py").replace("__ASSERTS__", _template(f"{kind}_asserts.py"))
        inputs = "documents: crawl"
    files = {
        "pyproject.toml": _template("pyproject.toml"),
        "README.md": _template("README.md").replace("__KIND__", kind).replace("__INPUTS__", inputs),
        f"{module}/__init__.py": source,
        f"tests/test_{name}.py": test,
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        text = text.replace("__NAME__", name).replace("__MODULE__", module).replace("__DIST__", dist)
        path.write_text(text, encoding="utf-8")
    return root
