"""``topic_classifier``: a multi-class fastText model from documents labeled in their metadata.

Trains on documents whose metadata carries a label (``label_field``) and/or labeled JSONL files (``labels_path``);
reports held-out accuracy, macro-F1, per-label metrics and the confusion matrix (blocking check ``min_accuracy``).
``data_mix`` categorizes documents with the model (its ``classifier`` input). It shares
:mod:`gristmill.lib.textclf` with ``quality_classifier`` (a separate stage rather than a multi-class mode of
``quality_classifier``, whose inputs and metrics are about one positive class).
"""

from collections import Counter
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from gristmill import (
    Artifact,
    CheckOutcome,
    CheckSpec,
    StageContext,
    StageResult,
    StageSpec,
    Table,
    hookimpl,
)
from gristmill.errors import StageInputError
from gristmill.lib.documents import iter_documents, require_documents
from gristmill.lib.jsonl import matching_files, read_jsonl
from gristmill.lib.textclf import (
    LABEL_PREFIX,
    LABELS_FILE,
    METRICS_FILE,
    MODEL_FILE,
    NORMALIZATION,
    FastTextTrainConfig,
    artifact_name,
    clean_label,
    multiclass_metrics,
    normalize_text,
    predict_proba,
    round_floats,
    save_model,
    shuffled,
    stratified_split,
    train_supervised,
    write_json,
    write_training_file,
)


class TopicClassifierConfig(FastTextTrainConfig):
    """Options of the ``topic_classifier`` stage (fastText hyperparameters come from the base)."""

    label_field: str = Field(
        "category", description="Metadata key of the input documents holding each one's label (unlabeled: skipped)."
    )
    labels_path: str | None = Field(
        None,
        description="Glob of extra labeled JSONL(.gz) files outside the store; rows need text_field and label_field.",
    )
    text_field: str = Field("text", description="JSONL field holding the text (labels_path files).")
    max_per_label: int | None = Field(
        None, ge=2, description="Sample at most this many examples per label, to balance classes (None: all)."
    )
    min_accuracy: float = Field(0.5, ge=0.0, le=1.0, description="Blocking check: held-out accuracy at least this.")


def _labeled_rows(config: TopicClassifierConfig) -> list[tuple[Any, str, str]]:
    rows: list[tuple[Any, str, str]] = []
    for path in matching_files(config.labels_path, "topic_classifier: labels_path"):
        for lineno, row in read_jsonl(path, stage="topic_classifier"):
            if not isinstance(row.get(config.text_field), str):
                raise StageInputError(f"topic_classifier: {path}:{lineno}: no string field {config.text_field!r}")
            ident = str(row.get("id", f"{path.name}:{lineno}"))
            rows.append((row.get(config.label_field), row[config.text_field], ident))
    return rows


def run_topic_classifier(ctx: StageContext, config: TopicClassifierConfig, inputs: dict[str, Artifact]) -> StageResult:
    """Train a multi-class fastText model on documents labeled in their metadata (and/or labeled JSONL files)."""
    seed = config.seed if config.seed is not None else ctx.seed
    documents = inputs["documents"]
    require_documents(documents, "topic_classifier")
    raw: list[tuple[Any, str, str]] = [
        ((doc.get("metadata") or {}).get(config.label_field), doc["text"], str(doc.get("id", i)))
        for i, doc in enumerate(iter_documents(documents))
    ]
    if config.labels_path is not None:
        raw.extend(_labeled_rows(config))
    skipped_unlabeled = skipped_empty = 0
    examples: list[tuple[str, str, str, str]] = []  # label, normalized, raw, id
    for value, text, ident in raw:
        if value is None or (isinstance(value, str) and not value.strip()):
            skipped_unlabeled += 1
            continue
        norm = normalize_text(text)
        if not norm:
            skipped_empty += 1
            continue
        examples.append((clean_label(value), norm, text, ident))
    per_label = Counter(e[0] for e in examples)
    if config.max_per_label is not None:
        capped: list[tuple[str, str, str, str]] = []
        for label in sorted(per_label):
            of_label = [e for e in examples if e[0] == label]
            capped.extend(shuffled(of_label, seed + 3)[: config.max_per_label])
        examples = capped
        per_label = Counter(e[0] for e in examples)
    if len(per_label) < 2:
        raise StageInputError(
            f"topic_classifier: needs at least 2 labels in metadata[{config.label_field!r}] of "
            f"{artifact_name(documents)} (or labels_path); found {dict(per_label)}"
        )
    labels = sorted(per_label)
    train_idx, holdout_idx = stratified_split([e[0] for e in examples], config.holdout_fraction, seed)
    train = shuffled([examples[i] for i in train_idx], seed + 2)
    train_file = ctx.work_dir / "train.txt"
    write_training_file(train_file, ((e[0], e[1]) for e in train))
    ctx.progress(0, 1, f"training fastText on {len(train)} examples, {len(labels)} labels")
    model = train_supervised(train_file, seed=seed, **config.fasttext_params())
    ctx.progress(1, 1, "trained")

    holdout = [examples[i] for i in holdout_idx]
    probs = predict_proba(model, [e[1] for e in holdout], labels, normalized=True)
    predicted = [labels[j] for j in probs.argmax(axis=1)]
    metrics = round_floats(multiclass_metrics([e[0] for e in holdout], predicted, labels))

    model_path = save_model(model, ctx.output_dir / MODEL_FILE)
    params = {**config.fasttext_params(), "seed": seed, "loss": "softmax"}
    write_json(
        ctx.output_dir / LABELS_FILE,
        {
            "kind": "topic",
            "labels": labels,
            "label_field": config.label_field,
            "label_prefix": LABEL_PREFIX,
            "normalization": NORMALIZATION,
            "fasttext": params,
        },
    )
    write_json(
        ctx.output_dir / METRICS_FILE,
        {
            "holdout": metrics,
            "train_examples": len(train),
            "holdout_examples": len(holdout),
            "examples_per_label": dict(sorted(per_label.items())),
        },
    )
    ctx.log.info(
        "topic_classifier: held-out accuracy %.3f, macro-F1 %.3f (%d labels, %d train)",
        metrics["accuracy"],
        metrics["macro_f1"],
        len(labels),
        len(train),
    )
    counts: dict[str, int | float] = {
        "holdout_accuracy": metrics["accuracy"],
        "holdout_macro_f1": metrics["macro_f1"],
        "labels": len(labels),
        "train_examples": len(train),
        "holdout_examples": len(holdout),
        "skipped_unlabeled": skipped_unlabeled,
        "skipped_empty": skipped_empty,
        "vocabulary": len(model.get_words()),
        "model_bytes": model_path.stat().st_size,
        **{f"examples_{label}": per_label[label] for label in labels},
    }
    per_label_rows = [{"label": label, "examples": per_label[label], **metrics["per_label"][label]} for label in labels]
    confusion_rows = [
        {"true": label, **{f"→ {p}": metrics["confusion"][i][j] for j, p in enumerate(labels)}}
        for i, label in enumerate(labels)
    ]
    metadata: dict[str, Any] = {
        "per_label": Table(per_label_rows),
        "confusion": Table(confusion_rows),
        "fasttext": params,
    }
    return StageResult(counts=counts, metadata=metadata)


def _accuracy_at_least(counts: Mapping[str, Any], config: TopicClassifierConfig) -> CheckOutcome:
    accuracy = float(counts.get("holdout_accuracy", 0.0))
    message = f"held-out accuracy {accuracy:.3f} (min {config.min_accuracy})"
    return CheckOutcome(accuracy >= config.min_accuracy, message)


SPEC = StageSpec(
    name="topic_classifier",
    version="1",
    inputs={"documents": "documents"},
    output="classifier",
    config=TopicClassifierConfig,
    run=run_topic_classifier,
    group="data",
    checks=(
        CheckSpec(
            name="min_accuracy",
            description="topic_classifier's held-out accuracy is at least config.min_accuracy",
            check=_accuracy_at_least,
        ),
    ),
)


@hookimpl
def gristmill_register_stages() -> list[StageSpec]:
    return [SPEC]
