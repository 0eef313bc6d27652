"""``gristmill new-stage``: a plugin package for a new :mod:`gristmill.lib.kit` stage to start from.

The package holds a ``pyproject.toml`` with the ``gristmill`` entry point, a module with the stage (a filter,
mapper or trainer built with the kit), a test that passes as written and a README.
"""

from pathlib import Path

__all__ = ["KINDS", "ScaffoldError", "write_stage_package"]

KINDS = ("filter", "mapper", "trainer")


class ScaffoldError(ValueError):
    """A stage package that cannot be written (bad name, folder exists)."""


_PYPROJECT = """[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "__DIST__"
version = "0.1.0"
description = "gristmill stage plugin: __NAME__"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["gristmill"]

[project.optional-dependencies]
test = ["pytest>=8"]

# gristmill finds the stage through this entry point (group `gristmill`): the module's gristmill_register_stages().
[project.entry-points.gristmill]
__NAME__ = "__MODULE__"

[tool.setuptools]
packages = ["__MODULE__"]

[tool.pytest.ini_options]
testpaths = ["tests"]
"""

_FILTER = '''"""``__NAME__``: a document filter built with :func:`gristmill.lib.kit.document_filter`.

TODO: say what it drops and why. The kit runs ``keep`` in a datatrove pipeline on ``config.executor`` and reports
documents in/kept, ``dropped_<reason>`` counts, a sample of dropped documents, a bar chart and the check.
"""

from typing import Any

from gristmill import StageSpec, hookimpl
from gristmill.lib.kit import FilterConfig, document_filter
from pydantic import Field


class Config(FilterConfig):
    """Options of ``__NAME__`` (plus ``executor``, ``min_documents``, ``sample_rows`` from FilterConfig)."""

    min_words: int = Field(5, ge=0, description="Drop documents with fewer words than this.")


def keep(doc: dict[str, Any], config: Config) -> bool | str:
    """Drop documents with fewer than min_words words."""
    if len(doc["text"].split()) < config.min_words:
        return "too_short"  # a string drops the document and names the reason
    return True


SPEC = document_filter("__NAME__", keep, config=Config)


@hookimpl
def gristmill_register_stages() -> list[StageSpec]:
    return [SPEC]
'''

_MAPPER = '''"""``__NAME__``: a document mapper built with :func:`gristmill.lib.kit.document_mapper`.

TODO: say what it changes. The kit runs ``transform`` in a datatrove pipeline on ``config.executor`` and reports
documents changed/unchanged, characters in/out, before/after samples and the check.
"""

from typing import Any

from gristmill import StageSpec, hookimpl
from gristmill.lib.kit import MapperConfig, document_mapper
from pydantic import Field


class Config(MapperConfig):
    """Options of ``__NAME__`` (plus ``executor``, ``min_documents``, ``sample_rows`` from MapperConfig)."""

    strip_lines: bool = Field(True, description="Collapse runs of spaces/tabs and strip every line.")


def transform(doc: dict[str, Any], config: Config) -> dict[str, Any]:
    """Collapse runs of spaces and tabs and strip every line."""
    if config.strip_lines:
        doc["text"] = "\\n".join(" ".join(line.split()) for line in doc["text"].splitlines())
    return doc


SPEC = document_mapper("__NAME__", transform, config=Config)


@hookimpl
def gristmill_register_stages() -> list[StageSpec]:
    return [SPEC]
'''

_TRAINER = '''"""``__NAME__``: a fine-tuning stage built with :func:`gristmill.lib.kit.trainer_stage`.

TODO: say what it trains. Inputs: ``model`` (a chat model folder, e.g. the ``pretrain`` stage's) and ``dataset``
(conversations JSONL, e.g. ``arithmetic_tasks``' sft.jsonl). The kit loads the model, prepares the trainer
arguments and callbacks, trains, saves the model folder and reports the loss curve and the loss check.
"""

from typing import Any

from gristmill import StageSpec, hookimpl
from gristmill.lib.kit import TrainerConfig, TrainerSetup, trainer_stage
from pydantic import Field


class Config(TrainerConfig):
    """Options of ``__NAME__`` (plus max_steps, lr, batch_size, ... and launch from TrainerConfig)."""

    file: str = Field("sft.jsonl", description="Conversations JSONL file of the dataset.")
    max_examples: int | None = Field(None, ge=1, description="Train on the first N conversations; None: all.")
    max_length: int = Field(256, ge=8, description="Tokens per example.")


def build(setup: TrainerSetup) -> Any:
    """Supervised fine-tuning on the dataset's conversations, loss on the assistant turns (TRL SFTTrainer)."""
    from datasets import Dataset
    from gristmill.lib.post_training import dataset_file, load_conversations
    from trl import SFTConfig, SFTTrainer

    config: Config = setup.config
    rows = load_conversations(dataset_file(setup.inputs["dataset"], config.file), config.max_examples)
    return SFTTrainer(
        model=setup.model,
        args=SFTConfig(**setup.args, max_length=config.max_length, assistant_only_loss=True),
        train_dataset=Dataset.from_list([{"messages": row["messages"]} for row in rows]),
        processing_class=setup.tokenizer,
        callbacks=setup.callbacks,
    )


SPEC = trainer_stage("__NAME__", build, config=Config)


@hookimpl
def gristmill_register_stages() -> list[StageSpec]:
    return [SPEC]
'''

_DOCS_TEST = '''"""``__NAME__`` as a plain function (gristmill.testing): no Dagster, no store."""

from pathlib import Path

from gristmill.lib.documents import DocumentWriter, iter_documents
from gristmill.testing import artifact_from_dir, run_stage

from __MODULE__ import SPEC

DOCS = ["one two", "a   document  with\\tenough words in it", "  another document that has enough words  "]


def _inputs(tmp_path: Path) -> dict:
    with DocumentWriter(tmp_path / "in") as writer:
        writer.write_all({"text": t, "id": f"d{i}", "metadata": {}} for i, t in enumerate(DOCS))
    return {"documents": artifact_from_dir("documents", tmp_path / "in")}


def test_the_stage_runs_on_documents(tmp_path):
    result, out = run_stage(SPEC, tmp_path / "out", {}, _inputs(tmp_path))
    docs = list(iter_documents(out))
    assert result.counts["documents_in"] == len(DOCS)
__ASSERTS__
    outcome = SPEC.checks[0].check(result.counts, SPEC.config.model_validate({}))
    assert outcome.passed, outcome.description
'''

_FILTER_ASSERTS = """    assert result.counts["documents_kept"] == 2 and result.counts["dropped_too_short"] == 1
    assert [d["id"] for d in docs] == ["d1", "d2"]"""

_MAPPER_ASSERTS = """    assert result.counts["documents_changed"] == 2 and result.counts["documents_unchanged"] == 1
    assert [d["text"] for d in docs] == ["one two", "a document with enough words in it",
                                         "another document that has enough words"]"""

_TRAINER_TEST = '''"""``__NAME__``: the spec and config; a real training run when artifacts are given.

Set GRISTMILL_TEST_MODEL (a ``model`` folder with a chat template, e.g. a gristmill ``pretrain`` output) and
GRISTMILL_TEST_DATASET (a folder with sft.jsonl, e.g. an ``arithmetic_tasks`` output) to train for a few steps.
"""

import os
from pathlib import Path

import pytest
from gristmill.testing import artifact_from_dir, run_stage

from __MODULE__ import SPEC


def test_spec_and_config():
    assert SPEC.name == "__NAME__" and SPEC.output == "model" and SPEC.launch == "accelerate"
    config = SPEC.config.model_validate({"max_steps": 5})
    assert config.max_steps == 5 and config.file == "sft.jsonl"


def test_a_few_steps_lower_the_loss(tmp_path):
    model, dataset = os.environ.get("GRISTMILL_TEST_MODEL"), os.environ.get("GRISTMILL_TEST_DATASET")
    if not (model and dataset):
        pytest.skip("set GRISTMILL_TEST_MODEL and GRISTMILL_TEST_DATASET to train for real")
    inputs = {"model": artifact_from_dir("model", Path(model)), "dataset": artifact_from_dir("dataset", Path(dataset))}
    config = {"max_steps": 10, "lr": 3e-3, "max_examples": 80, "min_loss_drop": 0.05}
    result, out = run_stage(SPEC, tmp_path / "out", config, inputs)
    assert result.counts["steps"] == 10 and (out.path / "model.safetensors").is_file()
    assert SPEC.checks[0].check(result.counts, SPEC.config.model_validate(config)).passed, result.counts
'''

_README = """# __DIST__

A gristmill stage plugin: `__NAME__` (a __KIND__ built with `gristmill.lib.kit`). Written by `gristmill new-stage`.

```bash
pip install -e .               # into the environment where gristmill is installed
gristmill stages               # lists __NAME__ (plugin __NAME__)
python -m pytest               # tests/ run the stage as a plain function (gristmill.testing)
```

Use it in a pipeline:

```yaml
stages:
  my___NAME__:
    stage: __NAME__
    inputs: {__INPUTS__}
    config: {}
```

Edit `__MODULE__/__init__.py`: the config model (pydantic, `Field(description=...)` for every option), the
function and the `version` (bump it when the output's meaning changes: it is part of the cache key).
"""


def write_stage_package(name: str, kind: str = "filter", parent: Path | str = ".") -> Path:
    """Write a plugin package for a new kit stage ``name`` into ``parent/gristmill-<name>``; return its folder.

    The package (``pyproject.toml`` with the ``gristmill`` entry point, module ``gristmill_<name>``, a test, a
    README) installs and passes its test as written; edit the function and config from there.
    """
    if not name.isidentifier() or not name.islower() or name.startswith("_"):
        raise ScaffoldError(f"stage name {name!r} must be a lower-case Python identifier, e.g. short_docs")
    if kind not in KINDS:
        raise ScaffoldError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    module = f"gristmill_{name}"
    dist = f"gristmill-{name.replace('_', '-')}"
    root = Path(parent) / dist
    if root.exists():
        raise ScaffoldError(f"{root} already exists")
    source = {"filter": _FILTER, "mapper": _MAPPER, "trainer": _TRAINER}[kind]
    if kind == "trainer":
        test, inputs = _TRAINER_TEST, "model: pretrain, dataset: tasks"
    else:
        test = _DOCS_TEST.replace("__ASSERTS__", _FILTER_ASSERTS if kind == "filter" else _MAPPER_ASSERTS)
        inputs = "documents: crawl"
    files = {
        "pyproject.toml": _PYPROJECT,
        "README.md": _README.replace("__KIND__", kind).replace("__INPUTS__", inputs),
        f"{module}/__init__.py": source,
        f"tests/test_{name}.py": test,
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        text = text.replace("__NAME__", name).replace("__MODULE__", module).replace("__DIST__", dist)
        path.write_text(text, encoding="utf-8")
    return root
