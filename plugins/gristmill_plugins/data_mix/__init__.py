"""``data_mix``: sample a corpus to target category weights (Llama 3 recipe by default).

``data_mix`` gives every document a category, then samples documents (deterministically, by seed) so
that the output's category shares match ``weights``; it reports achieved vs target weights. A category
comes from, in order:

1. the document's metadata field ``category_field`` (when set and present);
2. a ``classifier`` input (top label of a fastText model, e.g. trained by ``topic_classifier``);
3. built-in heuristic rules (:func:`~gristmill_plugins.data_mix.heuristics.heuristic_category`):
   ``multilingual`` when ``metadata.language`` is not a primary language (or, without language metadata, when
   the text has few English stop words), ``code`` when enough lines look like source code, ``math`` for
   calculations / number-dense word problems, else ``general``.

``topic_classifier`` trains the classifier of step 2.

Weights are shares of *documents* (the Llama 3 paper's 50/25/17/8 are shares of tokens); the report
also shows each category's share of characters.
"""

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from gristmill import (
    Artifact,
    CheckOutcome,
    CheckSpec,
    Input,
    Markdown,
    StageConfig,
    StageContext,
    StageResult,
    StageSpec,
    Table,
    hookimpl,
)
from gristmill.errors import StageInputError
from gristmill.lib.documents import DocumentWriter, iter_documents, require_documents
from gristmill.lib.plots import figure_markdown, small_figure
from gristmill.lib.textclf import artifact_name, clean_label, load_classifier, predict_proba, snippet
from gristmill_plugins.data_mix.heuristics import heuristic_category

LLAMA3_WEIGHTS = {"general": 0.50, "math": 0.25, "code": 0.17, "multilingual": 0.08}


class DataMixConfig(StageConfig):
    """Options of the ``data_mix`` stage."""

    weights: dict[str, float] = Field(
        dict(LLAMA3_WEIGHTS),
        description="Target share of each category in the output (normalized; default: Llama 3's general 0.50, "
        "math 0.25, code 0.17, multilingual 0.08). Categories not listed are dropped.",
    )
    documents: int | None = Field(
        None, ge=1, description="Documents to output; None: as many as possible without repeating any document."
    )
    replacement: bool = Field(
        False,
        description="Allow repeating documents when a category has too few (whole copies, then a sample); "
        "without it a short category is taken whole and the output falls short of its weight.",
    )
    category_field: str | None = Field(
        None, description="Metadata key holding a category already; documents without it use the classifier/rules."
    )
    output_field: str = Field(
        "category", description="Metadata key the category is written to (plus <key>_source, <key>_score)."
    )
    primary_languages: list[str] = Field(
        ["en"], min_length=1, description="metadata.language codes that are not multilingual (heuristic rules)."
    )
    seed: int | None = Field(None, description="Sampling seed; None uses the run's seed (ctx.seed).")
    batch_size: int = Field(1024, ge=1, description="Documents per fastText predict call (classifier input).")
    max_weight_error: float = Field(
        0.02, ge=0.0, le=1.0, description="Non-blocking check: |achieved - target| share of every non-empty category."
    )
    sample_rows: int = Field(3, ge=0, le=50, description="Sample documents shown per category.")

    @field_validator("weights")
    @classmethod
    def _check_weights(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError("weights must name at least one category")
        if any(w < 0 or not math.isfinite(w) for w in value.values()):
            raise ValueError(f"weights must be finite and >= 0, got {value}")
        if sum(value.values()) <= 0:
            raise ValueError("weights must not all be 0")
        return {clean_label(k): float(w) for k, w in value.items()}

    @field_validator("primary_languages")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [v.strip().lower() for v in value]


def apportion(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Split ``total`` into integer counts proportional to ``weights`` (largest remainder; ties by name)."""
    norm = sum(weights.values())
    quotas = {k: total * w / norm for k, w in weights.items()} if norm > 0 else {k: 0.0 for k in weights}
    counts = {k: int(math.floor(q + 1e-9)) for k, q in quotas.items()}
    rest = total - sum(counts.values())
    for k in sorted(quotas, key=lambda k: (-(quotas[k] - counts[k]), k))[: max(rest, 0)]:
        counts[k] += 1
    return counts


def plan_mix(
    available: Mapping[str, int], weights: Mapping[str, float], documents: int | None, replacement: bool
) -> tuple[dict[str, int], dict[str, float], list[str]]:
    """Documents to take per category, the effective weights (empty categories dropped) and warnings."""
    warnings: list[str] = []
    total_w = sum(weights.values())
    empty = sorted(c for c, w in weights.items() if w > 0 and available.get(c, 0) == 0)
    for c in empty:
        share = weights[c] / total_w
        warnings.append(f"category {c!r} (weight {share:.3f}) has no documents; its share goes to the others")
    live = {c: w for c, w in weights.items() if w > 0 and available.get(c, 0) > 0}
    if not live:
        return {c: 0 for c in weights}, {c: 0.0 for c in weights}, warnings
    live_total = sum(live.values())
    effective = {c: (live[c] / live_total if c in live else 0.0) for c in weights}
    if documents is None:
        total = int(math.floor(min(available[c] / effective[c] for c in live) + 1e-9))
        while total > 0 and any(n > available[c] for c, n in apportion(total, live).items()):
            total -= 1
    else:
        total = documents
    wanted = apportion(total, live)
    take: dict[str, int] = {c: 0 for c in weights}
    for c, n in wanted.items():
        if n > available[c] and not replacement:
            warnings.append(
                f"category {c!r}: wanted {n} documents, only {available[c]} exist (replacement is off); "
                "the output falls short of its weight"
            )
            n = available[c]
        take[c] = n
    return take, effective, warnings


def _select(indices: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Multiplicity per position of ``indices``: whole copies, then a sample without replacement."""
    mult = np.full(len(indices), n // len(indices), dtype=np.int64)
    mult[rng.choice(len(indices), n % len(indices), replace=False)] += 1
    return mult


def _weights_chart(rows: list[dict[str, Any]]) -> Markdown:
    fig, ax = small_figure()
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["target_weight"] for r in rows], 0.4, label="target", color="#bbbbbb")
    ax.bar(x + 0.2, [r["achieved_weight"] for r in rows], 0.4, label="achieved", color="#4c72b0")
    ax.set_xticks(x, [r["category"] for r in rows], fontsize=8)
    ax.set_ylabel("share of documents")
    ax.set_title("Category weights: target vs achieved", fontsize=10)
    ax.legend(fontsize=8)
    return figure_markdown(fig, "category weights")


def run_data_mix(ctx: StageContext, config: DataMixConfig, inputs: dict[str, Artifact]) -> StageResult:
    """Categorize documents (metadata field, classifier or rules) and sample them to the target weights."""
    documents = inputs["documents"]
    require_documents(documents, "data_mix")
    seed = config.seed if config.seed is not None else ctx.seed
    classifier = None
    if inputs.get("classifier") is not None:
        classifier = load_classifier(inputs["classifier"], "data_mix")
        if not set(classifier.labels) & set(config.weights):
            raise StageInputError(
                f"data_mix: classifier {artifact_name(inputs['classifier'])} has labels {classifier.labels}, "
                f"none of which is a weights category {sorted(config.weights)}"
            )

    categories: list[str | None] = []
    sources: list[str] = []
    scores: dict[int, float] = {}
    chars: list[int] = []
    pending: list[tuple[int, str]] = []

    def flush() -> None:
        probs = predict_proba(classifier.model, [t for _, t in pending], classifier.labels, config.batch_size)
        for (i, _), row in zip(pending, probs, strict=True):
            j = int(row.argmax())
            categories[i] = classifier.labels[j]
            scores[i] = round(float(row[j]), 6)
        pending.clear()

    for i, doc in enumerate(iter_documents(documents)):
        metadata = doc.get("metadata") or {}
        chars.append(len(doc["text"]))
        value = metadata.get(config.category_field) if config.category_field else None
        if value is not None and str(value).strip():
            categories.append(clean_label(value))
            sources.append("field")
        elif classifier is not None:
            categories.append(None)
            sources.append("classifier")
            pending.append((i, doc["text"]))
            if len(pending) >= config.batch_size:
                flush()
        else:
            categories.append(heuristic_category(doc["text"], metadata, config.primary_languages))
            sources.append("heuristic")
        ctx.progress(i + 1, None, "documents categorized", every_s=5.0)
    if pending:
        flush()
    cats = np.array(categories, dtype=object)
    n_in = len(cats)
    available = Counter(categories)

    take, effective, warnings = plan_mix(available, config.weights, config.documents, config.replacement)
    unknown = sorted(set(available) - set(config.weights))
    if unknown:
        dropped = ", ".join(f"{c} ({available[c]})" for c in unknown)
        warnings.append(f"categories without a weight are dropped: {dropped}")
    multiplicity = np.zeros(n_in, dtype=np.int64)
    rng = np.random.default_rng(seed)
    for category in sorted(take):
        if take[category]:
            idx = np.flatnonzero(cats == category)
            multiplicity[idx] = _select(idx, take[category], rng)
    n_out = int(multiplicity.sum())
    if n_out == 0:
        raise StageInputError(
            f"data_mix: nothing to sample from {artifact_name(documents)}: categories found {dict(available)}, "
            f"weights {config.weights}"
        )
    for message in warnings:
        ctx.log.warning("data_mix: %s", message)

    samples: dict[str, list[dict[str, Any]]] = {}
    field = config.output_field
    with DocumentWriter(ctx.output_dir) as writer:
        for copy in range(int(multiplicity.max())):
            for i, doc in enumerate(iter_documents(documents)):
                if multiplicity[i] <= copy:
                    continue
                metadata = dict(doc.get("metadata") or {})
                metadata[field] = categories[i]
                metadata[f"{field}_source"] = sources[i]
                if i in scores:
                    metadata[f"{field}_score"] = scores[i]
                out = {**doc, "metadata": metadata}
                if copy:
                    out["id"] = f"{doc.get('id', i)}#{copy}"
                    metadata["mix_copy"] = copy
                writer.write(out)
                shown = samples.setdefault(categories[i], [])
                if copy == 0 and len(shown) < config.sample_rows:
                    shown.append(
                        {
                            "category": categories[i],
                            "source": sources[i],
                            "id": doc.get("id"),
                            "text": snippet(doc["text"], 150),
                        }
                    )
        ctx.progress(n_out, n_out, "documents written")

    chars_arr = np.asarray(chars, dtype=np.float64)
    total_chars = float((chars_arr * multiplicity).sum()) or 1.0
    total_w = sum(config.weights.values())
    rows: list[dict[str, Any]] = []
    max_error = 0.0
    for category in sorted(config.weights, key=lambda c: (-config.weights[c], c)):
        mask = cats == category
        selected = int(multiplicity[mask].sum())
        achieved = selected / n_out
        if available.get(category, 0) and config.weights[category] > 0:
            max_error = max(max_error, abs(achieved - effective[category]))
        rows.append(
            {
                "category": category,
                "available": int(available.get(category, 0)),
                "target_weight": round(config.weights[category] / total_w, 4),
                "effective_weight": round(effective[category], 4),
                "selected": selected,
                "unique": int((multiplicity[mask] > 0).sum()),
                "copies": int(np.maximum(multiplicity[mask] - 1, 0).sum()),
                "achieved_weight": round(achieved, 4),
                "achieved_char_share": round(float((chars_arr[mask] * multiplicity[mask]).sum()) / total_chars, 4),
            }
        )
    source_counts = Counter(sources)
    counts: dict[str, int | float] = {
        "documents_out": n_out,
        "documents_in": n_in,
        "max_weight_error": round(max_error, 6),
        "upsampled_copies": int(np.maximum(multiplicity - 1, 0).sum()),
        "categories_empty": sum(1 for c, w in config.weights.items() if w > 0 and not available.get(c)),
        "category_from_field": source_counts.get("field", 0),
        "category_from_classifier": source_counts.get("classifier", 0),
        "category_from_heuristic": source_counts.get("heuristic", 0),
    }
    for row in rows:
        counts[f"in_{row['category']}"] = row["available"]
        counts[f"out_{row['category']}"] = row["selected"]
    for category in unknown:
        counts[f"in_{category}"] = available[category]
    ctx.log.info(
        "data_mix: %d of %d documents, weights %s", n_out, n_in, {r["category"]: r["achieved_weight"] for r in rows}
    )
    metadata_out: dict[str, Any] = {
        "mix": Table(rows),
        "weights_chart": _weights_chart(rows),
        "warnings": warnings,
        "samples": Table([r for c in sorted(samples) for r in samples[c]]),
        "seed": seed,
    }
    return StageResult(counts=counts, metadata=metadata_out)


def _weights_close(counts: Mapping[str, Any], config: DataMixConfig) -> CheckOutcome:
    error = float(counts.get("max_weight_error", 1.0))
    return CheckOutcome(
        error <= config.max_weight_error, f"max |achieved - target| weight {error:.4f} (max {config.max_weight_error})"
    )


SPEC = StageSpec(
    name="data_mix",
    version="1",
    inputs={"documents": "documents", "classifier": Input("classifier", optional=True)},
    output="documents",
    config=DataMixConfig,
    run=run_data_mix,
    group="data",
    checks=(
        CheckSpec(
            name="weights_within_tolerance",
            description="every non-empty category's achieved share is within config.max_weight_error of its target",
            check=_weights_close,
            blocking=False,
        ),
    ),
)


@hookimpl
def gristmill_register_stages() -> list[StageSpec]:
    return [SPEC]
