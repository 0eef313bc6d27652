"""Deterministic fastText training and the hyperparameters of classifier stages.

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
"""

import contextlib
import ctypes
import functools
import logging
import platform
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from gristmill.configs import StageConfig
from gristmill.errors import StageInputError

log = logging.getLogger("gristmill.lib.textclf")


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
            raise StageInputError(f"fastText training on {train_file} failed: {exc}") from exc
    if not (np.isfinite(model.get_input_matrix()).all() and np.isfinite(model.get_output_matrix()).all()):
        raise RuntimeError("fastText produced non-finite weights (uninitialized memory or diverged training)")
    return model


def save_model(model: Any, path: Path) -> Path:
    """Save a fastText model as ``.bin``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save_model(str(path))
    return path
