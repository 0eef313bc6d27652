"""data_mix and topic_classifier on real text: GSM8K (math), Pride and Prejudice (general), Python source (code)
and French/German/Spanish/Russian prose (multilingual)."""

import ast
import csv
import hashlib
import json
import logging
import random
import shutil
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from gristmill import Input
from gristmill.lib.documents import DocumentsError, DocumentWriter, iter_documents
from gristmill.lib.textclf import ModelFileError
from gristmill.plugins import collect_stages, create_plugin_manager
from gristmill.testing import artifact_from_dir, run_stage
from gristmill_plugins.data_mix import LLAMA3_WEIGHTS, DataMixConfig, apportion, plan_mix
from gristmill_plugins.data_mix import SPEC as MIX_SPEC
from gristmill_plugins.data_mix.heuristics import heuristic_category
from gristmill_plugins.demo_data.foreign import _foreign_article
from gristmill_plugins.topic_classifier import SPEC as TOPIC_SPEC

FAST = {"bucket": 20_000, "dim": 16, "seed": 1}


def python_functions(limit: int) -> list[str]:
    """Function and class sources (5-60 lines) from installed stdlib modules."""
    out: list[str] = []
    for module in (json.encoder, json.decoder, textwrap, csv, logging, ast):
        source = Path(module.__file__).read_text(encoding="utf-8")
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and 5 <= node.end_lineno - node.lineno <= 60:
                out.append(textwrap.dedent("\n".join(lines[node.lineno - 1 : node.end_lineno])))
    return out[:limit]


def foreign_texts(n: int) -> list[str]:
    rng = random.Random(0)
    return [
        "\n\n".join(p for _, ps in _foreign_article(("fr", "de", "es", "ru")[i % 4], rng).sections for p in ps)
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def corpus(shared_data: Path) -> list[tuple[str, str, dict]]:
    """(truth, text, metadata): 400 math, 600 general, 200 code, 120 multilingual (half with a language tag)."""
    gsm = [
        json.loads(line)["question"]
        for line in (shared_data / "sft" / "gsm8k_train_first2000.jsonl").read_text().splitlines()[:400]
    ]
    book = (shared_data / "pretrain" / "pride_and_prejudice.txt").read_text(encoding="utf-8")
    paragraphs = [p for p in book.split("\n\n") if len(p) > 200][:600]
    code = python_functions(200)
    assert len(code) == 200
    foreign = foreign_texts(120)
    items = (
        [("math", t, {}) for t in gsm]
        + [("general", t, {"language": "en"}) for t in paragraphs]
        + [("code", t, {}) for t in code]
        + [
            ("multilingual", t, {"language": ("fr", "de", "es", "ru")[i % 4]} if i % 2 else {})
            for i, t in enumerate(foreign)
        ]
    )
    random.Random(1).shuffle(items)
    return items


def write_docs(folder: Path, items: list[tuple[str, str, dict]], prefix: str = "d"):
    with DocumentWriter(folder) as writer:
        for i, (truth, text, meta) in enumerate(items):
            writer.write({"text": text, "id": f"{prefix}-{i}", "metadata": {**meta, "truth": truth}})
    return artifact_from_dir("documents", folder)


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def corpus_docs(tmp_path_factory: pytest.TempPathFactory, corpus):
    return write_docs(tmp_path_factory.mktemp("corpus"), corpus)


# --------------------------------------------------------------------------------------------------
# Building blocks


def test_heuristic_rules_on_real_text(corpus):
    by_truth: dict[str, Counter] = {}
    for truth, text, meta in corpus:
        by_truth.setdefault(truth, Counter())[heuristic_category(text, meta)] += 1
    accuracy = {t: c[t] / sum(c.values()) for t, c in by_truth.items()}
    assert accuracy["general"] == 1.0
    assert accuracy["multilingual"] == 1.0  # with and without a language tag
    assert accuracy["code"] >= 0.95
    assert accuracy["math"] >= 0.9  # GSM8K questions only (no worked answers): word problems
    assert heuristic_category("Natalia sold 48/2 = <<48/2=24>>24 clips.") == "math"
    assert heuristic_category("some text", {"language": "EN"}, ["en"]) == "general"
    assert heuristic_category("texto", {"language": "es"}) == "multilingual"


def test_apportion_and_plan():
    assert apportion(10, {"a": 0.5, "b": 0.25, "c": 0.25}) == {"a": 5, "b": 3, "c": 2}
    assert sum(apportion(997, LLAMA3_WEIGHTS).values()) == 997
    take, effective, warnings = plan_mix({"general": 100, "math": 10}, {"general": 1, "math": 1}, None, False)
    assert take == {"general": 10, "math": 10} and effective == {"general": 0.5, "math": 0.5} and not warnings
    take, effective, warnings = plan_mix({"general": 100}, {"general": 0.5, "code": 0.5}, None, False)
    assert take == {"general": 100, "code": 0} and effective["general"] == 1.0 and "'code'" in warnings[0]
    take, _, warnings = plan_mix({"a": 10, "b": 10}, {"a": 1, "b": 1}, 40, False)
    assert take == {"a": 10, "b": 10} and len(warnings) == 2
    assert plan_mix({"a": 10, "b": 10}, {"a": 1, "b": 1}, 40, True)[0] == {"a": 20, "b": 20}


def test_config_validation():
    with pytest.raises(ValueError):
        DataMixConfig.model_validate({"weights": {"general": -1}})
    with pytest.raises(ValueError):
        DataMixConfig.model_validate({"weights": {}})
    assert DataMixConfig().weights == LLAMA3_WEIGHTS


# --------------------------------------------------------------------------------------------------
# data_mix


def test_default_llama3_mix_without_upsampling(tmp_path: Path, corpus_docs):
    result, out = run_stage(MIX_SPEC, tmp_path / "a", {"seed": 3}, {"documents": corpus_docs})
    docs = list(iter_documents(out))
    c = result.counts
    assert list(c)[0] == "documents_out" and c["documents_out"] == len(docs) and c["documents_in"] == 1320
    assert c["upsampled_copies"] == 0 and len({d["id"] for d in docs}) == len(docs)
    shares = Counter(d["metadata"]["category"] for d in docs)
    for category, weight in LLAMA3_WEIGHTS.items():
        assert abs(shares[category] / len(docs) - weight) < 0.002, (category, shares)
    # as many as possible: the scarcest category (relative to its weight) is taken whole
    assert any(c[f"out_{k}"] == c[f"in_{k}"] for k in LLAMA3_WEIGHTS)
    assert c["max_weight_error"] < 0.002 and c["category_from_heuristic"] == 1320
    assert all(d["metadata"]["category_source"] == "heuristic" for d in docs)
    rows = {r["category"]: r for r in result.metadata["mix"].rows}
    assert rows["general"]["target_weight"] == 0.5 and rows["code"]["copies"] == 0
    assert result.metadata["warnings"] == []
    (check,) = MIX_SPEC.checks
    assert check.check(c, DataMixConfig()).passed and not check.blocking

    run_stage(MIX_SPEC, tmp_path / "b", {"seed": 3}, {"documents": corpus_docs})
    run_stage(MIX_SPEC, tmp_path / "c", {"seed": 4}, {"documents": corpus_docs})
    assert digests(tmp_path / "a") == digests(tmp_path / "b")
    assert digests(tmp_path / "a") != digests(tmp_path / "c")


def test_target_size_with_replacement_upsamples(tmp_path: Path, corpus_docs):
    result, out = run_stage(
        MIX_SPEC, tmp_path / "out", {"seed": 3, "documents": 2500, "replacement": True}, {"documents": corpus_docs}
    )
    docs = list(iter_documents(out))
    assert len(docs) == 2500 and len({d["id"] for d in docs}) == 2500
    copies = [d for d in docs if "mix_copy" in d["metadata"]]
    assert len(copies) == result.counts["upsampled_copies"] > 0
    assert all("#" in d["id"] for d in copies)
    shares = Counter(d["metadata"]["category"] for d in docs)
    assert {k: shares[k] for k in LLAMA3_WEIGHTS} == apportion(2500, LLAMA3_WEIGHTS)


def test_target_size_without_replacement_falls_short_and_warns(tmp_path: Path, corpus_docs, caplog):
    with caplog.at_level(logging.WARNING):
        result, out = run_stage(MIX_SPEC, tmp_path / "out", {"seed": 3, "documents": 2500}, {"documents": corpus_docs})
    assert result.counts["documents_out"] < 2500 and result.counts["upsampled_copies"] == 0
    assert any("replacement is off" in w for w in result.metadata["warnings"])
    assert "replacement is off" in caplog.text
    assert not MIX_SPEC.checks[0].check(result.counts, DataMixConfig()).passed


def test_empty_category_warns_and_weights_renormalize(tmp_path: Path, corpus, caplog):
    no_code = write_docs(tmp_path / "in", [item for item in corpus if item[0] != "code"])
    with caplog.at_level(logging.WARNING):
        result, out = run_stage(MIX_SPEC, tmp_path / "out", {"seed": 0}, {"documents": no_code})
    assert "category 'code'" in caplog.text and result.counts["categories_empty"] == 1
    shares = Counter(d["metadata"]["category"] for d in iter_documents(out))
    total = sum(shares.values())
    assert shares["code"] == 0
    assert abs(shares["general"] / total - 0.50 / 0.83) < 0.003
    assert abs(shares["multilingual"] / total - 0.08 / 0.83) < 0.003


def test_category_field_and_custom_weights(tmp_path: Path, corpus_docs):
    config = {"seed": 0, "category_field": "truth", "weights": {"general": 1, "code": 1}, "output_field": "mix"}
    result, out = run_stage(MIX_SPEC, tmp_path / "out", config, {"documents": corpus_docs})
    docs = list(iter_documents(out))
    assert result.counts["category_from_field"] == 1320 and result.counts["category_from_heuristic"] == 0
    assert Counter(d["metadata"]["mix"] for d in docs) == {"general": 200, "code": 200}
    assert all(d["metadata"]["mix_source"] == "field" for d in docs)
    assert any("without a weight" in w for w in result.metadata["warnings"])


def test_topic_classifier_then_mix_with_classifier(tmp_path: Path, corpus):
    train_docs = write_docs(tmp_path / "train", corpus[:660], "t")
    result, classifier = run_stage(
        TOPIC_SPEC, tmp_path / "clf", {**FAST, "label_field": "truth"}, {"documents": train_docs}
    )
    c = result.counts
    assert list(c)[0] == "holdout_accuracy" and c["holdout_accuracy"] >= 0.95 and c["labels"] == 4
    labels = json.loads((classifier.path / "labels.json").read_text())
    assert labels["kind"] == "topic" and labels["labels"] == ["code", "general", "math", "multilingual"]
    assert {r["label"] for r in result.metadata["per_label"].rows} == set(labels["labels"])
    (check,) = TOPIC_SPEC.checks
    assert check.blocking

    unseen = write_docs(tmp_path / "unseen", corpus[660:], "u")
    result, out = run_stage(MIX_SPEC, tmp_path / "mix", {"seed": 0}, {"documents": unseen, "classifier": classifier})
    docs = list(iter_documents(out))
    assert result.counts["category_from_classifier"] == 660
    correct = sum(d["metadata"]["category"] == d["metadata"]["truth"] for d in docs)
    assert correct / len(docs) >= 0.95
    assert all(0 < d["metadata"]["category_score"] <= 1 for d in docs)
    assert result.counts["max_weight_error"] < 0.005


def test_mix_errors_name_the_artifact(tmp_path: Path, corpus, corpus_docs):
    empty = write_docs(tmp_path / "empty", [])
    with pytest.raises(DocumentsError, match=r"data_mix: input .*empty.* holds no documents"):
        run_stage(MIX_SPEC, tmp_path / "o1", {}, {"documents": empty})
    with pytest.raises(DocumentsError, match="topic_classifier"):
        run_stage(TOPIC_SPEC, tmp_path / "o2", FAST, {"documents": empty})

    odd = write_docs(tmp_path / "odd", [("x" if i % 2 else "y", t, m) for i, (_, t, m) in enumerate(corpus[:60])])
    _, classifier = run_stage(TOPIC_SPEC, tmp_path / "xy", {**FAST, "label_field": "truth"}, {"documents": odd})
    with pytest.raises(ValueError, match=r"labels \['x', 'y'\], none of which") as err:
        run_stage(MIX_SPEC, tmp_path / "o3", {}, {"documents": corpus_docs, "classifier": classifier})
    assert str(classifier.path) in str(err.value)

    broken = tmp_path / "broken"
    shutil.copytree(classifier.path, broken)
    (broken / "model.bin").write_bytes((broken / "model.bin").read_bytes()[:1000])
    with pytest.raises(ModelFileError, match="data_mix: classifier") as err:
        run_stage(
            MIX_SPEC,
            tmp_path / "o4",
            {},
            {"documents": corpus_docs, "classifier": artifact_from_dir("classifier", broken)},
        )
    assert str(broken) in str(err.value)

    one_label = write_docs(tmp_path / "one", [("math", t, m) for _, t, m in corpus[:20]])
    with pytest.raises(ValueError, match="at least 2 labels"):
        run_stage(TOPIC_SPEC, tmp_path / "o5", {**FAST, "label_field": "truth"}, {"documents": one_label})


def test_stages_are_registered():
    pm, errors = create_plugin_manager(autoload=False)
    registry = collect_stages(pm, errors)
    assert registry.stages["data_mix"].plugin == "gristmill_plugins.data_mix"
    assert registry.stages["topic_classifier"].plugin == "gristmill_plugins.topic_classifier"
    assert registry.get("data_mix").inputs == {
        "documents": Input("documents"),
        "classifier": Input("classifier", optional=True),
    }
    assert registry.get("topic_classifier").output == "classifier"
    for name in ("data_mix", "topic_classifier"):
        for field, info in registry.get(name).config.model_fields.items():
            assert info.description, f"{name}.{field}"
