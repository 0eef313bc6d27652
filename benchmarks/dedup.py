"""Benchmark ``minhash_dedup``: the stage vs a straightforward datasketch loop, with planted near duplicates.

Usage::

    .venv/bin/python benchmarks/dedup.py [TEXT_FOLDER] [--copies N] [--fraction F] [--repeat N]

The corpus: every ``*.txt`` in TEXT_FOLDER (default ``../shared/data/pretrain``) cut into documents of
100–300 words (:func:`tests.support.near_duplicates.paragraph_documents`); scaled up to ``--copies`` versions of
it, each but the first with its vocabulary permuted (a random bijection of whitespace tokens, so copies share
no shingles and stay unrelated, with the same word statistics); then a near duplicate of a random
``--fraction`` of the documents, with 5–10 % of the words substituted, deleted or followed by an inserted
word, is planted at a later position (:func:`tests.support.near_duplicates.plant_near_duplicates`).

Measured in the same run, on the same documents and parameters:

* **stage** — the whole stage through ``gristmill.testing.run_stage``: reading the JSONL.gz input (twice),
  normalizing, hashing, LSH, clustering, writing the kept documents, metadata and plot; median of
  ``--repeat`` runs after a warm-up run (imports);
* **core** — the stage's in-memory part alone (normalize, shingle, hash, MinHash, band hashes, bucket sort);
* **datasketch** — per document ``MinHash(num_perm, seed, hashfunc=<the config's>)``, ``update`` per shingle
  (the stage's shingles), ``MinHashLSH.query`` then ``insert`` (``params=(bands, rows)``), union-find, keep
  first; texts already in memory, nothing written;

for three configs: ``stock-sha1`` (``hash_function: sha1``, identical to a stock datasketch ``MinHash``),
``default`` (xxh32) and ``edits`` (word 3-grams, 28×4, suited to 5–10 % word edits). Reported: docs/s and
ratios (goal ≥ 10× for the default config), agreement of the candidate-pair sets (|A∩B| / |A∪B|, goal ≥ 99 %)
and of the removed documents, and precision/recall of the planted pairs (goal ≥ 0.95 / ≥ 0.94 for ``edits``).
"""

import os
import sys

# Run as a script, its folder comes first on sys.path, where benchmarks/tokenize.py would shadow the stdlib module;
# the repository root takes its place (the evaluation data comes from tests.support).
if sys.path and os.path.realpath(sys.path[0] or ".") == os.path.dirname(os.path.realpath(__file__)):
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))

import argparse
import gc
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import xxhash
from datasketch import MinHash, MinHashLSH

from gristmill.lib.documents import DocumentWriter, iter_documents
from gristmill.testing import artifact_from_dir, run_stage
from gristmill_plugins.minhash_dedup import SPEC, MinHashDedupConfig
from gristmill_plugins.minhash_dedup.lsh import band_hashes, lsh_pairs, resolve_lsh
from gristmill_plugins.minhash_dedup.minhash import minhash_signatures, shingles
from tests.support.near_duplicates import paragraph_documents, plant_near_duplicates

DEFAULT_FOLDER = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pretrain"
SEED = 1
EDIT_CONFIG = {"ngram": 3, "bands": 28, "rows": 4}  # suited to 5–10 % word edits (J ≈ 0.45–0.75)
CONFIGS = (("stock-sha1", {"hash_function": "sha1"}), ("default", {}), ("edits", EDIT_CONFIG))


def permute_vocabulary(text: str, mapping: dict[str, str]) -> str:
    return "\n".join(" ".join(mapping[w] for w in line.split()) for line in text.split("\n"))


def build_corpus(folder: Path, copies: int, fraction: float, seed: int = 0) -> tuple[list[str], set[tuple[int, int]]]:
    base: list[str] = []
    for path in sorted(folder.glob("*.txt")):
        base += paragraph_documents(path.read_text(encoding="utf-8"))
    vocabulary = sorted({w for t in base for w in t.split()})
    rng = np.random.default_rng(seed)
    texts = list(base)
    for _ in range(copies - 1):
        mapping = dict(zip(vocabulary, (vocabulary[i] for i in rng.permutation(len(vocabulary))), strict=True))
        texts += [permute_vocabulary(t, mapping) for t in base]
    return plant_near_duplicates(texts, fraction, seed=seed)


def write_input(texts: list[str], folder: Path) -> None:
    with DocumentWriter(folder, shard_size=2000) as writer:
        for i, text in enumerate(texts):
            writer.write({"text": text, "id": f"doc-{i:06d}", "metadata": {"source": "benchmark"}})


def run_stage_once(folder: Path, out: Path, config: dict[str, Any]) -> tuple[float, Any]:
    gc.collect()
    start = time.perf_counter()
    result, _ = run_stage(SPEC, out, {**config, "seed": SEED}, {"documents": artifact_from_dir("documents", folder)})
    return time.perf_counter() - start, result


def run_datasketch(texts: list[str], config: MinHashDedupConfig) -> tuple[float, set[tuple[int, int]], set[int]]:
    """The straightforward loop; returns seconds, candidate pairs and the documents it would remove."""
    bands, rows, _ = resolve_lsh(config)
    hashfunc = xxhash.xxh32_intdigest if config.hash_function == "xxh32" else None  # None: datasketch's sha1
    gc.collect()
    start = time.perf_counter()
    lsh = MinHashLSH(num_perm=config.num_perm, params=(bands, rows))
    pairs: set[tuple[int, int]] = set()
    for i, text in enumerate(texts):
        m = MinHash(num_perm=config.num_perm, seed=SEED, hashfunc=hashfunc)
        for s in shingles(text, config):
            m.update(s)
        for j in lsh.query(m):
            pairs.add((j, i))
        lsh.insert(i, m)
    parent = list(range(len(texts)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)  # the root is the cluster's earliest document
    removed = {i for i in range(len(texts)) if find(i) != i}
    return time.perf_counter() - start, pairs, removed


def time_core(texts: list[str], config: MinHashDedupConfig) -> tuple[float, np.ndarray]:
    """Seconds for the stage's in-memory core on ``texts``: normalize, shingle, hash, MinHash, band hashes and
    bucket grouping (no reading, writing or clustering); and the signatures."""
    bands, rows, _ = resolve_lsh(config)
    gc.collect()
    start = time.perf_counter()
    sigs = minhash_signatures(texts, config)
    keys = band_hashes(sigs, bands, rows)
    for k in range(bands):
        order = np.argsort(keys[:, k], kind="stable")
        np.flatnonzero(keys[order[1:], k] == keys[order[:-1], k])
    return time.perf_counter() - start, sigs


def precision_recall(predicted: set[tuple[int, int]], planted: set[tuple[int, int]]) -> tuple[float, float]:
    hit = len(predicted & planted)
    return hit / max(len(predicted), 1), hit / max(len(planted), 1)


def removed_ids(out: Path, n: int) -> set[int]:
    kept = {int(doc["id"].removeprefix("doc-")) for doc in iter_documents(out)}
    return set(range(n)) - kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER, help="folder with *.txt")
    parser.add_argument("--copies", type=int, default=3, help="vocabulary-permuted copies of the corpus")
    parser.add_argument("--fraction", type=float, default=0.2, help="share of documents given a near duplicate")
    parser.add_argument("--repeat", type=int, default=3, help="stage runs per config (median reported)")
    args = parser.parse_args(argv)

    texts, planted = build_corpus(args.folder, args.copies, args.fraction)
    words = sum(len(t.split()) for t in texts)
    print(
        f"corpus: {len(texts)} documents ({words / len(texts):.0f} words on average), "
        f"{len(planted)} planted near-duplicate pairs (5-10 % word edits)"
    )
    with tempfile.TemporaryDirectory(prefix="gristmill-bench-dedup-") as tmp:
        folder = Path(tmp) / "in"
        write_input(texts, folder)
        run_stage_once(folder, Path(tmp) / "warmup", {})  # imports (scipy, matplotlib)
        ok = True
        stock: tuple[float, set[tuple[int, int]]] | None = None
        for label, config in CONFIGS:
            cfg = MinHashDedupConfig(**config, seed=SEED)
            bands, rows, threshold = resolve_lsh(cfg)
            times, result = [], None
            for r in range(args.repeat):
                seconds, result = run_stage_once(folder, Path(tmp) / f"{label}-{r}", config)
                times.append(seconds)
            stage_s = statistics.median(times)
            stage_removed = removed_ids(Path(tmp) / f"{label}-0", len(texts))
            core_s, sigs = time_core(texts, cfg)
            ours = lsh_pairs(sigs, bands, rows)
            print(
                f"\n[{label}] {cfg.shingle} {cfg.ngram}-grams, num_perm {cfg.num_perm}, {bands}x{rows} "
                f"(threshold ~{threshold:.2f}), hash {cfg.hash_function}"
            )
            print(
                f"  stage:      {stage_s:7.2f} s  {len(texts) / stage_s:8.0f} docs/s  "
                f"(runs: {', '.join(f'{t:.2f}' for t in times)}; {result.metadata['seconds']})"
            )
            print(f"              counts {result.counts}")
            base_s, base_pairs, base_removed = run_datasketch(texts, cfg)
            agree = len(ours & base_pairs) / max(len(ours | base_pairs), 1)
            removed_agree = len(stage_removed & base_removed) / max(len(stage_removed | base_removed), 1)
            ratio = base_s / stage_s
            hashfunc = "xxh32_intdigest" if cfg.hash_function == "xxh32" else "default sha1_hash32"
            print(
                f"  datasketch: {base_s:7.2f} s  {len(texts) / base_s:8.0f} docs/s  (hashfunc {hashfunc})"
                f"  -> stage {ratio:.1f}x faster; in-memory MinHash+LSH core {core_s:.2f} s: {base_s / core_s:.1f}x"
            )
            print(
                f"  candidate pairs: stage {len(ours)}, datasketch {len(base_pairs)}, agreement {agree:.2%}; "
                f"removed documents agreement {removed_agree:.2%}"
            )
            if cfg.hash_function == "sha1" and label == "stock-sha1":
                stock = (base_s, base_pairs)
            elif stock is not None and label == "default":
                both = len(ours & stock[1]) / max(len(ours | stock[1]), 1)
                print(
                    f"  vs the stock datasketch loop (sha1): stage {stock[0] / stage_s:.1f}x faster; "
                    f"candidate-pair agreement {both:.2%} (different hash function: statistical, not bitwise)"
                )
            ok &= agree >= 0.99 and (ratio >= 10 or label != "default")
            p, r = precision_recall(ours, planted)
            dups = {b for _, b in planted}
            doc_p = len(stage_removed & dups) / max(len(stage_removed), 1)
            doc_r = len(stage_removed & dups) / len(dups)
            print(
                f"  planted pairs: precision {p:.3f}, recall {r:.3f} (candidate pairs); "
                f"removed documents: precision {doc_p:.3f}, recall {doc_r:.3f}"
            )
            if label == "edits":
                ok &= p >= 0.95 and r >= 0.94
    print("\nall goals met" if ok else "\nSOME GOALS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
