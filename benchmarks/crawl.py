"""Benchmark ``crawl_filter``: the stage vs the same datatrove pipeline run bare, and trafilatura vs resiliparse.

Usage::

    .venv/bin/python benchmarks/crawl.py [WARC_FOLDER] [--repeat N]

WARC_FOLDER defaults to ``../shared/data/web``; every ``*.warc.gz`` in it is read. Each measurement is
repeated N times (after one warm-up run of each variant, which pays for imports, spaCy and the URL
blocklist extraction) and the median is reported. "Bare" is
:func:`gristmill_plugins.crawl_filter.pipeline.build_pipeline` run by datatrove's stock ``LocalPipelineExecutor``
(its loguru output is sent to /dev/null); "stage" is
the whole stage through ``gristmill.testing.run_stage``, so it also pays for stats parsing, reading the
output back for the sample/length histogram and the PNG; "dagster" is the full gristmill path: a pipeline
with the folder as a source, materialized by Dagster (ephemeral instance) into a fresh artifact store
(content hashing, manifest, atomic commit). "cache hit" re-materializes into the same store. Throughput
is HTML pages in per second.
"""

import argparse
import contextlib
import gc
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import dagster as dg
from datatrove.executor import LocalPipelineExecutor

from gristmill.dagster.assets import build_assets
from gristmill.pipeline.config import validate_pipeline
from gristmill.testing import artifact_from_dir, run_stage
from gristmill_plugins.crawl_filter import SPEC, CrawlFilterConfig
from gristmill_plugins.crawl_filter.pipeline import build_pipeline

DEFAULT_FOLDER = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "web"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
DEVNULL = open(os.devnull, "w")  # noqa: SIM115 - datatrove's loguru handlers may keep writing to it


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def run_stage_once(files: list[Path], out: Path, config: dict[str, Any]) -> tuple[float, Any]:
    gc.collect()
    start = time.perf_counter()
    result, _ = run_stage(SPEC, out, config, {"warcs": artifact_from_dir("warc", files[0].parent, files)})
    return time.perf_counter() - start, result


def run_bare_once(files: list[Path], out: Path, config: dict[str, Any], logs: Path) -> float:
    cfg = CrawlFilterConfig.model_validate(config)
    gc.collect()
    start = time.perf_counter()
    steps = build_pipeline(cfg, files, out)
    with contextlib.redirect_stderr(DEVNULL):
        LocalPipelineExecutor(
            steps, tasks=cfg.executor.tasks, workers=cfg.executor.workers, logging_dir=str(logs)
        ).run()
    return time.perf_counter() - start


def run_dagster_once(folder: Path, store: Path, config: dict[str, Any]) -> float:
    pipeline = validate_pipeline(
        {
            "sources": {"web": {"kind": "warc", "path": str(folder / "*.warc.gz")}},
            "stages": {"crawl": {"stage": "crawl_filter", "inputs": {"warcs": "web"}, "config": config}},
        },
        "benchmark.yaml",
        store=store,
    )
    assets = build_assets(pipeline)
    gc.collect()
    start = time.perf_counter()
    with dg.DagsterInstance.ephemeral() as instance:
        dg.materialize(assets, instance=instance, selection=[dg.AssetKey("crawl")], run_config=QUIET)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER, help="folder with *.warc.gz")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per variant (median reported)")
    args = parser.parse_args(argv)
    files = sorted(args.folder.glob("*.warc.gz"))
    if not files:
        print(f"no *.warc.gz in {args.folder}", file=sys.stderr)
        return 1
    print(f"{len(files)} WARC files, {sum(f.stat().st_size for f in files) / 1e6:.1f} MB, repeat={args.repeat}")

    times: dict[str, list[float]] = {"stage": [], "bare": [], "dagster": [], "cache_hit": [], "stage_resiliparse": []}
    extract_s: dict[str, list[float]] = {"trafilatura": [], "resiliparse": []}
    traf = {"extractor": "trafilatura"}
    resi = {"extractor": "resiliparse"}
    with tempfile.TemporaryDirectory(prefix="gristmill-bench-crawl-") as tmp_name:
        tmp = Path(tmp_name)
        # warm-up (imports, spaCy, URL blocklist extraction, matplotlib): not timed
        _, result = run_stage_once(files, tmp / "warm-stage", traf)
        run_bare_once(files, tmp / "warm-bare", traf, tmp / "warm-logs")
        run_stage_once(files, tmp / "warm-resi", resi)
        identical = _hashes(tmp / "warm-stage") == _hashes(tmp / "warm-bare")
        pages, kept = result.counts["html_pages"], result.counts["documents_kept"]
        run_dagster_once(args.folder, tmp / "warm-store", traf)
        for i in range(args.repeat):
            order = ("stage", "bare", "dagster") if i % 2 == 0 else ("dagster", "bare", "stage")
            for variant in order:
                if variant == "stage":
                    seconds, result = run_stage_once(files, tmp / f"stage{i}", traf)
                    extract_s["trafilatura"].append(_extractor_seconds(result))
                elif variant == "bare":
                    seconds = run_bare_once(files, tmp / f"bare{i}", traf, tmp / f"logs{i}")
                else:
                    seconds = run_dagster_once(args.folder, tmp / f"store{i}", traf)
                times[variant].append(seconds)
            times["cache_hit"].append(run_dagster_once(args.folder, tmp / f"store{i}", traf))
            seconds, result_r = run_stage_once(files, tmp / f"resi{i}", resi)
            times["stage_resiliparse"].append(seconds)
            extract_s["resiliparse"].append(_extractor_seconds(result_r))
            print(f"  run {i + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()))

    med = {k: statistics.median(v) for k, v in times.items()}
    ext = {k: statistics.median(v) for k, v in extract_s.items()}
    overhead = med["stage"] / med["bare"] - 1
    overhead_min = min(times["stage"]) / min(times["bare"]) - 1
    full = med["dagster"] / med["bare"] - 1
    rows = [
        ("bare datatrove (trafilatura)", med["bare"], pages / med["bare"], ""),
        ("crawl_filter stage (trafilatura)", med["stage"], pages / med["stage"], f"overhead {overhead:+.1%}"),
        ("gristmill via Dagster + store", med["dagster"], pages / med["dagster"], f"overhead {full:+.1%}"),
        ("same, cache hit", med["cache_hit"], pages / med["cache_hit"], f"{med['bare'] / med['cache_hit']:.0f}x"),
        (
            "crawl_filter stage (resiliparse)",
            med["stage_resiliparse"],
            pages / med["stage_resiliparse"],
            f"{med['stage'] / med['stage_resiliparse']:.2f}x faster",
        ),
        ("extraction step: trafilatura", ext["trafilatura"], pages / ext["trafilatura"], ""),
        (
            "extraction step: resiliparse",
            ext["resiliparse"],
            pages / ext["resiliparse"],
            f"{ext['trafilatura'] / ext['resiliparse']:.1f}x faster",
        ),
    ]
    print(f"\n{pages} HTML pages in, {kept} documents kept (trafilatura); stage output == bare output: {identical}")
    print(f"{'variant':<36} {'median s':>9} {'pages/s':>9}  note")
    print("-" * 72)
    for name, seconds, rate, note in rows:
        print(f"{name:<36} {seconds:>9.2f} {rate:>9.1f}  {note}")
    verdict = "OK" if max(overhead, full) <= 0.05 else "ABOVE GOAL"
    print(f"\nstage overhead vs bare datatrove: {overhead:+.1%} on medians, {overhead_min:+.1%} on best runs")
    print(f"full gristmill path (Dagster materialize + store commit) vs bare: {full:+.1%} on medians")
    print(f"goal <= 5%: {verdict}; run-to-run spread of bare: {min(times['bare']):.2f}-{max(times['bare']):.2f}s")
    return 0


def _extractor_seconds(result: Any) -> float:
    """The extractor step's own time (datatrove stats), from the stage's per-filter table."""
    return next(row["seconds"] for row in result.metadata["filters"].rows if row["step"] == "extractor")


if __name__ == "__main__":
    sys.exit(main())
