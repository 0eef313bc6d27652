import dagster as dg
import pytest

from gristmill.dagster.assets import build_assets
from gristmill.dagster.definitions import build_definitions
from gristmill.pipeline.config import validate_pipeline
from tests.support import toy_registry

REG = toy_registry()


def _pipeline(store, min_documents=1, words=("alpha", "beta")):
    return validate_pipeline(
        {
            "name": "toy",
            "stages": {
                "words": {"stage": "toy_words", "config": {"words": list(words)}},
                "upper": {
                    "stage": "toy_upper",
                    "inputs": {"documents": "words"},
                    "config": {"min_documents": min_documents},
                },
            },
        },
        "toy.yaml",
        REG,
        store=store,
    )


def _materializations(result):
    return {e.asset_key.to_user_string(): e.materialization for e in result.get_asset_materialization_events()}


def test_graph_code_versions_and_descriptions(tmp_path):
    defs = build_definitions([_pipeline(tmp_path)])
    graph = defs.resolve_asset_graph()
    upper = graph.get(dg.AssetKey("upper"))
    assert upper.parent_keys == {dg.AssetKey("words")}
    assert upper.code_version == _pipeline(tmp_path).stages["upper"].code_version
    assert "Upper-case every document" in upper.description
    assert _pipeline(tmp_path, min_documents=2).stages["upper"].code_version != upper.code_version
    assert defs.resolve_job_def("toy_job") is not None


def test_materialize_twice_second_is_cache_hit_with_same_data_version(tmp_path):
    assets = build_assets(_pipeline(tmp_path))
    with dg.DagsterInstance.ephemeral() as instance:
        first = _materializations(dg.materialize(assets, instance=instance))
        second = _materializations(dg.materialize(assets, instance=instance))
    assert first["upper"].metadata["gristmill/cache_hit"].value is False
    assert second["upper"].metadata["gristmill/cache_hit"].value is True
    assert first["upper"].tags["dagster/data_version"] == second["upper"].tags["dagster/data_version"]
    assert first["upper"].metadata["documents_out"].value == 2
    assert isinstance(first["words"].metadata["sample"], dg.TableMetadataValue)


def test_failing_blocking_check_stops_the_run(tmp_path):
    assets = build_assets(_pipeline(tmp_path, min_documents=5))
    result = dg.materialize(assets, raise_on_error=False)
    assert not result.success
    events = result.all_events
    checks = [e.asset_check_evaluation_data for e in events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert [(c.check_name, c.passed) for c in checks] == [("min_documents", False)]
    assert "2 documents (min 5)" in checks[0].description


def test_stage_error_fails_the_step_and_commits_nothing(tmp_path):
    pipeline = _pipeline(tmp_path)
    with pytest.raises(Exception, match="has no artifact"):
        dg.materialize(build_assets(pipeline), selection=[dg.AssetKey("upper")])
    assert not (tmp_path / "toy" / "upper").exists()


def test_partitioned_instance_writes_one_slot_per_round(tmp_path):
    pipeline = validate_pipeline(
        {
            "name": "rounds",
            "stages": {
                "words": {"stage": "toy_words"},
                "upper": {"stage": "toy_upper", "inputs": {"documents": "words"}, "partitions": "rounds"},
            },
        },
        "rounds.yaml",
        REG,
        store=tmp_path,
    )
    defs = build_definitions([pipeline])
    assert defs.resolve_job_def("rounds_job") is not None  # the job leaves the partitioned asset out
    assets = build_assets(pipeline)
    with dg.DagsterInstance.ephemeral() as instance:
        dg.materialize(assets, instance=instance, selection=[dg.AssetKey("words")])
        instance.add_dynamic_partitions("rounds", ["round-001", "round-002"])
        for key in ("round-001", "round-002"):
            result = dg.materialize(assets, instance=instance, selection=[dg.AssetKey("upper")], partition_key=key)
            assert result.success
    ids = {p.name: (p / "latest").read_text().strip() for p in (tmp_path / "rounds" / "upper").iterdir()}
    assert set(ids) == {"round-001", "round-002"}
    assert ids["round-001"] != ids["round-002"]  # the partition is part of the cache key


def _flaky(store, attempts, retries=None, error="os", fail_first=1):
    stage = {"stage": "toy_flaky", "config": {"attempts_file": str(attempts), "error": error, "fail_first": fail_first}}
    if retries is not None:
        stage["retries"] = retries
    return validate_pipeline({"name": "f", "retry_delay_s": 0, "stages": {"flaky": stage}}, "f.yaml", REG, store=store)


def _events(result, kind):
    return [e for e in result.all_events if e.event_type_value == kind]


def test_transient_failure_is_retried_and_succeeds(tmp_path):
    attempts = tmp_path / "attempts"
    result = dg.materialize(build_assets(_flaky(tmp_path / "st", attempts)))  # data stages retry twice by default
    assert result.success
    assert len(attempts.read_text().splitlines()) == 2
    assert len(_events(result, "STEP_UP_FOR_RETRY")) == 1
    assert _materializations(result)["flaky"].metadata["attempts"].value == 2


def test_a_crash_is_retried(tmp_path):
    """Retries go by exception type: a RuntimeError is transient (only a StageInputError means bad input)."""
    attempts = tmp_path / "attempts"
    result = dg.materialize(build_assets(_flaky(tmp_path / "st", attempts, error="runtime")))
    assert result.success
    assert len(attempts.read_text().splitlines()) == 2
    assert len(_events(result, "STEP_UP_FOR_RETRY")) == 1


def test_bad_input_is_not_retried_and_names_the_problem(tmp_path):
    attempts = tmp_path / "attempts"
    result = dg.materialize(build_assets(_flaky(tmp_path / "st", attempts, error="input")), raise_on_error=False)
    assert not result.success
    assert len(attempts.read_text().splitlines()) == 1
    assert not _events(result, "STEP_UP_FOR_RETRY")
    failure = _events(result, "STEP_FAILURE")[0].step_failure_data.user_failure_data
    assert "flaky: " in failure.description and "line 1: not a document" in failure.description


def test_failure_mid_run_leaves_no_artifact_and_a_rerun_succeeds(tmp_path):
    store, attempts = tmp_path / "st", tmp_path / "attempts"
    pipeline = _flaky(store, attempts, retries=0)
    with dg.DagsterInstance.ephemeral() as instance:
        failed = dg.materialize(build_assets(pipeline), instance=instance, raise_on_error=False)
        assert not failed.success  # the stage wrote half its output, then raised
        assert not failed.get_asset_materialization_events()
        assert instance.get_latest_materialization_event(dg.AssetKey("flaky")) is None
        assert not (store / "flaky").exists()  # nothing visible in the store…
        assert not any((store / ".tmp").iterdir())  # …and the half-written temp folder is gone
        again = dg.materialize(build_assets(pipeline), instance=instance)
        assert again.success and instance.get_latest_materialization_event(dg.AssetKey("flaky")) is not None
    assert (store / "f" / "flaky" / "_" / "latest").is_file()
    assert pipeline.stages["flaky"].retries == 0 and pipeline.stages["flaky"].pool is None


def test_definitions_take_another_dagster_executor(tmp_path):
    """The hook for Celery/Kubernetes executors (docs/operations.md); in-process stays the default."""
    assert build_definitions([_pipeline(tmp_path)]).resolve_job_def("toy_job").executor_def is dg.in_process_executor
    defs = build_definitions([_pipeline(tmp_path)], executor=dg.multiprocess_executor)
    assert defs.resolve_job_def("toy_job").executor_def is dg.multiprocess_executor
