import os
import subprocess
import sys

import pytest

from gristmill import plugins
from gristmill.plugins import AUTOLOAD_OFF_ENV, collect_stages, create_plugin_manager
from tests.conftest import REPO_ROOT, write_plugin_dist

GOOD = """
from gristmill import StageSpec, NoConfig, StageResult, hookimpl

def run(ctx, config, inputs):
    '''Copies nothing.'''
    return StageResult()

@hookimpl
def gristmill_register_stages():
    return [StageSpec(name="third_party_stage", version="3", inputs={"documents": "documents"},
                      output="documents", config=NoConfig, run=run)]
"""
IMPORT_ERROR = "import not_a_real_module_xyz\n"
HOOK_RAISES = """
from gristmill import hookimpl

@hookimpl
def gristmill_register_stages():
    raise RuntimeError("boom in hook")
"""
WRONG_TYPE = """
from gristmill import hookimpl

@hookimpl
def gristmill_register_stages():
    return {"not": "a list"}
"""
MISSPELLED = """
from gristmill import hookimpl

@hookimpl
def gristmill_register_stage():
    return []
"""


@pytest.fixture
def plugin_site(tmp_path, monkeypatch):
    site = write_plugin_dist(
        tmp_path / "site",
        "gm_plugins_fixture",
        {
            "good": "gm_good",
            "broken_import": "gm_import_error",
            "raising": "gm_hook_raises",
            "wrong_type": "gm_wrong_type",
            "misspelled": "gm_misspelled",
        },
        {
            "gm_good": GOOD,
            "gm_import_error": IMPORT_ERROR,
            "gm_hook_raises": HOOK_RAISES,
            "gm_wrong_type": WRONG_TYPE,
            "gm_misspelled": MISSPELLED,
        },
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv(AUTOLOAD_OFF_ENV, raising=False)
    return site


def _registry(**kw):
    pm, errors = create_plugin_manager(**kw)
    return collect_stages(pm, errors)


def test_builtins_register_through_the_hook():
    registry = _registry(autoload=False)
    assert registry.errors == []
    assert registry.stages["crawl_filter"].plugin == "gristmill_plugins.crawl_filter"
    assert registry.stages["synthetic_crawl"].plugin == "gristmill_plugins.demo_data"
    assert registry.stages["crawl_filter"].spec.inputs == {"warcs": "warc"}


def test_entry_point_plugin_loads_and_broken_ones_are_named(plugin_site):
    registry = _registry()
    assert registry.stages["third_party_stage"].plugin == "good"
    assert "crawl_filter" in registry.stages  # built-ins unaffected
    messages = "\n".join(map(str, registry.errors))
    assert "broken_import" in messages and "not_a_real_module_xyz" in messages
    assert "raising" in messages and "boom in hook" in messages
    assert "wrong_type" in messages and "list of StageSpec" in messages
    assert "gristmill_register_stage" in messages  # check_pending names the misspelled hook
    assert len(registry.errors) == 4


def test_autoload_switch(plugin_site, monkeypatch):
    monkeypatch.setenv(AUTOLOAD_OFF_ENV, "1")
    registry = _registry()
    assert "third_party_stage" not in registry.stages
    assert registry.errors == []
    assert "crawl_filter" in registry.stages


def test_duplicate_stage_name_is_an_error_naming_both():
    from tests.support import toy_stages

    pm, errors = create_plugin_manager(builtins=(), autoload=False, extra=(toy_stages,))

    class Again:
        @plugins.hookspecs.hookimpl
        def gristmill_register_stages(self):
            return [toy_stages.WORDS]

    pm.register(Again(), name="again")
    registry = collect_stages(pm, errors)
    assert [e.plugin for e in registry.errors] == ["again"]
    assert "already registered" in registry.errors[0].message


def test_cli_stages_lists_entry_point_plugin_and_names_broken(plugin_site):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_site), str(REPO_ROOT)])}
    env.pop(AUTOLOAD_OFF_ENV, None)
    proc = subprocess.run(
        [sys.executable, "-m", "gristmill.cli", "stages"], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1
    assert "third_party_stage" in proc.stdout and "documents:documents → documents" in proc.stdout
    assert "crawl_filter" in proc.stdout
    assert "plugin 'broken_import" in proc.stderr
