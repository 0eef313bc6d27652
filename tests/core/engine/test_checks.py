"""Checks are evaluated by the engine: the runner (also on a cache hit) and ``testing.run_stage`` give the same
outcomes that Dagster reports; a check that raises is a failed gate."""

import dagster as dg

from gristmill import CheckOutcome, CheckSpec
from gristmill.checks import evaluate_checks
from gristmill.dagster.assets import build_assets
from gristmill.engine.runner import execute
from gristmill.engine.store import ArtifactStore
from gristmill.pipeline.config import validate_pipeline
from gristmill.testing import artifact_from_dir, run_stage
from tests.support import toy_registry, toy_stages

REG = toy_registry()


def _pipeline(store, words, min_documents):
    stages = {
        "words": {"stage": "toy_words", "config": {"words": words}},
        "upper": {"stage": "toy_upper", "inputs": {"documents": "words"}, "config": {"min_documents": min_documents}},
    }
    return validate_pipeline({"stages": stages}, "checks.yaml", REG, store=store)


def test_runner_evaluates_checks_after_a_run_and_on_a_cache_hit(tmp_path):
    pipeline = _pipeline(tmp_path / "store", ["a", "b"], min_documents=3)
    store = ArtifactStore(pipeline.store)
    execute(pipeline, "words", store)
    first = execute(pipeline, "upper", store)
    assert not first.cache_hit and first.failed_checks == ["min_documents"]
    assert first.checks["min_documents"].description == "2 documents (min 3)"
    again = execute(pipeline, "upper", store)
    assert again.cache_hit and again.checks == first.checks


def test_run_stage_sees_the_same_gate(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "00000.jsonl").write_text('{"id": "0", "text": "x", "metadata": {}}\n')
    docs = artifact_from_dir("documents", tmp_path / "in")
    failing, _ = run_stage(toy_stages.UPPER, tmp_path / "a", {"min_documents": 2}, {"documents": docs})
    passing, _ = run_stage(toy_stages.UPPER, tmp_path / "b", {"min_documents": 1}, {"documents": docs})
    assert not failing.checks["min_documents"].passed and passing.checks["min_documents"].passed


def test_a_raising_check_fails_and_says_why():
    def broken(counts, config):
        raise KeyError("documents_out")

    spec = CheckSpec("broken", "raises", broken)
    ok = CheckSpec("ok", "passes", lambda counts, config: CheckOutcome(True))
    outcomes = evaluate_checks((spec, ok), {}, None)
    assert not outcomes["broken"].passed and "KeyError" in outcomes["broken"].description
    assert outcomes["ok"].passed


def test_dagster_reports_the_engines_outcome(tmp_path):
    pipeline = _pipeline(tmp_path / "store", ["a"], min_documents=2)
    result = dg.materialize(build_assets(pipeline), instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    evaluations = {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}
    assert not evaluations["upper"].passed and evaluations["upper"].description == "1 documents (min 2)"
