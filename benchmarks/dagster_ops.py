"""Benchmark what Dagster operations cost: materializing through Dagster vs the same stages without it, a no-op
re-run, one automation tick, and observing a big source folder.

Usage::

    .venv/bin/python benchmarks/dagster_ops.py [--repeat N] [--files N]

* **overhead** — the demo's data stages (everything `tokens` reads, 11 stages) into a fresh store, (a) through
  ``dagster.materialize`` on an ephemeral instance (asset checks, metadata, events) vs (b) gristmill's runner alone
  (:func:`gristmill.engine.runner.execute` per stage in order: the same stage functions, store hashing and commits, no
  Dagster). Median of N runs each, alternating; the ratio is (a)/(b), goal ≤ 1.10.
* **no-op re-run** — the same Dagster materialization again: every stage a cache hit.
* **automation tick** — one ``evaluate_automation_conditions`` over the whole demo graph (21 stage assets) after it
  is materialized: the work the ``<pipeline>_automation`` sensor does every 30 s.
* **observe sources** — one tick of the ``<pipeline>_observe_sources`` sensor over a folder of N files (names,
  sizes, mtimes) vs ``os.stat`` of those files bare.
"""

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import dagster as dg

from gristmill.dagster.assets import build_assets
from gristmill.dagster.definitions import build_definitions
from gristmill.dagster.sources import source_observations
from gristmill.engine.runner import execute
from gristmill.engine.store import ArtifactStore
from gristmill.pipeline.config import load_pipeline, validate_pipeline
from gristmill_pipelines import pipeline_path

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def data_stages(pipeline) -> list[str]:
    wanted = pipeline.upstream("tokens") | {"tokens"}
    return [n for n in pipeline.order if n in wanted]


def through_dagster(store: Path) -> float:
    pipeline = load_pipeline(pipeline_path(), store=store)
    selection = dg.AssetSelection.assets(*data_stages(pipeline))
    start = time.perf_counter()
    result = dg.materialize(build_assets(pipeline), selection=selection, run_config=QUIET)
    elapsed = time.perf_counter() - start
    assert result.success
    return elapsed


def runner_only(store: Path) -> float:
    pipeline = load_pipeline(pipeline_path(), store=store)
    log = logging.getLogger("bench")
    start = time.perf_counter()
    for name in data_stages(pipeline):
        execute(pipeline, name, ArtifactStore(store), None, log, lambda *a: None)
    return time.perf_counter() - start


def automation_tick(store: Path) -> tuple[float, int]:
    pipeline = load_pipeline(pipeline_path(), store=store)
    defs = build_definitions([pipeline])
    with dg.DagsterInstance.ephemeral() as instance:
        dg.materialize(build_assets(pipeline), instance=instance, selection=data_stages(pipeline), run_config=QUIET)
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        start = time.perf_counter()
        second = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
        return time.perf_counter() - start, second.total_requested


def observe(files: int, root: Path) -> tuple[float, float]:
    folder = root / "warcs"
    folder.mkdir()
    for i in range(files):
        (folder / f"part-{i:06d}.warc.gz").write_bytes(b"x" * (i % 97))
    pipeline = validate_pipeline(
        {
            "name": "obs",
            "sources": {"raw": {"kind": "warc", "path": str(folder)}},
            "stages": {"crawl": {"stage": "crawl_filter", "inputs": {"warcs": "raw"}}},
        },
        "obs.yaml",
        store=root / "st",
    )
    with dg.DagsterInstance.ephemeral() as instance:
        for event in source_observations(pipeline, instance):
            instance.report_runless_asset_event(event)
        start = time.perf_counter()
        assert source_observations(pipeline, instance) == []  # unchanged: nothing to record
        tick = time.perf_counter() - start
    start = time.perf_counter()
    for path in sorted(folder.iterdir()):
        path.stat()
    return tick, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--files", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        through_dagster(root / "warmup")  # imports, fastText/spaCy loads, the synthetic crawl's first write
        dag, bare = [], []
        for i in range(args.repeat):
            dag.append(through_dagster(root / f"dagster{i}"))
            bare.append(runner_only(root / f"runner{i}"))
        noop = through_dagster(root / "dagster0")
        tick, requested = automation_tick(root / "dagster0")
        obs, stat = observe(args.files, root)
    d, b = statistics.median(dag), statistics.median(bare)
    print(f"{'measurement':<44}{'gristmill':>12}{'baseline':>12}{'ratio':>8}")
    print(f"{'data stages: Dagster vs runner alone (s)':<44}{d:>12.2f}{b:>12.2f}{d / b:>8.3f}")
    print(f"{'no-op re-run through Dagster (s)':<44}{noop:>12.2f}{d:>12.2f}{noop / d:>8.3f}")
    print(f"{'automation tick, demo graph (s)':<44}{tick:>12.3f}{'':>12}{'':>8}  requested {requested}")
    print(f"{f'observe {args.files} source files (s)':<44}{obs:>12.3f}{stat:>12.3f}{obs / stat:>8.2f}")
    print(f"runs: dagster {[round(x, 2) for x in dag]}, runner {[round(x, 2) for x in bare]}")


if __name__ == "__main__":
    main()
