"""``eval_accuracy`` on real tiny models: one row per model (rounds labelled), exact verifier, bad inputs."""

import json
import shutil

import pytest

from gristmill.stage import Artifact
from gristmill.testing import artifact_from_dir, run_stage
from gristmill_plugins.eval_accuracy import SPEC, EvalInputError, model_label


def _model(path, asset, partition=None):
    art = artifact_from_dir("model", path)
    return Artifact(art.kind, art.path, art.id, art.content_hash, manifest={"asset": asset, "partition": partition})


def test_scores_every_model_and_writes_every_answer(tiny_policy, arithmetic, tmp_path):
    models = [_model(tiny_policy, "pretrain"), _model(tiny_policy, "dpo", "round-001")]
    result, art = run_stage(
        SPEC,
        tmp_path / "eval",
        {"max_examples": 8, "max_new_tokens": 24},
        {"models": models, "tasks": artifact_from_dir("dataset", arithmetic)},
    )
    report = json.loads((art.path / "report.json").read_text())
    assert [r["model"] for r in report["models"]] == ["pretrain", "dpo[round-001]"]
    assert all(r["total"] == 8 and 0 <= r["accuracy"] <= 1 for r in report["models"])
    assert report["models"][0]["accuracy"] == report["models"][1]["accuracy"]  # same weights, greedy
    rows = [json.loads(line) for line in (art.path / "completions.jsonl").read_text().splitlines()]
    assert len(rows) == 16
    from gristmill.lib.verify import is_correct

    assert all(r["correct"] == is_correct(r["completion"], r["answer"]) for r in rows)
    assert result.counts["accuracy/dpo[round-001]"] == report["models"][1]["accuracy"]
    assert result.metadata["accuracy_plot"].text.startswith("![")


def test_bad_inputs_are_named(tiny_policy, arithmetic, tmp_path):
    rm = tmp_path / "rm"
    shutil.copytree(tiny_policy, rm)
    cfg = json.loads((rm / "config.json").read_text())
    (rm / "config.json").write_text(json.dumps({**cfg, "architectures": ["LlamaForSequenceClassification"]}))
    tasks = artifact_from_dir("dataset", arithmetic)
    with pytest.raises(EvalInputError, match="reward models"):
        run_stage(SPEC, tmp_path / "a", {}, {"models": [artifact_from_dir("model", rm)], "tasks": tasks})
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "eval.jsonl").write_text('{"prompt": [{"role": "user", "content": "2+2?"}]}\n')
    with pytest.raises(EvalInputError, match="without an 'answer'"):
        run_stage(
            SPEC,
            tmp_path / "b",
            {},
            {"models": [artifact_from_dir("model", tiny_policy)], "tasks": artifact_from_dir("dataset", bad)},
        )
    assert model_label(_model(tiny_policy, "dpo", "round-002")) == "dpo[round-002]"
