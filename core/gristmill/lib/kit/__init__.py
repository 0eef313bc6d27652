"""The stage-writing kit: a whole stage from one small function.

* :func:`document_filter` — ``keep(doc, config) -> bool | str`` (a string drops the document with that reason);
* :func:`document_mapper` — ``map_fn(doc, config) -> doc`` (normalize, redact, annotate);
* :func:`trainer_stage` — ``build(setup) -> transformers.Trainer`` (a TRL/transformers fine-tuning stage).

Filters and mappers run as datatrove pipelines (a strict ``JsonlReader`` over the input shards → the step →
a writer of deterministic ``NNNNN.jsonl.gz`` shards) on :func:`gristmill.lib.executors.run_datatrove`, so every kit
stage scales out with its ``executor:`` config. A document is the dict ``{"text", "id", "metadata"}``. Each
returns the usual headline counts, a sample table, a bar chart and the ``min_documents_kept`` check; the
returned :class:`~gristmill.stage.StageSpec` is registered like any other::

    class NoShoutingConfig(FilterConfig):
        max_caps: float = Field(0.3, description="Drop documents with a larger share of upper-case letters.")

    def no_shouting(doc: dict, config: NoShoutingConfig) -> bool | str:
        letters = [c for c in doc["text"] if c.isalpha()]
        caps = sum(c.isupper() for c in letters) / max(1, len(letters))
        return caps <= config.max_caps or "shouting"

    SPEC = document_filter("no_shouting", no_shouting, config=NoShoutingConfig)

    @hookimpl
    def gristmill_register_stages() -> list[StageSpec]:
        return [SPEC]

``keep``/``map_fn`` run inside datatrove tasks (with ``executor.workers > 1`` in other processes): define them at
module level and keep per-config state (compiled patterns, loaded lists) in a ``functools.cached_property`` of the
config class, which is computed once per process.

The parts: :mod:`~gristmill.lib.kit.documents` (filter and mapper stages), :mod:`~gristmill.lib.kit.steps` (the
datatrove reader and steps, :func:`run_document_step`), :mod:`~gristmill.lib.kit.trainer` (trainer stages).
"""

from gristmill.lib.kit.documents import FilterConfig, MapperConfig, document_filter, document_mapper
from gristmill.lib.kit.steps import (
    DEFAULT_REASON,
    KitFilter,
    KitMapper,
    StrictJsonlReader,
    reason_key,
    run_document_step,
)
from gristmill.lib.kit.trainer import TrainerConfig, TrainerSetup, trainer_stage

__all__ = [
    "DEFAULT_REASON",
    "FilterConfig",
    "KitFilter",
    "KitMapper",
    "MapperConfig",
    "StrictJsonlReader",
    "TrainerConfig",
    "TrainerSetup",
    "document_filter",
    "document_mapper",
    "reason_key",
    "run_document_step",
    "trainer_stage",
]
