"""Benchmark gristmill's training loop (``gristmill.lib.train.train``) against a minimal hand-written torch loop.

Usage::

    .venv/bin/python benchmarks/pretrain.py [--steps N] [--repeat N] [--threads N] [--quick]

Both loops train the same ``LlamaForCausalLM`` (built from the same :class:`~gristmill.lib.train.ModelConfig`
after seeding torch with the same seed, so the same initial weights) on the same data (a fresh
:class:`~gristmill.lib.tokens.TokenDataset` each run, same seeded shuffle, so the same batches in the same order),
with the same batch size, AdamW (foreach, same parameter groups, betas and weight decay), the same
warmup + cosine LR schedule, global grad-norm clipping, for the same number of steps, on the same number of
torch threads. Their per-step losses are compared (they should agree bit for bit).

The data: the books of ``../shared/data/pretrain`` tokenized with a byte-level BPE trained on them (a couple of
seconds), written with :class:`~gristmill.lib.tokens.TokensWriter` to a temp dir; patterned random ids when the
books are absent.

Measured in the same run, alternating the order of the variants, ``--repeat`` times each:

* **bare**: ``for step: loss = model(ids, labels=ids).loss; loss.backward(); clip; opt.step(); sched.step();
  opt.zero_grad(); loss.item()``;
* **gristmill (lean)**: ``train()`` with checkpointing effectively off (``checkpoint_every`` > steps) and the
  update ratio never measured (``update_ratio_every`` > steps);
* **gristmill (default metrics)**: ``train()`` with the default metrics (update/parameter norm ratio every
  10 steps; token accuracy, peak memory and grad norm every step), checkpointing still off.

Tokens/s are steady state: from the end of the first ``--skip`` steps to the end of the last step, so model
construction, the first (allocating) steps and the final checkpoint ``train()`` always writes are excluded;
those are reported separately (setup + first steps, final checkpoint + teardown). Medians are reported, with the
best run and tokens per process CPU-second next to them. On a machine shared with other work, multi-threaded BLAS
steps swing wildly (threads waiting on a descheduled partner); ``--threads 1`` gives steadier ratios there.
"""

import os
import sys

# Run as a script, its folder comes first on sys.path, where benchmarks/tokenize.py would shadow the stdlib module.
if sys.path and os.path.realpath(sys.path[0] or ".") == os.path.dirname(os.path.realpath(__file__)):
    sys.path.pop(0)

import argparse
import gc
import math
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import LlamaForCausalLM

from gristmill.lib.tokens import TokenDataset, TokensWriter
from gristmill.lib.train import ModelConfig, TrainConfig, train

DEFAULT_FOLDER = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pretrain"
BOOKS = ("tinyshakespeare.txt", "pride_and_prejudice.txt")
VARIANTS = ("bare", "gristmill (lean)", "gristmill (default metrics)")


@dataclass
class Run:
    """One timed run: wall-clock stamps at the end of each step, the losses, the loop's own metrics."""

    t_call: float
    stamps: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # process CPU seconds (all threads) at the same points
    losses: list[float] = field(default_factory=list)
    flops_per_s: list[float] = field(default_factory=list)
    t_return: float = 0.0

    def tokens_per_s(self, tokens_per_step: int, skip: int) -> float:
        return (len(self.stamps) - skip) * tokens_per_step / (self.stamps[-1] - self.stamps[skip - 1])

    def tokens_per_cpu_s(self, tokens_per_step: int, skip: int) -> float:
        return (len(self.cpu) - skip) * tokens_per_step / (self.cpu[-1] - self.cpu[skip - 1])


# --------------------------------------------------------------------------------------------------
# Data


def write_data(
    folder: Path, books: Path, seq_len: int, vocab: int, sequences: int
) -> tuple[TokenDataset, float | None]:
    """A ``tokens`` artifact of at least ``sequences`` sequences: the books BPE-tokenized, else patterned ids."""
    if all((books / b).is_file() for b in BOOKS):
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        texts = [p + "\n" for b in BOOKS for p in (books / b).read_text(encoding="utf-8").split("\n\n") if p.strip()]
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab, special_tokens=["<|eos|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        )
        tok.train_from_iterator(texts, trainer)
        eos = tok.token_to_id("<|eos|>")
        nbytes, ntokens = 0, 0
        with TokensWriter(folder, seq_len=seq_len, vocab_size=vocab, eos_id=eos, splits=("train",)) as w:
            for enc, text in zip(tok.encode_batch_fast(texts, add_special_tokens=False), texts, strict=True):
                w.add("train", np.array([*enc.ids, eos]), nbytes=len(text.encode("utf-8")))
                nbytes, ntokens = nbytes + len(text.encode("utf-8")), ntokens + len(enc.ids) + 1
        print(f"data: {', '.join(BOOKS)} BPE-tokenized (vocab {vocab}), {nbytes / ntokens:.2f} bytes/token")
        ds = TokenDataset(folder, "train")
        if len(ds) >= sequences:
            return ds, nbytes / ntokens
        print(f"  only {len(ds)} sequences, need {sequences}: using patterned ids instead")
        folder = folder.with_name(folder.name + "-patterned")
    rng = np.random.default_rng(0)
    with TokensWriter(folder, seq_len=seq_len, vocab_size=vocab, eos_id=1, splits=("train",)) as w:
        for _ in range((sequences + 1) * seq_len // 24):
            start, stride = rng.integers(2, vocab), rng.integers(1, 4)
            w.add("train", np.append(2 + (start + stride * np.arange(23)) % (vocab - 2), 1))
    print(f"data: patterned ids (vocab {vocab}; books not found in {books})")
    return TokenDataset(folder, "train"), None


def batches(ds: TokenDataset, batch_size: int) -> Iterator[torch.Tensor]:
    """Endless batches in the dataset's iteration order (epochs roll over), like the loop's."""
    rows: list[torch.Tensor] = []
    while True:
        for row in ds:
            rows.append(row)
            if len(rows) == batch_size:
                yield torch.stack(rows)
                rows = []


# --------------------------------------------------------------------------------------------------
# The two loops


def bare_loop(model_cfg: ModelConfig, cfg: TrainConfig, data: Path) -> Run:
    """The minimal hand-written loop: same init, data order, optimizer, schedule and clipping as ``train()``."""
    run = Run(time.perf_counter())
    torch.manual_seed(cfg.seed)
    model = LlamaForCausalLM(model_cfg.to_hf())
    model.train()
    params = list(model.parameters())  # tied weights once
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), foreach=True)
    floor = cfg.min_lr / cfg.lr

    def cosine(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine)
    stream = batches(TokenDataset(data, "train", shuffle=True, seed=cfg.seed), cfg.batch_size)
    for _ in range(cfg.steps):
        ids = next(stream)
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        run.losses.append(loss.item())
        run.stamps.append(time.perf_counter())
        run.cpu.append(time.process_time())
    run.t_return = time.perf_counter()
    return run


def gristmill_loop(model_cfg: ModelConfig, cfg: TrainConfig, data: Path, out: Path, bpt: float | None) -> Run:
    run = Run(time.perf_counter())

    def log_fn(metrics: dict) -> None:
        run.stamps.append(time.perf_counter())
        run.cpu.append(time.process_time())
        run.losses.append(metrics["loss"])
        run.flops_per_s.append(metrics["flops_per_s"])

    ds = TokenDataset(data, "train", shuffle=True, seed=cfg.seed)
    train(model_cfg, cfg, ds, out, log_fn=log_fn, resume=False, bytes_per_token=bpt)
    run.t_return = time.perf_counter()
    return run


# --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=DEFAULT_FOLDER, help="folder with the two books")
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps per run")
    parser.add_argument("--skip", type=int, default=2, help="first steps left out of the steady-state timing")
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant (median reported)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads (both loops)")
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--d-ff", type=int, default=512)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=2048)
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: tiny model, few steps, one repeat (its ratios are noise)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.repeat, args.d_model, args.layers, args.d_ff, args.seq = 6, 1, 64, 2, 128, 64
    if not 1 <= args.skip < args.steps:
        parser.error("--skip must be in [1, steps)")
    torch.set_num_threads(args.threads)
    model_cfg = ModelConfig(
        d_model=args.d_model,
        n_layers=args.layers,
        n_heads=4,
        n_kv_heads=2,
        d_ff=args.d_ff,
        vocab_size=args.vocab,
        max_seq_len=args.seq,
    )
    base = {"steps": args.steps, "batch_size": args.batch, "checkpoint_every": args.steps + 1, "seed": 0}
    configs = {
        "gristmill (lean)": TrainConfig(**base, update_ratio_every=args.steps + 1),
        "gristmill (default metrics)": TrainConfig(**base),
    }
    tokens_per_step = args.batch * args.seq

    with tempfile.TemporaryDirectory(prefix="gristmill-bench-pretrain-") as tmp_name:
        tmp = Path(tmp_name)
        ds, bpt = write_data(tmp / "tokens", args.folder, args.seq, args.vocab, args.steps * args.batch)
        data = ds.root
        print(
            f"model: d_model {args.d_model}, {args.layers} layers, d_ff {args.d_ff}, vocab {args.vocab}, "
            f"seq {args.seq}, batch {args.batch} ({tokens_per_step} tokens/step); {args.steps} steps "
            f"({args.skip} untimed), repeat {args.repeat}, {torch.get_num_threads()} threads"
        )
        warm = configs["gristmill (lean)"].model_copy(update={"steps": args.skip + 1})
        bare_loop(model_cfg, warm, data)  # warm-up: imports, allocator, thread pools
        runs: dict[str, list[Run]] = {v: [] for v in VARIANTS}
        for r in range(args.repeat):
            for variant in VARIANTS if r % 2 == 0 else VARIANTS[::-1]:
                gc.collect()
                if variant == "bare":
                    run = bare_loop(model_cfg, configs["gristmill (lean)"], data)
                else:
                    run = gristmill_loop(model_cfg, configs[variant], data, tmp / f"run-{r}-{len(variant)}", bpt)
                runs[variant].append(run)
            tps = {v: runs[v][-1].tokens_per_s(tokens_per_step, args.skip) for v in VARIANTS}
            print(f"  run {r + 1}: " + ", ".join(f"{v} {t:,.0f} tok/s" for v, t in tps.items()))
        threads_after = torch.get_num_threads()

    reference = runs["bare"][0].losses
    for v in VARIANTS:
        diff = max(abs(a - b) for run in runs[v] for a, b in zip(run.losses, reference, strict=True))
        print(f"losses {v} vs bare: {'identical' if diff == 0 else f'max |Δ| {diff:.3g}'}")
    if threads_after != args.threads:
        print(f"WARNING: torch threads changed during the run: {args.threads} → {threads_after}")

    med = {v: statistics.median(r.tokens_per_s(tokens_per_step, args.skip) for r in runs[v]) for v in VARIANTS}
    best = {v: max(r.tokens_per_s(tokens_per_step, args.skip) for r in runs[v]) for v in VARIANTS}
    cpu = {v: statistics.median(r.tokens_per_cpu_s(tokens_per_step, args.skip) for r in runs[v]) for v in VARIANTS}
    setup = {v: statistics.median(r.stamps[args.skip - 1] - r.t_call for r in runs[v]) for v in VARIANTS}
    tail = {v: statistics.median(r.t_return - r.stamps[-1] for r in runs[v]) for v in VARIANTS}
    header = (
        f"{'variant':<28} {'tokens/s':>9} {'× bare':>7} {'best':>7} {'× bare':>7} {'tok/CPU-s':>9} {'× bare':>7} "
        f"{'setup+first s':>13} {'final ckpt s':>12}"
    )
    print(f"\n{header}\n" + "-" * len(header))
    for v in VARIANTS:
        print(
            f"{v:<28} {med[v]:>9,.0f} {med[v] / med['bare']:>7.3f} {best[v]:>7,.0f} {best[v] / best['bare']:>7.3f} "
            f"{cpu[v]:>9,.0f} {cpu[v] / cpu['bare']:>7.3f} {setup[v]:>13.2f} {tail[v]:>12.2f}"
        )
    print(
        "(steady-state tokens/s: median and best run; tok/CPU-s: tokens per process CPU-second, all threads, median "
        "— the least sensitive to other load on the machine; setup+first: call → end of the untimed steps; final "
        "ckpt: last step → return, i.e. the checkpoint train() always writes at the end)"
    )
    for v in VARIANTS[1:]:
        ratio = med[v] / med["bare"]
        print(
            f"{v} vs bare: {ratio:.3f}× ({'OK' if ratio >= 0.95 else 'BELOW GOAL'}, goal ≥ 0.95×); "
            f"best run {best[v] / best['bare']:.3f}×, per CPU-second {cpu[v] / cpu['bare']:.3f}×"
        )
    flops = statistics.median(f for r in runs["gristmill (lean)"] for f in r.flops_per_s[args.skip :])
    print(f"loop-reported model FLOP/s (lean, median step): {flops / 1e9:.1f} GFLOP/s (no MFU: CPU has no peak entry)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
