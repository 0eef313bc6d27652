"""MinHash signatures: text normalization, shingles, 32-bit shingle hashes and the vectorized MinHasher.

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
"""

import hashlib
import operator
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

import numpy as np
import xxhash

from gristmill_plugins.minhash_dedup.config import MinHashDedupConfig

MAX_HASH32 = np.uint32(0xFFFFFFFF)
_MERSENNE_PRIME = np.uint64((1 << 61) - 1)
_MAX_HASH_U64 = np.uint64((1 << 32) - 1)
_CHUNK = 8192  # shingles permuted at once: 112 x 8192 uint32 = 3.5 MiB, cache-friendly
_PUNCT = re.compile(r"[^\w\s]+")
_DIGEST = operator.methodcaller("digest")


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


def batch_spans(norms: Sequence[str], ngram: int, shingle: str) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray]:
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


def hash_spans(buf: bytes, starts: np.ndarray, ends: np.ndarray, hash_function: str) -> np.ndarray:
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
    buf, starts, ends, _ = batch_spans([norm], config.ngram, config.shingle)
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
    buf, starts, ends, live_counts = batch_spans([norms[i] for i in live], config.ngram, config.shingle)
    counts[live] = live_counts
    return hash_spans(buf, starts, ends, config.hash_function), counts


def minhash_signatures(texts: Sequence[str], config: MinHashDedupConfig, seed: int = 1) -> np.ndarray:
    """``(len(texts), num_perm)`` signatures of ``texts`` as the stage computes them (``config.seed``, when set,
    wins over ``seed``)."""
    hasher = MinHasher(config.num_perm, config.seed if config.seed is not None else seed, config.scheme)
    out = []
    for k in range(0, len(texts), 2048):
        out.append(hasher.signatures_flat(*shingle_hashes(texts[k : k + 2048], config)))
    return np.concatenate(out) if out else np.empty((0, config.num_perm), dtype=np.uint32)
