"""Custom code in a model folder is never run: a tokenizer or model config that needs the folder's own Python
(``auto_map``, a ``tokenizer_class`` transformers does not ship) is refused before transformers sees it, with an
error naming the file and field — in a terminal transformers would otherwise ask "run the custom code? [y/N]"."""

import json
from pathlib import Path

import pytest

from gristmill.lib.models import ModelArtifactError
from gristmill.testing import artifact_from_dir, run_stage
from gristmill_plugins import sft
from tests.support.hf_models import make_model_folder


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_model_folder("qwen2", tmp_path / "model")


def _plant(folder: Path, marker: Path) -> None:
    """Python files that would leave ``marker`` behind if anything imported them."""
    for name in ("tokenization_evil.py", "modeling_evil.py", "configuration_evil.py"):
        (folder / name).write_text(f"open({str(marker)!r}, 'w').write('ran')\n")


def _edit(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _sft(folder: Path, out: Path) -> None:
    data = out.parent / "data"
    data.mkdir(exist_ok=True)
    turns = [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "The answer is 4."}]
    (data / "sft.jsonl").write_text(json.dumps({"messages": turns}) + "\n")
    inputs = {"model": artifact_from_dir("model", folder), "dataset": artifact_from_dir("dataset", data)}
    run_stage(sft.SPEC, out, {"max_steps": 1, "eval_file": None}, inputs)


def test_a_tokenizer_with_auto_map_is_refused_and_its_code_never_runs(folder, tmp_path):
    marker = tmp_path / "ran"
    _plant(folder, marker)
    _edit(
        folder / "tokenizer_config.json",
        tokenizer_class="EvilTokenizer",
        auto_map={"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]},
    )
    with pytest.raises(ModelArtifactError, match=r"tokenizer_config.json: auto_map names custom tokenizer code"):
        _sft(folder, tmp_path / "out")
    assert not marker.exists() and not any((tmp_path / "out").iterdir())


def test_an_unknown_tokenizer_class_is_refused_naming_the_field(folder, tmp_path):
    _edit(folder / "tokenizer_config.json", tokenizer_class="EvilTokenizer")
    with pytest.raises(
        ModelArtifactError, match=r"tokenizer_config.json: tokenizer_class 'EvilTokenizer' is not a class"
    ):
        _sft(folder, tmp_path / "out")


def test_a_model_config_with_auto_map_for_an_unknown_type_is_refused(folder, tmp_path):
    marker = tmp_path / "ran"
    _plant(folder, marker)
    auto_map = {"AutoConfig": "configuration_evil.EvilConfig", "AutoModelForCausalLM": "modeling_evil.Evil"}
    _edit(folder / "config.json", model_type="evil", auto_map=auto_map)
    with pytest.raises(ModelArtifactError, match=r"config.json: model_type 'evil' needs the custom code its auto_map"):
        _sft(folder, tmp_path / "out")
    assert not marker.exists()
