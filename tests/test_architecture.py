"""The import direction of the packages (docs/architecture.md draws it), read from the source with ``ast``.

Layers, bottom to top: the stage contract (``gristmill`` top-level modules) → ``gristmill.pipeline`` →
``gristmill.engine`` → ``gristmill.dagster`` → ``gristmill.cli``. The framework never imports ``gristmill.lib`` or a
plugin; ``gristmill.lib`` never imports the pipeline layer, the Dagster layer, the CLI or a plugin; a built-in plugin
imports the contract, the pipeline models, the engine's launch helpers and the library, never another plugin, the
Dagster layer or the CLI. Imports under ``if TYPE_CHECKING:`` are
annotations only and are not counted.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {
    "gristmill": ROOT / "core" / "gristmill",
    "gristmill_plugins": ROOT / "plugins" / "gristmill_plugins",
    "gristmill_pipelines": ROOT / "pipelines" / "gristmill_pipelines",
}
FRAMEWORK = ("contract", "pipeline", "engine", "dagster", "cli")
ALLOWED: dict[str, set[str]] = {
    "contract": {"contract"},
    "pipeline": {"contract", "pipeline"},
    "engine": {"contract", "pipeline", "engine"},
    "dagster": {"contract", "pipeline", "engine", "dagster"},
    "cli": {"contract", "pipeline", "engine", "dagster", "cli"},
    "lib": {"contract", "engine", "lib"},
    "plugin": {"contract", "pipeline", "engine", "lib"},  # plus the plugin's own modules (checked separately)
    "pipelines": {"contract", "pipeline", "engine", "dagster"},
}


def module_name(path: Path) -> str:
    for top, folder in SOURCES.items():
        if path.is_relative_to(folder):
            parts = [top, *path.relative_to(folder).with_suffix("").parts]
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    raise ValueError(path)


def layer(module: str) -> str | None:
    """The layer of a gristmill module (None for third-party modules)."""
    parts = module.split(".")
    if parts[0] == "gristmill":
        sub = parts[1] if len(parts) > 1 else ""
        return sub if sub in {"pipeline", "engine", "dagster", "cli", "lib"} else "contract"
    if parts[0] == "gristmill_plugins":
        return "plugin"
    if parts[0] == "gristmill_pipelines":
        return "pipelines"
    return None


def plugin_of(module: str) -> str:
    """``gristmill_plugins.minhash_dedup.minhash`` → ``gristmill_plugins.minhash_dedup``."""
    return ".".join(module.split(".")[:2])


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(path: Path, module: str) -> list[tuple[int, str]]:
    """Every module that ``path`` (module ``module``) imports, function-level imports included, as absolute names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_lines(tree)
    here = module.split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
            out.append((node.lineno, base))
            out.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)  # `from pkg import module`
    return out


def _sources() -> list[Path]:
    return sorted(p for folder in SOURCES.values() for p in folder.rglob("*.py"))


def _modules() -> list[tuple[Path, str]]:
    return [(p, module_name(p)) for p in _sources()]


def _existing(module: str) -> bool:
    """Whether ``module`` names a module of ours (``from gristmill import StageSpec`` names a class, not one)."""
    top, *rest = module.split(".")
    if top not in SOURCES:
        return False
    path = SOURCES[top].joinpath(*rest)
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def violations(modules: list[tuple[Path, str]]) -> list[str]:
    found = []
    for path, here in modules:
        src = layer(here)
        assert src is not None
        for line, target in imports_of(path, here):
            dst = layer(target)
            if dst is None or not _existing(target):
                continue
            where = f"{here} (line {line}) imports {target}"
            if src == "plugin" and dst == "plugin":
                if plugin_of(target) != plugin_of(here):
                    found.append(f"{where} (a plugin never imports another plugin; share code through gristmill.lib)")
            elif dst not in ALLOWED[src]:
                found.append(f"{where} ({src} may import only {', '.join(sorted(ALLOWED[src]))})")
    return found


def test_import_direction():
    assert violations(_modules()) == []


def test_framework_never_imports_lib_or_plugins():
    # the rule above, stated for the framework alone so a failure reads plainly
    for src in FRAMEWORK:
        assert "lib" not in ALLOWED[src] and "plugin" not in ALLOWED[src]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("from gristmill.dagster.assets import build_assets\n", "lib may import only"),
        ("import gristmill_plugins.tokens\n", "lib may import only"),
    ],
)
def test_a_forbidden_import_is_found(tmp_path, source, message):
    """The checker can fail: a lib module importing the Dagster layer or a plugin is reported."""
    probe = tmp_path / "probe.py"
    probe.write_text(source, encoding="utf-8")
    found = violations([(probe, "gristmill.lib.probe")])
    assert len(found) == 1 and message in found[0], found


def test_no_source_file_over_500_lines():
    long = {str(p.relative_to(ROOT)): n for p in _sources() if (n := len(p.read_text().splitlines())) > 500}
    assert long == {}
