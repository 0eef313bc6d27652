"""``eval_accuracy``: held-out accuracy of every model in a post-training chain, on one verifiable eval set.

Inputs: ``models`` — a list of ``model`` artifacts (a round-partitioned stage in the list contributes every round,
in order), and ``tasks`` — a dataset with the held-out file (``eval.jsonl``: ``{"prompt": [messages], "answer"}``;
GSM8K's ``{"question", "answer"}`` works too). Every model answers every question greedily through its chat
template; :func:`gristmill.lib.verify.is_correct` checks the final answer exactly.

Output: a ``report`` artifact, ``report.json`` (one row per model: asset, round, artifact id, accuracy, correct,
total) and ``completions.jsonl`` (every model's answer to every question). Metadata: the accuracy table, a plot of
accuracy along the chain and a few answers per model.
"""

import json
import time
from pathlib import Path
from typing import Any

from pydantic import Field

from gristmill import Artifact, Input, StageConfig, StageContext, StageResult, StageSpec, Table, hookimpl
from gristmill.errors import StageInputError
from gristmill.lib.jsonl import JsonlWriter
from gristmill.lib.models.options import ModelOptions
from gristmill.lib.plots import figure_markdown, small_figure
from gristmill.lib.verify import is_correct


class EvalAccuracyConfig(StageConfig, ModelOptions):
    """Options of the ``eval_accuracy`` stage."""

    file: str = Field("eval.jsonl", description="The held-out file in the tasks dataset.")
    max_examples: int | None = Field(None, ge=1, description="Score only the first N questions (None: all).")
    max_new_tokens: int = Field(64, ge=1, description="Tokens each model may generate per answer.")
    batch_size: int = Field(64, ge=1, description="Questions generated in one batch.")


class EvalInputError(StageInputError):
    """An input that is not a causal LM, or no questions to ask."""


def model_label(art: Artifact) -> str:
    """``"sft"``, or ``"dpo[round-002]"`` for a partitioned artifact."""
    asset = str(art.manifest.get("asset", art.kind))
    partition = art.manifest.get("partition")
    return f"{asset}[{partition}]" if partition else asset


def _is_causal_lm(art: Artifact) -> bool:
    try:
        config = json.loads((art.path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True  # open_model_artifact reports the broken file by name
    return not any(a.endswith("ForSequenceClassification") for a in config.get("architectures") or [])


def _plot(rows: list[dict[str, Any]]) -> Any:
    fig, ax = small_figure()
    labels = [r["model"] for r in rows]
    values = [100 * r["accuracy"] for r in rows]
    ax.plot(range(len(rows)), values, "o-", ms=4)
    for x, v in enumerate(values):
        ax.annotate(f"{v:.1f}", (x, v), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=7)
    ax.set_xticks(range(len(rows)), labels, rotation=25, ha="right", fontsize=7)
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_ylim(0, max(100.0, *values) if values else 100.0)
    ax.grid(alpha=0.3)
    return figure_markdown(fig, "held-out accuracy along the chain")


def run_eval_accuracy(ctx: StageContext, config: EvalAccuracyConfig, inputs: dict[str, Any]) -> StageResult:
    """Greedy held-out accuracy of each model; a report with a table and a plot."""
    from gristmill.lib import post_training as pt

    models: list[Artifact] = list(inputs["models"])
    not_lm = [m.describe() for m in models if not _is_causal_lm(m)]
    if not_lm:
        raise EvalInputError(f"eval_accuracy: not causal language models (reward models?): {', '.join(not_lm)}")
    path = pt.dataset_file(inputs["tasks"], config.file)
    questions = pt.load_prompts(path, config.max_examples)
    missing = [i for i, q in enumerate(questions) if q["answer"] is None]
    if missing:
        raise EvalInputError(f"{path}: {len(missing)} question(s) without an 'answer' (first: row {missing[0] + 1})")
    rows: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    with JsonlWriter(ctx.output_dir / "completions.jsonl") as out:
        for i, art in enumerate(models):
            label = model_label(art)
            started = time.monotonic()
            model, tokenizer = pt.load_policy(art, True, config.dtype, config.chat_template)
            completions = pt.generate(
                model,
                tokenizer,
                [q["prompt"] for q in questions],
                1,
                config.max_new_tokens,
                batch_size=config.batch_size,
            )
            verdicts = [is_correct(c[0], q["answer"]) for c, q in zip(completions, questions, strict=True)]
            for q, c, ok in zip(questions, completions, verdicts, strict=True):
                out.write(
                    {
                        "model": label,
                        "question": q["prompt"][-1]["content"],
                        "answer": q["answer"],
                        "completion": c[0],
                        "correct": ok,
                    }
                )
            correct = sum(verdicts)
            rows.append(
                {
                    "model": label,
                    "artifact": art.id,
                    "accuracy": correct / len(questions),
                    "correct": correct,
                    "total": len(questions),
                }
            )
            samples.extend(
                {
                    "model": label,
                    "question": q["prompt"][-1]["content"],
                    "completion": c[0],
                    "answer": q["answer"],
                    "correct": ok,
                }
                for q, c, ok in list(zip(questions, completions, verdicts, strict=True))[:2]
            )
            ctx.log.info(
                "%s: %s accuracy %.3f (%d/%d, %.1fs)",
                ctx.instance,
                label,
                rows[-1]["accuracy"],
                correct,
                len(questions),
                time.monotonic() - started,
            )
            ctx.progress(i + 1, len(models), label, every_s=0.0)
    Path(ctx.output_dir / "report.json").write_text(
        json.dumps({"eval_file": str(path), "models": rows}, indent=2), encoding="utf-8"
    )
    counts: dict[str, int | float] = {"models": len(rows), "questions": len(questions)}
    counts.update({f"accuracy/{r['model']}": round(r["accuracy"], 4) for r in rows})
    return StageResult(
        counts=counts,
        metadata={
            "accuracy": Table([{**r, "accuracy": round(r["accuracy"], 4)} for r in rows]),
            "accuracy_plot": _plot(rows),
            "answers": Table(samples),
        },
    )


SPEC = StageSpec(
    name="eval_accuracy",
    version="1",
    inputs={"models": Input("model", many=True), "tasks": "dataset"},
    output="report",
    config=EvalAccuracyConfig,
    run=run_eval_accuracy,
    description="Held-out exact-answer accuracy of every model in the chain (table + plot).",
    group="evaluation",
)


@hookimpl
def gristmill_register_stages() -> list[StageSpec]:
    return [SPEC]
