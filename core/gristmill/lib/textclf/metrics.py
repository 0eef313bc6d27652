"""Held-out splits, deterministic shuffles and classification metrics."""

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gristmill.errors import StageInputError


def stratified_split(labels: Sequence[str], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, holdout)``: ``round(n·fraction)`` of each label held out (at least 1, at most n-1).

    Deterministic for a seed; both index arrays are sorted. Every label needs at least 2 examples.
    """
    arr = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    holdout: list[np.ndarray] = []
    for label in sorted(set(arr.tolist())):
        idx = np.flatnonzero(arr == label)
        if len(idx) < 2:
            raise StageInputError(f"label {label!r} has {len(idx)} example(s); a held-out split needs at least 2")
        idx = rng.permutation(idx)
        k = min(max(round(len(idx) * fraction), 1), len(idx) - 1)
        holdout.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(holdout))


def shuffled(items: Sequence[Any], seed: int) -> list[Any]:
    """A deterministic shuffle of ``items``."""
    out = list(items)
    random.Random(seed).shuffle(out)
    return out


def roc_auc(y_true: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """Area under the ROC curve from ranks (Mann-Whitney U; tied scores get their average rank).

    ``y_true`` is 1 for positives, 0 for negatives. NaN when either class is absent.
    """
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape:
        raise ValueError(f"y_true has shape {y.shape}, scores {s.shape}")
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg_rank = first + (counts + 1) / 2.0  # 1-based average rank of each distinct score
    ranks = np.empty(len(s), dtype=np.float64)
    ranks[order] = np.repeat(avg_rank, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def binary_metrics(
    y_true: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray, threshold: float = 0.5
) -> dict[str, float]:
    """Precision, recall, F1, accuracy (positive = ``score >= threshold``), the confusion counts and ROC AUC.

    Precision is 0 when nothing is predicted positive, recall 0 when there is no positive.
    """
    y = np.asarray(y_true).astype(bool)
    pred = np.asarray(scores, dtype=np.float64) >= threshold
    tp = int((pred & y).sum())
    fp = int((pred & ~y).sum())
    fn = int((~pred & y).sum())
    tn = int((~pred & ~y).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": (tp + tn) / len(y) if len(y) else 0.0,
        "auc": roc_auc(y, scores),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def multiclass_metrics(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-label precision/recall/F1/support and the confusion matrix (rows: true)."""
    index = {lab: i for i, lab in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(y_true, y_pred, strict=True):
        confusion[index[t], index[p]] += 1
    per_label: dict[str, dict[str, float]] = {}
    for i, lab in enumerate(labels):
        tp = int(confusion[i, i])
        predicted, support = int(confusion[:, i].sum()), int(confusion[i, :].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[lab] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    total = int(confusion.sum())
    return {
        "accuracy": float(np.trace(confusion) / total) if total else 0.0,
        "macro_f1": float(np.mean([m["f1"] for m in per_label.values()])) if per_label else 0.0,
        "per_label": per_label,
        "confusion": confusion.tolist(),
    }


def round_floats(data: Any, digits: int = 6) -> Any:
    """``data`` with every float rounded (NaN → None), for JSON and metadata."""
    if isinstance(data, float | np.floating):
        return None if math.isnan(float(data)) else round(float(data), digits)
    if isinstance(data, Mapping):
        return {k: round_floats(v, digits) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [round_floats(v, digits) for v in data]
    if isinstance(data, np.integer):
        return int(data)
    return data
