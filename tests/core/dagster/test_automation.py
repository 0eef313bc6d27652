"""Re-runs on data change, as Dagster's automation sensor decides them: a new WARC requests the crawl chain, nothing
changed requests nothing, a config change requests that stage and what is below it — real crawl_filter and
minhash_dedup runs on a small synthetic crawl, real Dagster automation evaluation."""

import shutil
from pathlib import Path

import dagster as dg
import pytest

from gristmill.dagster.assets import build_assets
from gristmill.dagster.definitions import build_definitions
from gristmill.pipeline.config import PipelineError, validate_pipeline
from gristmill_plugins.demo_data import SyntheticCrawlConfig, write_synthetic_crawl
from tests.support import toy_registry

REG = toy_registry(builtins=("gristmill_plugins.crawl_filter", "gristmill_plugins.minhash_dedup"))
STAGES = {"crawl", "dedup", "words", "upper", "by_hand"}


def _pipeline(root: Path, languages=("en",), upper_min: int = 1, **extra):
    return validate_pipeline(
        {
            "name": "auto",
            "sources": {"raw": {"kind": "warc", "path": str(root / "warcs" / "*.warc.gz")}},
            "stages": {
                "crawl": {
                    "stage": "crawl_filter",
                    "inputs": {"warcs": "raw"},
                    "config": {"languages": list(languages)},
                },
                "dedup": {"stage": "minhash_dedup", "inputs": {"documents": "crawl"}},
                "words": {"stage": "toy_words"},  # a branch that reads nothing from the crawl
                "upper": {
                    "stage": "toy_upper",
                    "inputs": {"documents": "words"},
                    "config": {"min_documents": upper_min},
                },
                "by_hand": {
                    "stage": "toy_upper",
                    "inputs": {"documents": "dedup"},
                    "automation": "manual",
                    "config": {"min_documents": 0},
                },
            },
            **extra,
        },
        "auto.yaml",
        REG,
        store=root / "store",
    )


def _write_warc(root: Path, seed: int) -> None:
    scratch = root / f"scratch{seed}"
    write_synthetic_crawl(scratch, SyntheticCrawlConfig(pages=16, files=1), seed=seed)
    (root / "warcs").mkdir(exist_ok=True)
    for path in scratch.glob("*.warc.gz"):
        shutil.move(path, root / "warcs" / f"seed{seed}-{path.name}")


def _requested(result) -> set[str]:
    return {k for k in STAGES if result.get_requested_partitions(dg.AssetKey(k))}


def _observe(defs: dg.Definitions, instance: dg.DagsterInstance) -> int:
    """Run the observe-sources sensor and record what it reports, as the daemon does; returns events recorded."""
    sensor = defs.resolve_sensor_def("auto_observe_sources")
    result = sensor(dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def()))
    if isinstance(result, dg.SkipReason):
        return 0
    for event in result.asset_events:
        instance.report_runless_asset_event(event)
    return len(result.asset_events)


def test_new_warc_requests_the_crawl_chain_only_and_config_changes_their_descendants(tmp_path):
    _write_warc(tmp_path, seed=1)
    pipeline = _pipeline(tmp_path)
    defs = build_definitions([pipeline])
    running = dg.DefaultSensorStatus.RUNNING
    assert defs.resolve_sensor_def("auto_automation").default_status == running
    assert defs.resolve_sensor_def("auto_observe_sources").default_status == running
    with dg.DagsterInstance.ephemeral() as instance:
        assert _observe(defs, instance) == 1  # first sight of the source
        assert dg.materialize(build_assets(pipeline), instance=instance).success

        first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert _requested(first) == set()
        assert _observe(defs, instance) == 0  # touching nothing: no new data version…
        idle = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
        assert _requested(idle) == set()  # …and nothing requested

        _write_warc(tmp_path, seed=2)  # a new crawl file lands in the source folder
        assert _observe(defs, instance) == 1
        new_data = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=idle.cursor)
        assert _requested(new_data) == {"crawl", "dedup"}  # the whole eager chain in one tick; not the manual stage
        run = dg.materialize(build_assets(pipeline), instance=instance, selection=["crawl", "dedup"])
        mats = {e.asset_key.path[-1]: e.materialization.metadata for e in run.get_asset_materialization_events()}
        assert mats["crawl"]["gristmill/cache_hit"].value is False  # new input → a new artifact, not the cache
        settled = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=new_data.cursor)
        assert _requested(settled) == set()

        changed = build_definitions([_pipeline(tmp_path, languages=("en", "fr"))])  # crawl's config changes
        after_crawl_change = dg.evaluate_automation_conditions(defs=changed, instance=instance, cursor=settled.cursor)
        assert _requested(after_crawl_change) == {"crawl", "dedup"}

        changed = build_definitions([_pipeline(tmp_path, languages=("en", "fr"), upper_min=2)])  # a leaf's config
        after_leaf_change = dg.evaluate_automation_conditions(
            defs=changed, instance=instance, cursor=after_crawl_change.cursor
        )
        assert _requested(after_leaf_change) == {"upper"}


def test_automation_field_manual_cron_and_pipeline_default(tmp_path):
    _write_warc(tmp_path, seed=1)
    graph = build_definitions([_pipeline(tmp_path, automation="manual")]).resolve_asset_graph()
    assert all(graph.get(dg.AssetKey(k)).automation_condition is None for k in STAGES)

    cron = _pipeline(tmp_path)
    data = cron.stages["words"]
    assert data.automation == "eager" and data.retries == 2 and data.pool is None
    pipeline = validate_pipeline(
        {"name": "c", "stages": {"words": {"stage": "toy_words", "automation": {"cron": "0 4 * * 1"}}}}, "c.yaml", REG
    )
    condition = build_definitions([pipeline]).resolve_asset_graph().get(dg.AssetKey("words")).automation_condition
    assert "0 4 * * 1" in condition.get_label()

    with pytest.raises(PipelineError, match=r"c.yaml: stages.words.automation.cron: not a valid cron"):
        validate_pipeline(
            {"stages": {"words": {"stage": "toy_words", "automation": {"cron": "every day"}}}}, "c.yaml", REG
        )
    rounds = {"stage": "toy_upper", "inputs": {"documents": "words"}, "partitions": "rounds", "automation": "eager"}
    with pytest.raises(PipelineError, match=r"stages.up.automation: a round-partitioned stage"):
        validate_pipeline({"stages": {"words": {"stage": "toy_words"}, "up": rounds}}, "c.yaml", REG)
    with pytest.raises(PipelineError, match=r"stages.words.automation: Value error, must be eager, manual or {cron"):
        validate_pipeline({"stages": {"words": {"stage": "toy_words", "automation": "sometimes"}}}, "c.yaml", REG)
