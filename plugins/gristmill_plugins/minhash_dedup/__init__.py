"""``minhash_dedup``: near-duplicate removal with MinHash + LSH (or exact-hash dedup) over ``documents``.

The stage makes up to four streaming passes over the input shards and never holds texts in memory (with
``keep: longest``, a fifth reads the ids of documents tied for longest in a cluster):

1. *(only with ``line_dedup_min_repeats``)* count every non-blank line (stripped, 64-bit xxh3) across the
   corpus; lines seen more than N times are removed from every document (Llama-3-style line dedup).
2. hash: each document (after line dedup — documents left blank by it are dropped) is normalized
   (Unicode form, lowercase, punctuation → space, whitespace collapsed), cut into word or character
   n-gram shingles and MinHashed. Only a ``uint32`` signature per document (spilled to a file in the
   scratch dir), its band hashes and its length stay around. ``method: exact`` keeps a 128-bit hash of
   the normalized text instead.
3. cluster: documents whose signatures agree on all ``rows`` values of any of the ``bands`` bands are
   candidate duplicates (exactly datasketch ``MinHashLSH``'s bucket rule); candidates are joined into
   clusters (connected components), and one document per cluster is kept (``keep``).
4. write the kept documents (same fields; line-deduped text; ``metadata.dedup_cluster`` /
   ``dedup_cluster_size`` on kept documents that had duplicates).

MinHash is a vectorized numpy re-implementation of datasketch's: the same 32-bit hash of each shingle, the
same permutations drawn from ``np.random.RandomState(seed)`` and the same arithmetic, so signatures are
bitwise identical to ``datasketch.MinHash(num_perm, seed, scheme=..., hashfunc=...)`` fed the same shingles —
with ``hash_function: sha1`` to a stock ``MinHash(num_perm, seed)`` (its default ``sha1_hash32``), with the
default ``xxh32`` to one given ``hashfunc=xxhash.xxh32_intdigest`` (hashing ~3x faster; SHA-1 is most of the
stage's time otherwise); for the ``affine32`` scheme (datasketch ≥ 2.0's default: MurmurHash3 finalizer, then
``a·h + b mod 2³²``) and the ``legacy`` one (datasketch < 2.0: ``(a·h + b) mod (2⁶¹−1)`` truncated to 32
bits). Hashing a shingle is one C call (in a C-level ``map``); permuting and taking minima run over whole
batches of shingles at once, so per shingle the stage costs well under a microsecond where datasketch's
``update`` costs several.

Output: ``NNNNN.jsonl.gz`` shards written by :class:`gristmill.lib.documents.DocumentWriter` in input order;
the same input, config and seed give byte-identical files.
"""

import hashlib
import operator
import re
import time
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xxhash
from pydantic import Field, model_validator

from gristmill import (
    Artifact,
    Markdown,
    StageConfig,
    StageContext,
    StageResult,
    StageSpec,
    Table,
    hookimpl,
)
from gristmill.lib.documents import DocumentWriter, iter_documents, require_documents
from gristmill.lib.plots import figure_markdown, small_figure
from gristmill.stage import min_documents_check

STAGE = "minhash_dedup"
MAX_HASH32 = np.uint32(0xFFFFFFFF)
_MERSENNE_PRIME = np.uint64((1 << 61) - 1)
_MAX_HASH_U64 = np.uint64((1 << 32) - 1)
_CHUNK = 8192  # shingles permuted at once: 112 x 8192 uint32 = 3.5 MiB, cache-friendly
_BATCH_CHARS = 1 << 20  # normalized characters shingled and hashed as one batch
_EXAMPLES = 10
_PUNCT = re.compile(r"[^\w\s]+")
_DIGEST = operator.methodcaller("digest")

# --------------------------------------------------------------------------------------------------
# Config


class MinHashDedupConfig(StageConfig):
    """Options of the ``minhash_dedup`` stage."""

    method: Literal["minhash", "exact"] = Field(
        "minhash",
        description="minhash: near duplicates via MinHash + LSH; exact: documents whose normalized text is identical.",
    )
    shingle: Literal["word", "char"] = Field("word", description="Shingles are word n-grams or character n-grams.")
    ngram: int = Field(5, ge=1, le=64, description="n of the shingle n-grams (a shorter text is one shingle).")
    lowercase: bool = Field(True, description="Lowercase the text before shingling.")
    strip_punctuation: bool = Field(True, description="Replace punctuation (non-word, non-space) by spaces.")
    unicode_normalization: Literal["NFKC", "NFC", "none"] = Field(
        "NFKC", description="Unicode normal form applied before shingling."
    )
    num_perm: int = Field(112, ge=2, le=1024, description="MinHash permutations (signature length).")
    bands: int = Field(14, ge=1, description="LSH bands (b); ignored when threshold is set.")
    rows: int = Field(8, ge=1, description="Signature values per band (r); bands x rows must be <= num_perm.")
    threshold: float | None = Field(
        None,
        gt=0.0,
        lt=1.0,
        description="Jaccard threshold; when set, bands/rows are derived from it as datasketch MinHashLSH does "
        "(minimizing false_positive_weight*FP + (1-false_positive_weight)*FN integrated probabilities).",
    )
    false_positive_weight: float = Field(
        0.5, ge=0.0, le=1.0, description="Weight of false positives vs negatives when deriving bands/rows."
    )
    verify: bool = Field(
        False,
        description="Also require estimated Jaccard (signature agreement) >= threshold for a candidate pair "
        "(threshold, or (1/bands)^(1/rows) when unset); false = datasketch/FineWeb semantics.",
    )
    hash_function: Literal["xxh32", "sha1"] = Field(
        "xxh32",
        description="32-bit shingle hash: xxh32 (xxhash.xxh32_intdigest; signatures equal datasketch's with "
        "hashfunc=xxhash.xxh32_intdigest) or sha1 (datasketch's default sha1_hash32: equal to a stock "
        "datasketch MinHash; hashing is ~3x slower).",
    )
    scheme: Literal["affine32", "legacy"] = Field(
        "affine32", description="datasketch permutation scheme: affine32 (datasketch >= 2.0) or legacy (< 2.0)."
    )
    seed: int | None = Field(
        None, ge=0, lt=2**32, description="Permutation seed (np.random.RandomState); None uses the run's seed."
    )
    keep: Literal["first", "longest"] = Field(
        "first",
        description="Document kept per cluster: first (earliest by shard order, position) or longest "
        "(most characters; ties: smallest id, then earliest).",
    )
    line_dedup_min_repeats: int | None = Field(
        None,
        ge=1,
        description="Llama-3-style line dedup, applied before document dedup: remove every line (stripped, "
        "non-blank) that occurs more than this many times in the corpus; None = off.",
    )
    annotate: bool = Field(
        True, description="Add metadata.dedup_cluster / dedup_cluster_size to kept documents that had duplicates."
    )
    shard_size: int = Field(100_000, ge=1, description="Documents per output shard.")
    min_documents: int = Field(1, ge=0, description="Check: at least this many documents kept.")

    @model_validator(mode="after")
    def _check_bands(self) -> "MinHashDedupConfig":
        if self.threshold is not None and {"bands", "rows"} & self.model_fields_set:
            raise ValueError("set either threshold or bands/rows, not both")
        if self.threshold is None and self.bands * self.rows > self.num_perm:
            raise ValueError(
                f"bands x rows = {self.bands} x {self.rows} = {self.bands * self.rows} exceeds num_perm "
                f"({self.num_perm}); lower bands/rows, raise num_perm or set threshold"
            )
        return self


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


# --------------------------------------------------------------------------------------------------
# Normalization, shingles, hashing


_ASCII_SPACE = frozenset(b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f")  # what str.split() and regex \s match in ASCII


@lru_cache(maxsize=4)
def _ascii_table(lowercase: bool, strip_punctuation: bool) -> bytes:
    """``bytes.translate`` table doing on ASCII what :func:`normalize_text`'s str path does: whitespace → space,
    (with ``strip_punctuation``) every non-word character → space, (with ``lowercase``) A-Z → a-z."""
    table = bytearray(range(256))
    for c in range(128):
        ch = chr(c)
        if c in _ASCII_SPACE or strip_punctuation and not (ch.isalnum() or ch == "_"):
            table[c] = 32
        elif lowercase:
            table[c] = ord(ch.lower())
    return bytes(table)


def normalize_text(text: str, config: MinHashDedupConfig) -> str:
    """The text shingles are cut from: Unicode-normalized, lowercased, punctuation (``[^\\w\\s]``) → space,
    words separated by exactly one space (per the config). ASCII texts take an equivalent ``bytes.translate``
    fast path."""
    if text.isascii():  # NFC/NFKC leave ASCII unchanged
        table = _ascii_table(config.lowercase, config.strip_punctuation)
        return b" ".join(text.encode("ascii").translate(table).split()).decode("ascii")
    if config.unicode_normalization != "none":
        text = unicodedata.normalize(config.unicode_normalization, text)
    if config.lowercase:
        text = text.lower()
    if config.strip_punctuation:
        text = _PUNCT.sub(" ", text)
    return " ".join(text.split())


def _batch_spans(norms: Sequence[str], ngram: int, shingle: str) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray]:
    """Shingle byte spans of many normalized, non-empty texts at once.

    Returns ``(buffer, starts, ends, counts)``: the texts' UTF-8 bytes concatenated (word mode: joined by one
    space, so every space is a word boundary), the byte span of every shingle in text order, and the number
    of shingles per text (``max(units − ngram + 1, 1)``; units are words or characters).
    """
    if shingle == "word":
        buf = " ".join(norms).encode("utf-8")
        arr = np.frombuffer(buf, dtype=np.uint8)
        spaces = np.flatnonzero(arr == 32)
        unit_start = np.empty(len(spaces) + 1, dtype=np.int64)
        unit_start[0] = 0
        unit_start[1:] = spaces + 1
        unit_end = np.empty(len(spaces) + 1, dtype=np.int64)
        unit_end[:-1] = spaces
        unit_end[-1] = len(buf)
        units = np.fromiter((t.count(" ") + 1 for t in norms), dtype=np.int64, count=len(norms))
    else:
        buf = "".join(norms).encode("utf-8")
        if buf.isascii():
            bounds = np.arange(len(buf) + 1, dtype=np.int64)
        else:
            arr = np.frombuffer(buf, dtype=np.uint8)
            bounds = np.append(np.flatnonzero((arr & 0xC0) != 0x80), len(buf)).astype(np.int64)
        unit_start, unit_end = bounds[:-1], bounds[1:]
        units = np.fromiter((len(t) for t in norms), dtype=np.int64, count=len(norms))
    first = np.zeros(len(norms), dtype=np.int64)
    np.cumsum(units[:-1], out=first[1:])
    counts = np.maximum(units - ngram + 1, 1)
    doc = np.repeat(np.arange(len(norms)), counts)
    offsets = np.zeros(len(norms), dtype=np.int64)
    np.cumsum(counts[:-1], out=offsets[1:])
    unit = first[doc] + (np.arange(len(doc)) - offsets[doc])
    last = np.minimum(unit + ngram - 1, first[doc] + units[doc] - 1)
    return buf, unit_start[unit], unit_end[last], counts


def _hash_spans(buf: bytes, starts: np.ndarray, ends: np.ndarray, hash_function: str) -> np.ndarray:
    """32-bit hashes of ``buf[start:end]`` for every span: datasketch's ``sha1_hash32`` or xxh32."""
    pieces = map(buf.__getitem__, map(slice, starts.tolist(), ends.tolist()))  # C-level loop, no bytecode
    if hash_function == "sha1":
        digests = b"".join(map(_DIGEST, map(hashlib.sha1, pieces)))
        return np.frombuffer(digests, dtype="<u4").reshape(-1, 5)[:, 0].copy()
    return np.fromiter(map(xxhash.xxh32_intdigest, pieces), dtype=np.uint32, count=len(starts))


def shingles(text: str, config: MinHashDedupConfig) -> list[bytes]:
    """The shingles (UTF-8 bytes) of ``text`` as the stage hashes them; empty when the normalized text is.

    Word shingles are ``" ".join(words[i:i+ngram])``, character shingles ``norm[i:i+ngram]``; a text with
    fewer units than ``ngram`` is a single shingle. Duplicated shingles are listed as often as they occur.
    """
    norm = normalize_text(text, config)
    if not norm:
        return []
    buf, starts, ends, _ = _batch_spans([norm], config.ngram, config.shingle)
    return [buf[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer (datasketch's pre-mix for the affine32 scheme)."""
    h = h ^ (h >> np.uint32(16))
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    return h


class MinHasher:
    """Vectorized MinHash with datasketch's permutations: signatures equal ``MinHash(num_perm, seed,
    scheme=scheme).hashvalues`` after ``update``-ing the same shingles (as ``uint32``)."""

    def __init__(self, num_perm: int, seed: int, scheme: Literal["affine32", "legacy"] = "affine32"):
        self.num_perm, self.seed, self.scheme = num_perm, seed, scheme
        gen = np.random.RandomState(seed)
        if scheme == "legacy":  # same draws, in the same order, as datasketch's legacy scheme
            pairs = np.array(
                [
                    (
                        gen.randint(1, _MERSENNE_PRIME, dtype=np.uint64),
                        gen.randint(0, _MERSENNE_PRIME, dtype=np.uint64),
                    )
                    for _ in range(num_perm)
                ],
                dtype=np.uint64,
            ).T
            self.a, self.b = pairs[0].copy(), pairs[1].copy()
        else:
            self.a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
            self.b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
        self._a, self._b = self.a[:, None], self.b[:, None]

    def _permuted(self, h: np.ndarray) -> np.ndarray:
        """``(num_perm, len(h))`` permuted hash values of a chunk of shingle hashes."""
        if self.scheme == "legacy":
            phv = self._a * h.astype(np.uint64)[None, :]  # wraps mod 2^64, exactly as datasketch's uint64 math
            phv += self._b
            phv %= _MERSENNE_PRIME
            phv &= _MAX_HASH_U64
            return phv.astype(np.uint32)
        phv = self._a * _fmix32(h.astype(np.uint32))[None, :]
        phv += self._b
        return phv

    def signatures_flat(self, hashes: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """``(len(counts), num_perm)`` ``uint32`` signatures of documents whose shingle hashes are
        ``hashes`` cut into runs of ``counts``; a document without shingles gets all ``2³²−1`` (datasketch's
        empty MinHash)."""
        n = len(counts)
        out = np.full((n, self.num_perm), MAX_HASH32, dtype=np.uint32)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        nonempty = np.flatnonzero(np.asarray(counts) > 0)
        ends = offsets[nonempty + 1]
        i = 0
        while i < len(nonempty):
            d = int(nonempty[i])
            lo = int(offsets[d])
            if ends[i] - lo > _CHUNK:  # one long document: running minimum over chunks
                for c in range(lo, int(ends[i]), _CHUNK):
                    chunk = self._permuted(hashes[c : min(c + _CHUNK, int(ends[i]))]).min(axis=1)
                    np.minimum(out[d], chunk, out=out[d])
                i += 1
                continue
            j = max(int(np.searchsorted(ends, lo + _CHUNK, side="right")), i + 1)  # documents fitting one chunk
            group = nonempty[i:j]
            phv = self._permuted(hashes[lo : int(ends[j - 1])])
            out[group] = np.minimum.reduceat(phv, offsets[group] - lo, axis=1).T
            i = j
        return out

    def signatures(self, hashes: Sequence[np.ndarray]) -> np.ndarray:
        """Signatures of documents given as one array of shingle hashes each."""
        counts = np.fromiter((len(h) for h in hashes), dtype=np.int64, count=len(hashes))
        flat = np.concatenate(hashes) if len(hashes) else np.empty(0, dtype=np.uint32)
        return self.signatures_flat(flat, counts)


def shingle_hashes(texts: Sequence[str], config: MinHashDedupConfig) -> tuple[np.ndarray, np.ndarray]:
    """``(hashes, counts)``: the 32-bit shingle hashes of all ``texts`` (text by text) and how many each has
    (0 for a text whose normalized form is empty)."""
    norms = [normalize_text(t, config) for t in texts]
    live = [i for i, t in enumerate(norms) if t]
    counts = np.zeros(len(norms), dtype=np.int64)
    if not live:
        return np.empty(0, dtype=np.uint32), counts
    buf, starts, ends, live_counts = _batch_spans([norms[i] for i in live], config.ngram, config.shingle)
    counts[live] = live_counts
    return _hash_spans(buf, starts, ends, config.hash_function), counts


def minhash_signatures(texts: Sequence[str], config: MinHashDedupConfig, seed: int = 1) -> np.ndarray:
    """``(len(texts), num_perm)`` signatures of ``texts`` as the stage computes them (``config.seed``, when set,
    wins over ``seed``)."""
    hasher = MinHasher(config.num_perm, config.seed if config.seed is not None else seed, config.scheme)
    out = []
    for k in range(0, len(texts), 2048):
        out.append(hasher.signatures_flat(*shingle_hashes(texts[k : k + 2048], config)))
    return np.concatenate(out) if out else np.empty((0, config.num_perm), dtype=np.uint32)


# --------------------------------------------------------------------------------------------------
# LSH buckets and clusters


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


def _bucket_edges(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
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


# --------------------------------------------------------------------------------------------------
# Line dedup


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


# --------------------------------------------------------------------------------------------------
# The stage


_HASHED, _EMPTY, _EMPTIED = 0, 1, 2  # per-document state: in the index / no shingles (kept) / blank after lines


@dataclass
class _Pass:
    """What the hashing pass keeps per document (no texts)."""

    state: list[np.ndarray] = field(default_factory=list)
    length: list[np.ndarray] = field(default_factory=list)
    bands: list[np.ndarray] = field(default_factory=list)
    digests: list[np.ndarray] = field(default_factory=list)
    lines_removed: int = 0


class _Texts:
    """The input's documents with line dedup applied: ``(index, doc, text)``; text None = dropped."""

    def __init__(self, source: Artifact, repeated: frozenset[int]):
        self.source, self.repeated = source, repeated

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any], str | None, int]]:
        for i, doc in enumerate(iter_documents(self.source)):
            text, removed = remove_lines(doc["text"], self.repeated)
            yield i, doc, (text if text.strip() or not removed else None), removed


def _hash_pass(
    ctx: StageContext, texts: _Texts, config: MinHashDedupConfig, seed: int, bands: int, rows: int, sig_path: Path
) -> _Pass:
    """Normalize every document and hash it, in batches of about ``_BATCH_CHARS`` normalized characters."""
    out = _Pass()
    hasher = MinHasher(config.num_perm, seed, config.scheme) if config.method == "minhash" else None
    batch_norm: list[str] = []  # normalized texts of the batch's documents, in order ("" = no shingles)
    batch_state: list[int] = []
    batch_len: list[int] = []
    pending_chars = 0

    def flush(f: Any) -> None:
        nonlocal pending_chars
        if not batch_state:
            return
        out.state.append(np.array(batch_state, dtype=np.int8))
        out.length.append(np.array(batch_len, dtype=np.int64))
        if hasher is not None:
            counts = np.zeros(len(batch_norm), dtype=np.int64)
            live = [i for i, t in enumerate(batch_norm) if t]
            hashes = np.empty(0, dtype=np.uint32)
            if live:
                buf, starts, ends, counts[live] = _batch_spans(
                    [batch_norm[i] for i in live], config.ngram, config.shingle
                )
                hashes = _hash_spans(buf, starts, ends, config.hash_function)
            sig = hasher.signatures_flat(hashes, counts)
            f.write(sig.tobytes())
            out.bands.append(band_hashes(sig, bands, rows))
        else:
            digests = b"".join(xxhash.xxh3_128_digest(t.encode("utf-8")) for t in batch_norm)
            out.digests.append(np.frombuffer(digests, dtype="<u8").reshape(-1, 2))
        for lst in (batch_norm, batch_state, batch_len):
            lst.clear()
        pending_chars = 0

    with open(sig_path, "wb") as f:
        for i, _doc, text, removed in texts:
            out.lines_removed += removed
            norm = normalize_text(text, config) if text is not None else ""
            batch_norm.append(norm)
            batch_state.append(_EMPTIED if text is None else _HASHED if norm else _EMPTY)
            batch_len.append(len(text) if text is not None else 0)
            pending_chars += len(norm)
            if pending_chars >= _BATCH_CHARS or len(batch_state) >= 8192:
                flush(f)
            if (i + 1) % 1000 == 0:
                ctx.progress(i + 1, None, "documents hashed")
        flush(f)
    return out


def _choose(
    labels: np.ndarray, in_cluster: np.ndarray, length: np.ndarray, keep: str, ids: Mapping[int, str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster label: the kept document index; and the indices needing an id to break a length tie."""
    n = len(labels)
    index = np.arange(n, dtype=np.int64)
    members = index[in_cluster]
    lab = labels[members]
    if keep == "first":
        rep = np.full(labels.max() + 1, n, dtype=np.int64)
        np.minimum.at(rep, lab, members)
        return rep, np.empty(0, dtype=np.int64)
    maxlen = np.full(labels.max() + 1, -1, dtype=np.int64)
    np.maximum.at(maxlen, lab, length[members])
    top = members[length[members] == maxlen[lab]]
    top_lab = labels[top]
    n_top = np.bincount(top_lab, minlength=len(maxlen))
    rep = np.full(len(maxlen), n, dtype=np.int64)
    np.minimum.at(rep, top_lab, top)  # no tie, or earliest among the tied
    tied = top[n_top[top_lab] > 1]
    if ids is not None and len(tied):
        best: dict[int, tuple[str, int]] = {}
        for i in tied.tolist():
            key = (ids[i], i)
            lbl = int(labels[i])
            if lbl not in best or key < best[lbl]:
                best[lbl] = key
        for lbl, (_, i) in best.items():
            rep[lbl] = i
    return rep, tied


def _cluster_histogram_plot(histogram: dict[int, int]) -> Markdown:
    """A bar chart of cluster sizes, as a base64 PNG in markdown (no file in the artifact)."""
    if not histogram:
        return Markdown("_No duplicate clusters found._")
    sizes = sorted(histogram)
    fig, ax = small_figure()
    ax.bar([str(s) for s in sizes], [histogram[s] for s in sizes], color="#4c72b0")
    if max(histogram.values()) / max(min(histogram.values()), 1) > 50:
        ax.set_yscale("log")
    ax.set_xlabel("documents in cluster")
    ax.set_ylabel("clusters")
    ax.set_title(f"Duplicate clusters (n={sum(histogram.values())})", fontsize=10)
    return figure_markdown(fig, "duplicate cluster sizes")


def run_minhash_dedup(ctx: StageContext, config: MinHashDedupConfig, inputs: dict[str, Artifact]) -> StageResult:
    """Remove near-duplicate documents (MinHash + LSH, datasketch-identical signatures; or exact hashes of the
    normalized text), keeping one per cluster (first or longest); optional Llama-3-style line dedup first."""
    source = inputs["documents"]
    require_documents(source, STAGE)
    seed = (config.seed if config.seed is not None else ctx.seed) % (1 << 32)
    bands, rows, threshold = resolve_lsh(config)

    clock = time.perf_counter()
    seconds: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(now - clock, 3)
        clock = now

    # pass 1 (optional): lines repeated across the corpus
    repeated: frozenset[int] = frozenset()
    if config.line_dedup_min_repeats is not None:
        keys, counts = count_lines(doc["text"] for doc in iter_documents(source))
        repeated = frozenset(keys[counts > config.line_dedup_min_repeats].tolist())
        ctx.log.info(
            "%s: %d distinct lines repeated more than %d times", STAGE, len(repeated), config.line_dedup_min_repeats
        )
    texts = _Texts(source, repeated)
    if repeated or config.line_dedup_min_repeats is not None:
        lap("count_lines")

    # pass 2: signatures (or exact digests), band hashes, lengths
    sig_path = ctx.work_dir / "signatures.u32"
    hashed = _hash_pass(ctx, texts, config, seed, bands, rows, sig_path)
    state = np.concatenate(hashed.state)
    length = np.concatenate(hashed.length)
    n = len(state)
    live = np.flatnonzero(state == _HASHED)
    lap("hash")

    # clusters: candidate edges (bucket's first member – other member), then connected components
    sigs: np.ndarray | None = None
    edges_a, edges_b = [], []
    if config.method == "minhash":
        sigs = np.memmap(sig_path, dtype=np.uint32, mode="r", shape=(n, config.num_perm)) if n else None
        all_bands = np.concatenate(hashed.bands)
        for k in range(bands):
            a, b = _bucket_edges(all_bands[live, k])
            a, b = live[a], live[b]
            if len(a):  # drop 64-bit band-hash collisions: the band values themselves must agree
                cols = slice(k * rows, (k + 1) * rows)
                same = np.all(sigs[a, cols] == sigs[b, cols], axis=1)
                a, b = a[same], b[same]
            if config.verify and len(a):
                jac = np.mean(sigs[a] == sigs[b], axis=1)
                a, b = a[jac >= threshold], b[jac >= threshold]
            edges_a.append(a)
            edges_b.append(b)
    else:
        digests = np.concatenate(hashed.digests)
        a, b = _bucket_edges(digests[live])
        edges_a.append(live[a])
        edges_b.append(live[b])
    ea = np.concatenate(edges_a) if edges_a else np.empty(0, dtype=np.int64)
    eb = np.concatenate(edges_b) if edges_b else np.empty(0, dtype=np.int64)
    labels = _components(n, ea, eb)
    sizes = np.bincount(labels)
    in_cluster = sizes[labels] >= 2

    rep, tied = _choose(labels, in_cluster, length, config.keep)
    if len(tied):  # keep=longest with equal lengths: read the ids of the tied documents only
        want = set(tied.tolist())
        ids = {i: str(doc.get("id", "")) for i, doc in enumerate(iter_documents(source)) if i in want}
        rep, _ = _choose(labels, in_cluster, length, config.keep, ids)

    keep_mask = state != _EMPTIED
    dropped_dups = in_cluster & (np.arange(n) != rep[labels])
    keep_mask &= ~dropped_dups
    # cluster ordinals in order of each cluster's earliest member
    cluster_labels = np.flatnonzero(sizes >= 2)
    first_member = np.full(len(sizes), n, dtype=np.int64)
    np.minimum.at(first_member, labels, np.arange(n))
    ordinal = np.full(len(sizes), -1, dtype=np.int64)
    ordinal[cluster_labels[np.argsort(first_member[cluster_labels], kind="stable")]] = np.arange(len(cluster_labels))

    lap("cluster")

    # examples: the first duplicates removed, with the document kept in their place
    example_removed = np.flatnonzero(dropped_dups)[:_EXAMPLES]
    example_pairs = [(int(i), int(rep[labels[i]])) for i in example_removed]
    example_idx = {i for pair in example_pairs for i in pair}
    example_text: dict[int, tuple[str, str]] = {}

    # pass 3: write
    with DocumentWriter(ctx.output_dir, shard_size=config.shard_size) as writer:
        for i, doc, text, _ in texts:
            if i in example_idx:
                example_text[i] = (str(doc.get("id", "")), text or "")
            if not keep_mask[i]:
                continue
            if text is not doc["text"] or config.annotate and in_cluster[i]:
                doc = dict(doc)
                doc["text"] = text
                if config.annotate and in_cluster[i]:
                    doc["metadata"] = {
                        **(doc.get("metadata") or {}),
                        "dedup_cluster": int(ordinal[labels[i]]),
                        "dedup_cluster_size": int(sizes[labels[i]]),
                    }
            writer.write(doc)
            if (i + 1) % 1000 == 0:
                ctx.progress(i + 1, n, "documents written")
    written = writer.count
    ctx.progress(n, n, "done")
    lap("write")

    histogram = {int(s): int(c) for s, c in enumerate(np.bincount(sizes[cluster_labels])) if c and s >= 2}
    rows_table = []
    for removed, kept in example_pairs:
        jac = float(np.mean(sigs[removed] == sigs[kept])) if sigs is not None else 1.0
        rid, rtext = example_text[removed]
        kid, ktext = example_text[kept]
        rows_table.append(
            {
                "removed_id": rid,
                "kept_id": kid,
                "jaccard_estimate": round(jac, 4),
                "removed_text": rtext[:120],
                "kept_text": ktext[:120],
            }
        )
    emptied = int(np.sum(state == _EMPTIED))
    counts: dict[str, int | float] = {
        "documents_out": written,
        "documents_in": n,
        "duplicates_removed": int(dropped_dups.sum()),
        "clusters": len(cluster_labels),
        "largest_cluster": int(sizes.max()) if n and len(cluster_labels) else 0,
        "documents_without_shingles": int(np.sum(state == _EMPTY)),
    }
    if config.line_dedup_min_repeats is not None:
        counts["lines_removed"] = hashed.lines_removed
        counts["documents_emptied"] = emptied
    params: dict[str, Any] = {"method": config.method}
    if config.method == "minhash":
        params |= {
            "bands": bands,
            "rows": rows,
            "threshold": round(threshold, 4),
            "threshold_from": "config" if config.threshold is not None else "(1/bands)^(1/rows)",
            "num_perm": config.num_perm,
            "shingle": f"{config.shingle} {config.ngram}-grams",
            "hash_function": config.hash_function,
            "scheme": config.scheme,
            "seed": seed,
            "verify": config.verify,
        }
    params |= {"keep": config.keep, "repeated_lines": len(repeated)}
    ctx.log.info(
        "%s: %d → %d documents (%d duplicates in %d clusters)",
        STAGE,
        n,
        written,
        counts["duplicates_removed"],
        counts["clusters"],
    )
    metadata: dict[str, Any] = {
        "params": params,
        "cluster_size_histogram": {str(k): v for k, v in histogram.items()},
        "cluster_sizes": _cluster_histogram_plot(histogram),
        "duplicate_examples": Table(rows_table),
        "seconds": seconds,
    }
    return StageResult(counts=counts, metadata=metadata)


SPEC = StageSpec(
    name=STAGE,
    version="1",
    inputs={"documents": "documents"},
    output="documents",
    config=MinHashDedupConfig,
    run=run_minhash_dedup,
    group="data",
    checks=(min_documents_check("minhash_dedup", "documents_out"),),
)


@hookimpl
def gristmill_register_stages() -> list[StageSpec]:
    return [SPEC]


# --------------------------------------------------------------------------------------------------
# Evaluation helpers (tests, benchmarks): documents from plain text with planted near duplicates


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
