"""gristmill_plugins.devtools.scaffold (`gristmill new-stage`): the generated packages import, register and run
for real."""

import importlib
import json

import pytest

from gristmill import TRAINING, Input
from gristmill.lib.kit import trainer_stage
from gristmill.testing import artifact_from_dir, run_stage
from gristmill_plugins.devtools.scaffold import ScaffoldError, write_stage_package
from tests.core.lib.test_kit import _documents
from tests.plugins.conftest import arithmetic, one_thread, tiny_policy  # noqa: F401 - fixtures of the trainer test


def test_new_stage_writes_packages_whose_modules_run(tmp_path, monkeypatch):
    for kind in ("filter", "mapper"):
        root = write_stage_package(f"scaffold_{kind}", kind, tmp_path)
        assert root.name == f"gristmill-scaffold-{kind}"
        assert f'scaffold_{kind} = "gristmill_scaffold_{kind}"' in (root / "pyproject.toml").read_text()
        monkeypatch.syspath_prepend(str(root))
        module = importlib.import_module(f"gristmill_scaffold_{kind}")
        assert module.gristmill_register_stages() == [module.SPEC]
        result, out = run_stage(module.SPEC, tmp_path / f"out-{kind}", {}, _documents(tmp_path / f"in-{kind}"))
        assert result.counts["documents_in"] == 7
    assert result.counts["documents_changed"] == 0  # mapper: the texts have no extra whitespace
    with pytest.raises(ScaffoldError, match="already exists"):
        write_stage_package("scaffold_filter", "filter", tmp_path)
    with pytest.raises(ScaffoldError, match="lower-case Python identifier"):
        write_stage_package("Not-A-Name", "filter", tmp_path)
    with pytest.raises(ValueError, match="inputs must include 'model'"):
        trainer_stage("t", lambda setup: None, inputs={"dataset": "dataset"})


def test_trainer_stage_from_new_stage_fine_tunes_and_saves(
    arithmetic,  # noqa: F811
    tiny_policy,  # noqa: F811
    one_thread,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    """The generated trainer template (TRL SFTTrainer via trainer_stage) trains the tiny policy for real."""
    from transformers import AutoModelForCausalLM

    root = write_stage_package("scaffold_trainer", "trainer", tmp_path)
    monkeypatch.syspath_prepend(str(root))
    spec = importlib.import_module("gristmill_scaffold_trainer").SPEC
    assert spec.policy == TRAINING and spec.inputs == {"model": Input("model"), "dataset": Input("dataset")}
    config = {"max_steps": 12, "lr": 3e-3, "batch_size": 8, "max_examples": 96, "min_loss_drop": 0.05}
    inputs = {"model": artifact_from_dir("model", tiny_policy), "dataset": artifact_from_dir("dataset", arithmetic)}
    result, out = run_stage(spec, tmp_path / "out", config, inputs)
    c = result.counts
    assert c["steps"] == 12 and c["train_seconds"] > 0 and c["final_loss"] < c["first_loss"], c
    assert spec.checks[0].check(c, spec.config.model_validate(config)).passed
    assert result.metadata["loss_curve"].text.startswith("![scaffold_trainer loss curve](data:image/png;base64,")
    assert json.loads((out.path / "config.json").read_text())["use_cache"] is True
    AutoModelForCausalLM.from_pretrained(str(out.path), local_files_only=True)
