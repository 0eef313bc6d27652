"""``quality_filter``: keep the documents a fastText quality classifier scores high.

Scores every document with a ``classifier`` artifact (e.g. from ``quality_classifier``): the probability of its
positive label, stored in ``metadata["quality_score"]``; keeps those with ``score >= threshold`` (or the
``top_fraction`` best). Prediction shares :mod:`gristmill.lib.textclf` (normalization, safe model loading) with
the classifier stages.
"""

import math
from typing import Any

import numpy as np
from pydantic import Field

from gristmill import (
    Artifact,
    StageConfig,
    StageContext,
    StageResult,
    StageSpec,
    Table,
    hookimpl,
)
from gristmill.errors import StageInputError
from gristmill.lib.documents import DocumentWriter, iter_documents, require_documents
from gristmill.lib.textclf import QUALITY_POSITIVE as POSITIVE
from gristmill.lib.textclf import (
    artifact_name,
    histogram_markdown,
    load_classifier,
    scores_for,
    snippet,
)


class QualityFilterConfig(StageConfig):
    """Options of the ``quality_filter`` stage."""

    threshold: float = Field(0.5, ge=0.0, le=1.0, description="Keep documents whose score is at least this.")
    top_fraction: float | None = Field(
        None, gt=0.0, le=1.0, description="Keep this share of the documents, best scores first (overrides threshold)."
    )
    label: str | None = Field(
        None,
        description="Label whose probability is the score; None: the classifier's positive_label (labels.json) or hq.",
    )
    score_field: str = Field("quality_score", description="Metadata key the score is written to.")
    allow_empty: bool = Field(False, description="Allow an empty output instead of failing when nothing is kept.")
    batch_size: int = Field(1024, ge=1, description="Documents per fastText predict call.")
    sample_rows: int = Field(5, ge=0, le=100, description="Best kept and worst dropped documents shown.")


def _score_label(config: QualityFilterConfig, classifier: Any, what: str) -> str:
    labels = classifier.labels
    label = config.label or classifier.meta.get("positive_label") or (POSITIVE if POSITIVE in labels else None)
    if label is None:
        raise StageInputError(f"quality_filter: {what} has labels {labels} and no positive_label; set config.label")
    if label not in labels:
        raise StageInputError(f"quality_filter: label {label!r} is not one of the labels {labels} of {what}")
    return label


def run_quality_filter(ctx: StageContext, config: QualityFilterConfig, inputs: dict[str, Artifact]) -> StageResult:
    """Score every document with the classifier and keep those at or above the threshold (or the top fraction)."""
    documents, classifier_artifact = inputs["documents"], inputs["classifier"]
    classifier = load_classifier(classifier_artifact, "quality_filter")
    label = _score_label(config, classifier, f"classifier {artifact_name(classifier_artifact)}")
    require_documents(documents, "quality_filter")

    scores_list: list[np.ndarray] = []
    batch: list[str] = []
    done = 0
    for doc in iter_documents(documents):
        batch.append(doc["text"])
        if len(batch) >= config.batch_size:
            scores_list.append(scores_for(classifier.model, batch, label, config.batch_size))
            done += len(batch)
            batch = []
            ctx.progress(done, None, "documents scored")
    if batch:
        scores_list.append(scores_for(classifier.model, batch, label, config.batch_size))
    scores = np.concatenate(scores_list).round(6)
    n = len(scores)

    if config.top_fraction is not None:
        k = min(n, max(1, math.ceil(config.top_fraction * n - 1e-9)))
        order = np.lexsort((np.arange(n), -scores))
        keep = np.zeros(n, dtype=bool)
        keep[order[:k]] = True
        threshold = float(scores[order[k - 1]])
    else:
        keep = scores >= config.threshold
        threshold = config.threshold
    kept = int(keep.sum())
    if kept == 0 and not config.allow_empty:
        raise StageInputError(
            f"quality_filter: all {n} documents of {artifact_name(documents)} scored below the threshold "
            f"{threshold} (best score {scores.max():.4f}, label {label!r}); lower the threshold, use top_fraction "
            "or set allow_empty: true"
        )

    samples_kept: list[dict[str, Any]] = []
    samples_dropped: list[dict[str, Any]] = []
    order = np.lexsort((np.arange(n), -scores))
    show_kept = {int(i) for i in order[: config.sample_rows] if keep[i]}
    show_dropped = {int(i) for i in order[::-1][: config.sample_rows] if not keep[i]}
    with DocumentWriter(ctx.output_dir) as writer:
        for i, doc in enumerate(iter_documents(documents)):
            if i in show_kept or i in show_dropped:
                row = {
                    "score": float(scores[i]),
                    "kept": bool(keep[i]),
                    "id": doc.get("id"),
                    "text": snippet(doc["text"]),
                }
                (samples_kept if keep[i] else samples_dropped).append(row)
            if keep[i]:
                metadata = dict(doc.get("metadata") or {})
                metadata[config.score_field] = float(scores[i])
                writer.write({**doc, "metadata": metadata})
    samples_kept.sort(key=lambda r: -r["score"])
    samples_dropped.sort(key=lambda r: r["score"])
    ctx.log.info("quality_filter: kept %d of %d documents (%s >= %.4f)", kept, n, label, threshold)
    counts: dict[str, int | float] = {
        "documents_kept": kept,
        "documents_in": n,
        "documents_dropped": n - kept,
        "kept_fraction": round(kept / n, 6),
        "threshold": round(threshold, 6),
        "score_mean": round(float(scores.mean()), 6),
        "score_median": round(float(np.median(scores)), 6),
    }
    metadata_out: dict[str, Any] = {
        "label": label,
        "classifier_labels": classifier.labels,
        "score_histogram": histogram_markdown(
            {"kept": scores[keep].tolist(), "dropped": scores[~keep].tolist()},
            f"P({label}) of {n} documents",
            threshold=threshold,
        ),
        "examples": Table(samples_kept + samples_dropped),
    }
    return StageResult(counts=counts, metadata=metadata_out)


SPEC = StageSpec(
    name="quality_filter",
    version="1",
    inputs={"documents": "documents", "classifier": "classifier"},
    output="documents",
    config=QualityFilterConfig,
    run=run_quality_filter,
    group="data",
)


@hookimpl
def gristmill_register_stages() -> list[StageSpec]:
    return [SPEC]
