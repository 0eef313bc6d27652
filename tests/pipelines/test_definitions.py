import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from gristmill.dagster.workspace import PIPELINE_ENV, STORE_ENV
from gristmill.pipeline.config import load_pipeline
from gristmill_pipelines import pipeline_path
from gristmill_pipelines.definitions import defs
from tests.conftest import REPO_ROOT

DEMO_GRAPH = {
    "demo_crawl": set(),
    "crawl": {"demo_crawl"},
    "dedup": {"crawl"},
    "reference": set(),
    "crawl_unfiltered": {"demo_crawl"},
    "quality_model": {"crawl_unfiltered", "reference"},
    "quality": {"dedup", "quality_model"},
    "tasks": set(),
    "pretrain_docs": {"tasks", "quality"},
    "tokenizer": {"pretrain_docs"},
    "tokens": {"pretrain_docs", "tokenizer"},
    "pretrain": {"tokens", "tokenizer"},
    "retrieval": {"quality"},
    "retrieval_tokens": {"retrieval", "tokenizer"},
    "long_context": {"pretrain", "retrieval_tokens", "tokens"},
    "sft": {"long_context", "tasks"},
    "rejection": {"sft", "tasks"},
    "rs_sft": {"sft", "rejection"},
    "reward": {"sft", "rejection"},
    "dpo": {"rs_sft", "tasks", "reward"},
    "eval": {"pretrain", "long_context", "sft", "rs_sft", "dpo", "tasks"},
}


def _graph(definitions: dg.Definitions) -> dict[str, set[str]]:
    graph = definitions.resolve_asset_graph()
    return {
        key.to_user_string(): {p.to_user_string() for p in graph.get(key).parent_keys}
        for key in graph.get_all_asset_keys()
    }


def test_demo_definitions_graph_snapshot(monkeypatch, tmp_path):
    monkeypatch.delenv(PIPELINE_ENV, raising=False)
    monkeypatch.setenv(STORE_ENV, str(tmp_path))
    definitions = defs()
    assert _graph(definitions) == DEMO_GRAPH
    graph = definitions.resolve_asset_graph()
    crawl = graph.get(dg.AssetKey("crawl"))
    assert crawl.code_version.startswith("crawl_filter@")
    assert crawl.group_name == "data"
    checks = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    assert ("crawl", "min_documents_kept") in checks and ("quality_model", "min_auc") in checks
    assert ("dpo", "heldout_accuracy") in checks and ("sft", "loss_decreased") in checks
    assert definitions.resolve_job_def("demo_job") is not None
    assert graph.get(dg.AssetKey("dpo")).partitions_def == dg.DynamicPartitionsDefinition(name="rounds")
    assert definitions.resolve_job_def("demo_rounds_job") is not None
    assert definitions.resolve_schedule_def("demo_next_round").default_status == dg.DefaultScheduleStatus.STOPPED
    assert definitions.resolve_sensor_def("demo_round_on_new_data") is not None
    assert definitions.resolve_sensor_def("demo_automation").default_status == dg.DefaultSensorStatus.RUNNING
    assert graph.get(dg.AssetKey("crawl")).automation_condition.get_label().startswith("eager")
    assert graph.get(dg.AssetKey("dpo")).automation_condition is None  # rounds come from the schedule/sensor
    pools = {k: graph.get(dg.AssetKey(k)).pools for k in ("crawl", "pretrain", "sft", "dpo")}
    assert pools == {
        "crawl": set(),
        "pretrain": {"gristmill_accelerator"},
        "sft": {"gristmill_accelerator"},
        "dpo": {"gristmill_accelerator"},
    }


def test_workspace_yaml_loads_with_dagster_cli(tmp_path):
    env = {**os.environ, STORE_ENV: str(tmp_path / "store"), "DAGSTER_HOME": str(tmp_path)}
    env.pop(PIPELINE_ENV, None)
    dagster = Path(sys.executable).parent / "dagster"
    proc = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", str(REPO_ROOT / "workspace.yaml")],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_pipeline_env_var_selects_other_pipelines(monkeypatch, tmp_path):
    own = tmp_path / "own.yaml"
    own.write_text(
        "name: own\nsources:\n  raw: {kind: warc, path: 'x/*.warc.gz'}\n"
        "stages:\n  crawl: {stage: crawl_filter, inputs: {warcs: raw}}\n"
    )
    monkeypatch.setenv(PIPELINE_ENV, os.pathsep.join([str(own), str(pipeline_path())]))
    monkeypatch.setenv(STORE_ENV, str(tmp_path / "store"))
    graph = _graph(defs())
    assert graph["own/crawl"] == {"own/raw"} and graph["demo/crawl"] == {"demo/demo_crawl"}


def _crawl_meta(result: dg.ExecuteInProcessResult) -> dict:
    mats = {e.asset_key.to_user_string(): e.materialization for e in result.get_asset_materialization_events()}
    return {k: getattr(v, "value", v) for k, v in mats["crawl"].metadata.items()}


@pytest.mark.slow
def test_materialize_the_demo_data_stages_then_cache_hit(tmp_path):
    """The demo's data stages through Dagster: they materialize, their gates pass, a second run is all cache hits.
    (The whole chain, training and rounds included, runs once in tests/e2e through `gristmill demo`.)"""
    from gristmill.dagster.assets import build_assets

    pipeline = load_pipeline(pipeline_path(), store=tmp_path)
    data = dg.AssetSelection.assets("tokens").upstream() - dg.AssetSelection.assets(*pipeline.sources)
    with dg.DagsterInstance.ephemeral() as instance:
        first = dg.materialize(build_assets(pipeline), instance=instance, selection=data)
        meta = _crawl_meta(first)
        mats = {e.asset_key.to_user_string() for e in first.get_asset_materialization_events()}
        assert mats == {"tokens"} | {k for k in DEMO_GRAPH if k in _upstream("tokens")}
        tokens = next(
            e.materialization
            for e in first.get_asset_materialization_events()
            if e.asset_key.to_user_string() == "tokens"
        )
        assert tokens.metadata["train_sequences"].value > 100
        assert meta["gristmill/cache_hit"] is False
        for event in first.get_asset_materialization_events():  # what the UI shows for every asset
            name, values = event.asset_key.to_user_string(), event.materialization.metadata.values()
            assert any(isinstance(v, dg.TableMetadataValue) for v in values), f"{name}: no sample/count table"
            assert any(
                isinstance(v, dg.MarkdownMetadataValue) and "data:image/png;base64," in v.value for v in values
            ), f"{name}: no plot"
            assert {"gristmill/artifact", "gristmill/manifest"} <= set(event.materialization.metadata), name
        assert meta["documents_kept"] > 20
        assert meta["documents_kept"] < meta["documents_extracted"]
        second = dg.materialize(build_assets(pipeline), instance=instance, selection=data)
        again = _crawl_meta(second)
    assert again["gristmill/cache_hit"] is True
    assert again["gristmill/artifact_id"] == meta["gristmill/artifact_id"]
    checks = [e.asset_check_evaluation_data for e in first.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    gates = ("min_documents_kept", "min_auc")
    assert {c.check_name for c in checks} >= set(gates)
    assert all(c.passed for c in checks if c.check_name in gates)


def _upstream(name: str) -> set[str]:
    out, todo = set(), [name]
    while todo:
        for parent in DEMO_GRAPH[todo.pop()]:
            if parent not in out:
                out.add(parent)
                todo.append(parent)
    return out


def test_config_change_changes_code_version(tmp_path):
    base = pipeline_path().read_text()
    changed = tmp_path / "demo2.yaml"
    changed.write_text(base.replace("languages: [en]", "languages: [en, fr]"))
    a = load_pipeline(pipeline_path(), store=tmp_path).stages["crawl"].code_version
    b = load_pipeline(changed, store=tmp_path).stages["crawl"].code_version
    assert a != b and a.split(":")[0] == b.split(":")[0]
