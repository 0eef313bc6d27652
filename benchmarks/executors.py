"""Benchmark the scale-out path: a ``gristmill.lib.kit`` filter and ``crawl_filter`` on executors vs bare datatrove.

Usage::

    .venv/bin/python benchmarks/executors.py [--repeat N] [--docs N] [--no-ray]

1. **kit filter** — a keyword filter written with :func:`gristmill.lib.kit.document_filter` (what a plugin author
   writes: one function) run as a stage (``gristmill.testing.run_stage``: strict reader, counts, samples, bar
   chart) vs the same regex in datatrove's own ``JsonlReader → LambdaFilter → JsonlWriter`` on the stock
   ``LocalPipelineExecutor``. Documents: paragraphs of ``../shared/data/pretrain/*.txt`` (real English text),
   repeated to ``--docs`` documents in 4 shards; 4 tasks, in process.
2. **crawl_filter on executors** — the real WARCs of ``../shared/data/web``, 4 tasks, 2 workers: the stage on
   ``local`` and on ``ray`` (a local Ray with 2 CPUs, connected once; its start-up is reported apart) vs
   ``build_pipeline`` run bare by datatrove's ``LocalPipelineExecutor`` and ``RayPipelineExecutor``.

Each variant runs once to warm up, then ``--repeat`` times; medians are printed with the ratio to bare datatrove.
Outputs of the stage on every executor are checked byte-identical.
"""

import argparse
import contextlib
import gc
import gzip
import hashlib
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.filters import LambdaFilter
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter

from gristmill.lib.executors import quiet_datatrove_logs
from gristmill.lib.kit import FilterConfig, document_filter
from gristmill.testing import artifact_from_dir, run_stage
from gristmill_plugins.crawl_filter import SPEC as CRAWL_SPEC
from gristmill_plugins.crawl_filter import CrawlFilterConfig
from gristmill_plugins.crawl_filter.pipeline import build_pipeline

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
KEYWORDS = re.compile(r"(?<!\w)(?:money|fortune|marriage|sword|crown)(?!\w)", re.IGNORECASE)
CRAWL = {"languages": ["en"], "extractor": "resiliparse", "min_documents": 0}
DEVNULL = open(os.devnull, "w")  # noqa: SIM115 - datatrove's loguru handlers may keep writing to it


class BenchKeywordConfig(FilterConfig):
    """Config of the benchmark's keyword filter (the kit's executor/min_documents/sample_rows only)."""


def keyword_keep(doc: dict[str, Any], config: BenchKeywordConfig) -> bool | str:
    """Drop documents that mention a keyword."""
    return "keyword" if KEYWORDS.search(doc["text"]) else True


KEYWORD_SPEC = document_filter("bench_keywords", keyword_keep, config=BenchKeywordConfig)


def _median(fn: Callable[[int], float], repeat: int) -> float:
    fn(-1)  # warm-up
    times = []
    for i in range(repeat):
        gc.collect()
        times.append(fn(i))
    return statistics.median(times)


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.jsonl.gz"))}


def write_documents(folder: Path, n_docs: int, shards: int = 4) -> int:
    """``n_docs`` paragraph documents from the shared plain-text books, in ``shards`` gzip JSONL files."""
    paragraphs = []
    for book in sorted((SHARED / "pretrain").glob("*.txt")):
        text = book.read_text(encoding="utf-8", errors="replace")
        paragraphs += [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if len(p.split()) >= 8]
    folder.mkdir(parents=True)
    with contextlib.ExitStack() as stack:
        files = [
            stack.enter_context(gzip.open(folder / f"{i:05d}.jsonl.gz", "wt", encoding="utf-8")) for i in range(shards)
        ]
        for i in range(n_docs):
            doc = {"text": paragraphs[i % len(paragraphs)], "id": f"doc-{i}", "metadata": {}}
            files[i % shards].write(json.dumps(doc) + "\n")
    return len(paragraphs)


def bench_kit_filter(work: Path, repeat: int, n_docs: int) -> list[tuple[str, float, float]]:
    data = work / "docs"
    distinct = write_documents(data, n_docs)
    print(f"kit filter: {n_docs} documents ({distinct} distinct paragraphs) in 4 shards, 4 tasks in process")
    executor = {"tasks": 4, "workers": 1}

    def stage(i: int) -> float:
        start = time.perf_counter()
        result, _ = run_stage(
            KEYWORD_SPEC,
            work / f"kit-{i}",
            {"executor": executor, "min_documents": 0},
            {"documents": artifact_from_dir("documents", data)},
        )
        elapsed = time.perf_counter() - start
        stage.kept = result.counts["documents_kept"]  # type: ignore[attr-defined]
        return elapsed

    def bare(i: int) -> float:
        start = time.perf_counter()
        steps = [
            JsonlReader(str(data), compression="gzip"),
            LambdaFilter(lambda doc: KEYWORDS.search(doc.text) is None),
            JsonlWriter(str(work / f"bare-{i}")),
        ]
        with contextlib.redirect_stderr(DEVNULL):
            LocalPipelineExecutor(steps, tasks=4, workers=1, logging_dir=str(work / f"bare-logs-{i}")).run()
        return time.perf_counter() - start

    t_bare = _median(bare, repeat)
    t_stage = _median(stage, repeat)
    print(f"  kept {stage.kept} of {n_docs}")  # type: ignore[attr-defined]
    return [("kit keyword filter (stage)", t_stage, t_bare), ("datatrove LambdaFilter (bare)", t_bare, t_bare)]


def bench_crawl(work: Path, repeat: int, with_ray: bool) -> list[tuple[str, float, float]]:
    files = sorted((SHARED / "web").glob("*.warc.gz"))
    files = [f for f in files if not f.name.endswith(".wet.gz")]
    print(
        f"crawl_filter: {len(files)} real WARC files ({sum(f.stat().st_size for f in files) / 1e6:.1f} MB), "
        "4 tasks, 2 workers"
    )
    inputs = {"warcs": artifact_from_dir("warc", files[0].parent, files)}
    outputs: dict[str, dict[str, str]] = {}

    def stage_on(kind: str) -> Callable[[int], float]:
        def run(i: int) -> float:
            start = time.perf_counter()
            config = {**CRAWL, "executor": {"kind": kind, "tasks": 4, "workers": 2}}
            _, out = run_stage(CRAWL_SPEC, work / f"crawl-{kind}-{i}", config, inputs)
            elapsed = time.perf_counter() - start
            outputs[kind] = _hashes(out.path)
            return elapsed

        return run

    def bare_on(kind: str) -> Callable[[int], float]:
        def run(i: int) -> float:
            cfg = CrawlFilterConfig.model_validate(CRAWL)
            start = time.perf_counter()
            steps = build_pipeline(cfg, files, work / f"bare-{kind}-{i}")
            logs = str(work / f"bare-{kind}-logs-{i}")
            with contextlib.redirect_stderr(DEVNULL), quiet_datatrove_logs():
                if kind == "local":
                    LocalPipelineExecutor(steps, tasks=4, workers=2, logging_dir=logs).run()
                else:
                    from datatrove.executor.ray import RayPipelineExecutor

                    RayPipelineExecutor(
                        steps, tasks=4, workers=2, logging_dir=logs, cpus_per_task=1, mem_per_cpu_gb=1
                    ).run()
            return time.perf_counter() - start

        return run

    bare_local = _median(bare_on("local"), repeat)
    rows = [
        ("crawl_filter local (stage)", _median(stage_on("local"), repeat), bare_local),
        ("datatrove LocalPipelineExecutor (bare)", bare_local, bare_local),
    ]
    if with_ray:
        import ray

        start = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        print(
            f"  local Ray start-up (2 CPUs): {time.perf_counter() - start:.1f} s (paid once per run when "
            "executor.ray.address is null)"
        )
        try:
            bare_ray = _median(bare_on("ray"), repeat)
            rows += [
                ("crawl_filter ray (stage)", _median(stage_on("ray"), repeat), bare_ray),
                ("datatrove RayPipelineExecutor (bare)", bare_ray, bare_ray),
            ]
        finally:
            ray.shutdown()
        same = outputs["ray"] == outputs["local"]
        print(f"  stage output on ray == on local, byte for byte: {same}")
        if not same:
            raise SystemExit("outputs differ between executors")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per variant (median reported)")
    parser.add_argument("--docs", type=int, default=40000, help="documents for the kit filter benchmark")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray variants")
    args = parser.parse_args(argv)
    if not (SHARED / "web").is_dir():
        print(f"skipped: {SHARED} is absent", file=sys.stderr)
        return 0
    with_ray = not args.no_ray
    if with_ray:
        try:
            import ray  # noqa: F401
        except ImportError:
            print("ray is not installed (pip install 'gristmill[ray]'): Ray variants skipped", file=sys.stderr)
            with_ray = False
    with tempfile.TemporaryDirectory(prefix="gm-bench-exec-") as tmp:
        rows = bench_kit_filter(Path(tmp) / "kit", args.repeat, args.docs)
        rows += bench_crawl(Path(tmp) / "crawl", args.repeat, with_ray)
    print(f"\n{'variant':42} {'median s':>9} {'vs bare':>8}")
    for name, seconds, bare in rows:
        print(f"{name:42} {seconds:9.2f} {seconds / bare:7.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
