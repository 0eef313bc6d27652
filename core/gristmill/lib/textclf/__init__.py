"""fastText text classifiers shared by stages: normalization, training, safe loading, batched prediction, metrics.

Stages never import each other; ``quality_classifier``, ``quality_filter``, ``topic_classifier`` and
``data_mix`` share this package. Everything works on the ``fasttext`` module of ``fasttext-numpy2-wheel``.
The public names are importable from here; they live in:

- :mod:`~gristmill.lib.textclf.text`: :func:`normalize_text` (applied at training *and* prediction time, named
  by :data:`NORMALIZATION`), label names, fastText training files;
- :mod:`~gristmill.lib.textclf.training`: :func:`train_supervised` (byte-identical models for a seed: the
  allocator fix is described there), :class:`FastTextTrainConfig`;
- :mod:`~gristmill.lib.textclf.model_file`: :func:`inspect_model` parses a whole ``.bin`` in Python before
  :func:`load_model` hands it to fastText (which can crash on a corrupt file);
- :mod:`~gristmill.lib.textclf.classifier`: ``classifier`` artifacts (:func:`load_classifier`), prediction;
- :mod:`~gristmill.lib.textclf.metrics`: stratified splits, shuffles, ROC AUC, binary/multi-class metrics;
- :mod:`~gristmill.lib.textclf.report`: byte-stable JSON, snippets, score histograms.
"""

from gristmill.lib.textclf.classifier import (
    LABELS_FILE,
    METRICS_FILE,
    MODEL_FILE,
    QUALITY_NEGATIVE,
    QUALITY_POSITIVE,
    Classifier,
    artifact_name,
    load_classifier,
    predict_proba,
    scores_for,
)
from gristmill.lib.textclf.metrics import (
    binary_metrics,
    multiclass_metrics,
    roc_auc,
    round_floats,
    shuffled,
    stratified_split,
)
from gristmill.lib.textclf.model_file import ModelFileError, ModelInfo, inspect_model, load_model
from gristmill.lib.textclf.report import histogram_markdown, snippet, write_json
from gristmill.lib.textclf.text import LABEL_PREFIX, NORMALIZATION, clean_label, normalize_text, write_training_file
from gristmill.lib.textclf.training import FastTextTrainConfig, save_model, train_supervised, zeroed_allocations

__all__ = [
    "LABEL_PREFIX",
    "LABELS_FILE",
    "METRICS_FILE",
    "MODEL_FILE",
    "NORMALIZATION",
    "QUALITY_NEGATIVE",
    "QUALITY_POSITIVE",
    "Classifier",
    "FastTextTrainConfig",
    "ModelFileError",
    "ModelInfo",
    "artifact_name",
    "binary_metrics",
    "clean_label",
    "histogram_markdown",
    "inspect_model",
    "load_classifier",
    "load_model",
    "multiclass_metrics",
    "normalize_text",
    "predict_proba",
    "roc_auc",
    "round_floats",
    "save_model",
    "scores_for",
    "shuffled",
    "snippet",
    "stratified_split",
    "train_supervised",
    "write_json",
    "write_training_file",
    "zeroed_allocations",
]
