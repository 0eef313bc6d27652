"""Safe loading of fastText ``.bin``/``.ftz`` files.

**Safe loading.** fastText can crash (or loop, reading past EOF) on a truncated or corrupt ``.bin``.
:func:`inspect_model` parses the whole file structure in Python (magic, version, args, dictionary,
matrix shapes, exact file size) before :func:`load_model` hands it to fastText.
"""

import math
import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gristmill.errors import StageInputError

FASTTEXT_MAGIC = 793712314  # first int32 of every fastText .bin/.ftz


FASTTEXT_VERSIONS = (11, 12)


LOSSES = {1: "hs", 2: "ns", 3: "softmax", 4: "ova"}


MODELS = {1: "cbow", 2: "skipgram", 3: "supervised"}


PQ_KSUB = 256  # centroids per sub-quantizer in fastText's product quantizer


class ModelFileError(StageInputError):
    """A classifier file that is missing or not a well-formed fastText model; the message names it."""


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
