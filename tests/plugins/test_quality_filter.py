"""quality_filter on real fastText: a classifier of Pride and Prejudice vs spam scores unseen documents."""

import math
import random
import shutil
from pathlib import Path

import pytest

from gristmill import Input
from gristmill.lib.documents import DocumentsError, iter_documents
from gristmill.lib.textclf import ModelFileError
from gristmill.plugins import collect_stages, create_plugin_manager
from gristmill.testing import artifact_from_dir, run_stage
from gristmill_plugins.quality_filter import SPEC as FILTER_SPEC
from tests.support.quality_corpus import austen_paragraphs, digests, spam_texts, train_austen_classifier, write_docs


@pytest.fixture(scope="module")
def paragraphs(shared_data: Path) -> list[str]:
    return austen_paragraphs(shared_data)


@pytest.fixture(scope="module")
def austen_classifier(tmp_path_factory: pytest.TempPathFactory, paragraphs: list[str]):
    """Positives: 300 Pride and Prejudice paragraphs (reference input); negatives: spam crawl."""
    return train_austen_classifier(tmp_path_factory.mktemp("austen"), paragraphs)


@pytest.fixture(scope="module")
def mixed_docs(tmp_path_factory: pytest.TempPathFactory, paragraphs: list[str]):
    """100 unseen Austen paragraphs + 100 spam pages, interleaved, with metadata to keep."""
    texts = [t for pair in zip(paragraphs[300:400], spam_texts(100, seed=9), strict=True) for t in pair]
    meta = [{"truth": "good" if i % 2 == 0 else "spam", "url": f"https://x.example/{i}"} for i in range(len(texts))]
    return write_docs(tmp_path_factory.mktemp("mixed"), texts, "mix", meta)


def test_filter_keeps_good_documents_deterministically(tmp_path: Path, austen_classifier, mixed_docs):
    _, classifier = austen_classifier
    inputs = {"documents": mixed_docs, "classifier": classifier}
    result, out = run_stage(FILTER_SPEC, tmp_path / "a", {}, inputs)
    kept = list(iter_documents(out))
    c = result.counts
    assert list(c)[0] == "documents_kept" and c["documents_in"] == 200
    assert c["documents_kept"] + c["documents_dropped"] == 200 and c["documents_kept"] == len(kept)
    assert sum(d["metadata"]["truth"] == "good" for d in kept) >= 95
    assert sum(d["metadata"]["truth"] == "spam" for d in kept) <= 3
    assert all(d["metadata"]["quality_score"] >= 0.5 and d["metadata"]["url"] for d in kept)
    assert "data:image/png;base64," in result.metadata["score_histogram"].text
    rows = result.metadata["examples"].rows
    assert any(r["kept"] for r in rows) and any(not r["kept"] for r in rows)
    run_stage(FILTER_SPEC, tmp_path / "b", {}, inputs)
    assert digests(tmp_path / "a") == digests(tmp_path / "b")


def test_filter_top_fraction(tmp_path: Path, austen_classifier, mixed_docs):
    _, classifier = austen_classifier
    config = {"top_fraction": 0.25, "score_field": "q"}
    result, out = run_stage(FILTER_SPEC, tmp_path / "out", config, {"documents": mixed_docs, "classifier": classifier})
    kept = list(iter_documents(out))
    assert len(kept) == result.counts["documents_kept"] == math.ceil(0.25 * 200)
    assert min(d["metadata"]["q"] for d in kept) == result.counts["threshold"]
    assert all(d["metadata"]["truth"] == "good" for d in kept)


def test_filter_all_filtered_out_and_empty_input(tmp_path: Path, austen_classifier):
    _, classifier = austen_classifier
    spam = write_docs(tmp_path / "spam", spam_texts(30, seed=5), "spam")
    with pytest.raises(ValueError, match=r"all 30 documents .*spam.*allow_empty") as err:
        run_stage(FILTER_SPEC, tmp_path / "o1", {"threshold": 0.99}, {"documents": spam, "classifier": classifier})
    assert str(spam.path) in str(err.value)
    result, out = run_stage(
        FILTER_SPEC,
        tmp_path / "o2",
        {"threshold": 0.99, "allow_empty": True},
        {"documents": spam, "classifier": classifier},
    )
    assert result.counts["documents_kept"] == 0 and list(iter_documents(out)) == []
    empty = write_docs(tmp_path / "empty", [], "e")
    with pytest.raises(DocumentsError, match=r"quality_filter: input .*empty.* holds no documents"):
        run_stage(FILTER_SPEC, tmp_path / "o3", {}, {"documents": empty, "classifier": classifier})


@pytest.mark.parametrize("damage", ["truncate", "random", "missing"])
def test_filter_refuses_a_corrupt_classifier(tmp_path: Path, austen_classifier, mixed_docs, damage):
    _, classifier = austen_classifier
    broken = tmp_path / "broken-classifier"
    shutil.copytree(classifier.path, broken)
    model = broken / "model.bin"
    if damage == "truncate":
        model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    elif damage == "random":
        model.write_bytes(random.Random(0).randbytes(4096))
    else:
        model.unlink()
    artifact = artifact_from_dir("classifier", broken)
    with pytest.raises(ModelFileError, match="quality_filter: classifier") as err:
        run_stage(FILTER_SPEC, tmp_path / "out", {}, {"documents": mixed_docs, "classifier": artifact})
    assert str(broken) in str(err.value)


def test_filter_label_must_exist(tmp_path: Path, austen_classifier, mixed_docs):
    _, classifier = austen_classifier
    with pytest.raises(ValueError, match="'math' is not one of the labels"):
        run_stage(FILTER_SPEC, tmp_path / "out", {"label": "math"}, {"documents": mixed_docs, "classifier": classifier})


def test_stage_is_registered():
    pm, errors = create_plugin_manager(autoload=False)
    registry = collect_stages(pm, errors)
    assert registry.stages["quality_filter"].plugin == "gristmill_plugins.quality_filter"
    assert registry.get("quality_filter").inputs == {"documents": Input("documents"), "classifier": Input("classifier")}
    for field, info in registry.get("quality_filter").config.model_fields.items():
        assert info.description, field
