"""``sft``: a ``model`` + conversational ``dataset`` → the model fine-tuned on the assistant turns (TRL ``SFTTrainer``).

The model is any causal-LM folder (:mod:`gristmill.lib.models`: Llama, Qwen2, Mistral, Gemma-2, Phi-3, GPT-NeoX,
GPT-2 …), loaded in its own dtype (``dtype``), fully or with LoRA (``peft``). Each example is rendered with the
model's own chat template (or the ``chat_template`` option's) in one of three ways, shown as ``loss_format`` in the
metadata with a tokenized example and its loss mask:

- ``assistant_only`` — the template has ``{% generation %}…{% endgeneration %}`` blocks (gristmill's tokenizer
  writes them): every assistant turn and its end-of-turn token carry loss (``SFTConfig(assistant_only_loss=True)``);
- ``prompt_completion`` — a template as models ship them (ChatML, Llama-3, Gemma, Mistral, Phi-3), without such
  blocks: TRL's conversational prompt/completion format — the conversation up to the last assistant turn is the
  prompt, rendered with ``add_generation_prompt=True``; the last assistant turn is the completion and the only loss;
- ``plain`` — a base model with no chat template: TRL's non-conversational prompt/completion text (the turns as
  paragraphs; the reply + eos carries the loss), the same rendering the generation stages use for it.

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
from typing import Any, Literal

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
from gristmill.lib.post_training import DatasetError, LoraTrainingConfig, conversation, dataset_file

GENERATION_BLOCK = re.compile(r"\{%-?\s*generation\s*-?%\}")
LossFormat = Literal["assistant_only", "prompt_completion", "plain"]


class SFTStageConfig(LoraTrainingConfig):
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


def loss_format(tokenizer: Any) -> LossFormat:
    """How examples are rendered and masked for this tokenizer (see the module docstring)."""
    template = tokenizer.chat_template or ""
    if not template:
        return "plain"
    return "assistant_only" if GENERATION_BLOCK.search(template) else "prompt_completion"


def trainer_row(messages: list[dict[str, str]], fmt: LossFormat) -> dict[str, Any]:
    """One example in the TRL format ``fmt`` trains on."""
    from gristmill.lib.models.chat import plain_pair

    if fmt == "assistant_only":
        return {"messages": messages}
    if fmt == "prompt_completion":
        return {"prompt": messages[:-1], "completion": messages[-1:]}
    return plain_pair(messages[:-1], messages[-1:])


def _masked_ids(tokenizer: Any, messages: list[dict[str, str]], fmt: LossFormat) -> list[int]:
    """The loss mask of one example as the trainer tokenizes it (before truncation): 1 where a token carries loss."""
    from gristmill.lib.models.chat import encode

    if fmt == "assistant_only":
        out = tokenizer.apply_chat_template(
            messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        return list(out["assistant_masks"])
    if fmt == "prompt_completion":
        prompt, full = encode(tokenizer, messages[:-1], add_generation_prompt=True), encode(tokenizer, messages)
    else:  # plain text; TRL appends eos to the completion
        row = trainer_row(messages, fmt)
        prompt = tokenizer(row["prompt"])["input_ids"]
        full = tokenizer(row["prompt"] + row["completion"])["input_ids"] + [tokenizer.eos_token_id]
    return [0] * len(prompt) + [1] * max(0, len(full) - len(prompt))


def length_report(
    tokenizer: Any, rows: list[tuple[int, dict[str, Any]]], limit: int, path: Path, fmt: LossFormat
) -> tuple[list[dict[str, Any]], int, int]:
    """(rows to train on, truncated, dropped): an example longer than ``limit`` is cut there by TRL; if none of
    its loss tokens lie before the cut it is dropped here. An example with no loss tokens at all, or one the chat
    template refuses (Gemma's has no system role), is an error naming ``file:line``."""
    keep, truncated, dropped = [], 0, 0
    for lineno, row in rows:
        try:
            mask = _masked_ids(tokenizer, row["messages"], fmt)
        except Exception as exc:  # noqa: BLE001 - jinja's TemplateError (raise_exception in shipped templates)
            raise DatasetError(f"{path}:{lineno}: the chat template refuses this conversation: {exc}") from exc
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
    fmt: LossFormat = "assistant_only",
) -> Any:
    """The ``SFTTrainer`` the stage runs (exposed so tests can inspect its tokenized ``train_dataset``)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from gristmill.lib.models.lora import peft_config
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
            assistant_only_loss=fmt == "assistant_only",
            completion_only_loss=fmt != "assistant_only",
            logging_steps=max(5, estimate // 100),
        )
    )
    return SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list([trainer_row(r["messages"], fmt) for r in rows]),
        processing_class=tokenizer,
        callbacks=[stage_callback(ctx, history)],
        peft_config=peft_config(config.peft, model, "CAUSAL_LM", "sft") if config.peft else None,
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
    from gristmill.lib.models.chat import encode

    return len(encode(tokenizer, prompt, add_generation_prompt=True)) + new_tokens <= context


def _score(model: Any, tokenizer: Any, rows: list[dict[str, Any]], config: SFTStageConfig, device: Any) -> dict:
    from gristmill.lib.post_training import score_accuracy

    model.to(device)
    return score_accuracy(model, tokenizer, rows, max_new_tokens=config.max_new_tokens)


# ---------------------------------------------------------------- stage


def run_sft(ctx: StageContext, config: SFTStageConfig, inputs: dict[str, Artifact]) -> StageResult:
    """Fine-tune the model on the dataset's conversations with assistant-only loss."""
    from gristmill.engine.launch import process_state
    from gristmill.lib.post_training import context_length, generate, load_policy, load_prompts, run_trainer
    from gristmill.lib.verify import is_correct

    model_art, dataset = inputs["model"], inputs["dataset"]
    state = process_state()
    path = dataset_file(dataset, config.file)
    examples = read_examples(path, config.max_examples)
    model, tokenizer = load_policy(model_art, True, config.dtype, config.chat_template)
    fmt = loss_format(tokenizer)
    context = context_length(model) or config.max_length or 2048
    if config.max_length is not None and config.max_length > context:
        raise SFTInputError(
            f"sft: max_length {config.max_length} exceeds the {context}-token context of {model_art.describe()}"
        )
    max_length = config.max_length or context
    rows, truncated, dropped = length_report(tokenizer, examples, max_length, path, fmt)
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
    trainer = build_trainer(ctx, config, model, tokenizer, rows, max_length, history, fmt)
    mask_example = loss_mask_markdown(tokenizer, trainer.train_dataset[0])
    run = run_trainer(ctx, trainer, history=history, tokenizer_from=model_art, tokenizer=tokenizer, lora=config.peft)
    if run is None:
        return StageResult()

    ctx.progress(0, None, "saved; reloading the folder with AutoModelForCausalLM")
    tuned, tok = load_policy(Artifact("model", ctx.output_dir, "output", "output"), True, config.dtype)
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
        "loss_format": fmt,
        "model_type": str(tuned.config.model_type),
        "dtype": str(tuned.dtype).removeprefix("torch."),
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
