"""``data_mix`` and ``topic_classifier``: sample a corpus to target category weights (Llama 3 recipe by default).

``data_mix`` gives every document a category, then samples documents (deterministically, by seed) so
that the output's category shares match ``weights``; it reports achieved vs target weights. A category
comes from, in order:

1. the document's metadata field ``category_field`` (when set and present);
2. a ``classifier`` input (top label of a fastText model, e.g. trained by ``topic_classifier``);
3. built-in heuristic rules (:func:`heuristic_category`): ``multilingual`` when ``metadata.language`` is
   not a primary language (or, without language metadata, when the text has few English stop words),
   ``code`` when enough lines look like source code, ``math`` for calculations / number-dense word
   problems, else ``general``.

``topic_classifier`` trains the multi-class fastText model for step 2 from documents whose metadata
carries a label (``label_field``) and/or labeled JSONL files; it shares :mod:`gristmill.lib.textclf` with
``quality_classifier`` (a separate stage rather than a multi-class mode of ``quality_classifier``, whose
inputs and metrics are about one positive class).

Weights are shares of *documents* (the Llama 3 paper's 50/25/17/8 are shares of tokens); the report
also shows each category's share of characters.
"""

import glob
import gzip
import json
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from gristmill import (
    Artifact,
    CheckOutcome,
    CheckSpec,
    Markdown,
    StageConfig,
    StageContext,
    StageResult,
    StageSpec,
    Table,
    hookimpl,
)
from gristmill.lib.documents import DocumentWriter, iter_documents, require_documents
from gristmill.lib.plots import figure_markdown, small_figure
from gristmill.lib.textclf import (
    LABEL_PREFIX,
    LABELS_FILE,
    METRICS_FILE,
    MODEL_FILE,
    NORMALIZATION,
    FastTextTrainConfig,
    artifact_name,
    clean_label,
    load_classifier,
    multiclass_metrics,
    normalize_text,
    predict_proba,
    round_floats,
    save_model,
    shuffled,
    snippet,
    stratified_split,
    train_supervised,
    write_json,
    write_training_file,
)

LLAMA3_WEIGHTS = {"general": 0.50, "math": 0.25, "code": 0.17, "multilingual": 0.08}

# --------------------------------------------------------------------------------------------------
# Heuristic categories

_CODE_LINE = re.compile(
    r"^\s*(def |class |import |from [\w.]+ import |return\b|raise |yield |async |await |elif |except\b|try:|"
    r"#include|#define|package |public |private |protected |static |function\b|var |let |const |fn |func |"
    r"impl |struct |enum |match |case .*:|switch\s*\(|if\s*\(|for\s*\(|while\s*\(|}|@\w+|//|/\*|\*/|<\?php|"
    r"SELECT |INSERT |UPDATE |CREATE |\w+(\.\w+)*\s*(\+|-|\*|/)?=\s*\S|\w+(\.\w+)*\(.*\)\s*;?$)"
)
_CODE_END = re.compile(r"([{;]|\)\s*:|[\[(,]|\belse:|\btry:|\bfinally:)\s*$")
_CALCULATION = re.compile(r"\d[\d.,]*\s*[-+*/×÷^x]\s*\(?\$?\d[\d.,]*\)?\s*=\s*\$?-?\d")
_MATH_MARKUP = re.compile(
    r"<<[^<>\n]*=[^<>\n]*>>|\\(?:frac|sum|int|sqrt|cdot|times|le|ge|alpha|pi)\b|\$[^$\n]{1,80}=[^$\n]{1,80}\$"
)
_NUMBER = re.compile(r"(?<![\w.])[$€£]?\d+(?:[.,]\d+)*%?")
_MATH_WORDS = re.compile(
    r"\b(how many|how much|how long|how far|what is the|total|altogether|each|per|percent|sum|product|"
    r"difference|equals?|times|twice|half|average|remain(?:s|ing)?|left over|calculate|compute|solve|"
    r"equation|fraction|multipl(?:y|ied)|divid(?:e|ed)|ratio|probability|integer|prime|area|perimeter)\b",
    re.IGNORECASE,
)
_QUESTION = re.compile(
    r"\b(how (many|much|long|far|old|fast|often|tall|heavy|big)\b[^.?!]*\?|what percent(age)?\b[^.?!]*\?|"
    r"what(?: i|\'|’)s the (total|sum|difference|average|number|percentage|price|cost|value|area|ratio|"
    r"probability|final|combined|remaining)\b[^.?!]*\?|(what|how) (is|was|will be|would be) the (total|sum|"
    r"difference|average|number|percentage|price|cost|value|area|ratio|probability|final|combined|remaining)\b"
    r"[^.?!]*\?|\bcalculate the\b)",
    re.IGNORECASE,
)
_NUMBER_WORD = re.compile(
    r"\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|"
    r"hundred|thousand|half|twice|double|triple|third|quarter|dozen)\b",
    re.IGNORECASE,
)
_DIGIT = re.compile(r"\d")
_INDENTED = re.compile(r"^( {2,}|\t)\S")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_STOP_WORDS = (
    "a about after all also an and any are as at be because been but by can could did do does for from had has "
    "have he her him his how i if in into is it its just like me more my no not now of on one only or other our "
    "out over said she so some than that the their them then there these they this to up us very was we were "
    "what when which who will with would you your"
)
ENGLISH_STOP_WORDS = frozenset(_STOP_WORDS.split())


def looks_like_code(text: str) -> bool:
    """At least 3 non-blank lines, 40 % of them look like code (keywords, assignments, calls, braces, lines
    ending in ``{ ; ( [ ,`` or ``):``, or indented), and code symbols make up 1.5 % of the characters."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 3:
        return False
    codey = sum(1 for line in lines if _CODE_LINE.match(line) or _CODE_END.search(line) or _INDENTED.match(line))
    symbols = sum(text.count(c) for c in "{}[]()=;<>_#")
    return codey / len(lines) >= 0.4 and symbols / max(len(text), 1) >= 0.015


def looks_like_math(text: str) -> bool:
    """Math markup (``<<a*b=c>>``, LaTeX), two calculations (``3 + 4 = 7``), a word problem (a ``how
    many/much…?`` / ``what is the total…?`` / ``calculate the`` question, two numbers in digits or words, and
    digits ≥ 1 % of the words), or number-dense text with math words (numbers ≥ 8 % of the words, math
    words ≥ 3 %)."""
    if _MATH_MARKUP.search(text) or len(_CALCULATION.findall(text)) >= 2:
        return True
    words = len(text.split())
    if not words:
        return False
    numbers = len(_NUMBER.findall(text))
    if _QUESTION.search(text) and numbers + len(_NUMBER_WORD.findall(text)) >= 2 and numbers / words >= 0.01:
        return True
    math_words = len(_MATH_WORDS.findall(text))
    return numbers >= 3 and numbers / words >= 0.08 and math_words / words >= 0.03


def looks_english(text: str) -> bool:
    """English stop words are at least 15 % of the alphabetic words (texts of 8+ words); shorter texts:
    mostly ASCII letters."""
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) >= 8:
        return sum(w in ENGLISH_STOP_WORDS for w in words) / len(words) >= 0.15
    letters = [c for c in text if c.isalpha()]
    return not letters or sum(c.isascii() for c in letters) / len(letters) >= 0.9


def heuristic_category(
    text: str, metadata: Mapping[str, Any] | None = None, primary_languages: Sequence[str] = ("en",)
) -> str:
    """``multilingual`` | ``code`` | ``math`` | ``general`` from simple rules (see the module docstring)."""
    language = (metadata or {}).get("language")
    if isinstance(language, str) and language and language.lower() not in primary_languages:
        return "multilingual"
    if _MATH_MARKUP.search(text):
        return "math"
    if looks_like_code(text):
        return "code"
    if looks_like_math(text):
        return "math"
    if not isinstance(language, str) and not looks_english(text):
        return "multilingual"
    return "general"


# --------------------------------------------------------------------------------------------------
# topic_classifier


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
    pattern = str(Path(config.labels_path).expanduser())
    files = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
    if not files:
        raise FileNotFoundError(f"topic_classifier: labels_path {config.labels_path!r} matches no file")
    rows: list[tuple[Any, str, str]] = []
    for path in files:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"topic_classifier: {path}:{lineno}: not JSON: {exc.msg}") from exc
                if not isinstance(row, dict) or not isinstance(row.get(config.text_field), str):
                    raise ValueError(f"topic_classifier: {path}:{lineno}: no string field {config.text_field!r}")
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
        raise ValueError(
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


TOPIC_SPEC = StageSpec(
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


# --------------------------------------------------------------------------------------------------
# data_mix


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
            raise ValueError(
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
        raise ValueError(
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


MIX_SPEC = StageSpec(
    name="data_mix",
    version="1",
    inputs={"documents": "documents", "classifier?": "classifier"},
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

SPECS = (TOPIC_SPEC, MIX_SPEC)


@hookimpl
def gristmill_register_stages() -> list[StageSpec]:
    return list(SPECS)
