"""The datatrove steps of ``crawl_filter``, in FineWeb's order (see :mod:`gristmill_plugins.crawl_filter`).

:func:`build_pipeline` builds them for use without the stage (the benchmark runs them bare).
"""

from collections.abc import Callable, Sequence
from pathlib import Path

from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)
from datatrove.pipeline.formatters import PIIFormatter

from gristmill.lib.executors import DeterministicJsonlWriter
from gristmill_plugins.crawl_filter.config import CrawlFilterConfig
from gristmill_plugins.crawl_filter.steps import (
    FastTextLanguageFilter,
    OfflineURLFilter,
    ResiliparseExtractor,
    TrafilaturaExtractor,
)
from gristmill_plugins.crawl_filter.warc import RobustWarcReader


def labelled_steps(
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
    return [step for _, step in labelled_steps(config, files, output_dir, on_file_done)]
