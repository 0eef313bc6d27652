"""Llama-3-style line dedup: count every non-blank line over a corpus, remove the lines repeated too often."""

from collections.abc import Iterable

import numpy as np
import xxhash


def _line_key(line: str) -> int:
    return xxhash.xxh3_64_intdigest(line.strip().encode("utf-8", "surrogatepass"))


def count_lines(texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(line hashes, occurrences)`` of every non-blank (stripped) line over ``texts``, hashes sorted."""
    uniques: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    buffer: list[int] = []

    def flush() -> None:
        if buffer:
            u, c = np.unique(np.array(buffer, dtype=np.uint64), return_counts=True)
            uniques.append(u)
            counts.append(c)
            buffer.clear()

    for text in texts:
        buffer.extend(_line_key(line) for line in text.splitlines() if line.strip())
        if len(buffer) >= 1 << 20:
            flush()
    flush()
    if not uniques:
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64)
    u, inverse = np.unique(np.concatenate(uniques), return_inverse=True)
    return u, np.bincount(inverse.reshape(-1), weights=np.concatenate(counts), minlength=len(u)).astype(np.int64)


def remove_lines(text: str, repeated: set[int] | frozenset[int]) -> tuple[str, int]:
    """``text`` without its lines whose key is in ``repeated`` (line endings of the others kept); and how many
    lines went."""
    if not repeated:
        return text, 0
    kept, removed = [], 0
    for line in text.splitlines(keepends=True):
        if line.strip() and _line_key(line) in repeated:
            removed += 1
        else:
            kept.append(line)
    return ("".join(kept), removed) if removed else (text, 0)
