"""``retrieval_docs``: filler documents → pass-key retrieval documents."""

import re
from pathlib import Path

import pytest

from gristmill import Markdown
from gristmill.lib.documents import DocumentsError, DocumentWriter, iter_documents
from gristmill.testing import artifact_from_dir, run_stage
from gristmill_plugins.retrieval_docs import SPEC

SENTENCES = [
    "The river carried silt from the northern hills into the plain.",
    "Farmers built terraces to keep the soil from washing away.",
    "Each spring the markets filled with traders from distant towns.",
    "A new bridge was finished after nine years of careful work.",
]


@pytest.fixture
def filler(tmp_path: Path):
    folder = tmp_path / "filler"
    with DocumentWriter(folder) as w:
        for i in range(12):
            text = " ".join(SENTENCES[(i + k) % 4] for k in range(6))
            w.write({"text": f"Document {i}.\n\n{text}", "id": f"d{i}", "metadata": {}})
    return artifact_from_dir("documents", folder)


def test_documents_hold_facts_and_end_with_question_and_answer(tmp_path: Path, filler) -> None:
    cfg = {"documents": 30, "lengths": [200, 600], "facts_per_document": 3, "digits": 4}
    result, out = run_stage(SPEC, tmp_path / "out", cfg, {"documents": filler}, seed=7)
    docs = list(iter_documents(out))
    assert len(docs) == 30 == result.counts["documents"]
    assert result.counts["facts"] == 90
    assert {row["filler_chars"] for row in result.metadata["lengths"].rows} == {200, 600}
    plot = result.metadata["documents_per_length"]
    assert isinstance(plot, Markdown) and "data:image/png;base64," in plot.text
    for doc in docs:
        facts = dict(re.findall(r"The pass key of (\w+) is (\d{4})\.", doc["text"]))
        asked = re.search(r"What is the pass key of (\w+)\? The pass key of \1 is (\d{4})\.$", doc["text"])
        assert asked is not None, doc["text"][-120:]
        assert [asked.group(1)] == doc["metadata"]["asked"]
        assert facts[asked.group(1)] == asked.group(2)
        assert len(re.findall(r"The pass key of (\w+) is (\d{4})\. ?(?!$)", doc["text"])) >= 3
        assert len(doc["text"]) < 600 + 3 * 40 + 80
        assert "\n" not in doc["text"].split("\nWhat is")[0]  # filler whitespace collapsed
    lengths = sorted(d["metadata"]["filler_chars"] for d in docs)
    assert lengths[0] <= 200 < lengths[-1] <= 600


def test_several_questions_per_document(tmp_path: Path, filler) -> None:
    cfg = {"documents": 10, "lengths": [400], "facts_per_document": 3, "questions": 2}
    result, out = run_stage(SPEC, tmp_path / "out", cfg, {"documents": filler})
    assert result.counts["questions"] == 20
    for doc in iter_documents(out):
        facts = dict(re.findall(r"The pass key of (\w+) is (\d{5})\.", doc["text"].split("\nWhat")[0]))
        qa = re.findall(r"\nWhat is the pass key of (\w+)\? The pass key of \1 is (\d{5})\.", doc["text"])
        assert len(facts) == 3 and len(qa) == 2 and len({name for name, _ in qa}) == 2
        assert all(facts[name] == value for name, value in qa)
        assert [name for name, _ in qa] == doc["metadata"]["asked"]
    with pytest.raises(ValueError, match="exceeds facts_per_document"):
        SPEC.config.model_validate({"facts_per_document": 1, "questions": 2})


def test_deterministic_by_seed(tmp_path: Path, filler) -> None:
    cfg = {"documents": 10, "lengths": [300]}
    run_stage(SPEC, tmp_path / "a", cfg, {"documents": filler}, seed=1)
    run_stage(SPEC, tmp_path / "b", cfg, {"documents": filler}, seed=1)
    run_stage(SPEC, tmp_path / "c", cfg, {"documents": filler}, seed=2)
    read = lambda name: [d["text"] for d in iter_documents(tmp_path / name)]  # noqa: E731
    assert read("a") == read("b") != read("c")


def test_empty_input_and_bad_config(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    with DocumentWriter(empty):
        pass
    with pytest.raises(DocumentsError, match="holds no documents"):
        run_stage(SPEC, tmp_path / "out", {}, {"documents": artifact_from_dir("documents", empty)})
    with pytest.raises(ValueError, match="lengths"):
        SPEC.config.model_validate({"lengths": [5]})
