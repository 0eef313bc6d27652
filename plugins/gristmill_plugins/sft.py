"""``sft``: a ``model`` + conversational ``dataset`` → the model fine-tuned on the assistant turns (TRL ``SFTTrainer``).

Each example is rendered with the tokenizer's own chat template (the one in the model folder) and trained with
assistant-only loss (``SFTConfig(assistant_only_loss=True)``): only the tokens inside the template's
``{% generation %}…{% endgeneration %}`` blocks — assistant replies and their ``<|im_end|>`` — carry loss; system
and user turns and the role headers are context. A template without those blocks is an error (TRL would otherwise
swap in a template of its own or silently train on every token).

Rows come from :func:`gristmill.lib.post_training.conversation`: ``{"messages": [...]}``, prompt/completion message
lists, or GSM8K's ``{"question", "answer"}`` — so a raw single-file source such as
``gsm8k_train_first2000.jsonl`` works as the dataset. Examples longer than ``max_length`` tokens are cut at
``max_length`` (counted as ``truncated``); one whose assistant tokens all lie past the cut would train on nothing
and is dropped (``dropped_too_long``).

When the dataset has an ``eval_file`` (``{"prompt", "answer"}`` rows, e.g. the demo's ``eval.jsonl``), greedy
held-out accuracy (:func:`gristmill.lib.post_training.score_accuracy`) is measured before training and again on the
saved output folder, reloaded with ``AutoModelForCausalLM`` — a folder that cannot generate never becomes an
artifact.
"""

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from gristmill import (
    TRAINING,
    Artifact,
    Markdown,
    StageContext,
    StageResult,
    StageSpec,
    Table,
    hookimpl,
)
from gristmill.checks import loss_decreased_check
from gristmill.errors import StageInputError
from gristmill.lib.jsonl import read_jsonl
from gristmill.lib.post_training import DatasetError, TrainingConfig, conversation, dataset_file

GENERATION_BLOCK = re.compile(r"\{%-?\s*generation\s*-?%\}")


class SFTStageConfig(TrainingConfig):
    """Options of the ``sft`` stage (plus the shared training options of :class:`TrainingConfig`)."""

    file: str = Field("sft.jsonl", description="Conversations JSONL of the dataset (a single-file source: any).")
    max_examples: int | None = Field(None, ge=1, description="Train on the first N examples; None: all.")
    max_length: int | None = Field(
        None, ge=8, description="Tokens per example (packed row when packing); None: the model's context."
    )
    packing: bool = Field(False, description="Pack examples into max_length rows (TRL best-fit decreasing).")
    warmup_ratio: float = Field(0.03, ge=0, lt=1, description="Fraction of the steps spent warming the LR up.")
    eval_file: str | None = Field(
        "eval.jsonl", description="Held-out {prompt, answer} JSONL of the dataset, scored when present (None: never)."
    )
    eval_examples: int = Field(100, ge=1, description="Score at most this many held-out prompts.")
    max_new_tokens: int = Field(64, ge=1, description="Tokens generated per held-out prompt (greedy).")


class SFTInputError(StageInputError):
    """An input the stage cannot use; the message names the file (and line), field or folder."""


# ---------------------------------------------------------------- inputs


def read_examples(path: Path, limit: int | None = None) -> list[tuple[int, dict[str, Any]]]:
    """``(line, conversation row)`` of an SFT JSONL file; bad rows raise :class:`DatasetError` naming file:line."""
    rows = []
    for lineno, row in read_jsonl(path, DatasetError):
        rows.append((lineno, conversation(row, f"{path}:{lineno}")))
        if limit and len(rows) >= limit:
            break
    if not rows:
        raise DatasetError(f"{path}: no examples")
    return rows


def check_chat_template(tokenizer: Any, model_artifact: Artifact) -> None:
    """Assistant-only loss needs ``{% generation %}`` blocks in the template; say which folder lacks them."""
    template = tokenizer.chat_template or ""
    if not GENERATION_BLOCK.search(template):
        raise SFTInputError(
            f"sft: the chat template of {model_artifact.describe()} has no {{% generation %}}…{{% endgeneration %}} "
            "block around the assistant turns, which assistant-only loss needs (the tokenizer stage writes one; "
            "see its chat_template option)"
        )


def length_report(
    tokenizer: Any, rows: list[tuple[int, dict[str, Any]]], limit: int, path: Path
) -> tuple[list[dict[str, Any]], int, int]:
    """(rows to train on, truncated, dropped): an example longer than ``limit`` is cut there by TRL; if none of
    its assistant tokens lie before the cut it is dropped here. An example with no assistant tokens at all means
    the template does not mark them: an error naming ``file:line``."""
    keep, truncated, dropped = [], 0, 0
    for lineno, row in rows:
        out = tokenizer.apply_chat_template(
            row["messages"], tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        mask = out["assistant_masks"]
        if 1 not in mask:
            raise DatasetError(f"{path}:{lineno}: the chat template marks no assistant tokens in this example")
        if len(mask) > limit:
            if 1 not in mask[:limit]:
                dropped += 1
                continue
            truncated += 1
        keep.append(row)
    return keep, truncated, dropped


def _eval_path(dataset: Artifact, name: str | None, train_path: Path) -> Path | None:
    if not name:
        return None
    matches = [p for p in dataset.glob(name) if p != train_path]
    return matches[0] if matches else None


# ---------------------------------------------------------------- trainer


def build_trainer(
    ctx: StageContext,
    config: SFTStageConfig,
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    max_length: int,
    history: list[dict[str, float]],
) -> Any:
    """The ``SFTTrainer`` the stage runs (exposed so tests can inspect its tokenized ``train_dataset``)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from gristmill.lib.post_training import stage_callback, training_args

    per_step = config.batch_size * config.gradient_accumulation_steps
    estimate = config.max_steps or max(1, math.ceil(len(rows) / per_step * config.epochs))
    model.config.use_cache = False  # packed rows carry position_ids; training never uses the KV cache anyway
    args = SFTConfig(
        **training_args(
            ctx,
            config,
            max_length=max_length,
            packing=config.packing,
            assistant_only_loss=True,
            logging_steps=max(5, estimate // 100),
        )
    )
    return SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list([{"messages": r["messages"]} for r in rows]),
        processing_class=tokenizer,
        callbacks=[stage_callback(ctx, history)],
    )


def loss_mask_markdown(tokenizer: Any, example: Mapping[str, Any]) -> Markdown:
    """One tokenized training example with its loss mask, as a table of runs: tokens that carry loss (the
    assistant replies with their end-of-turn token) and context tokens that do not."""
    ids, labels = list(example["input_ids"]), list(example["labels"])
    if example.get("seq_lengths"):  # a packed row: show its first example only
        n = int(example["seq_lengths"][0])
        ids, labels = ids[:n], labels[:n]
    runs: list[tuple[bool, list[int]]] = []
    for tok, lab in zip(ids, labels, strict=True):
        on = lab != -100
        if runs and runs[-1][0] == on:
            runs[-1][1].append(tok)
        else:
            runs.append((on, [tok]))
    lines = [
        f"One training example: {len(ids)} tokens, {sum(lab != -100 for lab in labels)} with loss.",
        "",
        "| loss | tokens | text (↵ = newline) |",
        "|---|---:|---|",
    ]
    for on, toks in runs:
        text = tokenizer.decode(toks, skip_special_tokens=False)
        text = text.replace("\n", "↵").replace("|", "\\|").replace("`", "'")
        lines.append(f"| {'**yes**' if on else 'no'} | {len(toks)} | `{text}` |")
    return Markdown("\n".join(lines))


def _fits(tokenizer: Any, prompt: list[dict[str, str]], new_tokens: int, context: int) -> bool:
    ids = tokenizer.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True, return_dict=True)
    return len(ids["input_ids"]) + new_tokens <= context


def _score(model: Any, tokenizer: Any, rows: list[dict[str, Any]], config: SFTStageConfig, device: Any) -> dict:
    from gristmill.lib.post_training import score_accuracy

    model.to(device)
    return score_accuracy(model, tokenizer, rows, max_new_tokens=config.max_new_tokens)


# ---------------------------------------------------------------- stage


def run_sft(ctx: StageContext, config: SFTStageConfig, inputs: dict[str, Artifact]) -> StageResult:
    """Fine-tune the model on the dataset's conversations with assistant-only loss."""
    from gristmill.engine.launch import process_state
    from gristmill.lib.post_training import generate, load_policy, load_prompts, run_trainer
    from gristmill.lib.verify import is_correct

    model_art, dataset = inputs["model"], inputs["dataset"]
    state = process_state()
    path = dataset_file(dataset, config.file)
    examples = read_examples(path, config.max_examples)
    model, tokenizer = load_policy(model_art, for_generation=True)
    check_chat_template(tokenizer, model_art)
    context = int(model.config.max_position_embeddings)
    if config.max_length is not None and config.max_length > context:
        raise SFTInputError(
            f"sft: max_length {config.max_length} exceeds the {context}-token context of {model_art.describe()}"
        )
    max_length = config.max_length or context
    rows, truncated, dropped = length_report(tokenizer, examples, max_length, path)
    if not rows:
        raise SFTInputError(f"sft: every example of {path} has its assistant turn beyond max_length {max_length}")
    if truncated or dropped:
        ctx.log.warning(
            "%s: %d examples longer than %d tokens truncated, %d dropped (no assistant token left)",
            ctx.instance,
            truncated,
            max_length,
            dropped,
        )

    eval_path = _eval_path(dataset, config.eval_file, path)
    eval_rows: list[dict[str, Any]] = []
    eval_too_long = 0
    if eval_path is not None:
        candidates = load_prompts(eval_path, config.eval_examples)
        eval_rows = [r for r in candidates if _fits(tokenizer, r["prompt"], config.max_new_tokens, context)]
        eval_too_long = len(candidates) - len(eval_rows)
    before = None
    if eval_rows and state.is_main_process:
        ctx.progress(0, None, f"scoring {len(eval_rows)} held-out prompts before training")
        before = _score(model, tokenizer, eval_rows, config, state.device)

    tokenizer.padding_side = "right"
    history: list[dict[str, float]] = []
    trainer = build_trainer(ctx, config, model, tokenizer, rows, max_length, history)
    mask_example = loss_mask_markdown(tokenizer, trainer.train_dataset[0])
    run = run_trainer(ctx, trainer, history=history, tokenizer_from=model_art)
    if run is None:
        return StageResult()

    ctx.progress(0, None, "saved; reloading the folder with AutoModelForCausalLM")
    tuned, tok = load_policy(Artifact("model", ctx.output_dir, "output", "output"), for_generation=True)
    after = _score(tuned, tok, eval_rows, config, state.device) if eval_rows else None
    if after is not None:
        samples = after["samples"]
    else:  # no held-out set: show what the tuned model says to a few training prompts
        prompts = [r for r in rows if _fits(tok, r["messages"][:-1], config.max_new_tokens, context)][:5]
        tuned.to(state.device)
        outs = generate(tuned, tok, [r["messages"][:-1] for r in prompts], max_new_tokens=config.max_new_tokens)
        samples = [
            {
                "question": r["messages"][-2]["content"],
                "completion": o[0],
                "answer": r["answer"],
                "correct": is_correct(o[0], r["answer"]) if r["answer"] is not None else None,
            }
            for r, o in zip(prompts, outs, strict=True)
        ]

    counts: dict[str, int | float] = {
        "examples": len(rows),
        "truncated": truncated,
        "dropped_too_long": dropped,
        **run.counts(),
        "steps_per_second": round(run.steps / run.seconds, 3) if run.seconds > 0 else math.nan,
    }
    if before is not None and after is not None:
        counts |= {
            "eval_examples": len(eval_rows),
            "eval_too_long": eval_too_long,
            "accuracy_before": round(before["accuracy"], 4),
            "accuracy_after": round(after["accuracy"], 4),
        }
    metadata: dict[str, Any] = {
        "loss_curve": run.curve("sft loss curve", [("loss", "train (assistant tokens)")], ylabel="loss (nats/token)"),
        "samples": Table(samples),
        "loss_mask": mask_example,
        "files": [path.name] + ([eval_path.name] if eval_rows and eval_path else []),
    }
    return StageResult(counts=counts, metadata=metadata)


SPEC = StageSpec(
    name="sft",
    version="1",
    inputs={"model": "model", "dataset": "dataset"},
    output="model",
    config=SFTStageConfig,
    run=run_sft,
    description="Supervised fine-tuning on conversations with assistant-only loss (TRL SFTTrainer).",
    policy=TRAINING,
    checks=(loss_decreased_check(),),
    group="training",
)


@hookimpl
def gristmill_register_stages() -> list[StageSpec]:
    return [SPEC]
