"""arithmetic_tasks: deterministic, verifiable, TRL conversational format, held-out eval never trained on."""

import json
from pathlib import Path

from gristmill import Input, Markdown
from gristmill.lib.documents import DocumentWriter, document_shards, iter_documents
from gristmill.lib.verify import is_correct
from gristmill.plugins import collect_stages, create_plugin_manager
from gristmill.testing import artifact_from_dir, run_stage
from gristmill_plugins.demo_data.tasks import TASK_DOCUMENTS_SPEC, TASKS_SPEC, TaskDocumentsConfig


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_files_formats_and_held_out_split(tmp_path):
    result, art = run_stage(TASKS_SPEC, tmp_path / "a", {"sft_examples": 300, "prompts": 100, "eval_examples": 80})
    assert result.counts == {"sft_examples": 300, "prompts": 100, "eval_examples": 80, "templates": 14}
    plot = result.metadata["problems_per_template"]
    assert isinstance(plot, Markdown) and "data:image/png;base64," in plot.text
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


# --------------------------------------------------------------------------------------------
# task_documents
# --------------------------------------------------------------------------------------------


def _passthrough(folder: Path) -> Path:
    with DocumentWriter(folder, shard_size=3) as writer:
        writer.write_all({"text": f"Crawled page {i}.", "id": f"page-{i}", "metadata": {"n": i}} for i in range(7))
    return folder


def _task_docs(art) -> list[dict]:
    return [d for d in iter_documents(art) if d["id"].startswith("task-")]


def test_task_documents_counts_passthrough_and_held_out(tmp_path):
    _, tasks = run_stage(TASKS_SPEC, tmp_path / "tasks", {"sft_examples": 50, "prompts": 30, "eval_examples": 40})
    crawl = artifact_from_dir("documents", _passthrough(tmp_path / "crawl"))
    cfg = {"problems_per_document": 8, "repeat": 2}
    result, out = run_stage(TASK_DOCUMENTS_SPEC, tmp_path / "out", cfg, {"tasks": tasks, "documents": crawl})
    assert result.counts == {
        "documents_in": 7,
        "shards_in": 3,
        "task_documents": 14,
        "problems": 50,
        "problems_written": 100,
        "documents_out": 21,
    }
    plot = result.metadata["characters_by_source"]
    assert isinstance(plot, Markdown) and "data:image/png;base64," in plot.text
    for shard in document_shards(crawl):  # passthrough shards are copied byte for byte, under the same names
        assert (out.path / shard.name).read_bytes() == shard.read_bytes()
    docs = list(iter_documents(out))
    assert len(docs) == 21 and [d["id"] for d in docs[:7]] == [f"page-{i}" for i in range(7)]
    rendered = _task_docs(out)
    assert [d["metadata"]["problems"] for d in rendered] == [8] * 6 + [2] + [8] * 6 + [2]
    assert all(d["metadata"]["source"] == "arithmetic_tasks" for d in rendered)
    text = "\n".join(d["text"] for d in rendered)
    sft = _rows(tasks.path / "sft.jsonl")
    for row in sft:  # every SFT problem, as question + " " + worked solution, once per epoch
        user, assistant = row["messages"]
        assert text.count(f"{user['content']} {assistant['content']}") == 2
    assert text.count("The answer is") == 100
    unseen = _rows(tasks.path / "eval.jsonl") + _rows(tasks.path / "prompts.jsonl")
    assert not any(r["prompt"][0]["content"] in text for r in unseen)  # eval and prompt questions never appear


def test_task_documents_without_input_is_deterministic(tmp_path):
    _, tasks = run_stage(TASKS_SPEC, tmp_path / "tasks", {"sft_examples": 20, "prompts": 5, "eval_examples": 5})
    cfg = {"problems_per_document": 3, "max_problems": 12}
    result, a = run_stage(TASK_DOCUMENTS_SPEC, tmp_path / "a", cfg, {"tasks": tasks})
    assert result.counts["documents_in"] == 0 and result.counts["task_documents"] == 4
    assert result.counts["problems"] == 12 and result.counts["documents_out"] == 4
    _, b = run_stage(TASK_DOCUMENTS_SPEC, tmp_path / "b", cfg, {"tasks": tasks})
    _, c = run_stage(TASK_DOCUMENTS_SPEC, tmp_path / "c", cfg, {"tasks": tasks}, seed=1)
    files = lambda art: [p.read_bytes() for p in document_shards(art)]  # noqa: E731
    assert files(a) == files(b) and files(a) != files(c)
    ids = [d["id"] for d in iter_documents(a)]
    assert len(set(ids)) == 4 and all(d["text"].count("The answer is") == 3 for d in iter_documents(a))


def test_task_documents_registered():
    pm, errors = create_plugin_manager(autoload=False)
    spec = collect_stages(pm, errors).get("task_documents")
    assert spec is TASK_DOCUMENTS_SPEC and spec.output == "documents"
    assert spec.inputs == {"tasks": Input("dataset"), "documents": Input("documents", optional=True)}
    assert all(info.description for info in TaskDocumentsConfig.model_fields.values())
