import json
import os

import dagster as dg
import pytest

from gristmill.dagster.assets import build_assets
from gristmill.engine.runner import execute
from gristmill.engine.store import ArtifactStore
from gristmill.pipeline.config import SourceDef, validate_pipeline
from gristmill.pipeline.sources import SourceError, fingerprint, matched_files, resolve_source
from gristmill.plugins import get_plugin_manager
from tests.support import toy_registry

REG = toy_registry()


def _write_docs(folder, name, words):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "w") as f:
        for i, w in enumerate(words):
            f.write(json.dumps({"id": f"{name}-{i}", "text": w, "metadata": {}}) + "\n")


def _pipeline(data, store):
    return validate_pipeline(
        {
            "sources": {"raw": {"kind": "documents", "path": str(data / "*.jsonl")}},
            "stages": {"upper": {"stage": "toy_upper", "inputs": {"documents": "raw"}}},
        },
        "src.yaml",
        REG,
        store=store,
    )


def test_fingerprint_tracks_names_sizes_mtimes_or_content(tmp_path):
    _write_docs(tmp_path, "a.jsonl", ["x"])
    src = SourceDef(kind="documents", path=str(tmp_path))  # a directory uses the kind's default glob
    files = matched_files(src)
    assert [f.name for f in files] == ["a.jsonl"]
    v1, c1 = fingerprint(files), fingerprint(files, content=True)
    os.utime(files[0], ns=(1, 1))
    assert fingerprint(files) != v1 and fingerprint(files, content=True) == c1
    _write_docs(tmp_path, "b.jsonl", ["y"])
    assert fingerprint(matched_files(src)) != fingerprint(files)


def test_missing_files_name_the_source(tmp_path):
    with pytest.raises(SourceError, match="source 'raw': no files match"):
        resolve_source("raw", SourceDef(kind="warc", path=str(tmp_path / "*.warc.gz")))


def test_new_source_file_gives_new_artifact_and_observation_changes(tmp_path):
    data, store = tmp_path / "data", ArtifactStore(tmp_path / "store")
    _write_docs(data, "a.jsonl", ["one", "two"])
    pipeline = _pipeline(data, store.root)
    first = execute(pipeline, "upper", store)
    assert execute(pipeline, "upper", store).cache_hit
    _write_docs(data, "b.jsonl", ["three"])
    second = execute(pipeline, "upper", store)
    assert not second.cache_hit and second.counts["documents_out"] == 3 != first.counts["documents_out"]

    observe = dg.define_asset_job("observe_raw", selection=[dg.AssetKey("raw")])
    job = dg.Definitions(assets=build_assets(pipeline), jobs=[observe]).resolve_job_def("observe_raw")
    with dg.DagsterInstance.ephemeral() as instance:
        assert job.execute_in_process(instance=instance).success
        v1 = instance.get_latest_data_version_record(dg.AssetKey("raw")).asset_observation.data_version
        _write_docs(data, "c.jsonl", ["four"])
        job.execute_in_process(instance=instance)
        v2 = instance.get_latest_data_version_record(dg.AssetKey("raw")).asset_observation.data_version
    assert v1 == fingerprint(matched_files(pipeline.sources["raw"])[:2])
    assert v2 == fingerprint(matched_files(pipeline.sources["raw"])) != v1


def test_stage_finished_hook_sees_commits_not_cache_hits_and_cannot_fail_the_run(tmp_path):
    from gristmill import hookimpl

    seen = []

    class Recorder:
        @hookimpl
        def gristmill_stage_finished(self, spec, artifact, context):
            seen.append((spec.name, artifact.id, context.instance))

    class Raiser:
        @hookimpl
        def gristmill_stage_finished(self, spec, artifact, context):
            raise RuntimeError("observer broke")

    data, store = tmp_path / "data", ArtifactStore(tmp_path / "store")
    _write_docs(data, "a.jsonl", ["one"])
    pipeline = _pipeline(data, store.root)
    pm = get_plugin_manager()
    plugins = [Recorder(), Raiser()]
    for p in plugins:
        pm.register(p)
    try:
        run = execute(pipeline, "upper", store)
        execute(pipeline, "upper", store)  # cache hit: no event
    finally:
        for p in plugins:
            pm.unregister(p)
    assert seen == [("toy_upper", run.artifact.id, "upper")]
