import argparse
import json
import os
import subprocess
import sys

import pytest

from gristmill import ArtifactKind, Input, NoConfig, StageResult, StageSpec, hookimpl, plugins
from gristmill.engine.runner import execute
from gristmill.engine.store import ArtifactStore
from gristmill.pipeline.config import PipelineError, validate_pipeline
from gristmill.plugins import AUTOLOAD_OFF_ENV, collect_stages, create_plugin_manager, register_plugin_commands
from tests.conftest import REPO_ROOT, write_plugin_dist
from tests.support import toy_stages

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
    assert registry.stages["crawl_filter"].spec.inputs == {"warcs": Input("warc")}


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


# --- artifact kinds: built-ins plus gristmill_register_kinds ---------------------------------------------------------

SCANS = ArtifactKind("scans", "TIFF page scans", source_glob="*.tif")


def list_pages(ctx, config, inputs):
    """Lists the scanned pages."""
    pages = sorted(p.name for p in inputs["pages"].glob("*.tif"))
    (ctx.output_dir / "pages.json").write_text(json.dumps(pages), encoding="utf-8")
    return StageResult(counts={"pages": len(pages)})


class ScansPlugin:
    """A third-party plugin adding the kind ``scans`` and a stage that reads it."""

    @hookimpl
    def gristmill_register_kinds(self):
        return [SCANS]

    @hookimpl
    def gristmill_register_stages(self):
        spec = StageSpec(
            name="list_pages", version="1", inputs={"pages": "scans"}, output="report", config=NoConfig, run=list_pages
        )
        return [spec]


def _with(*named_plugins):
    pm, errors = create_plugin_manager(builtins=(), autoload=False)
    for name, plugin in named_plugins:
        pm.register(plugin, name=name)
    return collect_stages(pm, errors)


def test_a_plugin_kind_serves_its_stage_and_a_pipeline_source(tmp_path):
    registry = _with(("scans_plugin", ScansPlugin()))
    assert registry.errors == []
    assert registry.kinds["scans"] is SCANS and registry.kind_plugins == {"scans": "scans_plugin"}
    assert list(registry.source_kinds) == ["warc", "documents", "dataset", "tokenizer", "tokens", "model", "scans"]
    (tmp_path / "scans").mkdir()
    for name in ("p2.tif", "p1.tif", "notes.txt"):
        (tmp_path / "scans" / name).write_bytes(b"II*\0")
    pipeline = validate_pipeline(
        {
            "sources": {"raw": {"kind": "scans", "path": str(tmp_path / "scans")}},  # a directory: the kind's glob
            "stages": {"pages": {"stage": "list_pages", "inputs": {"pages": "raw"}}},
        },
        "scans.yaml",
        registry,
        store=tmp_path / "store",
    )
    art = execute(pipeline, "pages", ArtifactStore(pipeline.store)).artifact
    assert json.loads((art.path / "pages.json").read_text()) == ["p1.tif", "p2.tif"]
    with pytest.raises(
        PipelineError,
        match=r"scans.yaml: sources.raw.kind: .*'scans' is not a source kind; allowed: "
        r"warc, documents, dataset, tokenizer, tokens, model \(got 'scans'\)",
    ):
        validate_pipeline({"sources": {"raw": {"kind": "scans", "path": "x"}}, "stages": {}}, "scans.yaml", _with())


def test_a_stage_with_an_unknown_kind_is_an_error_of_its_plugin():
    class Typo:
        @hookimpl
        def gristmill_register_stages(self):
            spec = StageSpec(
                name="typo", version="1", inputs={"pages": "scan"}, output="report", config=NoConfig, run=list_pages
            )
            return [spec, toy_stages.WORDS]

    registry = _with(("typo_plugin", Typo()))
    assert [str(e) for e in registry.errors] == [
        "plugin 'typo_plugin': stage 'typo': unknown artifact kind(s) ['scan']; known: classifier, dataset, documents, "
        "model, report, tokenizer, tokens, warc"
    ]
    assert "typo" not in registry.stages and "toy_words" in registry.stages  # the plugin's other stages still load


def test_bad_kind_registrations_name_their_plugin():
    class Duplicate:
        @hookimpl
        def gristmill_register_kinds(self):
            return [ArtifactKind("documents", "my documents"), SCANS]

    class Again:
        @hookimpl
        def gristmill_register_kinds(self):
            return [ArtifactKind("scans", "other scans")]

    class Junk:
        @hookimpl
        def gristmill_register_kinds(self):
            return ["scans"]

    class Raises:
        @hookimpl
        def gristmill_register_kinds(self):
            raise RuntimeError("boom in kinds")

    registry = _with(("dup", Duplicate()), ("again", Again()), ("junk", Junk()), ("raises", Raises()))
    messages = sorted(map(str, registry.errors))
    assert messages == [
        "plugin 'again': artifact kind 'scans' already registered by 'dup'",
        "plugin 'dup': artifact kind 'documents' already registered by gristmill",
        "plugin 'junk': gristmill_register_kinds must return a list of ArtifactKind, got ['str']",
        "plugin 'raises': gristmill_register_kinds raised: RuntimeError: boom in kinds",
    ]
    assert registry.kinds["documents"].description != "my documents" and registry.kinds["scans"] is SCANS


def test_plugins_add_commands_and_a_broken_one_is_named(capsys):
    class Hello:
        @hookimpl
        def gristmill_register_commands(self, subparsers):
            subparsers.add_parser("hello", help="say hello").set_defaults(fn=lambda args: 7)

    class Broken:
        @hookimpl
        def gristmill_register_commands(self, subparsers):
            raise RuntimeError("boom")

    broken = Broken()
    pm, errors = create_plugin_manager(
        builtins=("gristmill_plugins.devtools",), autoload=False, extra=(Hello(), broken)
    )
    parser = argparse.ArgumentParser(prog="gristmill")
    sub = parser.add_subparsers(dest="command", required=True)
    register_plugin_commands(sub, pm)
    args = parser.parse_args(["hello"])
    assert not errors and args.fn(args) == 7
    assert parser.parse_args(["docs", "--check"]).check  # the built-in commands come through the same hook
    err = capsys.readouterr().err
    assert f"plugin {pm.get_name(broken)!r}: gristmill_register_commands raised RuntimeError: boom" in err
