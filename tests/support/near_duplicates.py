"""Evaluation data for near-duplicate detection (tests, benchmarks/dedup.py): documents cut from plain text,
with planted near duplicates.
"""

import re
from collections.abc import Sequence

import numpy as np


def paragraph_documents(text: str, min_words: int = 100, max_words: int = 300) -> list[str]:
    """Cut a plain text into documents of consecutive blank-line-separated paragraphs: paragraphs are joined
    until a document has at least ``min_words`` words; longer paragraphs are cut at line ends near
    ``max_words``. Line breaks inside documents are kept."""
    docs: list[str] = []
    lines: list[str] = []
    words = 0
    for para in re.split(r"\n\s*\n", text):
        for line in para.strip().splitlines():
            n = len(line.split())
            if words and words + n > max_words:
                docs.append("\n".join(lines))
                lines, words = [], 0
            lines.append(line)
            words += n
        if words >= min_words:
            docs.append("\n".join(lines))
            lines, words = [], 0
        elif lines:
            lines.append("")
    if words >= min_words:
        docs.append("\n".join(lines).strip())
    return [d.strip() for d in docs]


def edit_words(text: str, rate: float, rng: "np.random.Generator", vocabulary: Sequence[str]) -> str:
    """A near duplicate of ``text``: each word is, with probability ``rate``, substituted by a random
    vocabulary word, deleted, or followed by an inserted word (one of the three, equally likely)."""
    out_lines = []
    for line in text.split("\n"):
        out: list[str] = []
        for word in line.split():
            if rng.random() >= rate:
                out.append(word)
                continue
            op = rng.integers(3)
            if op == 0:
                out.append(vocabulary[rng.integers(len(vocabulary))])
            elif op == 2:
                out.extend((word, vocabulary[rng.integers(len(vocabulary))]))
        out_lines.append(" ".join(out))
    return "\n".join(out_lines)


def plant_near_duplicates(
    texts: Sequence[str], fraction: float, rate: tuple[float, float] = (0.05, 0.10), seed: int = 0
) -> tuple[list[str], set[tuple[int, int]]]:
    """``texts`` with a near duplicate (:func:`edit_words` at a rate drawn from ``rate``) of a random
    ``fraction`` of them inserted at a random later position; returns the corpus and the planted pairs
    ``(original index, duplicate index)`` in it."""
    rng = np.random.default_rng(seed)
    vocabulary = sorted({w for t in texts for w in t.split()})
    chosen = set(rng.choice(len(texts), size=int(round(fraction * len(texts))), replace=False).tolist())
    slots: list[list[tuple[int, str]]] = [[(i, t)] for i, t in enumerate(texts)]  # (source text, text)
    for i in sorted(chosen):
        near = edit_words(texts[i], float(rng.uniform(*rate)), rng, vocabulary)
        slots[int(rng.integers(i, len(texts)))].append((i, near))
    corpus: list[str] = []
    position: dict[int, int] = {}
    pairs: set[tuple[int, int]] = set()
    for slot in slots:
        for source, text in slot:
            if source in position:
                pairs.add((position[source], len(corpus)))
            else:
                position[source] = len(corpus)
            corpus.append(text)
    return corpus, pairs
