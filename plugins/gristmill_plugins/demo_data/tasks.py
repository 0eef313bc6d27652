"""``arithmetic_tasks``: verifiable arithmetic word problems for post-training, in TRL's conversational format.

The problems are the demo crawl's maths problems (14 templates: sums, differences, products, sharing, change,
perimeters, two-step problems), each with a worked solution ending in ``The answer is N.`` — so the pretraining
data already holds the domain. Three files, deterministic by seed::

    sft.jsonl      {"messages": [{"role": "user", ...}, {"role": "assistant", <worked solution>}], "answer": "N"}
    prompts.jsonl  {"prompt": [{"role": "user", ...}], "answer": "N"}     the pool for sampling (rejection/DPO)
    eval.jsonl     {"prompt": [...], "answer": "N"}                        held out: no question in it appears in
                                                                           sft.jsonl or prompts.jsonl

:func:`gristmill.lib.verify.is_correct` checks a completion against ``answer`` exactly.

``task_documents`` turns ``sft.jsonl`` (only: prompts and eval stay unseen) into pretraining ``documents`` — each
problem as plain text, question + " " + worked solution, the way the crawl's maths articles print it — and passes
an optional ``documents`` input through unchanged, so a pipeline can add the domain to its pretraining corpus.
"""

import random
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import Field

from gristmill import Artifact, Input, StageConfig, StageContext, StageResult, StageSpec, Table
from gristmill.errors import StageInputError
from gristmill.lib.documents import DocumentWriter, document_shards, iter_documents
from gristmill.lib.jsonl import read_jsonl, write_jsonl
from gristmill.lib.plots import bar_chart
from gristmill.lib.verify import extract_answer
from gristmill_plugins.demo_data.maths import _math_problem
from gristmill_plugins.demo_data.vocab import _base_context

KINDS = 14  # templates in maths._math_problem


class ArithmeticTasksConfig(StageConfig):
    """Options of the ``arithmetic_tasks`` stage."""

    sft_examples: int = Field(2000, ge=0, description="Worked-solution conversations in sft.jsonl.")
    prompts: int = Field(500, ge=0, description="Questions (with answers) in the sampling pool prompts.jsonl.")
    eval_examples: int = Field(200, ge=1, description="Held-out questions in eval.jsonl (never in the other files).")
    seed: int | None = Field(None, description="Seed of the problems; None: the instance seed.")


def make_task(rng: random.Random) -> tuple[str, str, str, int]:
    """(question, worked solution, answer, template) for one random problem."""
    kind = rng.randrange(KINDS)
    text = _math_problem(kind, rng, _base_context(rng))
    cut = text.index("? ") + 1  # every template asks exactly one question, then works it out
    question, solution = text[:cut], text[cut + 1 :]
    answer = extract_answer(solution)
    if answer is None:  # a template edit that breaks the format must fail loudly, not write unverifiable data
        raise ValueError(f"template {kind} produced a solution without 'The answer is N': {solution!r}")
    return question, solution, answer, kind


def _unique(rng: random.Random, n: int, taken: set[str], max_tries: int) -> list[tuple[str, str, str, int]]:
    out: list[tuple[str, str, str, int]] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > max_tries:
            raise StageInputError(f"could only make {len(out)} of {n} distinct problems; ask for fewer")
        task = make_task(rng)
        if task[0] not in taken:
            taken.add(task[0])
            out.append(task)
    return out


def _write(path: Any, rows: list[dict[str, Any]]) -> None:
    write_jsonl(path, rows, sort_keys=True)


def run_arithmetic_tasks(ctx: StageContext, config: ArithmeticTasksConfig, inputs: dict[str, Artifact]) -> StageResult:
    """Write sft.jsonl, prompts.jsonl and eval.jsonl (eval drawn first; its questions are excluded elsewhere)."""
    rng = random.Random(f"arithmetic-tasks:{ctx.seed if config.seed is None else config.seed}")
    total = config.eval_examples + config.sft_examples + config.prompts
    taken: set[str] = set()
    held_out = _unique(rng, config.eval_examples, taken, 50 * total)
    sft = _unique(rng, config.sft_examples, taken, 50 * total)
    pool = _unique(rng, config.prompts, taken, 50 * total)

    def user(question: str) -> list[dict[str, str]]:
        return [{"role": "user", "content": question}]

    _write(
        ctx.output_dir / "sft.jsonl",
        [{"messages": user(q) + [{"role": "assistant", "content": s}], "answer": a} for q, s, a, _ in sft],
    )
    _write(ctx.output_dir / "prompts.jsonl", [{"prompt": user(q), "answer": a} for q, _, a, _ in pool])
    _write(ctx.output_dir / "eval.jsonl", [{"prompt": user(q), "answer": a} for q, _, a, _ in held_out])
    kinds = Counter(k for *_, k in held_out + sft + pool)
    return StageResult(
        counts={
            "sft_examples": len(sft),
            "prompts": len(pool),
            "eval_examples": len(held_out),
            "templates": len(kinds),
        },
        metadata={
            "samples": Table([{"question": q, "solution": s, "answer": a} for q, s, a, _ in sft[:5]]),
            "templates": Table([{"template": k, "problems": kinds[k]} for k in sorted(kinds)]),
            "problems_per_template": bar_chart(
                sorted(kinds), [kinds[k] for k in sorted(kinds)], "problems per template (all splits)", "problems"
            ),
            "verifier": "gristmill.lib.verify.is_correct(completion, answer): the number after the last "
            "'The answer is' must equal answer",
        },
    )


TASKS_SPEC = StageSpec(
    name="arithmetic_tasks",
    version="1",
    inputs={},
    output="dataset",
    config=ArithmeticTasksConfig,
    run=run_arithmetic_tasks,
    description="Verifiable arithmetic word problems: SFT conversations, a prompt pool and a held-out eval set.",
    group="data",
)


# --------------------------------------------------------------------------------------------
# task_documents: sft.jsonl → pretraining documents (+ passthrough of a documents input)
# --------------------------------------------------------------------------------------------

TASK_DOCS_DIR = "tasks"  # sub-folder of the output holding the rendered problems (passthrough shards keep their paths)


class TaskDocumentsConfig(StageConfig):
    """Options of the ``task_documents`` stage."""

    problems_per_document: int = Field(
        8, ge=1, le=10_000, description="Problems (question + worked solution) joined into one document."
    )
    repeat: int = Field(
        1, ge=1, le=100, description="Epochs over the problems; each epoch is reshuffled and regrouped into documents."
    )
    max_problems: int | None = Field(
        None, ge=1, description="Use at most this many sft.jsonl problems (the first ones); None: all of them."
    )
    separator: str = Field("\n", description="Text between two problems of the same document.")
    seed: int | None = Field(None, description="Seed of the shuffling; None: the instance seed.")


def read_sft_problems(tasks: Artifact) -> list[tuple[str, str, str]]:
    """(question, worked solution, answer) of every row of the tasks artifact's ``sft.jsonl``.

    Only ``sft.jsonl`` is read: ``prompts.jsonl`` and ``eval.jsonl`` must stay unseen by pretraining.
    """
    path = Path(tasks.path) / "sft.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"task_documents: input {tasks.describe()} has no sft.jsonl")
    problems: list[tuple[str, str, str]] = []
    for lineno, row in read_jsonl(path, stage="task_documents"):
        turns = {m["role"]: m["content"] for m in row.get("messages", [])}
        if "user" not in turns or "assistant" not in turns:
            raise StageInputError(f"task_documents: {path}:{lineno}: a row needs a user and an assistant message")
        problems.append((turns["user"], turns["assistant"], str(row.get("answer", ""))))
    return problems


def _copy_documents(source: Artifact, out_dir: Path) -> tuple[int, int, int]:
    """Copy ``source``'s shards byte for byte under their relative paths; returns (shards, documents, characters)."""
    shards = document_shards(source)
    root = Path(source.path)
    for shard in shards:
        rel = shard.relative_to(root) if shard.is_relative_to(root) else Path(shard.name)
        if rel.parts[0] == TASK_DOCS_DIR:
            raise StageInputError(
                f"task_documents: input shard {shard} collides with the output folder {TASK_DOCS_DIR}/"
            )
        target = out_dir / rel
        if target.exists():
            raise StageInputError(f"task_documents: two input shards map to {rel}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shard, target)
    documents = chars = 0
    for doc in iter_documents(source) if shards else ():
        documents += 1
        chars += len(doc["text"])
    return len(shards), documents, chars


def run_task_documents(ctx: StageContext, config: TaskDocumentsConfig, inputs: dict[str, Artifact]) -> StageResult:
    """Write the ``documents`` input's shards unchanged plus documents of worked arithmetic problems rendered from
    the tasks' ``sft.jsonl`` (question + " " + solution, ``problems_per_document`` per document, ``repeat`` epochs,
    shuffled by seed). ``prompts.jsonl`` and ``eval.jsonl`` are never read."""
    seed = ctx.seed if config.seed is None else config.seed
    problems = read_sft_problems(inputs["tasks"])[: config.max_problems]
    if not problems:
        raise StageInputError(f"task_documents: {inputs['tasks'].describe()} has an empty sft.jsonl")
    source = inputs.get("documents")
    shards_in, documents_in, chars_in = _copy_documents(source, ctx.output_dir) if source is not None else (0, 0, 0)

    rng = random.Random(f"task-documents:{seed}")
    samples: list[dict[str, Any]] = []
    task_chars = 0
    with DocumentWriter(ctx.output_dir / TASK_DOCS_DIR) as writer:
        for epoch in range(config.repeat):
            order = list(range(len(problems)))
            rng.shuffle(order)
            for start in range(0, len(order), config.problems_per_document):
                picked = order[start : start + config.problems_per_document]
                text = config.separator.join(f"{problems[i][0]} {problems[i][1]}" for i in picked)
                doc_id = f"task-{seed}-{epoch}-{start // config.problems_per_document}"
                meta = {
                    "source": "arithmetic_tasks",
                    "epoch": epoch,
                    "problems": len(picked),
                    "sft_rows": picked,
                    "answers": [problems[i][2] for i in picked],
                }
                writer.write({"text": text, "id": doc_id, "metadata": meta})
                task_chars += len(text)
                if len(samples) < 3:
                    samples.append({"id": doc_id, "problems": len(picked), "text": text[:300]})
            ctx.progress(epoch + 1, config.repeat, "epochs")
        task_docs = writer.count
    ctx.log.info(
        "task_documents: %d passthrough documents + %d task documents (%d problems × %d epochs)",
        documents_in,
        task_docs,
        len(problems),
        config.repeat,
    )
    return StageResult(
        counts={
            "documents_in": documents_in,
            "shards_in": shards_in,
            "task_documents": task_docs,
            "problems": len(problems),
            "problems_written": len(problems) * config.repeat,
            "documents_out": documents_in + task_docs,
        },
        metadata={
            "samples": Table(samples),
            "characters_by_source": bar_chart(
                ["input documents", "arithmetic tasks"],
                [chars_in, task_chars],
                "characters by source",
                "characters",
            ),
        },
    )


TASK_DOCUMENTS_SPEC = StageSpec(
    name="task_documents",
    version="1",
    inputs={"tasks": "dataset", "documents": Input("documents", optional=True)},
    output="documents",
    config=TaskDocumentsConfig,
    run=run_task_documents,
    description="Pretraining documents from the tasks' SFT problems (plain text), plus an optional documents input.",
    group="data",
)
