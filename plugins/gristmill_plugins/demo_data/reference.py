"""The ``synthetic_reference`` stage: clean, well-formed English articles as ``documents``.

The demo's stand-in for the "reference" corpora real recipes use as quality-classifier positives
(Wikipedia, books, OpenHermes/ELI5 in DCLM): same templates as the crawl's good pages, no HTML.
"""

import random

from pydantic import Field

from gristmill import StageConfig, StageContext, StageResult, StageSpec, Table
from gristmill.errors import StageInputError
from gristmill.lib.documents import DocumentWriter
from gristmill.lib.plots import histogram
from gristmill_plugins.demo_data.article import Article
from gristmill_plugins.demo_data.categories import TOPICS
from gristmill_plugins.demo_data.english import make_article


class SyntheticReferenceConfig(StageConfig):
    """Options of the ``synthetic_reference`` stage."""

    documents: int = Field(120, ge=1, description="Articles to write")
    topics: list[str] = Field(list(TOPICS), min_length=1, description=f"Topics drawn round-robin (of {TOPICS})")
    min_words: int = Field(250, ge=20, description="Shortest article body (words)")
    max_words: int = Field(800, ge=20, description="Longest article body (words)")
    seed: int | None = Field(None, description="Random seed; None uses the run's seed (ctx.seed) + 1")


def article_text(article: Article) -> str:
    """Plain text of an article: title, then headings and paragraphs separated by blank lines."""
    parts = [article.title]
    for heading, paragraphs in article.sections:
        if heading:
            parts.append(heading)
        parts.extend(paragraphs)
    return "\n\n".join(parts)


def run_synthetic_reference(ctx: StageContext, config: SyntheticReferenceConfig, inputs: dict) -> StageResult:
    """Clean English reference articles (gardening, cooking, history, travel, science, arithmetic word
    problems) written as datatrove JSONL documents: the demo's quality-classifier positives."""
    unknown = sorted(set(config.topics) - set(TOPICS))
    if unknown:
        raise StageInputError(f"synthetic_reference: unknown topics {unknown}; known: {list(TOPICS)}")
    seed = config.seed if config.seed is not None else ctx.seed + 1  # differs from the crawl's articles
    rng = random.Random(seed)
    rows, lengths = [], []
    with DocumentWriter(ctx.output_dir) as writer:
        for i in range(config.documents):
            topic = config.topics[i % len(config.topics)]
            article = make_article(topic, rng, config.min_words, max(config.min_words, config.max_words))
            text = article_text(article)
            lengths.append(len(text.split()))
            doc_id = f"reference-{i:05d}"
            writer.write({"text": text, "id": doc_id, "metadata": {"topic": topic, "source": "synthetic"}})
            if len(rows) < 10:
                rows.append({"id": doc_id, "topic": topic, "title": article.title})
    return StageResult(
        counts={"documents": config.documents, "words": sum(lengths)},
        metadata={
            "sample": Table(rows),
            "length_histogram": histogram(lengths, "document lengths", "words", ylabel="documents"),
        },
    )


REFERENCE_SPEC = StageSpec(
    name="synthetic_reference",
    version="1",
    inputs={},
    output="documents",
    config=SyntheticReferenceConfig,
    run=run_synthetic_reference,
    group="data",
)
