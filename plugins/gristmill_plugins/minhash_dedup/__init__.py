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

Hostile input is bounded: an input line longer than ``max_line_bytes`` is skipped a chunk at a time, never read
whole, and counted (``documents_skipped_too_long``); a document whose ``id`` an earlier document already had is
dropped before clustering and counted (``duplicate_ids_dropped``), so the output's ids are unique (the first
occurrence is kept; only a 64-bit key per document is held, and the ids of documents whose keys repeat are read
again to confirm).

MinHash signatures are bitwise identical to datasketch's (``hash_function: sha1`` / ``xxh32``, schemes
``affine32`` and ``legacy``) at a fraction of its cost per shingle: see :mod:`~gristmill_plugins.minhash_dedup.minhash`.

Modules: :mod:`~gristmill_plugins.minhash_dedup.config` (options), :mod:`~gristmill_plugins.minhash_dedup.minhash`
(normalization, shingles, signatures), :mod:`~gristmill_plugins.minhash_dedup.lsh` (bands/rows, buckets, clusters),
:mod:`~gristmill_plugins.minhash_dedup.lines` (line dedup); this one runs the passes.

Output: ``NNNNN.jsonl.gz`` shards written by :class:`gristmill.lib.documents.DocumentWriter` in input order;
the same input, config and seed give byte-identical files.
"""

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from gristmill import (
    Artifact,
    Markdown,
    StageContext,
    StageResult,
    StageSpec,
    Table,
    hookimpl,
)
from gristmill.checks import min_documents_check
from gristmill.lib.documents import DocumentWriter, iter_documents, require_documents
from gristmill.lib.jsonl import SkippedLines
from gristmill.lib.plots import figure_markdown, small_figure
from gristmill_plugins.minhash_dedup.config import MinHashDedupConfig
from gristmill_plugins.minhash_dedup.ids import id_key, repeated_ids, repeated_keys
from gristmill_plugins.minhash_dedup.lines import count_lines, remove_lines
from gristmill_plugins.minhash_dedup.lsh import band_hashes, bucket_edges, components, resolve_lsh
from gristmill_plugins.minhash_dedup.minhash import MinHasher, batch_spans, hash_spans, normalize_text

STAGE = "minhash_dedup"
_BATCH_CHARS = 1 << 20  # normalized characters shingled and hashed as one batch
_EXAMPLES = 10


# per-document state: in the index / no shingles (kept) / blank after lines / an earlier document has its id
_HASHED, _EMPTY, _EMPTIED, _REPEATED_ID = 0, 1, 2, 3


@dataclass
class _Pass:
    """What the hashing pass keeps per document (no texts)."""

    state: list[np.ndarray] = field(default_factory=list)
    length: list[np.ndarray] = field(default_factory=list)
    bands: list[np.ndarray] = field(default_factory=list)
    digests: list[np.ndarray] = field(default_factory=list)
    ids: list[np.ndarray] = field(default_factory=list)
    lines_removed: int = 0


class _Texts:
    """The input's documents with line dedup applied: ``(index, doc, text)``; text None = dropped. Lines over
    ``max_line_bytes`` are skipped (counted in ``skipped``, afresh on each pass)."""

    def __init__(self, source: Artifact, repeated: frozenset[int], max_line_bytes: int):
        self.source, self.repeated, self.max_line_bytes = source, repeated, max_line_bytes
        self.skipped = SkippedLines()

    def documents(self) -> Iterator[dict[str, Any]]:
        self.skipped = SkippedLines()
        return iter_documents(self.source, max_line_bytes=self.max_line_bytes, skipped=self.skipped)

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any], str | None, int]]:
        for i, doc in enumerate(self.documents()):
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
    batch_ids: list[int] = []
    pending_chars = 0

    def flush(f: Any) -> None:
        nonlocal pending_chars
        if not batch_state:
            return
        out.state.append(np.array(batch_state, dtype=np.int8))
        out.length.append(np.array(batch_len, dtype=np.int64))
        out.ids.append(np.array(batch_ids, dtype=np.uint64))
        if hasher is not None:
            counts = np.zeros(len(batch_norm), dtype=np.int64)
            live = [i for i, t in enumerate(batch_norm) if t]
            hashes = np.empty(0, dtype=np.uint32)
            if live:
                buf, starts, ends, counts[live] = batch_spans(
                    [batch_norm[i] for i in live], config.ngram, config.shingle
                )
                hashes = hash_spans(buf, starts, ends, config.hash_function)
            sig = hasher.signatures_flat(hashes, counts)
            f.write(sig.tobytes())
            out.bands.append(band_hashes(sig, bands, rows))
        else:
            digests = b"".join(xxhash.xxh3_128_digest(t.encode("utf-8")) for t in batch_norm)
            out.digests.append(np.frombuffer(digests, dtype="<u8").reshape(-1, 2))
        for lst in (batch_norm, batch_state, batch_len, batch_ids):
            lst.clear()
        pending_chars = 0

    with open(sig_path, "wb") as f:
        for i, doc, text, removed in texts:
            out.lines_removed += removed
            batch_ids.append(id_key(doc))
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


def _warn_skipped(ctx: StageContext, too_long: SkippedLines, state: np.ndarray) -> None:
    if too_long.count:
        ctx.log.warning(
            "%s: skipped %d input line(s) over max_line_bytes: %s", STAGE, too_long.count, "; ".join(too_long.examples)
        )
    if repeats := int(np.sum(state == _REPEATED_ID)):
        ctx.log.warning("%s: dropped %d document(s) whose id an earlier document already had", STAGE, repeats)


def run_minhash_dedup(ctx: StageContext, config: MinHashDedupConfig, inputs: dict[str, Artifact]) -> StageResult:
    """Remove near-duplicate documents (MinHash + LSH, datasketch-identical signatures; or exact hashes of the
    normalized text), keeping one per cluster (first or longest); optional Llama-3-style line dedup first."""
    source = inputs["documents"]
    require_documents(source, STAGE, max_line_bytes=config.max_line_bytes, skip_long=True)
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
        keys, counts = count_lines(
            doc["text"] for doc in _Texts(source, frozenset(), config.max_line_bytes).documents()
        )
        repeated = frozenset(keys[counts > config.line_dedup_min_repeats].tolist())
        ctx.log.info(
            "%s: %d distinct lines repeated more than %d times", STAGE, len(repeated), config.line_dedup_min_repeats
        )
    texts = _Texts(source, repeated, config.max_line_bytes)
    if repeated or config.line_dedup_min_repeats is not None:
        lap("count_lines")

    # pass 2: signatures (or exact digests), band hashes, lengths
    sig_path = ctx.work_dir / "signatures.u32"
    hashed = _hash_pass(ctx, texts, config, seed, bands, rows, sig_path)
    too_long = texts.skipped
    state = np.concatenate(hashed.state)
    length = np.concatenate(hashed.length)
    n = len(state)
    id_keys = np.concatenate(hashed.ids)
    candidates = repeated_keys(id_keys)
    if len(candidates):  # confirm on the ids themselves (an extra pass, only when some key repeats)
        state[repeated_ids(id_keys, candidates, enumerate(texts.documents()))] = _REPEATED_ID
    _warn_skipped(ctx, too_long, state)
    live = np.flatnonzero(state == _HASHED)
    lap("hash")

    # clusters: candidate edges (bucket's first member – other member), then connected components
    sigs: np.ndarray | None = None
    edges_a, edges_b = [], []
    if config.method == "minhash":
        sigs = np.memmap(sig_path, dtype=np.uint32, mode="r", shape=(n, config.num_perm)) if n else None
        all_bands = np.concatenate(hashed.bands)
        for k in range(bands):
            a, b = bucket_edges(all_bands[live, k])
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
        a, b = bucket_edges(digests[live])
        edges_a.append(live[a])
        edges_b.append(live[b])
    ea = np.concatenate(edges_a) if edges_a else np.empty(0, dtype=np.int64)
    eb = np.concatenate(edges_b) if edges_b else np.empty(0, dtype=np.int64)
    labels = components(n, ea, eb)
    sizes = np.bincount(labels)
    in_cluster = sizes[labels] >= 2

    rep, tied = _choose(labels, in_cluster, length, config.keep)
    if len(tied):  # keep=longest with equal lengths: read the ids of the tied documents only
        want = set(tied.tolist())
        ids = {i: str(doc.get("id", "")) for i, doc in enumerate(texts.documents()) if i in want}
        rep, _ = _choose(labels, in_cluster, length, config.keep, ids)

    keep_mask = (state == _HASHED) | (state == _EMPTY)
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
        "duplicate_ids_dropped": int(np.sum(state == _REPEATED_ID)),
        "documents_skipped_too_long": too_long.count,
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
