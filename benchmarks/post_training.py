"""Post-training throughput: the ``sft`` and ``dpo`` stages vs TRL's trainers called bare, and batched vs
one-prompt-at-a-time generation (what ``rejection_sampling`` and ``dpo`` do to sample).

Everything is measured in this run on the same model and data: a small Llama pretrained here on the demo's
arithmetic problems (plain text), then

* SFT: ``sft`` stage (max_steps N) vs ``SFTTrainer`` with the same SFTConfig on the same conversations;
* DPO: ``dpo`` stage (one round: sample, score, train N steps) vs ``DPOTrainer`` on the pairs the stage built;
* generation: ``gristmill.lib.post_training.generate`` with batch 64 vs batch 1 (K samples per prompt).

Ratios > 1 mean gristmill is faster. Training ratios compare optimizer steps per second of the training loop
(wall time of ``trainer.train()``); the stage totals (loading, held-out scoring, saving, reloading) are printed too.

    .venv/bin/python benchmarks/post_training.py [--steps 30] [--prompts 16] [--k 8] [--threads 2]
"""

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def build_policy(root: Path, sft_examples: int) -> tuple[Path, Path]:
    """Arithmetic tasks → BPE tokenizer (digits split) → packed tokens → a d128 L4 Llama (150 steps)."""
    from gristmill.lib.documents import DocumentWriter
    from gristmill.lib.tokens import TokenDataset
    from gristmill.lib.train import ModelConfig, TrainConfig, train
    from gristmill.lib.train.export import save_model_dir
    from gristmill.testing import artifact_from_dir, run_stage
    from gristmill_plugins import tokenizer as tokenizer_stage
    from gristmill_plugins import tokens as tokens_stage
    from gristmill_plugins.demo_data.tasks import TASKS_SPEC

    run_stage(TASKS_SPEC, root / "tasks", {"sft_examples": sft_examples, "prompts": 256, "eval_examples": 64})
    with DocumentWriter(root / "docs") as writer:
        for i, line in enumerate((root / "tasks" / "sft.jsonl").read_text().splitlines()):
            m = json.loads(line)["messages"]
            writer.write({"id": str(i), "text": f"{m[0]['content']} {m[1]['content']}", "metadata": {}})
    docs = artifact_from_dir("documents", root / "docs")
    run_stage(tokenizer_stage.SPEC, root / "tokenizer", {"vocab_size": 512}, {"documents": docs})
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps of each SFT/DPO run")
    parser.add_argument("--prompts", type=int, default=16, help="prompts for DPO sampling and the generation test")
    parser.add_argument("--k", type=int, default=8, help="samples per prompt")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()

    import torch

    from gristmill.testing import artifact_from_dir, run_stage
    from gristmill_plugins.dpo import SPEC as DPO_SPEC
    from gristmill_plugins.sft import SPEC as SFT_SPEC

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="gristmill-bench-post-"))
    try:
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
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{'what':<44}{'gristmill':>12}{'bare':>12}{'ratio':>8}")
    print(
        f"{'SFT steps/s (trainer.train)':<44}{stage_sft_sps:>12.3f}{bare_sft_sps:>12.3f}"
        f"{stage_sft_sps / bare_sft_sps:>8.3f}"
    )
    print(
        f"{'DPO steps/s (trainer.train)':<44}{stage_dpo_sps:>12.3f}{bare_dpo_sps:>12.3f}"
        f"{stage_dpo_sps / bare_dpo_sps:>8.3f}"
    )
    print(f"{'generation samples/s: batch 64 vs batch 1':<44}{batched:>12.2f}{single:>12.2f}{batched / single:>8.2f}")
    print(
        f"\nstage totals: sft {sft_total:.1f}s ({args.steps} steps, held-out scoring before/after, save, reload); "
        f"dpo {dpo_total:.1f}s (sampling {args.prompts}×{args.k}, {len(pairs)} pairs, {args.steps} steps, "
        "held-out scoring, save)"
    )
    print(
        f"threads {args.threads}; SFT loss {sft.counts['first_loss']:.3f}→{sft.counts['final_loss']:.3f}; "
        f"DPO loss → {dpo.counts['final_loss']:.3f}"
    )


if __name__ == "__main__":
    main()
