"""Docs stay in step with the code: hooks, stages and config fields are documented."""

import inspect

from gristmill import hookspecs
from gristmill.plugins import collect_stages, create_plugin_manager
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
