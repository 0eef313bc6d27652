"""gristmill.lib.kit on real JSONL shards and real datatrove executors: filters, mappers, the trainer shape."""

import gzip
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field, ValidationError

from gristmill import Input, hookimpl
from gristmill.lib.documents import DocumentsError, DocumentWriter, iter_documents
from gristmill.lib.kit import (
    FilterConfig,
    MapperConfig,
    TrainerConfig,
    document_filter,
    document_mapper,
)
from gristmill.plugins import collect_stages, create_plugin_manager
from gristmill.testing import artifact_from_dir, run_stage
from tests.plugins.conftest import arithmetic, one_thread, tiny_policy  # noqa: F401 - fixtures of the trainer test

TEXTS = [
    "a perfectly ordinary document about rivers and bridges",
    "short",
    "buy cheap SPAM now, a document of spam",
    "another ordinary document about gardens in spring",
    "tiny",
    "this one mentions a forbidden word: Voldemort",
    "a third ordinary document about trains",
    "",
]


class LengthConfig(FilterConfig):
    min_chars: int = Field(10, ge=0, description="Drop documents shorter than this.")


def keep_long(doc: dict[str, Any], config: LengthConfig) -> bool | str:
    """Drop short, spammy and forbidden documents."""
    if len(doc["text"]) < config.min_chars:
        return "Too short!"
    if "spam" in doc["text"].lower():
        return False
    if "voldemort" in doc["text"].lower():
        return "forbidden"
    doc["metadata"]["chars"] = len(doc["text"])
    return True


def keep_none(doc: dict[str, Any], config: FilterConfig) -> Any:
    return None


def shout(doc: dict[str, Any], config: MapperConfig) -> dict[str, Any]:
    """Upper-case documents about rivers or trains."""
    if "rivers" in doc["text"] or "trains" in doc["text"]:
        doc["text"] = doc["text"].upper()
        doc["metadata"]["shouted"] = True
    return doc


def broken_map(doc: dict[str, Any], config: MapperConfig) -> Any:
    return doc["text"]


LENGTH = document_filter("length_test", keep_long, config=LengthConfig)


def _documents(folder: Path, texts: list[str] = TEXTS, shard_size: int = 3) -> dict:
    with DocumentWriter(folder, shard_size=shard_size) as writer:
        writer.write_all({"text": t, "id": f"doc-{i}", "metadata": {"n": i}} for i, t in enumerate(texts))
    return {"documents": artifact_from_dir("documents", folder)}


def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.jsonl.gz"))}


def test_filter_counts_reasons_sample_plot_check_and_deterministic_output(tmp_path):
    inputs = _documents(tmp_path / "in")
    assert len(list((tmp_path / "in").glob("*.jsonl.gz"))) == 3
    result, out = run_stage(LENGTH, tmp_path / "a", {"sample_rows": 1}, inputs)
    assert result.counts == {
        "documents_kept": 3,
        "documents_in": 7,
        "documents_dropped": 4,
        "kept_fraction": round(3 / 7, 6),
        "dropped_too_short": 2,
        "dropped_forbidden": 1,
        "dropped_rejected": 1,
        "skipped_empty": 1,
    }
    assert result.metadata["drop_reasons"] == {"too_short": 2, "forbidden": 1, "rejected": 1}
    rows = result.metadata["dropped_sample"].rows
    assert [(r["reason"], r["id"]) for r in rows] == [
        ("too_short", "doc-1"),
        ("forbidden", "doc-5"),
        ("rejected", "doc-2"),
    ]
    assert rows[0]["text"] == "short" and rows[0]["chars"] == 5
    assert result.metadata["drops_per_reason"].text.startswith(
        "![length_test: documents dropped per reason](data:image/png;base64,"
    )
    kept = list(iter_documents(out))
    assert [d["id"] for d in kept] == ["doc-0", "doc-3", "doc-6"]
    assert kept[0] == {"text": TEXTS[0], "id": "doc-0", "metadata": {"n": 0, "chars": len(TEXTS[0])}}
    assert [p.name for p in out.path.iterdir()] == ["00000.jsonl.gz"]  # no logs or samples in the artifact
    check = LENGTH.checks[0]
    assert check.name == "min_documents_kept"
    assert check.check(result.counts, LengthConfig()).passed
    assert not check.check(result.counts, LengthConfig(min_documents=4)).passed

    again, _ = run_stage(LENGTH, tmp_path / "b", {"sample_rows": 1}, inputs)
    assert again.counts == result.counts and _bytes(tmp_path / "b") == _bytes(tmp_path / "a")
    assert gzip.decompress(_bytes(tmp_path / "a")["00000.jsonl.gz"]).decode().count("\n") == 3

    # Scaled out: 3 tasks in 2 worker processes, one output shard per task, the same documents and counts.
    scaled, out3 = run_stage(LENGTH, tmp_path / "c", {"executor": {"tasks": 3, "workers": 2}}, inputs)
    assert {k: v for k, v in scaled.counts.items()} == result.counts
    assert sorted(_bytes(tmp_path / "c")) == ["00000.jsonl.gz", "00001.jsonl.gz", "00002.jsonl.gz"]
    assert [d["id"] for d in iter_documents(out3)] == ["doc-0", "doc-3", "doc-6"]
    assert len(scaled.metadata["dropped_sample"].rows) == 4  # sample_rows=5 per reason, gathered over tasks


def test_filter_errors_name_the_stage_the_document_and_the_line(tmp_path):
    inputs = _documents(tmp_path / "in", TEXTS[:2])
    with pytest.raises(TypeError, match=r"none_test: keep\(\) returned NoneType for document 'doc-0'"):
        run_stage(document_filter("none_test", keep_none), tmp_path / "a", {}, inputs)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "00000.jsonl").write_text('{"text": "fine", "id": "x"}\n{"text": oops}\n', encoding="utf-8")
    with pytest.raises(DocumentsError, match=r"00000.jsonl:2: not a JSON document"):
        run_stage(LENGTH, tmp_path / "b", {}, {"documents": artifact_from_dir("documents", bad)})
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DocumentsError, match="length_test: input .* holds no documents"):
        run_stage(LENGTH, tmp_path / "c", {}, {"documents": artifact_from_dir("documents", empty)})
    with pytest.raises(TypeError, match="subclass of gristmill.lib.kit.FilterConfig"):
        document_filter("x", keep_long, config=TrainerConfig)


def test_mapper_counts_changes_and_samples(tmp_path):
    spec = document_mapper("shout_test", shout)
    assert spec.doc == "Upper-case documents about rivers or trains." and spec.output == "documents"
    result, out = run_stage(spec, tmp_path / "a", {}, _documents(tmp_path / "in"))
    chars = sum(len(t) for t in TEXTS)
    assert result.counts == {
        "documents_out": 7,
        "documents_in": 7,
        "documents_changed": 2,
        "documents_unchanged": 5,
        "chars_in": chars,
        "chars_out": chars,
        "skipped_empty": 1,
    }
    docs = list(iter_documents(out))
    assert docs[0] == {"text": TEXTS[0].upper(), "id": "doc-0", "metadata": {"n": 0, "shouted": True}}
    assert docs[1] == {"text": "short", "id": "doc-1", "metadata": {"n": 1}}
    rows = result.metadata["changed_sample"].rows
    assert [r["id"] for r in rows] == ["doc-0", "doc-6"] and rows[1]["after"] == TEXTS[6].upper()
    assert result.metadata["documents_changed"].text.startswith("![shout_test: documents changed](data:image/png")
    assert spec.checks[0].check(result.counts, MapperConfig(min_documents=7)).passed
    with pytest.raises(TypeError, match="broken_test: map_fn returned str for document 'doc-0'"):
        run_stage(document_mapper("broken_test", broken_map), tmp_path / "b", {}, _documents(tmp_path / "in2"))


def test_kit_stages_register_through_the_hook_like_any_other():
    class Plugin:
        @hookimpl
        def gristmill_register_stages(self):
            return [LENGTH, document_mapper("shout_test", shout)]

    pm, errors = create_plugin_manager(builtins=(), autoload=False, extra=(Plugin(),))
    registry = collect_stages(pm, errors)
    assert registry.errors == []
    assert registry.get("length_test") is LENGTH
    assert registry.get("shout_test").inputs == {"documents": Input("documents")}


def test_trainer_config_keeps_the_kit_defaults_and_names_the_renamed_field():
    c = TrainerConfig()
    assert (c.max_steps, c.lr, c.lr_scheduler, c.warmup_steps) == (100, 2e-5, "cosine", 0)
    assert c.gradient_accumulation_steps == 1 and c.batch_size == 8
    assert c.bf16 and c.min_loss_drop == 0.05 and not c.gradient_checkpointing and c.launch.mode == "auto"
    with pytest.raises(ValidationError, match="'grad_accum' was renamed 'gradient_accumulation_steps'"):
        TrainerConfig.model_validate({"grad_accum": 2})
