"""``quality_classifier``: a fastText document-quality classifier, DCLM / FineWeb style.

Trains a binary fastText model: positives (label ``hq``) are the documents of an optional ``reference`` input
(e.g. curated text) and/or files outside the store (``positives_path``: JSONL or plain text; with ``label_field`` a
labeled file such as DCLM's human judgements gives positives *and* labeled negatives); negatives (``lq``) are the
labeled negatives plus documents sampled from the crawl (``documents`` input). A stratified held-out split gives
precision/recall/F1/ROC AUC; a blocking check requires ``min_auc``. The artifact holds ``model.bin`` (fastText),
``labels.json`` (labels, positive label, text normalization, hyperparameters) and ``metrics.json``;
``quality_filter`` scores documents with it. Training shares :mod:`gristmill.lib.textclf` (normalization,
deterministic training, metrics) with the other classifier stages.
"""

import hashlib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from gristmill import (
    Artifact,
    CheckOutcome,
    CheckSpec,
    Input,
    StageContext,
    StageResult,
    StageSpec,
    Table,
    hookimpl,
)
from gristmill.errors import StageInputError
from gristmill.lib.documents import iter_documents, require_documents
from gristmill.lib.jsonl import matching_files, open_text, read_jsonl
from gristmill.lib.textclf import (
    LABEL_PREFIX,
    LABELS_FILE,
    METRICS_FILE,
    MODEL_FILE,
    NORMALIZATION,
    FastTextTrainConfig,
    artifact_name,
    binary_metrics,
    histogram_markdown,
    normalize_text,
    round_floats,
    save_model,
    scores_for,
    shuffled,
    snippet,
    stratified_split,
    train_supervised,
    write_json,
    write_training_file,
)
from gristmill.lib.textclf import QUALITY_NEGATIVE as NEGATIVE
from gristmill.lib.textclf import QUALITY_POSITIVE as POSITIVE

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".ndjson")


class QualityClassifierConfig(FastTextTrainConfig):
    """Options of the ``quality_classifier`` stage (fastText hyperparameters come from the base)."""

    positives_path: str | None = Field(
        None,
        description="Glob of positive-example files outside the store (``**`` allowed): JSONL(.gz) rows with "
        "text_field, or plain .txt(.gz) files split by text_unit. Used with and/or instead of the reference input.",
    )
    text_field: str = Field("text", description="JSONL field holding the text.")
    text_unit: Literal["file", "paragraph", "line"] = Field(
        "paragraph",
        description="How a plain-text file is split into examples: whole file, blank-line paragraphs, lines.",
    )
    label_field: str | None = Field(
        None,
        description="JSONL field with a label: rows whose label is in positive_labels are positives, in "
        "negative_labels labeled negatives, others skipped. None: every row is a positive.",
    )
    positive_labels: list[str] = Field(
        ["1", "true", "hq", "high", "positive"], description="label_field values (case-insensitive) meaning positive."
    )
    negative_labels: list[str] = Field(
        ["0", "false", "lq", "low", "negative"], description="label_field values (case-insensitive) meaning negative."
    )
    max_positives: int | None = Field(None, ge=2, description="Sample at most this many positives (None: all).")
    negative_ratio: float = Field(
        1.0, ge=0.0, description="Negatives wanted per positive; labeled negatives count first, the crawl fills up."
    )
    negatives: int | None = Field(None, ge=0, description="Negatives wanted in all (overrides negative_ratio).")
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="Score threshold for the held-out precision/recall/F1.")
    sample_rows: int = Field(5, ge=0, le=100, description="Top- and bottom-scored held-out documents shown.")
    min_auc: float = Field(0.6, ge=0.0, le=1.0, description="Blocking check: held-out ROC AUC at least this.")

    @field_validator("positive_labels", "negative_labels")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [v.strip().lower() for v in value]


@dataclass
class Example:
    label: str
    text: str  # normalized
    raw: str
    source: str
    id: str


def _label_key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip().lower()


def _read_path_examples(config: QualityClassifierConfig, counts: dict[str, int]) -> Iterator[tuple[str, str, str]]:
    """``(label, raw text, id)`` from the files matching ``positives_path``."""
    for path in matching_files(config.positives_path, "quality_classifier: positives_path"):
        if path.name.endswith(JSONL_SUFFIXES):
            for lineno, row in read_jsonl(path, stage="quality_classifier"):
                text = row.get(config.text_field)
                if not isinstance(text, str):
                    raise StageInputError(f"quality_classifier: {path}:{lineno}: no string field {config.text_field!r}")
                label = POSITIVE
                if config.label_field is not None:
                    key = _label_key(row.get(config.label_field))
                    if key in config.positive_labels:
                        label = POSITIVE
                    elif key in config.negative_labels:
                        label = NEGATIVE
                    else:
                        counts["skipped_unlabeled"] += 1
                        continue
                yield label, text, str(row.get("id", f"{path.name}:{lineno}"))
        else:
            with open_text(path) as f:
                content = f.read()
            if config.text_unit == "file":
                units = [content]
            elif config.text_unit == "paragraph":
                units = [p for p in content.replace("\r\n", "\n").split("\n\n")]
            else:
                units = content.splitlines()
            for i, unit in enumerate(units):
                if unit.strip():
                    yield POSITIVE, unit, f"{path.name}:{i}"


def _text_hash(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def _collect_examples(
    config: QualityClassifierConfig, inputs: dict[str, Artifact], seed: int, ctx: StageContext
) -> tuple[list[Example], dict[str, int]]:
    counts = {"skipped_unlabeled": 0, "skipped_empty": 0, "skipped_duplicates": 0}
    positives: list[Example] = []
    labeled_negatives: list[Example] = []
    reference = inputs.get("reference")
    if reference is None and config.positives_path is None:
        raise StageInputError("quality_classifier: no positives: connect a `reference` input or set positives_path")
    if reference is not None:
        require_documents(reference, "quality_classifier")
        for doc in iter_documents(reference):
            text = normalize_text(doc["text"])
            if not text:
                counts["skipped_empty"] += 1
                continue
            positives.append(Example(POSITIVE, text, doc["text"], "reference", str(doc.get("id", ""))))
    if config.positives_path is not None:
        for label, raw, ident in _read_path_examples(config, counts):
            text = normalize_text(raw)
            if not text:
                counts["skipped_empty"] += 1
                continue
            target = positives if label == POSITIVE else labeled_negatives
            target.append(Example(label, text, raw, "positives_path", ident))
    if config.max_positives is not None and len(positives) > config.max_positives:
        positives = shuffled(positives, seed + 11)[: config.max_positives]
    if len(positives) < 2:
        raise StageInputError(f"quality_classifier: {len(positives)} positive example(s); at least 2 are needed")

    positive_hashes = {_text_hash(e.text) for e in positives}
    kept_negatives = [e for e in labeled_negatives if _text_hash(e.text) not in positive_hashes]
    counts["skipped_duplicates"] += len(labeled_negatives) - len(kept_negatives)
    wanted = config.negatives if config.negatives is not None else round(config.negative_ratio * len(positives))
    needed = max(0, wanted - len(kept_negatives))

    crawl_negatives: list[Example] = []
    if needed:
        crawl = inputs["documents"]
        require_documents(crawl, "quality_classifier")
        eligible: list[int] = []
        for i, doc in enumerate(iter_documents(crawl)):
            text = normalize_text(doc["text"])
            if not text:
                counts["skipped_empty"] += 1
            elif _text_hash(text) in positive_hashes:
                counts["skipped_duplicates"] += 1
            else:
                eligible.append(i)
        if len(eligible) < needed:
            ctx.log.warning(
                "quality_classifier: wanted %d crawl negatives, %s has only %d eligible documents",
                needed,
                artifact_name(crawl),
                len(eligible),
            )
        rng = np.random.default_rng(seed + 1)
        picks = rng.choice(len(eligible), min(needed, len(eligible)), replace=False)
        chosen = {eligible[int(j)] for j in picks}
        for i, doc in enumerate(iter_documents(crawl)):
            if i in chosen:
                crawl_negatives.append(
                    Example(NEGATIVE, normalize_text(doc["text"]), doc["text"], "crawl", str(doc.get("id", i)))
                )
    counts["positives"] = len(positives)
    counts["labeled_negatives"] = len(kept_negatives)
    counts["crawl_negatives"] = len(crawl_negatives)
    counts["negatives"] = len(kept_negatives) + len(crawl_negatives)
    if counts["negatives"] < 2:
        raise StageInputError(
            f"quality_classifier: {counts['negatives']} negative example(s); at least 2 are needed "
            "(crawl documents, labeled negatives, negative_ratio/negatives)"
        )
    return positives + kept_negatives + crawl_negatives, counts


def _score_rows(examples: list[Example], scores: np.ndarray, order: np.ndarray, side: str) -> list[dict[str, Any]]:
    return [
        {
            "side": side,
            "score": round(float(scores[i]), 4),
            "label": examples[i].label,
            "source": examples[i].source,
            "id": examples[i].id,
            "text": snippet(examples[i].raw),
        }
        for i in order
    ]


def run_quality_classifier(
    ctx: StageContext, config: QualityClassifierConfig, inputs: dict[str, Artifact]
) -> StageResult:
    """Train a fastText hq-vs-lq classifier: positives from the reference input / positives_path, negatives
    from labeled rows and the crawl; report held-out precision/recall/F1/AUC."""
    seed = config.seed if config.seed is not None else ctx.seed
    examples, counts = _collect_examples(config, inputs, seed, ctx)
    labels = [e.label for e in examples]
    train_idx, holdout_idx = stratified_split(labels, config.holdout_fraction, seed)
    train = shuffled([examples[i] for i in train_idx], seed + 2)
    train_file = ctx.work_dir / "train.txt"
    write_training_file(train_file, ((e.label, e.text) for e in train))
    ctx.progress(0, 1, f"training fastText on {len(train)} examples")
    model = train_supervised(train_file, seed=seed, **config.fasttext_params())
    ctx.progress(1, 1, "trained")

    holdout = [examples[i] for i in holdout_idx]
    y = np.array([e.label == POSITIVE for e in holdout], dtype=bool)
    scores = scores_for(model, [e.text for e in holdout], POSITIVE, normalized=True)
    metrics = round_floats(binary_metrics(y, scores, config.threshold))

    model_path = save_model(model, ctx.output_dir / MODEL_FILE)
    vocabulary = len(model.get_words())
    params = {**config.fasttext_params(), "seed": seed, "loss": "softmax"}
    write_json(
        ctx.output_dir / LABELS_FILE,
        {
            "kind": "quality",
            "labels": [POSITIVE, NEGATIVE],
            "positive_label": POSITIVE,
            "negative_label": NEGATIVE,
            "label_prefix": LABEL_PREFIX,
            "normalization": NORMALIZATION,
            "fasttext": params,
        },
    )
    summary = {
        "threshold": config.threshold,
        "holdout": metrics,
        "train_examples": len(train),
        "holdout_examples": len(holdout),
        **counts,
        "vocabulary": vocabulary,
    }
    write_json(ctx.output_dir / METRICS_FILE, summary)

    order = np.lexsort((np.arange(len(holdout)), -scores))
    n = min(config.sample_rows, len(holdout))
    top = _score_rows(holdout, scores, order[:n], "top")
    bottom = _score_rows(holdout, scores, order[::-1][:n], "bottom")
    ctx.log.info(
        "quality_classifier: held-out AUC %.3f F1 %.3f on %d documents (%d train)",
        metrics["auc"],
        metrics["f1"],
        len(holdout),
        len(train),
    )
    result_counts: dict[str, int | float] = {
        "holdout_auc": metrics["auc"],
        "holdout_f1": metrics["f1"],
        "holdout_precision": metrics["precision"],
        "holdout_recall": metrics["recall"],
        "holdout_accuracy": metrics["accuracy"],
        "positives": counts["positives"],
        "negatives": counts["negatives"],
        "labeled_negatives": counts["labeled_negatives"],
        "crawl_negatives": counts["crawl_negatives"],
        "train_examples": len(train),
        "holdout_examples": len(holdout),
        "vocabulary": vocabulary,
        "skipped_unlabeled": counts["skipped_unlabeled"],
        "skipped_empty": counts["skipped_empty"],
        "skipped_duplicates": counts["skipped_duplicates"],
        "model_bytes": model_path.stat().st_size,
    }
    metadata: dict[str, Any] = {
        "holdout_metrics": metrics,
        "fasttext": params,
        "top_scored": Table(top),
        "bottom_scored": Table(bottom),
        "holdout_scores": histogram_markdown(
            {"positive (hq)": scores[y].tolist(), "negative (lq)": scores[~y].tolist()},
            "Held-out scores by true label",
            threshold=config.threshold,
        ),
    }
    return StageResult(counts=result_counts, metadata=metadata)


def _auc_at_least(counts: Mapping[str, Any], config: QualityClassifierConfig) -> CheckOutcome:
    auc = counts.get("holdout_auc")
    if auc is None or (isinstance(auc, float) and math.isnan(auc)):
        return CheckOutcome(False, "no held-out AUC")
    return CheckOutcome(float(auc) >= config.min_auc, f"held-out AUC {float(auc):.3f} (min {config.min_auc})")


SPEC = StageSpec(
    name="quality_classifier",
    version="1",
    inputs={"documents": "documents", "reference": Input("documents", optional=True)},
    output="classifier",
    config=QualityClassifierConfig,
    run=run_quality_classifier,
    group="data",
    checks=(
        CheckSpec(
            name="min_auc",
            description="quality_classifier's held-out ROC AUC is at least config.min_auc",
            check=_auc_at_least,
        ),
    ),
)


@hookimpl
def gristmill_register_stages() -> list[StageSpec]:
    return [SPEC]
