"""Benchmark ``quality_classifier`` / ``quality_filter``: the stages vs bare fastText, and held-out AUC.

Usage::

    .venv/bin/python benchmarks/quality.py [--data ../shared/data] [--repeat N] [--scale K]

Corpus (real text from ``../shared/data`` + synthetic spam): positives are Pride and Prejudice paragraphs
and 12-line Tiny Shakespeare passages (``reference`` input), negatives an equal number of synthetic
spam / boilerplate / repeated-line pages (``documents`` input); ``--scale`` repeats the corpus K times
(with a suffix per copy, so texts stay distinct).

* **Training** — "stage" is ``quality_classifier`` through ``gristmill.testing.run_stage`` with the default
  hyperparameters (epoch 20, lr 0.5, wordNgrams 2, dim 32, bucket 100k, thread 1): it reads and
  normalizes the documents, samples negatives, splits, writes the fastText file, trains, scores the
  held-out split, saves ``model.bin`` + JSON and draws the PNG. "bare" is ``fasttext.train_supervised``
  with the same arguments on the same training file (already written); "bare, 2 threads" is the same
  with ``thread=2`` (Hogwild, not reproducible). Throughput is training examples per second.
* **Inference** — "stage" is ``quality_filter`` over the whole corpus (read, normalize, batched predict,
  write the kept documents with their score, histogram); "bare" is ``model.predict(texts, k=-1)`` on the
  already-normalized texts in batches of 1024. Throughput is documents per second.
* **AUC** — the stage's held-out ROC AUC on this corpus, and on the DCLM human quality labels
  (254 real web documents, label 1 vs 0): mean ± sd over 10 stratified 80/20 splits.

Each timing is the median of N runs after one warm-up.
"""

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from gristmill.lib.documents import DocumentWriter
from gristmill.lib.textclf import (
    FastTextTrainConfig,
    binary_metrics,
    normalize_text,
    scores_for,
    shuffled,
    stratified_split,
    train_supervised,
    write_training_file,
    zeroed_allocations,
)
from gristmill.testing import artifact_from_dir, run_stage
from gristmill_plugins.quality_classifier import SPEC as CLASSIFIER_SPEC
from gristmill_plugins.quality_filter import SPEC as FILTER_SPEC

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SPAM = "buy cheap click here free casino bonus win now best price loans offer subscribe deal discount replica"
NAV = ("Home", "About us", "Contact", "Privacy policy", "Terms of use", "Login", "Register", "Sitemap", "Cart")


def spam_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = SPAM.split()
    out = []
    for i in range(n):
        if i % 3 == 0:
            out.append(
                " ".join(
                    rng.choice(words).upper() if rng.random() < 0.3 else rng.choice(words)
                    for _ in range(rng.randint(30, 120))
                )
            )
        elif i % 3 == 1:
            out.append(
                " | ".join(rng.sample(NAV, 6))
                + "\nWe use cookies. Accept all cookies.\n"
                + "\n".join(f"{rng.choice(NAV)} » {rng.choice(words)} {rng.randint(1, 999)}" for _ in range(10))
            )
        else:
            line = f"{rng.choice(words).title()} {rng.choice(words)} {rng.randint(1, 99)}% off today"
            out.append("\n".join([line] * rng.randint(4, 16)))
    return out


def corpus(data: Path, scale: int) -> tuple[list[str], list[str]]:
    book = (data / "pretrain" / "pride_and_prejudice.txt").read_text(encoding="utf-8")
    good = [p for p in book.split("\n\n") if len(p.split()) >= 20]
    lines = (data / "pretrain" / "tinyshakespeare.txt").read_text(encoding="utf-8").splitlines()
    good += ["\n".join(lines[i : i + 12]) for i in range(0, len(lines), 12)]
    good = [f"{t} ({k})" if k else t for k in range(scale) for t in good]
    return good, spam_texts(len(good))


def write_docs(folder: Path, texts: list[str], prefix: str):
    with DocumentWriter(folder) as writer:
        for i, text in enumerate(texts):
            writer.write({"text": text, "id": f"{prefix}-{i}", "metadata": {}})
    return artifact_from_dir("documents", folder)


def median_time(fn, repeat: int) -> tuple[float, object]:
    fn()  # warm-up
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def dclm_auc(data: Path, splits: int = 10) -> tuple[float, float, list[float]]:
    rows = [json.loads(line) for line in (data / "quality" / "dclm_human_quality_labels_shared.jsonl").open()]
    texts = [normalize_text(r["text"]) for r in rows]
    labels = ["hq" if r["label"] == 1 else "lq" for r in rows]
    params = FastTextTrainConfig().fasttext_params()
    aucs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(splits):
            train, holdout = stratified_split(labels, 0.2, seed)
            path = Path(tmp) / "train.txt"
            write_training_file(path, shuffled([(labels[i], texts[i]) for i in train], seed))
            model = train_supervised(path, seed=seed, **params)
            scores = scores_for(model, [texts[i] for i in holdout], "hq", normalized=True)
            aucs.append(binary_metrics([labels[i] == "hq" for i in holdout], scores)["auc"])
    return float(np.mean(aucs)), float(np.std(aucs)), aucs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared/data folder")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per measurement (median)")
    parser.add_argument("--scale", type=int, default=1, help="repeat the corpus this many times")
    args = parser.parse_args(argv)
    if not (args.data / "MANIFEST.md").is_file():
        print(f"no shared data at {args.data}", file=sys.stderr)
        return 2
    import fasttext

    good, bad = corpus(args.data, args.scale)
    with tempfile.TemporaryDirectory(prefix="gristmill-bench-quality-") as tmp_name:
        tmp = Path(tmp_name)
        reference = write_docs(tmp / "reference", good, "good")
        crawl = write_docs(tmp / "crawl", bad, "bad")
        everything = write_docs(tmp / "all", [t for pair in zip(good, bad, strict=True) for t in pair], "doc")
        n_docs = len(good) + len(bad)
        print(
            f"corpus: {len(good)} good + {len(bad)} spam documents, "
            f"{sum(len(t) for t in good + bad) / 1e6:.1f} M characters"
        )

        runs = iter(range(10**6))
        inputs = {"documents": crawl, "reference": reference}
        stage_s, (result, classifier) = median_time(
            lambda: run_stage(CLASSIFIER_SPEC, tmp / f"clf{next(runs)}", {"seed": 0}, inputs), args.repeat
        )
        n_train = result.counts["train_examples"]

        # the same training file the stage wrote: rebuild it exactly (same split and shuffle)
        examples = [("hq", normalize_text(t)) for t in good] + [("lq", normalize_text(t)) for t in bad]
        train_idx, _ = stratified_split([e[0] for e in examples], 0.2, 0)
        train_file = tmp / "train.txt"
        write_training_file(train_file, shuffled([examples[i] for i in train_idx], 2))
        params = FastTextTrainConfig().fasttext_params()
        ft_args = {
            "epoch": params["epoch"],
            "lr": params["lr"],
            "wordNgrams": params["word_ngrams"],
            "dim": params["dim"],
            "minCount": params["min_count"],
            "bucket": params["bucket"],
            "seed": 0,
            "verbose": 0,
        }

        def bare(threads: int):
            with zeroed_allocations():
                return fasttext.train_supervised(input=str(train_file), thread=threads, **ft_args)

        bare_s, model = median_time(lambda: bare(1), args.repeat)
        bare2_s, _ = median_time(lambda: bare(2), args.repeat)

        filter_s, (fresult, _) = median_time(
            lambda: run_stage(
                FILTER_SPEC, tmp / f"filt{next(runs)}", {}, {"documents": everything, "classifier": classifier}
            ),
            args.repeat,
        )
        texts = [normalize_text(t) for t in good + bad]

        def bare_predict():
            for start in range(0, len(texts), 1024):
                model.predict(texts[start : start + 1024], k=-1)

        predict_s, _ = median_time(bare_predict, args.repeat)
        dclm_mean, dclm_sd, aucs = dclm_auc(args.data)

    print()
    print("| measurement | stage | bare fastText | stage / bare |")
    print("|---|---:|---:|---:|")
    print(
        f"| training, examples/s ({n_train} examples, 1 thread) | {n_train / stage_s:,.0f} ({stage_s:.2f} s) "
        f"| {n_train / bare_s:,.0f} ({bare_s:.2f} s) | {stage_s / bare_s:.2f}× time |"
    )
    print(f"| training, 2 threads (bare only, not reproducible) | | {n_train / bare2_s:,.0f} ({bare2_s:.2f} s) | |")
    print(
        f"| inference, documents/s ({n_docs} documents) | {n_docs / filter_s:,.0f} ({filter_s:.2f} s) "
        f"| {n_docs / predict_s:,.0f} ({predict_s:.2f} s) | {filter_s / predict_s:.2f}× time |"
    )
    print()
    print(
        f"held-out AUC, this corpus (stage): {result.counts['holdout_auc']:.4f} "
        f"(F1 {result.counts['holdout_f1']:.4f}, {result.counts['holdout_examples']} documents)"
    )
    print(
        f"held-out AUC, DCLM human labels (254 docs, 10 splits 80/20): {dclm_mean:.3f} ± {dclm_sd:.3f} "
        f"(min {min(aucs):.3f}, max {max(aucs):.3f})"
    )
    print(
        f"quality_filter kept {fresult.counts['documents_kept']} of {fresult.counts['documents_in']}; "
        f"model.bin {result.counts['model_bytes'] / 1e6:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
