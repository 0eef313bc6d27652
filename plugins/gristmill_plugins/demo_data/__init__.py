"""A deterministic synthetic web crawl written as real WARC files (the ``synthetic_crawl`` stage).

The demo pipeline and the tests need a crawl without network access or outside files, so this
package writes one from templates × vocabulary: English articles that pass the usual quality
filters (gardening, cooking, town history, travel, science explainers and arithmetic word
problems with worked answers), articles with e-mail and IPv4 addresses in a contact section,
boilerplate/menu pages, keyword spam, French/German/Spanish/Russian prose, too-short pages and
planted exact and near duplicates.

Ground truth travels with every page, so later stages' tests can count what they should keep:

- the URL: ``https://<host>/<category>/<sub>/<slug>-p<page>.html[?dup_of=<page>]`` (see
  :func:`parse_synthetic_url`), where ``sub`` is the topic (English pages), the language
  (non-English pages) or ``page``;
- WARC headers on each response: ``WARC-Gristmill-Category``, ``WARC-Gristmill-Topic``,
  ``WARC-Gristmill-Language``, ``WARC-Gristmill-Dup-Of`` (URL of the original) and
  ``WARC-Gristmill-PII`` (the planted addresses, space separated).

Every file starts with a ``warcinfo`` record and a ``robots.txt`` (text/plain) response; each
page is a ``request`` + ``response`` pair. The same config and seed give byte-identical files:
dates and record ids come from ``random.Random(seed)`` and the gzip members carry no timestamp.

The package: this module is the stage (config, :func:`write_crawl`, the hook); :mod:`.categories`
(categories, topics, URLs), :mod:`.vocab` (names, towns, text helpers), :mod:`.article`,
:mod:`.english_topics` and :mod:`.english` (English articles, :func:`make_article`), :mod:`.maths`
(word problems with worked answers), :mod:`.foreign` (non-English prose), :mod:`.pages` (sites, PII,
duplicates, HTML, boilerplate/spam/short pages), :mod:`.plan` (what goes into the crawl) and
:mod:`.warc` (writing it).
"""

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from gristmill import Artifact, StageConfig, StageContext, StageResult, StageSpec, Table, hookimpl
from gristmill.lib.plots import bar_chart
from gristmill_plugins.demo_data.article import Article
from gristmill_plugins.demo_data.categories import CATEGORIES, LANGUAGES, TOPICS, URL_PATTERN, parse_synthetic_url
from gristmill_plugins.demo_data.english import make_article
from gristmill_plugins.demo_data.pages import Page, render_article_html
from gristmill_plugins.demo_data.plan import _plan, category_counts
from gristmill_plugins.demo_data.warc import FILE_PATTERN, USER_AGENT, _write_file

__all__ = [
    "CATEGORIES",
    "FILE_PATTERN",
    "LANGUAGES",
    "SPEC",
    "TOPICS",
    "URL_PATTERN",
    "USER_AGENT",
    "Article",
    "CategoryWeights",
    "CrawlSummary",
    "Page",
    "SyntheticCrawlConfig",
    "category_counts",
    "gristmill_register_stages",
    "make_article",
    "parse_synthetic_url",
    "render_article_html",
    "run_synthetic_crawl",
    "write_crawl",
    "write_synthetic_crawl",
]


# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------


class CategoryWeights(StageConfig):
    """Relative share of each page category (normalised to sum to 1)."""

    good: float = Field(0.45, ge=0, description="English articles that should pass quality filters")
    pii: float = Field(0.08, ge=0, description="English articles with e-mail and IPv4 addresses in a contact section")
    boilerplate: float = Field(0.08, ge=0, description="menu/navigation/cookie-banner pages with little prose")
    spam: float = Field(0.08, ge=0, description="keyword-stuffed pages with repeated ALL-CAPS lines")
    non_english: float = Field(0.12, ge=0, description="French, German, Spanish and Russian prose pages")
    short: float = Field(0.06, ge=0, description="pages with one or two sentences")
    exact_dup: float = Field(0.06, ge=0, description="exact copies of good pages at other URLs")
    near_dup: float = Field(0.07, ge=0, description="good pages with a few words or a sentence changed")

    @model_validator(mode="after")
    def _positive_total(self) -> "CategoryWeights":
        if sum(self.model_dump().values()) <= 0:
            raise ValueError("weights: at least one category needs a positive weight")
        return self


class SyntheticCrawlConfig(StageConfig):
    """Options of the ``synthetic_crawl`` stage."""

    seed: int | None = Field(None, description="Random seed; None uses the run's seed (ctx.seed)")
    pages: int = Field(240, ge=1, le=200_000, description="HTML pages in the crawl (a request + response each)")
    files: int = Field(2, ge=1, le=1000, description="Number of .warc.gz files the pages are split across")
    weights: CategoryWeights = Field(
        default_factory=CategoryWeights, description="Relative share of each page category (normalised)"
    )
    min_words: int = Field(250, ge=120, description="Shortest article body (words) of good and pii pages")
    max_words: int = Field(800, ge=120, le=2000, description="Longest article body (words) of good and pii pages")
    languages: tuple[str, ...] = Field(
        LANGUAGES, min_length=1, description="Languages of non-English pages (any of fr, de, es, ru)"
    )
    latin1_share: float = Field(
        0.3, ge=0, le=1, description="Share of fr/de/es pages served as charset=iso-8859-1 instead of utf-8"
    )

    @model_validator(mode="after")
    def _check(self) -> "SyntheticCrawlConfig":
        if self.min_words > self.max_words:
            raise ValueError(f"min_words ({self.min_words}) is larger than max_words ({self.max_words})")
        unknown = [lang for lang in self.languages if lang not in LANGUAGES]
        if unknown:
            raise ValueError(f"languages: unknown {unknown}; known: {list(LANGUAGES)}")
        return self


# --------------------------------------------------------------------------------------------
# Writing the crawl
# --------------------------------------------------------------------------------------------


@dataclass
class CrawlSummary:
    """What :func:`write_crawl` wrote."""

    counts: dict[str, int]
    records: int
    bytes: int
    files: list[Path]
    samples: list[dict[str, Any]]


def write_crawl(
    out_dir: Path, config: SyntheticCrawlConfig, seed: int, progress: Callable[[int, int], None] | None = None
) -> CrawlSummary:
    """Write the crawl into ``out_dir`` and return counts, records, bytes, files and sample rows.

    ``progress(files_done, files_total)`` is called after each file.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pages = _plan(config, seed)
    rng = random.Random(seed ^ 0x5EED_CA11)
    clock = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(330 * 86400))
    per_file = -(-len(pages) // config.files)
    files, records, size = [], 0, 0
    for i in range(config.files):
        path = out_dir / FILE_PATTERN.format(index=i)
        n, clock = _write_file(path, pages[i * per_file : (i + 1) * per_file], rng, clock, i, config.files, seed)
        records += n
        size += path.stat().st_size
        files.append(path)
        if progress is not None:
            progress(i + 1, config.files)
    counts = Counter(p.category for p in pages)
    step = max(1, len(pages) // 10)
    samples = [{"url": p.url, "category": p.category, "words": p.words} for p in pages[::step][:10]]
    return CrawlSummary({c: counts.get(c, 0) for c in CATEGORIES}, records, size, files, samples)


def write_synthetic_crawl(out_dir: Path, config: SyntheticCrawlConfig, seed: int) -> dict[str, int]:
    """Write a synthetic crawl folder of ``.warc.gz`` files; returns pages per category.

    ``seed`` is used as given (``config.seed`` is the stage's business: it falls back to the run's seed).
    """
    return write_crawl(out_dir, config, seed).counts


# --------------------------------------------------------------------------------------------
# The stage
# --------------------------------------------------------------------------------------------


def run_synthetic_crawl(ctx: StageContext, config: SyntheticCrawlConfig, inputs: dict[str, Artifact]) -> StageResult:
    """A deterministic synthetic web crawl (WARC files) for the demo and the tests: English articles that pass
    the Gopher/C4/FineWeb quality filters (gardening, cooking, town history, travel, science, maths word problems
    with worked answers), articles with e-mail and IPv4 addresses, boilerplate/menu pages, keyword spam,
    French/German/Spanish/Russian pages, too-short pages, and planted exact and near duplicates whose URLs
    (``?dup_of=<page>``) and ``WARC-Gristmill-*`` headers record the ground truth. No network, no outside files."""
    seed = config.seed if config.seed is not None else ctx.seed
    summary = write_crawl(ctx.output_dir, config, seed, lambda done, total: ctx.progress(done, total, "warc files"))
    ctx.log.info(
        "synthetic crawl: %d pages, %d records, %d bytes in %d files (seed %d)",
        sum(summary.counts.values()),
        summary.records,
        summary.bytes,
        len(summary.files),
        seed,
    )
    counts: dict[str, int | float] = {
        "pages": sum(summary.counts.values()),
        "records": summary.records,
        "files": len(summary.files),
        "bytes": summary.bytes,
    }
    counts.update({f"pages_{c}": n for c, n in summary.counts.items()})
    return StageResult(
        counts=counts,
        metadata={
            "samples": Table(summary.samples),
            "pages_per_category": bar_chart(
                list(summary.counts), list(summary.counts.values()), "pages per category", "pages"
            ),
            "config": {**config.model_dump(mode="json"), "seed": seed},
            "url_pattern": URL_PATTERN.pattern,
        },
    )


SPEC = StageSpec(
    name="synthetic_crawl",
    version="1",
    inputs={},
    output="warc",
    config=SyntheticCrawlConfig,
    run=run_synthetic_crawl,
    group="data",
)


@hookimpl
def gristmill_register_stages() -> list[StageSpec]:
    """The ``synthetic_crawl``, ``synthetic_reference``, ``arithmetic_tasks`` and ``task_documents`` stages."""
    from gristmill_plugins.demo_data.reference import REFERENCE_SPEC
    from gristmill_plugins.demo_data.tasks import TASK_DOCUMENTS_SPEC, TASKS_SPEC

    return [SPEC, REFERENCE_SPEC, TASKS_SPEC, TASK_DOCUMENTS_SPEC]
