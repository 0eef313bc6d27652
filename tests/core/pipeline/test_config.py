from pathlib import Path

import pytest

from gristmill import Input, NoConfig, StageResult, StageSpec
from gristmill.pipeline.config import PipelineError, config_hash, load_pipeline, validate_pipeline
from gristmill.plugins import RegisteredStage, StageRegistry
from tests.support import toy_registry

REG = toy_registry()


def _load(tmp_path: Path, text: str):
    path = tmp_path / "pipe.yaml"
    path.write_text(text, encoding="utf-8")
    return load_pipeline(path, registry=REG)


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(PipelineError) as info:
        _load(tmp_path, text)
    return str(info.value)


GOOD = """
stages:
  words: {stage: toy_words, config: {words: [a, b]}}
  upper: {stage: toy_upper, inputs: {documents: words}}
"""


def test_valid_pipeline_orders_stages(tmp_path):
    p = _load(tmp_path, GOOD)
    assert p.order == ("words", "upper")
    assert p.stages["words"].config.words == ["a", "b"]
    assert p.downstream("words") == {"upper"}
    assert p.stages["upper"].code_version.startswith("toy_upper@1:")


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    msg = _error(tmp_path, "stages:\n  words: {stage: toy_words\n  oops: [\n")
    assert "pipe.yaml:" in msg and "invalid YAML" in msg
    assert msg.split("pipe.yaml:")[1].split(":")[0].isdigit()


def test_unknown_stage_lists_known(tmp_path):
    msg = _error(tmp_path, "stages:\n  x: {stage: no_such_stage}\n")
    assert "pipe.yaml: stages.x.stage" in msg and "no_such_stage" in msg and "toy_words" in msg


def test_unknown_config_field_names_file_stage_field(tmp_path):
    msg = _error(tmp_path, "stages:\n  words: {stage: toy_words, config: {wrods: [a]}}\n")
    assert "pipe.yaml: stages.words.config: wrods: Extra inputs are not permitted" in msg


def test_wrong_type_names_field_and_value(tmp_path):
    msg = _error(tmp_path, "stages:\n  words: {stage: toy_words, config: {sleep_s: soon}}\n")
    assert "stages.words.config: sleep_s" in msg and "'soon'" in msg


def test_unknown_top_level_key(tmp_path):
    msg = _error(tmp_path, GOOD + "stagez: {}\n")
    assert "pipe.yaml: stagez: Extra inputs are not permitted" in msg


def test_wrong_input_kind(tmp_path):
    msg = _error(
        tmp_path,
        """
sources:
  raw: {kind: warc, path: "*.warc.gz"}
stages:
  upper: {stage: toy_upper, inputs: {documents: raw}}
""",
    )
    assert "stages.upper.inputs.documents: expects a 'documents' artifact but 'raw' produces 'warc'" in msg


def test_missing_and_unknown_inputs(tmp_path):
    assert "missing required input(s) documents" in _error(tmp_path, "stages:\n  u: {stage: toy_upper}\n")
    msg = _error(tmp_path, "stages:\n  u: {stage: toy_upper, inputs: {documents: nowhere}}\n")
    assert "stages.u.inputs.documents: 'nowhere' is neither a source nor a stage" in msg
    msg = _error(tmp_path, GOOD.replace("{documents: words}", "{documents: words, extra: words}"))
    assert "stages.upper.inputs.extra: stage 'toy_upper' has no input 'extra'" in msg


def test_cycle_is_named(tmp_path):
    msg = _error(
        tmp_path,
        """
stages:
  a: {stage: toy_upper, inputs: {documents: b}}
  b: {stage: toy_upper, inputs: {documents: a}}
""",
    )
    assert "cycle" in msg and "a → b → a" in msg


def test_not_a_mapping_and_missing_file(tmp_path):
    assert "must be a mapping" in _error(tmp_path, "- just\n- a list\n")
    with pytest.raises(PipelineError, match="cannot read pipeline file"):
        load_pipeline(tmp_path / "absent.yaml", registry=REG)


def test_config_hash_covers_defaults_and_changes(tmp_path):
    p = _load(tmp_path, GOOD)
    cfg = p.stages["words"].config
    assert config_hash(cfg) == config_hash(type(cfg)(words=["a", "b"], sleep_s=0.0))
    assert config_hash(cfg) != config_hash(type(cfg)(words=["a", "c"]))


def _inputs_registry():
    def run(ctx, config, inputs):
        """Does nothing."""
        return StageResult()

    inputs = {"docs": "documents", "extra": Input("documents", optional=True), "many": Input("documents", many=True)}
    spec = StageSpec(name="toy_inputs", version="1", inputs=inputs, output="report", config=NoConfig, run=run)
    return StageRegistry(stages={**REG.stages, "toy_inputs": RegisteredStage(spec, "tests")})


def test_wiring_follows_the_input_declarations(tmp_path):
    registry = _inputs_registry()

    def check(inputs: dict):
        stages = {"w": {"stage": "toy_words"}, "t": {"stage": "toy_inputs", "inputs": inputs}}
        return validate_pipeline({"stages": stages}, "p.yaml", registry, store=tmp_path)

    assert check({"docs": "w", "many": ["w", "w"]}).stages["t"].refs == ["w", "w", "w"]  # the optional one unwired
    with pytest.raises(PipelineError, match=r"p.yaml: stages.t.inputs: missing required input\(s\) many of stage"):
        check({"docs": "w", "extra": "w"})
    with pytest.raises(PipelineError, match="p.yaml: stages.t.inputs.docs: takes one source or stage, not a list"):
        check({"docs": ["w"], "many": ["w"]})
    with pytest.raises(PipelineError, match="p.yaml: stages.t.inputs.many: the list is empty"):
        check({"docs": "w", "many": []})
    with pytest.raises(PipelineError, match="stage 'toy_inputs' has no input 'other'; its inputs: docs, extra, many"):
        check({"docs": "w", "many": ["w"], "other": "w"})


def test_a_source_kind_outside_the_registry_names_file_field_and_allowed_kinds(tmp_path):
    msg = _error(tmp_path, 'sources:\n  raw: {kind: classifier, path: "*.bin"}\nstages:\n  w: {stage: toy_words}\n')
    assert "pipe.yaml: sources.raw.kind: " in msg and "'classifier' is not a source kind" in msg
    assert "allowed: warc, documents, dataset, tokenizer, tokens, model (got 'classifier')" in msg
