"""Docs stay in step with the code: hooks, stages and config fields are documented."""

import difflib
import inspect

import pytest
from pydantic import BaseModel, Field

from gristmill import cli, hookspecs
from gristmill.configs import StageConfig
from gristmill.pipeline.config import PipelineDef, RoundsDef, SourceDef, StageDef
from gristmill.plugins import RegisteredStage, StageRegistry, collect_stages, create_plugin_manager
from gristmill.stage import Input, StageSpec
from gristmill_plugins.devtools import docgen
from tests.conftest import REPO_ROOT

DOCS = REPO_ROOT / "docs"


def _builtin_stages():
    pm, errors = create_plugin_manager(autoload=False)
    registry = collect_stages(pm, errors)
    assert registry.errors == []
    return registry.stages


def test_every_hookspec_is_documented():
    text = (DOCS / "plugins.md").read_text()
    specs = [n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("gristmill_")]
    assert specs, "no hookspecs found"
    for name in specs:
        assert f"### `{name}(" in text, f"hook {name} is not documented in docs/plugins.md"


def test_every_builtin_stage_and_config_field_is_documented():
    text = (DOCS / "stages.md").read_text()
    for name, reg in _builtin_stages().items():
        assert f"## `{name}`" in text, f"stage {name} has no section in docs/stages.md"
        section = text.split(f"## `{name}`", 1)[1].split("\n## ", 1)[0]
        for field, info in reg.spec.config.model_fields.items():
            assert info.description, f"{name}.{field} has no Field(description=...)"
            assert f"`{field}`" in section, f"{name}.{field} is not documented in docs/stages.md"


def test_readme_opens_with_the_two_commands():
    text = (REPO_ROOT / "README.md").read_text()
    blocks = [b.split("```", 1)[0].strip() for b in text.split("```bash\n")[1:3]]
    assert blocks[0].endswith("gristmill demo") and "torch==2.13.0" in blocks[0]
    assert blocks[1].endswith("python -m pytest")
    ci = (REPO_ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci == blocks[1], ".ci/run must run exactly the README's test command"


# --- the generated reference (docs/reference/, written by `gristmill docs`) -----------------------------------------

REFERENCE = DOCS / "reference"
REGENERATE = "run `.venv/bin/gristmill docs` (writes docs/reference/) and commit the result"


def test_committed_reference_is_up_to_date():
    fresh = docgen.render_all(docgen.builtin_registry())
    assert sorted(fresh) == sorted(docgen.FILES)
    for name, text in fresh.items():
        path = REFERENCE / name
        assert path.is_file(), f"docs/reference/{name} is missing: {REGENERATE}"
        committed = path.read_text(encoding="utf-8")
        if committed != text:
            diff = "".join(
                list(
                    difflib.unified_diff(
                        committed.splitlines(True),
                        text.splitlines(True),
                        f"committed {name}",
                        f"generated {name}",
                        n=1,
                    )
                )[:40]
            )
            pytest.fail(f"docs/reference/{name} is out of date: {REGENERATE}\n{diff}")


def test_every_stage_hook_and_field_is_in_the_reference():
    stages = (REFERENCE / "stages.md").read_text(encoding="utf-8")
    for name, reg in _builtin_stages().items():
        assert f"\n## `{name}`\n" in stages, f"stage {name} missing from docs/reference/stages.md: {REGENERATE}"
        section = stages.split(f"\n## `{name}`\n", 1)[1].split("\n## ", 1)[0]
        for field in reg.spec.config.model_fields:
            assert f"| `{field}` |" in section, f"{name}.{field} missing from docs/reference/stages.md: {REGENERATE}"
    hooks = (REFERENCE / "hooks.md").read_text(encoding="utf-8")
    names = docgen.hookspec_names()
    assert set(names) == {n for n, _ in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("gristmill_")}
    for name in names:
        assert f"\n## `{name}`\n" in hooks and f"def {name}(" in hooks, f"hook {name} missing: {REGENERATE}"
    config = (REFERENCE / "configuration.md").read_text(encoding="utf-8")
    for model in (PipelineDef, SourceDef, StageDef, RoundsDef):
        for field in model.model_fields:
            assert f"| `{field}` |" in config, f"{model.__name__}.{field} missing from configuration.md: {REGENERATE}"


def test_every_config_field_has_a_description():
    missing = [
        f"{name}.{path}"
        for name, reg in sorted(_builtin_stages().items())
        for path in docgen.undocumented_fields(reg.spec.config)
    ]
    missing += [f"pipeline file: {path}" for path in docgen.undocumented_fields(PipelineDef)]
    assert not missing, f"config fields without Field(description=...): {', '.join(missing)}"


class _Inner(BaseModel):
    """An inner block."""

    documented: int = Field(1, description="Has one.")
    bare: str = "x"


class _ToyConfig(StageConfig):
    level: int = Field(3, ge=1, description="A level | with a pipe, <angle> and `a|b` code.")
    inner: _Inner = Field(default_factory=lambda: _Inner(documented=2), description="Nested block.")
    blocks: list[_Inner] | None = Field(None, description="A list of blocks.")


def _toy_run(ctx, config, inputs):
    """Do toy things.

    Second paragraph, not in the purpose."""


def test_generator_picks_up_a_new_stage_and_flags_undocumented_nested_fields():
    spec = StageSpec(
        name="toy_doc",
        version="2",
        inputs={
            "documents": "documents",
            "extra": Input("documents", optional=True),
            "many": Input("model", many=True),
        },
        output="report",
        config=_ToyConfig,
        run=_toy_run,
    )
    registry = StageRegistry(stages={**_builtin_stages(), "toy_doc": RegisteredStage(spec, "tests.toy")})
    text = docgen.stage_reference(registry)
    section = text.split("\n## `toy_doc`\n", 1)[1].split("\n## ", 1)[0]
    assert "Do toy things." in section and "Second paragraph" not in section
    assert "`documents`: documents, `extra`: documents (optional), `many`: list of model → `report`" in section
    assert "* **run policy:** launch `inline` · retries 2 · **group:** `stages`" in section
    level = "| `level` | `int` (≥ 1) | `3` | A level \\| with a pipe, &lt;angle> and <code>a&#124;b</code> code. |"
    assert level in section
    assert '| `inner` | [`_Inner`](#_inner) | `{"documented": 2}` | Nested block. |' in section
    assert "list of [`_Inner`](#_inner) or `null`" in section
    assert "### `_Inner`" in text and '| `bare` | `str` | `"x"` | **undocumented** |' in text
    assert docgen.undocumented_fields(_ToyConfig) == ["inner.bare"]
    assert docgen.render_all(registry) == docgen.render_all(registry)  # deterministic


def test_gristmill_docs_writes_and_checks(tmp_path, capsys):
    out = tmp_path / "ref"
    assert cli.main(["docs", "--out", str(out), "--check"]) == 1
    assert "run `gristmill docs" in capsys.readouterr().err and not out.exists()
    assert cli.main(["docs", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(docgen.FILES)
    assert cli.main(["docs", "--out", str(out), "--check"]) == 0
    (out / "hooks.md").write_text("stale", encoding="utf-8")
    assert cli.main(["docs", "--out", str(out), "--check"]) == 1
    assert "hooks.md" in capsys.readouterr().err
