"""``classifier`` artifacts: their files, loading one (validated first) and batched prediction."""

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gristmill.lib.textclf.model_file import ModelFileError, ModelInfo, load_model
from gristmill.lib.textclf.text import LABEL_PREFIX, NORMALIZATION, normalize_text
from gristmill.stage import Artifact

log = logging.getLogger("gristmill.lib.textclf")

MODEL_FILE = "model.bin"
LABELS_FILE = "labels.json"
METRICS_FILE = "metrics.json"
QUALITY_POSITIVE = "hq"  # the labels of a quality_classifier model; quality_filter's default positive label
QUALITY_NEGATIVE = "lq"


@dataclass(frozen=True)
class Classifier:
    """A loaded ``classifier`` artifact: the fastText model, its file info and ``labels.json`` (if any)."""

    model: Any
    info: ModelInfo
    meta: Mapping[str, Any]

    @property
    def labels(self) -> list[str]:
        """Label names without the ``__label__`` prefix, in the model's order."""
        return [lab.removeprefix(LABEL_PREFIX) for lab in self.info.labels]


def artifact_name(artifact: Artifact) -> str:
    """How errors name an input artifact: ``<asset> artifact <id> (<path>)``."""
    return f"{artifact.manifest.get('asset', artifact.kind)} artifact {artifact.id} ({artifact.path})"


def load_classifier(artifact: Artifact, stage: str) -> Classifier:
    """Find, validate and load the fastText model of a ``classifier`` artifact (``model.bin`` or the one ``*.bin``
    / ``*.ftz``), with its ``labels.json`` when present. Errors name the stage and the artifact."""
    what = f"{stage}: classifier {artifact_name(artifact)}"
    found = artifact.glob(MODEL_FILE) or sorted({*artifact.glob("*.bin"), *artifact.glob("*.ftz")})
    if not found and artifact.path.is_file():
        found = [artifact.path]
    if not found:
        raise ModelFileError(f"{what} holds no fastText model (model.bin, *.bin or *.ftz)")
    if len(found) > 1:
        raise ModelFileError(f"{what} holds several models {[p.name for p in found]}; expected one")
    model, info = load_model(found[0], what)
    meta: dict[str, Any] = {}
    labels_json = found[0].parent / LABELS_FILE
    if labels_json.is_file():
        try:
            meta = json.loads(labels_json.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelFileError(f"{what}: unreadable {labels_json}: {exc}") from exc
        if meta.get("normalization", NORMALIZATION) != NORMALIZATION:
            log.warning(
                "%s was trained with text normalization %r, this code uses %r",
                what,
                meta.get("normalization"),
                NORMALIZATION,
            )
    return Classifier(model, info, meta)


def predict_proba(
    model: Any, texts: Sequence[str], labels: Sequence[str], batch_size: int = 1024, normalized: bool = False
) -> np.ndarray:
    """Probabilities (``len(texts)`` × ``len(labels)``, float64, clipped to [0, 1]) for ``labels`` (names
    without prefix), predicted in batches with ``model.predict(batch, k=-1)``. Texts are normalized
    unless ``normalized``."""
    column = {LABEL_PREFIX + lab: j for j, lab in enumerate(labels)}
    out = np.zeros((len(texts), len(labels)), dtype=np.float64)
    for start in range(0, len(texts), max(1, batch_size)):
        batch = [t if normalized else normalize_text(t) for t in texts[start : start + batch_size]]
        all_labels, all_probs = model.predict(batch, k=-1)
        for i, (labs, probs) in enumerate(zip(all_labels, all_probs, strict=True)):
            row = out[start + i]
            for lab, p in zip(labs, probs, strict=True):
                j = column.get(lab)
                if j is not None:
                    row[j] = p
    return np.clip(out, 0.0, 1.0)


def scores_for(
    model: Any, texts: Sequence[str], label: str, batch_size: int = 1024, normalized: bool = False
) -> np.ndarray:
    """Probability of ``label`` for each text (1-D float64)."""
    return predict_proba(model, texts, [label], batch_size, normalized)[:, 0]
