"""Post-training throughput: the ``sft`` and ``dpo`` stages vs TRL's trainers called bare, and batched vs
one-prompt-at-a-time generation (what ``rejection_sampling`` and ``dpo`` do to sample).

Everything is measured in this run on the same model and data: a small Llama pretrained here on the demo's
arithmetic problems (plain text), then

* SFT: ``sft`` stage (max_steps N) vs ``SFTTrainer`` with the same SFTConfig on the same conversations;
* DPO: ``dpo`` stage (one round: sample, score, train N steps) vs ``DPOTrainer`` on the pairs the stage built;
* generation: ``gristmill.lib.post_training.generate`` with batch 64 vs batch 1 (K samples per prompt).

Ratios > 1 mean gristmill is faster. Training ratios compare optimizer steps per second of the training loop
(wall time of ``trainer.train()``); the stage totals (loading, held-out scoring, saving, reloading) are printed too.

LoRA vs full fine-tuning (a second table): the ``sft`` stage and one ``dpo`` round, each with and without
``peft: {r: 16, alpha: 32}`` (LoRA ``dpo`` keeps no reference copy), on a wider random-initialised Llama
(``--lora-d-model``, default d512 L4, ~13M parameters: at the policy's ~1M parameters, weights, gradients and Adam
states are a few MB, lost in the process's ~1 GB of libraries). Every variant runs in its own process
(``--variant NAME``, started by this script before it loads anything), so each peak memory is that run's alone: on
a CPU the process's peak RSS (also shown above the RSS after the imports), on a GPU CUDA's max allocated during
training. The weights + gradients + AdamW states the variants need are computed from the parameter counts for
comparison. The dpo variants score samples with an untrained reward model (a random model never answers correctly,
so the verifier gives no pairs). Ratios are LoRA ÷ full.

    .venv/bin/python benchmarks/post_training.py [--steps 30] [--prompts 16] [--k 8] [--threads 2]
                                                 [--lora-only | --no-lora] [--lora-d-model 512] [--lora-layers 4]
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def build_data(root: Path, sft_examples: int) -> Path:
    """Arithmetic tasks (``root/tasks``), their worked solutions as documents (``root/docs``) and a BPE tokenizer on
    them (``root/tokenizer``); returns the tasks folder."""
    from gristmill.lib.documents import DocumentWriter
    from gristmill.testing import artifact_from_dir, run_stage
    from gristmill_plugins import tokenizer as tokenizer_stage
    from gristmill_plugins.demo_data.tasks import TASKS_SPEC

    run_stage(TASKS_SPEC, root / "tasks", {"sft_examples": sft_examples, "prompts": 256, "eval_examples": 64})
    with DocumentWriter(root / "docs") as writer:
        for i, line in enumerate((root / "tasks" / "sft.jsonl").read_text().splitlines()):
            m = json.loads(line)["messages"]
            writer.write({"id": str(i), "text": f"{m[0]['content']} {m[1]['content']}", "metadata": {}})
    docs = artifact_from_dir("documents", root / "docs")
    run_stage(tokenizer_stage.SPEC, root / "tokenizer", {"vocab_size": 512}, {"documents": docs})
    return root / "tasks"


def build_policy(root: Path, sft_examples: int) -> tuple[Path, Path]:
    """Arithmetic tasks → BPE tokenizer (digits split) → packed tokens → a d128 L4 Llama (150 steps)."""
    from gristmill.lib.tokens import TokenDataset
    from gristmill.lib.train import ModelConfig, TrainConfig, train
    from gristmill.lib.train.export import save_model_dir
    from gristmill.testing import artifact_from_dir, run_stage
    from gristmill_plugins import tokens as tokens_stage

    build_data(root, sft_examples)
    docs = artifact_from_dir("documents", root / "docs")
    tok = artifact_from_dir("tokenizer", root / "tokenizer")
    run_stage(
        tokens_stage.SPEC,
        root / "tokens",
        {"seq_len": 128, "validation_fraction": 0.05},
        {"documents": docs, "tokenizer": tok},
    )
    cfg = ModelConfig(d_model=128, n_layers=4, n_heads=4, n_kv_heads=2, d_ff=384, vocab_size=512, max_seq_len=256)
    data = TokenDataset(root / "tokens", "train", shuffle=True)
    loop = TrainConfig(steps=150, batch_size=16, lr=3e-3, warmup=10, checkpoint_every=10_000)
    result = train(cfg, loop, data, root / "run", log_fn=lambda m: None)
    save_model_dir(result.model, root / "model", tokenizer_dir=root / "tokenizer")
    return root / "model", root / "tasks"


def bare_sft(model_dir: Path, tasks: Path, steps: int, batch: int, lr: float, work: Path) -> float:
    """Seconds of ``SFTTrainer.train()`` for ``steps`` steps, set up as a TRL user would."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.config.use_cache = False
    tok = AutoTokenizer.from_pretrained(model_dir)
    rows = [{"messages": json.loads(line)["messages"]} for line in (tasks / "sft.jsonl").read_text().splitlines()]
    args = SFTConfig(
        output_dir=str(work / "bare_sft"),
        use_cpu=True,
        bf16=False,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        learning_rate=lr,
        per_device_train_batch_size=batch,
        max_steps=steps,
        assistant_only_loss=True,
        activation_checkpointing=False,
        logging_steps=10,
        max_length=256,
        seed=0,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok)
    start = time.perf_counter()
    trainer.train()
    return time.perf_counter() - start


def bare_dpo(model_dir: Path, pairs: list[dict], steps: int, batch: int, lr: float, work: Path) -> float:
    """Seconds of ``DPOTrainer.train()`` on ``pairs`` for ``steps`` steps (reference: the same starting model)."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    ref = AutoModelForCausalLM.from_pretrained(model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    args = DPOConfig(
        output_dir=str(work / "bare_dpo"),
        use_cpu=True,
        bf16=False,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        learning_rate=lr,
        per_device_train_batch_size=batch,
        max_steps=steps,
        beta=0.1,
        activation_checkpointing=False,
        logging_steps=10,
        max_length=256,
        seed=0,
    )
    trainer = DPOTrainer(
        model=model, ref_model=ref, args=args, train_dataset=Dataset.from_list(pairs), processing_class=tok
    )
    start = time.perf_counter()
    trainer.train()
    return time.perf_counter() - start


def generation(model_dir: Path, tasks: Path, prompts: int, k: int) -> tuple[float, float]:
    """Samples/s of ``generate`` with batch 64 and with batch 1 (same prompts, K samples each, 48 new tokens)."""
    from gristmill.lib import post_training as pt
    from gristmill.testing import artifact_from_dir

    model, tok = pt.load_policy(artifact_from_dir("model", model_dir))
    rows = pt.load_prompts(tasks / "prompts.jsonl", prompts)
    speeds = []
    for batch in (64, 1):
        start = time.perf_counter()
        pt.generate(model, tok, [r["prompt"] for r in rows], k, 48, temperature=1.0, batch_size=batch)
        speeds.append(len(rows) * k / (time.perf_counter() - start))
    return speeds[0], speeds[1]


LORA = {"r": 16, "alpha": 32}
VARIANTS = ("sft-full", "sft-lora", "dpo-full", "dpo-lora")


def build_lora_models(root: Path, d_model: int, n_layers: int) -> tuple[Path, Path]:
    """The LoRA rows' model — a random-initialised Llama ``d_model`` wide — and a small untrained reward model
    (d64 L2 backbone, new score head) for the dpo variants, both with the tokenizer of ``root/tokenizer``."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from gristmill.lib.models import copy_tokenizer
    from gristmill.lib.train import ModelConfig
    from gristmill.lib.train.export import save_model_dir
    from gristmill.lib.train.model import build_model

    torch.manual_seed(0)
    heads = max(1, d_model // 64)
    wide = ModelConfig(
        d_model=d_model,
        n_layers=n_layers,
        n_heads=heads,
        n_kv_heads=max(1, heads // 2),
        d_ff=3 * d_model,
        vocab_size=512,
        max_seq_len=256,
    )
    save_model_dir(build_model(wide), root / "lora_base", tokenizer_dir=root / "tokenizer")
    small = ModelConfig(d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=128, vocab_size=512, max_seq_len=256)
    save_model_dir(build_model(small), root / "lora_rm_base", tokenizer_dir=root / "tokenizer")
    rm = AutoModelForSequenceClassification.from_pretrained(str(root / "lora_rm_base"), num_labels=1)
    rm.save_pretrained(str(root / "lora_rm"))
    copy_tokenizer(root / "lora_rm_base", root / "lora_rm")
    return root / "lora_base", root / "lora_rm"


def run_setup(args: argparse.Namespace) -> dict[str, Any]:
    """The LoRA rows' inputs in ``args.out``: tasks, tokenizer, the model and the reward model."""
    t0 = time.perf_counter()
    build_data(args.out, sft_examples=1000)
    build_lora_models(args.out, args.lora_d_model, args.lora_layers)
    return {"variant": "setup", "seconds": round(time.perf_counter() - t0, 1)}


def run_variant(args: argparse.Namespace) -> dict[str, Any]:
    """One LoRA/full variant (``args.variant``) in this process: steps/s of ``trainer.train()``, parameter counts,
    the stage's peak memory and the peak RSS after the imports (the baseline both variants share)."""
    import peft  # noqa: F401 - imported by every variant before the baseline: not counted as LoRA's memory
    import torch
    import trl  # noqa: F401

    from gristmill.testing import artifact_from_dir, run_stage
    from gristmill_plugins.dpo import SPEC as DPO_SPEC
    from gristmill_plugins.sft import SPEC as SFT_SPEC

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    stage, mode = args.variant.split("-")
    base, tasks = artifact_from_dir("model", args.out / "lora_base"), artifact_from_dir("dataset", args.out / "tasks")
    cfg: dict[str, Any] = {
        "max_steps": args.steps,
        "batch_size": 8,
        "lr": 5e-4,
        "max_length": 256,
        "eval_file": None,
        "max_new_tokens": 16,
        "min_loss_drop": 0.0,
        **({"peft": LORA} if mode == "lora" else {}),
    }
    if stage == "sft":
        result, _ = run_stage(SFT_SPEC, args.out / args.variant, cfg, {"model": base, "dataset": tasks})
    else:
        cfg.update(prompts_per_round=args.prompts, samples_per_prompt=args.k, scorer="reward_model")
        inputs = {"policy": base, "prompts": tasks, "reward_model": artifact_from_dir("model", args.out / "lora_rm")}
        result, _ = run_stage(DPO_SPEC, args.out / args.variant, cfg, inputs)
    c = result.counts
    return {
        "variant": args.variant,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "steps_per_second": c["steps"] / c["train_seconds"],
        "trainable_params": c["trainable_params"],
        "total_params": c["total_params"],
        "peak_memory_mb": c["peak_memory_mb"],
        "baseline_mb": round(baseline, 1),
        "pairs": c.get("pairs", 0),
    }


def _child(args: argparse.Namespace, variant: str, work: Path) -> dict[str, Any]:
    """Run ``post_training.py --variant VARIANT`` in a fresh process; its ``RESULT`` line."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--variant", variant, "--out", str(work)]
    cmd += ["--steps", str(args.steps), "--prompts", str(args.prompts), "--k", str(args.k)]
    cmd += ["--threads", str(args.threads), "--lora-d-model", str(args.lora_d_model)]
    proc = subprocess.run([*cmd, "--lora-layers", str(args.lora_layers)], capture_output=True, text=True, check=False)
    found = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not found:
        raise SystemExit(f"variant {variant} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(found[-1].removeprefix("RESULT "))


def lora_rows(work: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The data and models (a ``setup`` child), then every variant of :data:`VARIANTS`, each in a fresh process.

    Each variant in its own process, so that what earlier variants left allocated (allocator caches, the reference
    copy) cannot inflate a later one's peak; the stage's CPU peak is the process's ``VmHWM`` reset at the start of
    training."""
    _child(args, "setup", work)
    return [_child(args, variant, work) for variant in VARIANTS]


def _states_mb(row: dict[str, Any], reference_copy: bool = False) -> float:
    """fp32 weights (twice with a reference copy) + gradients and AdamW's two moments of the trainable ones."""
    weights = row["total_params"] * (2 if reference_copy else 1)
    return (4 * weights + 12 * row["trainable_params"]) / 2**20


def lora_table(rows: list[dict[str, Any]], args: argparse.Namespace) -> list[str]:
    """The LoRA ÷ full table: steps/s, trainable parameters and peak memory of the sft and dpo stages."""
    by = {r["variant"]: r for r in rows}
    cpu = rows[0]["device"] == "cpu"
    total = by["sft-full"]["total_params"]
    lines = [
        f"\nLoRA (r {LORA['r']}, alpha {LORA['alpha']}) vs full fine-tuning: random-init Llama d{args.lora_d_model} "
        f"L{args.lora_layers}, {total / 1e6:.1f}M parameters; {rows[0]['device']}, each variant in its own process",
        f"{'what':<50}{'full':>12}{'LoRA':>12}{'LoRA/full':>10}",
    ]
    memory = "peak RSS" if cpu else "CUDA max allocated"
    for stage in ("sft", "dpo"):
        full, lora = by[f"{stage}-full"], by[f"{stage}-lora"]
        values = [
            ("steps/s (trainer.train)", full["steps_per_second"], lora["steps_per_second"], ".3f"),
            ("trainable params", full["trainable_params"], lora["trainable_params"], ",.0f"),
            ("weights+grads+AdamW MB (computed)", _states_mb(full, stage == "dpo"), _states_mb(lora), ".1f"),
            (f"peak memory MB ({memory})", full["peak_memory_mb"], lora["peak_memory_mb"], ".1f"),
        ]
        if cpu:
            above = [r["peak_memory_mb"] - r["baseline_mb"] for r in (full, lora)]
            values.append(("peak RSS above the imports MB", above[0], above[1], ".1f"))
        for label, f, lo, fmt in values:
            lines.append(f"{f'LoRA vs full: {stage} {label}':<50}{f:>12{fmt}}{lo:>12{fmt}}{lo / f:>10.3f}")
    lines.append(
        f"{args.steps} steps, batch 8; dpo: {args.prompts} prompts × {args.k} samples → {by['dpo-full']['pairs']} "
        f"pairs (full keeps a reference copy, LoRA none); import baseline {by['sft-full']['baseline_mb']:.0f} MB RSS"
    )
    return lines


def compare_with_trl(work: Path, args: argparse.Namespace) -> list[str]:
    """The sft/dpo stages vs bare TRL and batched vs single generation; returns the table's lines."""
    from gristmill.testing import artifact_from_dir, run_stage
    from gristmill_plugins.dpo import SPEC as DPO_SPEC
    from gristmill_plugins.sft import SPEC as SFT_SPEC

    t0 = time.perf_counter()
    model_dir, tasks = build_policy(work, sft_examples=1000)
    print(f"setup: tiny policy pretrained in {time.perf_counter() - t0:.1f}s ({work})")
    batch, lr = 8, 5e-4
    model_art, tasks_art = artifact_from_dir("model", model_dir), artifact_from_dir("dataset", tasks)

    bare_sft(model_dir, tasks, 2, batch, lr, work)  # warm-up: imports, first-call allocations
    t0 = time.perf_counter()
    sft, _ = run_stage(
        SFT_SPEC,
        work / "sft",
        {
            "max_steps": args.steps,
            "batch_size": batch,
            "lr": lr,
            "max_length": 256,
            "eval_examples": 32,
            "max_new_tokens": 48,
        },
        {"model": model_art, "dataset": tasks_art},
    )
    sft_total = time.perf_counter() - t0
    bare_sft_s = bare_sft(model_dir, tasks, args.steps, batch, lr, work)
    stage_sft_sps = sft.counts["steps_per_second"]
    bare_sft_sps = args.steps / bare_sft_s

    t0 = time.perf_counter()
    dpo, dpo_art = run_stage(
        DPO_SPEC,
        work / "dpo",
        {
            "prompts_per_round": args.prompts,
            "samples_per_prompt": args.k,
            "max_new_tokens": 48,
            "max_steps": args.steps,
            "batch_size": batch,
            "lr": lr,
            "eval_examples": 32,
            "max_length": 256,
        },
        {"policy": artifact_from_dir("model", work / "sft"), "prompts": tasks_art},
    )
    dpo_total = time.perf_counter() - t0
    pairs = [json.loads(line) for line in (dpo_art.path / "dpo_pairs.jsonl").read_text().splitlines()]
    bare_dpo_s = bare_dpo(work / "sft", pairs, args.steps, batch, lr, work)
    stage_dpo_sps = args.steps / dpo.counts["train_seconds"]
    bare_dpo_sps = args.steps / bare_dpo_s

    batched, single = generation(work / "sft", tasks, args.prompts, args.k)
    return [
        f"\n{'what':<44}{'gristmill':>12}{'bare':>12}{'ratio':>8}",
        f"{'SFT steps/s (trainer.train)':<44}{stage_sft_sps:>12.3f}{bare_sft_sps:>12.3f}"
        f"{stage_sft_sps / bare_sft_sps:>8.3f}",
        f"{'DPO steps/s (trainer.train)':<44}{stage_dpo_sps:>12.3f}{bare_dpo_sps:>12.3f}"
        f"{stage_dpo_sps / bare_dpo_sps:>8.3f}",
        f"{'generation samples/s: batch 64 vs batch 1':<44}{batched:>12.2f}{single:>12.2f}{batched / single:>8.2f}",
        f"\nstage totals: sft {sft_total:.1f}s ({args.steps} steps, held-out scoring before/after, save, reload); "
        f"dpo {dpo_total:.1f}s (sampling {args.prompts}×{args.k}, {len(pairs)} pairs, {args.steps} steps, "
        "held-out scoring, save)",
        f"threads {args.threads}; SFT loss {sft.counts['first_loss']:.3f}→{sft.counts['final_loss']:.3f}; "
        f"DPO loss → {dpo.counts['final_loss']:.3f}",
    ]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps of each SFT/DPO run")
    parser.add_argument("--prompts", type=int, default=16, help="prompts for DPO sampling and the generation test")
    parser.add_argument("--k", type=int, default=8, help="samples per prompt")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--lora-only", action="store_true", help="only the LoRA vs full table (no pretraining)")
    only.add_argument("--no-lora", action="store_true", help="skip the LoRA vs full table")
    parser.add_argument("--lora-d-model", type=int, default=512, help="width of the LoRA rows' model")
    parser.add_argument("--lora-layers", type=int, default=4, help="layers of the LoRA rows' model")
    child = parser.add_argument_group("one LoRA/full variant (run by this script in a child process)")
    child.add_argument("--variant", choices=("setup", *VARIANTS), help="run this and print RESULT {json}")
    child.add_argument("--out", type=Path, help="the LoRA rows' folder (setup writes it, the variants read it)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.variant:
        import torch

        torch.set_num_threads(args.threads)
        result = run_setup(args) if args.variant == "setup" else run_variant(args)
        print("RESULT " + json.dumps(result), flush=True)
        return
    work = Path(tempfile.mkdtemp(prefix="gristmill-bench-post-"))
    lora: list[dict[str, Any]] = []
    trl_lines: list[str] = []
    try:
        if not args.no_lora:  # first: this process must still be small (see lora_rows)
            lora = lora_rows(work / "lora", args)
        if not args.lora_only:
            import torch

            torch.set_num_threads(args.threads)
            trl_lines = compare_with_trl(work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for line in trl_lines + (lora_table(lora, args) if lora else []):
        print(line)


if __name__ == "__main__":
    main()
