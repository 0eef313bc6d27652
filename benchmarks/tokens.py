"""Benchmark the ``tokens`` stage against bare ``tokenizers`` ``encode_batch`` on the same text.

Usage::

    .venv/bin/python benchmarks/tokens.py [--copies N] [--repeat N] [--batch-size N]

The corpus is the two books of ``../shared/data/pretrain`` split into paragraph documents, repeated
``--copies`` times (distinct ids), written as a ``documents`` artifact (JSONL.gz). A 4096-token
byte-level BPE is trained once with the ``tokenizer`` stage. Then, alternating order, N times each:

* **bare encode_batch**: ``Tokenizer.encode_batch`` over the in-memory texts in batches of
  ``--batch-size`` (the text is already decoded, nothing is read or written);
* **bare encode_batch + ids**: the same, also taking ``.ids`` of every encoding (what any consumer needs);
* **bare encode_batch_fast + ids**: the offsets-free variant the stage calls;
* **tokens stage**: the whole stage through ``gristmill.testing.run_stage``: read and parse the gzipped
  JSONL, hash ids for the split, encode, append EOS, pack into 256-token sequences, write shards and
  the index, draw the histogram PNG.

Throughput is UTF-8 text MB/s; medians are reported. The stage's output (validation_fraction 0) is
checked to equal the bare ids with EOS after each document, up to the dropped tail. A final run with
the default config prints the packing waste.
"""

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from gristmill.lib.documents import DocumentWriter
from gristmill.lib.tokens import TokenDataset
from gristmill.testing import artifact_from_dir, run_stage
from gristmill_plugins import tokenizer as tokenizer_stage
from gristmill_plugins import tokens as tokens_stage

DEFAULT_FOLDER = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pretrain"
BOOKS = ("tinyshakespeare.txt", "pride_and_prejudice.txt")


def load_texts(folder: Path, copies: int) -> list[str]:
    paragraphs = []
    for book in BOOKS:
        text = (folder / book).read_text(encoding="utf-8")
        paragraphs += [p + "\n" for p in text.split("\n\n") if p.strip()]
    return paragraphs * copies


def bare(
    tok: Tokenizer, texts: list[str], batch_size: int, method: str, ids: bool
) -> tuple[float, float, list[list[int]]]:
    encode = getattr(tok, method)
    out: list[list[int]] = []
    gc.collect()
    cpu, start = time.process_time(), time.perf_counter()
    for i in range(0, len(texts), batch_size):
        encodings = encode(texts[i : i + batch_size], add_special_tokens=False)
        if ids:
            out += [e.ids for e in encodings]
    return time.perf_counter() - start, time.process_time() - cpu, out


def stage(docs: Path, tok_dir: Path, out: Path, config: dict[str, Any]) -> tuple[float, float, Any]:
    inputs = {
        "documents": artifact_from_dir("documents", docs),
        "tokenizer": artifact_from_dir("tokenizer", tok_dir),
    }
    gc.collect()
    cpu, start = time.process_time(), time.perf_counter()
    result, _ = run_stage(tokens_stage.SPEC, out, config, inputs)
    return time.perf_counter() - start, time.process_time() - cpu, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=DEFAULT_FOLDER, help="folder with the two books")
    parser.add_argument("--copies", type=int, default=4, help="repeat the corpus this many times")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per variant (median reported)")
    parser.add_argument("--batch-size", type=int, default=1024, help="documents per encode_batch call")
    args = parser.parse_args(argv)
    if not all((args.folder / b).is_file() for b in BOOKS):
        print(f"books not found in {args.folder}", file=sys.stderr)
        return 1
    texts = load_texts(args.folder, args.copies)
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    bs = args.batch_size
    print(f"{len(texts)} documents, {mb:.2f} MB of text, batch_size={bs}, repeat={args.repeat}")

    with tempfile.TemporaryDirectory(prefix="gristmill-bench-tokenize-") as tmp_name:
        tmp = Path(tmp_name)
        with DocumentWriter(tmp / "docs") as writer:
            writer.write_all({"text": t, "id": f"doc{i}", "metadata": {}} for i, t in enumerate(texts))
        one_copy = len(texts) // args.copies
        start = time.perf_counter()
        tok_result, _ = run_stage(
            tokenizer_stage.SPEC,
            tmp / "tok",
            {"vocab_size": 4096, "max_documents": one_copy},
            {"documents": artifact_from_dir("documents", tmp / "docs")},
        )
        print(
            f"tokenizer stage: {time.perf_counter() - start:.2f}s, bytes/token {tok_result.counts['bytes_per_token']}"
        )
        tok = Tokenizer.from_file(str(tmp / "tok" / "tokenizer.json"))
        eos = tok.token_to_id("<|eos|>")
        config = {"validation_fraction": 0.0, "batch_size": bs}

        # warm-up (imports, thread pools, page cache), then check identical ids
        _, _, ids = bare(tok, texts, bs, "encode_batch", ids=True)
        _, _, ids_fast = bare(tok, texts, bs, "encode_batch_fast", ids=True)
        assert ids_fast == ids, "encode_batch_fast ids differ from encode_batch"
        stage(tmp / "docs", tmp / "tok", tmp / "warm", config)
        expected = np.fromiter((t for doc in ids for t in (*doc, eos)), dtype=np.int64)
        ds = TokenDataset(tmp / "warm", "train")
        got = np.concatenate([ds.array(i) for i in range(len(ds))]).astype(np.int64)
        assert len(expected) - len(got) < ds.seq_len, "stage dropped more than one partial sequence"
        assert np.array_equal(got, expected[: len(got)]), "stage ids differ from bare encode_batch"
        print(f"identical ids: stage output == bare encode_batch ids + EOS ({len(got)} tokens, {len(ids)} documents)")

        variants = ("bare encode_batch", "bare encode_batch + ids", "bare encode_batch_fast + ids", "tokens stage")
        times: dict[str, list[float]] = {v: [] for v in variants}
        cpus: dict[str, list[float]] = {v: [] for v in variants}
        for r in range(args.repeat):
            order = variants if r % 2 == 0 else variants[::-1]
            for variant in order:
                if variant == "tokens stage":
                    seconds, cpu, _ = stage(tmp / "docs", tmp / "tok", tmp / f"run{r}", config)
                else:
                    method = "encode_batch_fast" if "fast" in variant else "encode_batch"
                    seconds, cpu, _ = bare(tok, texts, bs, method, ids="ids" in variant)
                times[variant].append(seconds)
                cpus[variant].append(cpu)
            print(f"  run {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()))

        _, _, default = stage(tmp / "docs", tmp / "tok", tmp / "default", {"batch_size": bs})

    med = {k: statistics.median(v) for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}
    cpu_med = {k: statistics.median(v) for k, v in cpus.items()}
    header = f"{'variant':<30} {'median s':>8} {'MB/s':>6} {'stage ×':>8} {'best s':>7} {'stage ×':>8} {'CPU s':>6}"
    print(f"\n{header}\n" + "-" * len(header))
    for name in variants:
        print(
            f"{name:<30} {med[name]:>8.3f} {mb / med[name]:>6.2f} {med[name] / med['tokens stage']:>8.2f} "
            f"{best[name]:>7.3f} {best[name] / best['tokens stage']:>8.2f} {cpu_med[name]:>6.2f}"
        )
    print("(stage × = variant time / stage time: above 1 means the stage is faster; CPU s = all threads)")
    goal = med["bare encode_batch"] / med["tokens stage"]
    c = default.counts
    print(
        f"\ntokens stage vs bare encode_batch: {goal:.2f}× ({'OK' if goal >= 1.0 else 'BELOW GOAL'}, goal ≥ 1.0×); "
        f"vs encode_batch + ids: {med['bare encode_batch + ids'] / med['tokens stage']:.2f}×; "
        f"vs encode_batch_fast + ids: {med['bare encode_batch_fast + ids'] / med['tokens stage']:.2f}×"
    )
    print(
        f"default config (seq_len 256, 1% validation, drop): {c['train_sequences']} + {c['validation_sequences']} "
        f"sequences, waste {c['waste_fraction']:.4%} ({c['dropped_tokens']} of {c['document_tokens']} tokens), "
        f"bytes/token {c['bytes_per_token']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
