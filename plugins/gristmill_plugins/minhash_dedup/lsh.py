"""Locality-sensitive hashing over MinHash signatures: bands/rows for a threshold, band hashes, buckets, clusters.

Candidates are documents whose signatures agree on all ``rows`` values of any of the ``bands`` bands (exactly
datasketch ``MinHashLSH``'s bucket rule); :func:`components` joins them into clusters.
"""

from functools import lru_cache

import numpy as np

from gristmill_plugins.minhash_dedup.config import MinHashDedupConfig
from gristmill_plugins.minhash_dedup.minhash import MAX_HASH32


def _fp_probability(threshold: float, b: int, r: int) -> float:
    from scipy.integrate import quad

    return quad(lambda s: 1 - (1 - s ** float(r)) ** float(b), 0.0, threshold)[0]


def _fn_probability(threshold: float, b: int, r: int) -> float:
    from scipy.integrate import quad

    return quad(lambda s: 1 - (1 - (1 - s ** float(r)) ** float(b)), threshold, 1.0)[0]


@lru_cache(maxsize=64)
def optimal_bands_rows(threshold: float, num_perm: int, false_positive_weight: float = 0.5) -> tuple[int, int]:
    """``(bands, rows)`` minimizing ``w·FP + (1−w)·FN`` for ``threshold`` — datasketch's ``_optimal_param``.

    FP/FN are the areas under the LSH collision curve ``1 − (1 − sʳ)ᵇ`` below/above the threshold, over all
    ``b·r ≤ num_perm``; the first minimum in (b, r) order wins, as in datasketch.
    """
    best, opt = float("inf"), (0, 0)
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            err = false_positive_weight * _fp_probability(threshold, b, r) + (
                1 - false_positive_weight
            ) * _fn_probability(threshold, b, r)
            if err < best:
                best, opt = err, (b, r)
    return opt


def resolve_lsh(config: MinHashDedupConfig) -> tuple[int, int, float]:
    """``(bands, rows, threshold)``: from ``threshold`` when set, else the configured bands/rows with the usual
    threshold approximation ``(1/b)^(1/r)`` (about where the LSH collision curve rises steepest)."""
    if config.threshold is not None:
        b, r = optimal_bands_rows(config.threshold, config.num_perm, config.false_positive_weight)
        return b, r, config.threshold
    return config.bands, config.rows, (1.0 / config.bands) ** (1.0 / config.rows)


def band_hashes(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """``(n, bands)`` 64-bit hashes of each band of ``rows`` signature values (equal bands → equal hashes;
    the rare 64-bit collision is filtered out by comparing the band values themselves)."""
    n = signatures.shape[0]
    x = signatures[:, : bands * rows].reshape(n, bands, rows).astype(np.uint64)
    h = np.broadcast_to((np.arange(bands, dtype=np.uint64) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15), (n, bands))
    h = h.copy()
    for j in range(rows):
        h ^= x[:, :, j]
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(31)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(29)
    return h


def bucket_edges(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges (bucket's first member, other member) for rows of ``keys`` (``(n,)`` or ``(n, k)``) that are
    equal; the first member is the one with the smallest index."""
    n = len(keys)
    if n < 2:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    keys = keys.reshape(n, -1)
    index = np.arange(n, dtype=np.int64)
    order = np.lexsort((index, *[keys[:, c] for c in range(keys.shape[1] - 1, -1, -1)]))
    sk = keys[order]
    new = np.ones(n, dtype=bool)
    new[1:] = np.any(sk[1:] != sk[:-1], axis=1)
    group = np.cumsum(new) - 1
    first = order[np.flatnonzero(new)][group]
    mask = ~new
    return first[mask], order[mask]


def components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected-component label per node (``n`` nodes, undirected edges ``a[i]–b[i]``)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def lsh_pairs(signatures: np.ndarray, bands: int, rows: int) -> set[tuple[int, int]]:
    """All pairs ``(i, j)``, ``i < j``, whose signatures agree on a whole band — the pairs datasketch's
    ``MinHashLSH(params=(bands, rows))`` returns from ``query`` (for tests and benchmarks; quadratic in
    bucket size). Rows that are all ``2³²−1`` (empty documents) are left out."""
    pairs: set[tuple[int, int]] = set()
    live = np.flatnonzero(~np.all(signatures == MAX_HASH32, axis=1))
    for k in range(bands):
        band = np.ascontiguousarray(signatures[live, k * rows : (k + 1) * rows])
        _, inverse = np.unique(band.view(np.dtype((np.void, band.dtype.itemsize * rows))), return_inverse=True)
        inverse = inverse.reshape(-1)
        order = np.argsort(inverse, kind="stable")
        groups = np.split(live[order], np.flatnonzero(np.diff(inverse[order])) + 1)
        for g in groups:
            for x in range(len(g)):
                for y in range(x + 1, len(g)):
                    pairs.add((int(min(g[x], g[y])), int(max(g[x], g[y]))))
    return pairs
