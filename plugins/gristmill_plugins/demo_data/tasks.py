"""``arithmetic_tasks``: verifiable arithmetic word problems for post-training, in TRL's conversational format.

The problems are the demo crawl's maths problems (14 templates: sums, differences, products, sharing, change,
perimeters, two-step problems), each with a worked solution ending in ``The answer is N.`` — so the pretraining
data already holds the domain. Three files, deterministic by seed::

    sft.jsonl      {"messages": [{"role": "user", ...}, {"role": "assistant", <worked solution>}], "answer": "N"}
    prompts.jsonl  {"prompt": [{"role": "user", ...}], "answer": "N"}     the pool for sampling (rejection/DPO)
    eval.jsonl     {"prompt": [...], "answer": "N"}                        held out: no question in it appears in
                                                                           sft.jsonl or prompts.jsonl

:func:`gristmill.verify.is_correct` checks a completion against ``answer`` exactly.
"""

import json
import random
from collections import Counter
from typing import Any

from pydantic import Field

from gristmill import Artifact, StageConfig, StageContext, StageResult, StageSpec, Table
from gristmill.verify import extract_answer
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
            raise ValueError(f"could only make {len(out)} of {n} distinct problems; ask for fewer")
        task = make_task(rng)
        if task[0] not in taken:
            taken.add(task[0])
            out.append(task)
    return out


def _write(path: Any, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")


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

    _write(ctx.output_dir / "sft.jsonl", [
        {"messages": user(q) + [{"role": "assistant", "content": s}], "answer": a} for q, s, a, _ in sft])
    _write(ctx.output_dir / "prompts.jsonl", [{"prompt": user(q), "answer": a} for q, _, a, _ in pool])
    _write(ctx.output_dir / "eval.jsonl", [{"prompt": user(q), "answer": a} for q, _, a, _ in held_out])  # fmt: skip
    kinds = Counter(k for *_, k in held_out + sft + pool)
    return StageResult(
        counts={"sft_examples": len(sft), "prompts": len(pool), "eval_examples": len(held_out),
                "templates": len(kinds)},  # fmt: skip
        metadata={
            "samples": Table([{"question": q, "solution": s, "answer": a} for q, s, a, _ in sft[:5]]),
            "templates": Table([{"template": k, "problems": kinds[k]} for k in sorted(kinds)]),
            "verifier": "gristmill.verify.is_correct(completion, answer): the number after the last "
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
