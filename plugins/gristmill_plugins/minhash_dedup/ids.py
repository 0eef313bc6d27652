"""Repeated document ids: a 64-bit key per document during the hashing pass, then the exact ids of the few
documents whose keys repeat."""

from collections.abc import Iterable
from typing import Any

import numpy as np
import xxhash

NO_ID = np.uint64(0)  # the key of a document without an id (never a repeat)


def id_key(doc: dict[str, Any]) -> int:
    """A 64-bit key of the document's id (xxh3); 0 when it has none (missing, null or empty)."""
    value = doc.get("id")
    if value is None or value == "":
        return 0
    return xxhash.xxh3_64_intdigest(str(value).encode("utf-8", "surrogatepass")) or 1


def repeated_keys(keys: np.ndarray) -> np.ndarray:
    """Indices of documents whose (non-zero) key an earlier document already had, ascending: the candidates, to be
    confirmed on the ids themselves by :func:`repeated_ids`."""
    idx = np.flatnonzero(keys != NO_ID)
    order = np.argsort(keys[idx], kind="stable")  # stable: the earliest document of a key comes first
    ordered = keys[idx][order]
    later = np.zeros(len(ordered), dtype=bool)
    later[1:] = ordered[1:] == ordered[:-1]
    return np.sort(idx[order[later]])


def repeated_ids(keys: np.ndarray, candidates: np.ndarray, docs: Iterable[tuple[int, dict[str, Any]]]) -> list[int]:
    """The documents (indices, ascending) whose id an earlier document already had, read from ``docs``
    (``(index, doc)`` in input order) for the documents sharing a key with a candidate only."""
    shared = np.isin(keys, np.unique(keys[candidates]))
    seen: set[str] = set()
    out: list[int] = []
    for i, doc in docs:
        if shared[i]:
            value = str(doc.get("id"))
            if value in seen:
                out.append(i)
            seen.add(value)
    return out
