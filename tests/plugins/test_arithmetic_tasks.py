"""arithmetic_tasks: deterministic, verifiable, TRL conversational format, held-out eval never trained on."""

import json
from pathlib import Path

from gristmill.testing import run_stage
from gristmill.verify import is_correct
from gristmill_plugins.demo_data.tasks import TASKS_SPEC


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_files_formats_and_held_out_split(tmp_path):
    result, art = run_stage(TASKS_SPEC, tmp_path / "a", {"sft_examples": 300, "prompts": 100, "eval_examples": 80})
    assert result.counts == {"sft_examples": 300, "prompts": 100, "eval_examples": 80, "templates": 14}
    sft, pool, held = (_rows(art.path / f) for f in ("sft.jsonl", "prompts.jsonl", "eval.jsonl"))
    assert [len(sft), len(pool), len(held)] == [300, 100, 80]
    for row in sft:
        user, assistant = row["messages"]
        assert user["role"] == "user" and user["content"].endswith("?") and assistant["role"] == "assistant"
        assert is_correct(assistant["content"], row["answer"])  # every worked solution verifies
        assert not is_correct(assistant["content"], int(row["answer"]) + 1)
    train_questions = {r["messages"][0]["content"] for r in sft} | {r["prompt"][0]["content"] for r in pool}
    assert not train_questions & {r["prompt"][0]["content"] for r in held}
    assert all(r["answer"].lstrip("-").isdigit() for r in pool + held)


def test_deterministic_by_seed(tmp_path):
    cfg = {"sft_examples": 50, "prompts": 20, "eval_examples": 20}
    _, a = run_stage(TASKS_SPEC, tmp_path / "a", cfg, seed=3)
    _, b = run_stage(TASKS_SPEC, tmp_path / "b", cfg, seed=3)
    _, c = run_stage(TASKS_SPEC, tmp_path / "c", cfg, seed=4)
    read = lambda art: [(art.path / f).read_bytes() for f in ("sft.jsonl", "prompts.jsonl", "eval.jsonl")]  # noqa: E731
    assert read(a) == read(b) and read(a) != read(c)
