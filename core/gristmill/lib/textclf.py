"""fastText text classifiers shared by stages: normalization, training, safe loading, batched prediction, metrics.

Stages never import each other; ``quality_classifier``, ``quality_filter``, ``topic_classifier`` and
``data_mix`` share this module. Everything works on the ``fasttext`` module of ``fasttext-numpy2-wheel``.

**Text.** :func:`normalize_text` is applied to every text at training *and* prediction time: one line
(fastText reads one example per line and ``predict`` refuses ``\\n``), lowercase, punctuation split off
words (fastText splits on whitespace only, so ``"word."`` and ``"word"`` would be different tokens), the
label prefix ``__label__`` defused (a document containing it would otherwise inject labels), whitespace
and NUL collapsed to single spaces. The normalization name is stored with each classifier
(:data:`NORMALIZATION`).

**Determinism.** fastText is deterministic with ``thread=1`` and a fixed ``seed`` *only* with the fix in
:func:`train_supervised`. Two things in the fastText build of ``fasttext-numpy2-wheel`` (fastText master)
make plain ``fasttext.train_supervised(..., thread=1, seed=s)`` produce different ``.bin`` bytes from run
to run in one process:

1. ``DenseMatrix::uniform`` initializes the input matrix in 10 blocks of ``m*n/10`` values, one block per
   training thread (fastText issues #935, #1061): with ``thread=1`` only the first 10 % of the rows get
   random values.
2. The matrix lives in an ``intgemm::AlignedVector`` allocated with ``posix_memalign`` and never zeroed. A
   fresh ``mmap`` is zero, but glibc reuses freed heap memory (its mmap threshold grows after the first
   large free), so the other 90 % of the rows start with whatever was there before: typically the
   weights of the previous model (the models differ run to run) or garbage bits (seen: ``inf``, ``nan``,
   ``3e38`` in a saved model, and training aborted with ``RuntimeError: Encountered NaN.``).

:func:`train_supervised` therefore trains with glibc's ``M_PERTURB`` set to 0xFF (``mallopt``), which makes
``malloc`` fill new blocks with ``0xFF ^ 0xFF = 0``: the uninitialized rows start at zero, exactly as on a
fresh process, and the same data + params + seed give byte-identical models. Training holds a lock (the
setting is process-wide) and checks afterwards that every weight is finite. With ``thread > 1`` training
is Hogwild (threads race on shared weights) and not reproducible. Outside glibc the fix is unavailable;
a warning says so.

**Safe loading.** fastText can crash (or loop, reading past EOF) on a truncated or corrupt ``.bin``.
:func:`inspect_model` parses the whole file structure in Python (magic, version, args, dictionary,
matrix shapes, exact file size) before :func:`load_model` hands it to fastText.
"""

import contextlib
import ctypes
import functools
import json
import logging
import math
import mmap
import platform
import random
import re
import struct
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from gristmill.configs import StageConfig
from gristmill.errors import StageInputError
from gristmill.lib.plots import figure_markdown, small_figure
from gristmill.stage import Artifact, Markdown

log = logging.getLogger("gristmill.lib.textclf")

LABEL_PREFIX = "__label__"
NORMALIZATION = "gristmill-fasttext-v1"
MODEL_FILE = "model.bin"
LABELS_FILE = "labels.json"
METRICS_FILE = "metrics.json"

FASTTEXT_MAGIC = 793712314  # first int32 of every fastText .bin/.ftz
FASTTEXT_VERSIONS = (11, 12)
LOSSES = {1: "hs", 2: "ns", 3: "softmax", 4: "ova"}
MODELS = {1: "cbow", 2: "skipgram", 3: "supervised"}
PQ_KSUB = 256  # centroids per sub-quantizer in fastText's product quantizer


class ModelFileError(StageInputError):
    """A classifier file that is missing or not a well-formed fastText model; the message names it."""


# --------------------------------------------------------------------------------------------------
# Text


_SPACE = re.compile(r"[\s\x00]+")
_PUNCT = re.compile(r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^`{|}~]")


def _spaced(match: re.Match) -> str:
    return f" {match.group()} "


def normalize_text(text: str) -> str:
    """The one-line, lowercase, punctuation-split form fed to fastText (training and prediction alike):
    ASCII punctuation becomes its own token, any run of (Unicode) whitespace or NUL one space."""
    text = text.lower().replace(LABEL_PREFIX, " label ").replace("\x00", " ")
    return " ".join(_PUNCT.sub(_spaced, text).split())


def clean_label(value: Any) -> str:
    """A label value as a fastText label name: a string without whitespace (runs replaced by ``_``)."""
    label = _SPACE.sub("_", str(value).strip())
    if not label:
        raise ValueError(f"empty label {value!r}")
    return label


def write_training_file(path: Path, examples: Iterable[tuple[str, str]]) -> int:
    """Write ``(label, normalized text)`` pairs as fastText lines ``__label__<label> <text>``; returns the count.

    Texts must already be normalized (:func:`normalize_text`); empty texts are skipped. fastText reads the
    file in order and never shuffles it: shuffle the examples first.
    """
    n = 0
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for label, text in examples:
            if not text:
                continue
            if "\n" in text or _SPACE.search(label):
                raise ValueError(f"training example not normalized (label {label!r})")
            f.write(f"{LABEL_PREFIX}{label} {text}\n")
            n += 1
    return n


# --------------------------------------------------------------------------------------------------
# Config shared by the classifier-training stages


class FastTextTrainConfig(StageConfig):
    """fastText hyperparameters, held-out split and seed (a base for classifier stage configs)."""

    epoch: int = Field(
        20, ge=1, le=1000, description="fastText training epochs (20 suits CI-sized data; use fewer on large corpora)."
    )
    lr: float = Field(0.5, gt=0.0, le=10.0, description="fastText learning rate (decays linearly to 0).")
    word_ngrams: int = Field(2, ge=1, le=6, description="fastText wordNgrams: word n-grams used as features.")
    dim: int = Field(32, ge=1, le=1024, description="fastText embedding dimension.")
    min_count: int = Field(1, ge=1, description="fastText minCount: words seen fewer times are dropped.")
    bucket: int = Field(
        100_000,
        ge=0,
        le=10_000_000,
        description="fastText hash buckets for word n-grams; the model holds (vocabulary + bucket) × dim floats "
        "(100k × 32 ≈ 13 MB). Raise for large corpora.",
    )
    threads: int = Field(
        1, ge=1, le=64, description="fastText training threads; more than 1 is faster but not reproducible (Hogwild)."
    )
    holdout_fraction: float = Field(
        0.2, gt=0.0, lt=1.0, description="Share of each class held out (stratified) for the reported metrics."
    )
    seed: int | None = Field(None, description="Random seed (split, sampling, fastText); None uses the run's seed.")

    def fasttext_params(self) -> dict[str, Any]:
        """Keyword arguments of :func:`train_supervised` (without ``seed``)."""
        return {
            "epoch": self.epoch,
            "lr": self.lr,
            "word_ngrams": self.word_ngrams,
            "dim": self.dim,
            "min_count": self.min_count,
            "bucket": self.bucket,
            "threads": self.threads,
        }


# --------------------------------------------------------------------------------------------------
# Training


_TRAIN_LOCK = threading.Lock()
_M_PERTURB = -6  # glibc mallopt parameter


@functools.lru_cache(maxsize=1)
def _glibc() -> Any:
    """The C library if it is glibc (has ``mallopt`` with ``M_PERTURB``), else None."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols, libc included
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") else None


@contextlib.contextmanager
def zeroed_allocations() -> Iterator[bool]:
    """While active, glibc fills every new heap block with zeros (``mallopt(M_PERTURB, 0xFF)``).

    Yields whether the setting is in effect (False outside glibc). Process-wide: hold ``_TRAIN_LOCK``.
    """
    libc = _glibc()
    if libc is None or libc.mallopt(_M_PERTURB, 0xFF) != 1:
        yield False
        return
    try:
        yield True
    finally:
        libc.mallopt(_M_PERTURB, 0)


def train_supervised(
    train_file: Path,
    *,
    seed: int,
    epoch: int = 20,
    lr: float = 0.5,
    word_ngrams: int = 2,
    dim: int = 32,
    min_count: int = 1,
    bucket: int = 100_000,
    threads: int = 1,
    loss: str = "softmax",
) -> Any:
    """Train a fastText supervised model on ``train_file`` (``__label__x text`` lines), quietly.

    With ``threads=1`` the result is a deterministic function of the file and the arguments (see the
    module docstring for the allocator fix this needs). Raises ``ValueError`` when fastText refuses the
    data (e.g. an empty vocabulary) and ``RuntimeError`` if a weight comes out non-finite.
    """
    import fasttext

    seed = int(seed) % (2**31)
    with _TRAIN_LOCK, zeroed_allocations() as zeroed:
        if not zeroed:
            log.warning("cannot zero fastText's uninitialized weights outside glibc: training is not reproducible")
        try:
            model = fasttext.train_supervised(
                input=str(train_file),
                epoch=epoch,
                lr=lr,
                wordNgrams=word_ngrams,
                dim=dim,
                minCount=min_count,
                bucket=bucket,
                thread=threads,
                seed=seed,
                loss=loss,
                verbose=0,
            )
        except (ValueError, RuntimeError) as exc:
            raise ValueError(f"fastText training on {train_file} failed: {exc}") from exc
    if not (np.isfinite(model.get_input_matrix()).all() and np.isfinite(model.get_output_matrix()).all()):
        raise RuntimeError("fastText produced non-finite weights (uninitialized memory or diverged training)")
    return model


def save_model(model: Any, path: Path) -> Path:
    """Save a fastText model as ``.bin``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save_model(str(path))
    return path


# --------------------------------------------------------------------------------------------------
# Safe loading


@dataclass(frozen=True)
class ModelInfo:
    """What :func:`inspect_model` read from a fastText file (without fastText)."""

    path: Path
    size: int
    version: int
    model: str
    loss: str
    dim: int
    word_ngrams: int
    bucket: int
    nwords: int
    nlabels: int
    ntokens: int
    quantized: bool
    labels: tuple[str, ...] = field(default_factory=tuple)


class _Reader:
    def __init__(self, buf: Any, size: int, fail: Any):
        self.buf, self.size, self.fail, self.off = buf, size, fail, 0

    def unpack(self, fmt: str, what: str) -> tuple:
        n = struct.calcsize(fmt)
        if self.off + n > self.size:
            self.fail(f"truncated in {what} at byte {self.off} of {self.size}")
        values = struct.unpack_from(fmt, self.buf, self.off)
        self.off += n
        return values

    def skip(self, n: int, what: str) -> None:
        if n < 0 or self.off + n > self.size:
            self.fail(f"truncated in {what}: needs {n} bytes at byte {self.off}, file has {self.size}")
        self.off += n

    def cstring(self, what: str) -> bytes:
        end = self.buf.find(b"\0", self.off)
        if end < 0:
            self.fail(f"truncated in {what} at byte {self.off}")
        value = self.buf[self.off : end]
        self.off = end + 1
        return value


def _skip_product_quantizer(r: _Reader, what: str) -> None:
    dim, nsubq, dsub, lastdsub = r.unpack("<iiii", what)
    if not (0 < dim <= 1 << 16 and 0 < nsubq <= dim and 0 < dsub <= dim and 0 < lastdsub <= dim):
        r.fail(f"implausible product quantizer in {what}: dim={dim} nsubq={nsubq}")
    r.skip(4 * dim * PQ_KSUB, what)


def _dense(r: _Reader, what: str, rows: int | None, dim: int) -> None:
    m, n = r.unpack("<qq", what)
    if n != dim or m < 0 or (rows is not None and m != rows):
        r.fail(f"{what} is {m}×{n}, expected {rows if rows is not None else '?'}×{dim}")
    r.skip(4 * m * n, what)


def _quantized(r: _Reader, what: str) -> None:
    (qnorm,) = r.unpack("<B", what)
    m, n = r.unpack("<qq", what)
    (codesize,) = r.unpack("<i", what)
    if qnorm > 1 or m < 0 or n <= 0 or codesize < 0:
        r.fail(f"implausible quantized {what}: {m}×{n}, codesize {codesize}")
    r.skip(codesize, what)
    _skip_product_quantizer(r, what)
    if qnorm:
        r.skip(m, what)
        _skip_product_quantizer(r, what)


def inspect_model(path: Path, what: str = "fastText model") -> ModelInfo:
    """Validate a fastText ``.bin``/``.ftz`` file's whole structure without loading it into fastText.

    Checks the magic number and version, the training args, every dictionary entry, the matrix shapes
    against the args and dictionary, and that the file ends exactly where the last matrix does. Raises
    :class:`ModelFileError` (naming ``what`` and the path) on anything else: missing, empty, truncated,
    random bytes, trailing data.
    """
    path = Path(path)

    def fail(reason: str) -> None:
        raise ModelFileError(
            f"{what}: {path} is not a valid fastText model ({reason}); not loaded (fastText can crash on corrupt files)"
        )

    if not path.is_file():
        raise ModelFileError(f"{what}: model file not found: {path}")
    size = path.stat().st_size
    if size < 8 + 56 + 28:
        fail(f"only {size} bytes")
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        r = _Reader(buf, size, fail)
        magic, version = r.unpack("<ii", "header")
        if magic != FASTTEXT_MAGIC:
            fail(f"bad magic number {magic:#x}")
        if version not in FASTTEXT_VERSIONS:
            fail(f"unsupported version {version}")
        dim, ws, epoch, min_count, neg, word_ngrams, loss, kind, bucket, minn, maxn, lr_update, t = r.unpack(
            "<12id", "args"
        )
        if not (
            0 < dim <= 1 << 16
            and loss in LOSSES
            and kind in MODELS
            and 0 <= bucket <= 1 << 30
            and 0 < word_ngrams <= 64
            and min(ws, epoch, min_count, neg, minn, maxn, lr_update) >= 0
            and maxn <= 1000
            and (bucket > 0 or (word_ngrams == 1 and maxn == 0))  # else fastText divides by bucket = 0
            and math.isfinite(t)
        ):
            fail(f"implausible args (dim={dim}, loss={loss}, model={kind}, bucket={bucket}, wordNgrams={word_ngrams})")
        n_entries, nwords, nlabels, ntokens, prune_size = r.unpack("<iiiqq", "dictionary header")
        if not (nwords >= 0 and nlabels >= 0 and nwords + nlabels == n_entries and ntokens >= 0 and prune_size >= -1):
            fail(f"implausible dictionary header (size={n_entries}, nwords={nwords}, nlabels={nlabels})")
        if n_entries * 10 > size - r.off:
            fail(f"dictionary of {n_entries} entries cannot fit in {size} bytes")
        labels: list[str] = []
        for i in range(n_entries):
            word = r.cstring("dictionary")
            count, entry_type = r.unpack("<qb", "dictionary")
            if count < 0 or entry_type != (0 if i < nwords else 1):
                fail(f"corrupt dictionary entry {i}")
            if entry_type == 1:
                labels.append(word.decode("utf-8", "replace"))
        if prune_size > 0:
            r.skip(8 * prune_size, "pruned index")
        (quant_input,) = r.unpack("<B", "input flag")
        if quant_input > 1:
            fail("corrupt quantization flag")
        if quant_input:
            _quantized(r, "input matrix")
        else:
            if prune_size >= 0:
                fail("pruned dictionary without a quantized input matrix")
            _dense(r, "input matrix", nwords + bucket, dim)
        (qout,) = r.unpack("<B", "output flag")
        if qout > 1:
            fail("corrupt output quantization flag")
        if quant_input and qout:
            _quantized(r, "output matrix")
        else:
            _dense(r, "output matrix", nlabels if kind == 3 else nwords, dim)
        if r.off != size:
            fail(f"{size - r.off} unexpected bytes after the model")
    return ModelInfo(
        path=path,
        size=size,
        version=version,
        model=MODELS[kind],
        loss=LOSSES[loss],
        dim=dim,
        word_ngrams=word_ngrams,
        bucket=bucket,
        nwords=nwords,
        nlabels=nlabels,
        ntokens=ntokens,
        quantized=bool(quant_input),
        labels=tuple(labels),
    )


def load_model(path: Path, what: str = "fastText model", supervised: bool = True) -> tuple[Any, ModelInfo]:
    """Validate with :func:`inspect_model`, then load with fastText. Returns ``(model, info)``."""
    info = inspect_model(path, what)
    if supervised and (info.model != "supervised" or not info.labels):
        raise ModelFileError(f"{what}: {path} is a fastText {info.model} model without labels, not a classifier")
    from fasttext.FastText import _FastText  # no deprecation print, unlike fasttext.load_model

    try:
        return _FastText(str(path)), info
    except (ValueError, RuntimeError, MemoryError) as exc:
        raise ModelFileError(f"{what}: fastText could not load {path}: {exc}") from exc


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


# --------------------------------------------------------------------------------------------------
# Prediction


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


# --------------------------------------------------------------------------------------------------
# Splits and metrics


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
            raise ValueError(f"label {label!r} has {len(idx)} example(s); a held-out split needs at least 2")
        idx = rng.permutation(idx)
        k = min(max(round(len(idx) * fraction), 1), len(idx) - 1)
        holdout.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(holdout))


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


# --------------------------------------------------------------------------------------------------
# Small shared helpers for classifier stages


def shuffled(items: Sequence[Any], seed: int) -> list[Any]:
    """A deterministic shuffle of ``items``."""
    out = list(items)
    random.Random(seed).shuffle(out)
    return out


def write_json(path: Path, data: Any) -> None:
    """JSON with sorted keys and a trailing newline (byte-stable)."""
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


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


def snippet(text: str, chars: int = 200) -> str:
    """The first ``chars`` characters of ``text`` on one line."""
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= chars else one_line[: chars - 1] + "…"


def histogram_markdown(
    series: Mapping[str, Sequence[float]], title: str, xlabel: str = "score", threshold: float | None = None
) -> Markdown:
    """Overlaid histograms of scores in [0, 1] (one per series) as a base64 PNG in markdown."""
    if not any(len(v) for v in series.values()):
        return Markdown("_No scores._")
    fig, ax = small_figure()
    bins = np.linspace(0.0, 1.0, 21)
    for name, values in series.items():
        if len(values):
            ax.hist(np.asarray(values), bins=bins, alpha=0.6, label=f"{name} (n={len(values)})")
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("documents")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return figure_markdown(fig, title)
