"""``retrieval_docs``: filler documents → retrieval-style training documents (needle-in-a-haystack practice).

Each output document is real filler text (consecutive input documents, whitespace collapsed, cut at a
sentence end to one of the configured lengths in characters) with ``facts_per_document`` facts
(``The pass key of <name> is <digits>.``) inserted after sentence ends at random depths, ending with the questions
about ``questions`` of them, each followed by its answer. The format is :mod:`gristmill.lib.needle`, the same one
the ``long_context`` stage's retrieval gate asks, so a small model trained on these documents can actually learn
the task (several questions per document multiply the retrieval signal per training token).
Deterministic by seed.
"""

import random
from typing import Any

from pydantic import Field, field_validator, model_validator

from gristmill import Artifact, StageConfig, StageContext, StageResult, StageSpec, Table, hookimpl
from gristmill.checks import min_documents_check
from gristmill.errors import StageInputError
from gristmill.lib.documents import DocumentWriter, iter_documents, require_documents
from gristmill.lib.needle import make_facts, retrieval_text
from gristmill.lib.plots import bar_chart


class RetrievalDocsConfig(StageConfig):
    """Options of the ``retrieval_docs`` stage."""

    documents: int = Field(2000, ge=1, description="Retrieval documents to write.")
    lengths: list[int] = Field(
        [1500], description="Filler lengths in characters; each document draws one of them uniformly."
    )
    facts_per_document: int = Field(
        2, ge=1, le=48, description="Facts inserted per document (distinct names); the question asks about one."
    )
    questions: int = Field(
        1, ge=1, le=48, description="Facts asked at the end of each document (≤ facts_per_document), in random order."
    )
    digits: int = Field(5, ge=1, le=12, description="Digits of each pass key.")
    max_filler_documents: int | None = Field(
        None, ge=1, description="Read at most this many input documents as filler; None: all."
    )
    seed: int | None = Field(None, description="Seed of filler windows, facts and depths; None: the instance seed.")
    min_documents: int = Field(1, ge=0, description="Check: at least this many documents written.")

    @model_validator(mode="after")
    def _questions(self) -> "RetrievalDocsConfig":
        if self.questions > self.facts_per_document:
            raise ValueError(f"questions {self.questions} exceeds facts_per_document {self.facts_per_document}")
        return self

    @field_validator("lengths")
    @classmethod
    def _lengths(cls, value: list[int]) -> list[int]:
        if not value or min(value) < 20:
            raise ValueError(f"lengths needs at least one length of ≥ 20 characters, got {value}")
        return value


def _filler_pool(source: Artifact, limit: int | None) -> list[str]:
    pool = []
    for doc in iter_documents(source):
        text = " ".join(doc["text"].split())
        if text:
            pool.append(text)
        if limit is not None and len(pool) >= limit:
            break
    return pool


def _filler(pool: list[str], rng: random.Random, chars: int) -> str:
    """Consecutive pool documents from a random start, cut at the last sentence end before ``chars``."""
    i, parts, n = rng.randrange(len(pool)), [], 0
    while n < chars:
        parts.append(pool[i % len(pool)])
        n += len(parts[-1]) + 1
        i += 1
    text = " ".join(parts)[:chars]
    end = text.rfind(". ")
    return text[: end + 1] if end > chars // 2 else text


def run_retrieval_docs(ctx: StageContext, config: RetrievalDocsConfig, inputs: dict[str, Artifact]) -> StageResult:
    """Insert pass-key facts into filler text at random depths and end each document with a question and its
    answer."""
    source = inputs["documents"]
    require_documents(source, "retrieval_docs")
    pool = _filler_pool(source, config.max_filler_documents)
    if not pool:
        raise StageInputError(f"retrieval_docs: input documents artifact {source.id} ({source.path}) has no text")
    seed = ctx.seed if config.seed is None else config.seed
    rng = random.Random(f"retrieval_docs:{seed}")
    per_length: dict[int, list[int]] = {n: [0, 0] for n in config.lengths}
    with DocumentWriter(ctx.output_dir) as writer:
        for i in range(config.documents):
            chars = rng.choice(config.lengths)
            filler = _filler(pool, rng, chars)
            facts = make_facts(rng, config.facts_per_document, config.digits)
            depths = [rng.random() for _ in facts]
            asked = rng.sample(range(len(facts)), config.questions)
            text = retrieval_text(filler, facts, depths, asked)
            writer.write(
                {
                    "text": text,
                    "id": f"retrieval-{seed}-{i}",
                    "metadata": {
                        "facts": len(facts),
                        "asked": [facts[a].name for a in asked],
                        "depths": [round(depths[a], 4) for a in asked],
                        "filler_chars": len(filler),
                    },
                }
            )
            per_length[chars][0] += 1
            per_length[chars][1] += len(text)
            ctx.progress(i + 1, config.documents, "documents")
        written = writer.count
    rows: list[dict[str, Any]] = [
        {"filler_chars": n, "documents": d, "mean_chars": round(c / d, 1) if d else 0}
        for n, (d, c) in sorted(per_length.items())
    ]
    counts: dict[str, int | float] = {
        "documents": written,
        "facts": written * config.facts_per_document,
        "questions": written * config.questions,
        "filler_documents": len(pool),
        "chars": sum(c for _, c in per_length.values()),
    }
    plot = bar_chart(
        [r["filler_chars"] for r in rows],
        [r["documents"] for r in rows],
        "documents per filler length (characters)",
        "documents",
    )
    return StageResult(counts=counts, metadata={"lengths": Table(rows), "documents_per_length": plot})


SPEC = StageSpec(
    name="retrieval_docs",
    version="1",
    inputs={"documents": "documents"},
    output="documents",
    config=RetrievalDocsConfig,
    run=run_retrieval_docs,
    group="data",
    checks=(min_documents_check("retrieval_docs", "documents"),),
)


@hookimpl
def gristmill_register_stages() -> list[StageSpec]:
    return [SPEC]
