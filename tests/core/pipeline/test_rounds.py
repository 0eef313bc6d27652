"""Iterative rounds: round keys, round n reading round n-1, list inputs over every round, the next-round schedule
and the new-data sensor (Dagster's build_schedule_context / build_sensor_context), and `gristmill run` rounds."""

import json

import dagster as dg
import pytest

from gristmill.cli.run import run_phases, run_pipeline
from gristmill.dagster.assets import build_assets
from gristmill.dagster.definitions import build_definitions
from gristmill.engine.runner import execute
from gristmill.engine.store import ArtifactStore, StoreError, cache_key
from gristmill.pipeline.config import PipelineError, validate_pipeline
from gristmill.pipeline.rounds import RoundKeyError, next_round, pending_round, previous_round, round_key, round_number
from tests.support import toy_registry

REG = toy_registry()


def _pipeline(tmp_path, initial=0):
    (tmp_path / "prompts").mkdir(exist_ok=True)
    prompts = tmp_path / "prompts" / "a.jsonl"
    if not prompts.exists():
        prompts.write_text(json.dumps({"id": "p", "text": "start", "metadata": {}}) + "\n")
    return validate_pipeline(
        {
            "name": "toy",
            "rounds": {"initial": initial},
            "sources": {"prompts": {"kind": "documents", "path": str(tmp_path / "prompts" / "*.jsonl")}},
            "stages": {
                "words": {"stage": "toy_words"},
                "policy": {"stage": "toy_round", "inputs": {"documents": "prompts"}, "partitions": "rounds"},
                "report": {"stage": "toy_collect", "inputs": {"documents": ["words", "policy"]}},
            },
        },
        "toy.yaml",
        REG,
        store=tmp_path / "store",
    )


def _texts(art):
    return [json.loads(line)["text"] for line in (art.path / "00000.jsonl").read_text().splitlines()]


def test_round_keys():
    assert round_key(1) == "round-001" and round_number("round-012") == 12
    assert previous_round("round-001") is None and previous_round("round-010") == "round-009"
    assert next_round([]) == "round-001" and next_round(["round-002", "round-010", "other"]) == "round-011"
    for bad in ("round-1", "round-000", "r-001", "round-abc"):
        with pytest.raises(RoundKeyError, match=bad):
            round_number(bad)


def test_round_two_starts_from_round_one_and_lists_see_every_round(tmp_path):
    pipeline, store = _pipeline(tmp_path), ArtifactStore(tmp_path / "store", pipeline="toy")
    with pytest.raises(StoreError, match=r"'policy' \(round-001\), which has no artifact"):
        execute(pipeline, "policy", store, "round-002")
    first = execute(pipeline, "policy", store, "round-001").artifact
    second = execute(pipeline, "policy", store, "round-002").artifact
    assert _texts(first) == ["start", "round-001"]
    assert _texts(second) == ["start", "round-001", "round-002"]
    assert second.manifest["inputs"]["previous"]["id"] == first.id
    assert second.manifest["counts"]["from_previous"] == 1 and first.manifest["counts"]["from_previous"] == 0
    execute(pipeline, "words", store)
    report = execute(pipeline, "report", store).artifact
    rows = json.loads((report.path / "inputs.json").read_text())
    assert rows == [
        {"asset": "words", "partition": None},
        {"asset": "policy", "partition": "round-001"},
        {"asset": "policy", "partition": "round-002"},
    ]
    # A new round changes the list input, so the report is recomputed rather than served from the cache.
    execute(pipeline, "policy", store, "round-003")
    assert not execute(pipeline, "report", store).cache_hit


def test_the_stage_gets_its_round_and_the_previous_round_and_ids_cover_it_as_before(tmp_path):
    """ctx.round / ctx.previous of a rounds=True stage: None in round 1, round 1's artifact in round 2; the previous
    round still enters the cache key and the manifest's inputs as "previous", so artifact ids are unchanged."""
    pipeline, store = _pipeline(tmp_path), ArtifactStore(tmp_path / "store", pipeline="toy")
    first = execute(pipeline, "policy", store, "round-001").artifact
    second = execute(pipeline, "policy", store, "round-002").artifact
    assert first.manifest["counts"]["round"] == 1 and first.manifest["metadata"]["previous_id"] is None
    assert second.manifest["counts"]["round"] == 2 and second.manifest["metadata"]["previous_id"] == first.id
    assert list(first.manifest["inputs"]) == ["documents"]
    assert list(second.manifest["inputs"]) == ["documents", "previous"]
    assert second.manifest["inputs"]["previous"]["content_hash"] == first.content_hash
    inst = pipeline.stages["policy"]
    prompts = second.manifest["inputs"]["documents"]["content_hash"]
    hashes = {"documents": prompts, "previous": first.content_hash}
    assert second.id == cache_key("toy_round", "1", inst.config_hash, hashes, inst.seed, "round-002")
    assert first.id == cache_key("toy_round", "1", inst.config_hash, {"documents": prompts}, inst.seed, "round-001")


def test_a_stage_that_does_not_chain_rounds_may_still_run_per_round(tmp_path):
    pipeline = validate_pipeline(
        {
            "stages": {
                "words": {"stage": "toy_words"},
                "upper": {"stage": "toy_upper", "inputs": {"documents": "words"}, "partitions": "rounds"},
            }
        },
        "p.yaml",
        REG,
        store=tmp_path / "store",
    )
    store = ArtifactStore(pipeline.store, pipeline=pipeline.name)
    execute(pipeline, "words", store)
    one, two = (execute(pipeline, "upper", store, key).artifact for key in ("round-001", "round-002"))
    assert one.id != two.id and "previous" not in two.manifest["inputs"]


def test_list_inputs_validate(tmp_path):
    base = {"stages": {"words": {"stage": "toy_words"}}}
    bad = [
        ({"up": {"stage": "toy_upper", "inputs": {"documents": ["words"]}}}, "takes one source or stage, not a list"),
        ({"c": {"stage": "toy_collect", "inputs": {"documents": []}}}, "the list is empty"),
        ({"c": {"stage": "toy_collect", "inputs": {"documents": ["words", "nope"]}}}, "'nope' is neither"),
        (
            {
                "r": {"stage": "toy_round", "inputs": {"documents": "words"}, "partitions": "rounds"},
                "up": {"stage": "toy_upper", "inputs": {"documents": "r"}},
            },
            "'r' is partitioned by rounds",
        ),
    ]
    for stages, message in bad:
        with pytest.raises(PipelineError, match=message):
            validate_pipeline({"stages": {**base["stages"], **stages}}, "p.yaml", REG, store=tmp_path)


def test_definitions_have_a_rounds_job_and_stopped_schedule_and_sensor(tmp_path):
    defs = build_definitions([_pipeline(tmp_path)])
    assert defs.resolve_job_def("toy_rounds_job") is not None
    schedule = defs.resolve_schedule_def("toy_next_round")
    sensor = defs.resolve_sensor_def("toy_round_on_new_data")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    graph = defs.resolve_asset_graph()
    assert graph.get(dg.AssetKey("report")).parent_keys == {dg.AssetKey("words"), dg.AssetKey("policy")}


def test_schedule_adds_the_next_round_and_retries_an_unfinished_one(tmp_path):
    pipeline = _pipeline(tmp_path)
    defs = build_definitions([pipeline])
    schedule = defs.resolve_schedule_def("toy_next_round")
    repo = defs.get_repository_def()
    store = ArtifactStore(pipeline.store, pipeline=pipeline.name)

    def tick(instance):
        return schedule.evaluate_tick(dg.build_schedule_context(instance=instance, repository_def=repo)).run_requests[0]

    with dg.instance_for_test() as instance:
        request = tick(instance)
        assert request.partition_key == "round-001"
        assert instance.get_dynamic_partitions("rounds") == ["round-001"]
        # Not materialized yet (say the run failed): the next tick asks for round-001 again, adds nothing.
        again = tick(instance)
        assert again.partition_key == "round-001" and instance.get_dynamic_partitions("rounds") == ["round-001"]
        result = dg.materialize(
            build_assets(pipeline), instance=instance, partition_key="round-001", selection=[dg.AssetKey("policy")]
        )
        assert result.success and store.latest("policy", "round-001") is not None
        request = tick(instance)
        assert request.partition_key == "round-002"
        assert pending_round(pipeline, store, ["round-001", "round-002"]) == "round-002"


def test_sensor_starts_a_round_only_when_the_prompts_change(tmp_path):
    pipeline = _pipeline(tmp_path)
    sensor = build_definitions([pipeline]).resolve_sensor_def("toy_round_on_new_data")
    # Invoked directly: evaluate_tick() validates the new partition key before the (daemon-applied) add request.
    with dg.instance_for_test() as instance:
        first = sensor(dg.build_sensor_context(instance=instance))
        assert first.run_requests == [] and first.cursor  # baseline recorded, nothing started
        same = sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor))
        assert isinstance(same, dg.SkipReason) and "no new" in same.skip_message
        (tmp_path / "prompts" / "b.jsonl").write_text(json.dumps({"id": "q", "text": "more", "metadata": {}}) + "\n")
        new = sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor))
        assert [r.partition_key for r in new.run_requests] == ["round-001"]
        assert [r.partition_keys for r in new.dynamic_partitions_requests] == [["round-001"]]
        assert new.cursor != first.cursor
        instance.add_dynamic_partitions("rounds", ["round-001"])  # as the daemon does with the request
        again = sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor))
        assert again.dynamic_partitions_requests == []  # round-001 exists but is unfinished: rerun, add nothing
        assert [r.partition_key for r in again.run_requests] == ["round-001"]


def test_run_pipeline_runs_initial_rounds_then_the_stages_reading_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    pipeline = _pipeline(tmp_path, initial=2)
    phases = run_phases(pipeline, set(pipeline.order), ["round-001", "round-002"])
    assert phases == [(["words"], None), (["policy"], "round-001"), (["policy"], "round-002"), (["report"], None)]
    assert run_pipeline(pipeline) == 0
    store = ArtifactStore(pipeline.store, pipeline=pipeline.name)
    assert store.partitions("policy") == ["round-001", "round-002"]
    assert len(json.loads((store.latest("report").path / "inputs.json").read_text())) == 3
    assert run_pipeline(pipeline, rounds=["round-003"]) == 0
    assert _texts(store.latest("policy", "round-003"))[-1] == "round-003"
    assert "policy [round-003]" in capsys.readouterr().out
    with pytest.raises(PipelineError, match="round-x"):
        run_pipeline(pipeline, rounds=["round-x"])
