"""fastText text form: normalization, label names, training files.

**Text.** :func:`normalize_text` is applied to every text at training *and* prediction time: one line
(fastText reads one example per line and ``predict`` refuses ``\\n``), lowercase, punctuation split off
words (fastText splits on whitespace only, so ``"word."`` and ``"word"`` would be different tokens), the
label prefix ``__label__`` defused (a document containing it would otherwise inject labels), whitespace
and NUL collapsed to single spaces. The normalization name is stored with each classifier
(:data:`NORMALIZATION`).
"""

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gristmill.errors import StageInputError

LABEL_PREFIX = "__label__"
NORMALIZATION = "gristmill-fasttext-v1"


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
        raise StageInputError(f"empty label {value!r}")
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
