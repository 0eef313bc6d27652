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
"""

import copy
import json
import math
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.readers import JsonlReader
from pydantic import Field

from gristmill.configs import LaunchConfig
from gristmill.lib.documents import parse_document_line, require_documents
from gristmill.lib.executors import DeterministicJsonlWriter, ExecutorConfig, run_datatrove
from gristmill.lib.plots import bar_chart
from gristmill.stage import (
    Artifact,
    StageConfig,
    StageContext,
    StageResult,
    StageSpec,
    Table,
    loss_decreased_check,
    min_documents_check,
)

__all__ = [
    "DEFAULT_REASON",
    "FilterConfig",
    "MapperConfig",
    "TrainerConfig",
    "TrainerSetup",
    "document_filter",
    "document_mapper",
    "reason_key",
    "run_document_step",
    "trainer_stage",
]

DEFAULT_REASON = "rejected"  # the drop reason when ``keep`` returns False
SNIPPET_CHARS = 300

# --------------------------------------------------------------------------------------------------
# Configs


class FilterConfig(StageConfig):
    """Base config of kit filter stages: where the datatrove pipeline runs, the check floor, the sample size."""

    executor: ExecutorConfig = Field(
        default_factory=ExecutorConfig, description="Where the datatrove pipeline runs (local tasks/workers, ...)."
    )
    min_documents: int = Field(1, ge=0, description="Check: at least this many documents kept.")
    sample_rows: int = Field(5, ge=0, le=100, description="Dropped documents shown per reason in the sample table.")


class MapperConfig(FilterConfig):
    """Base config of kit mapper stages (``sample_rows``: changed documents shown)."""


# --------------------------------------------------------------------------------------------------
# datatrove steps


def _snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _change_snippets(before: str, after: str, context: int = 80) -> tuple[str, str]:
    """Snippets of ``before`` and ``after`` starting ``context`` characters ahead of their first difference."""
    i = next((k for k, (a, b) in enumerate(zip(before, after, strict=False)) if a != b), min(len(before), len(after)))
    start = max(0, i - context)
    lead = "…" if start else ""
    return lead + _snippet(before[start:]), lead + _snippet(after[start:])


def reason_key(reason: str) -> str:
    """A drop reason as a count-key suffix: lower case, ``[a-z0-9_]`` only (``"Too short!"`` → ``too_short``)."""
    key = re.sub(r"[^a-z0-9]+", "_", reason.strip().lower()).strip("_")
    return key or DEFAULT_REASON


class StrictJsonlReader(JsonlReader):
    """datatrove's ``JsonlReader`` that fails on a malformed line (naming file and line) instead of skipping it.

    Never adds ``file_path`` to the metadata (it would put this machine's paths into the output); documents
    with empty text are skipped and counted (``skipped_empty``); a document without ``id`` gets ``<file>/<line>``.
    """

    name = "🐿 Jsonl (strict)"

    def __init__(self, data_folder: str, paths_file: str) -> None:
        super().__init__(data_folder, paths_file=paths_file, add_file_path=False)

    def read_file(self, filepath: str) -> DocumentsPipeline:
        where = self.data_folder.resolve_paths(filepath)
        with self.data_folder.open(filepath, "rt", compression=self.compression, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                with self.track_time():
                    row = parse_document_line(line, f"{where}:{lineno}")
                    document = self.get_document_from_dict(row, filepath, lineno - 1)
                if document is None:
                    self.stat_update("skipped_empty")
                    continue
                yield document


def _as_dict(doc: Document, copy_metadata: bool = False) -> dict[str, Any]:
    metadata = copy.deepcopy(doc.metadata) if copy_metadata else doc.metadata
    return {"text": doc.text, "id": doc.id, "metadata": metadata}


class _Samples:
    """Up to ``limit`` sample rows per key, appended to ``<folder>/<rank>.jsonl`` (scratch, read back after the run)."""

    def __init__(self, folder: str | None, limit: int) -> None:
        self.folder, self.limit = folder, limit
        self.seen: dict[str, int] = {}
        self.file: Any = None

    def wants(self, key: str) -> bool:
        return self.folder is not None and self.seen.get(key, 0) < self.limit

    def add(self, key: str, rank: int, row: dict[str, Any]) -> None:
        self.seen[key] = self.seen.get(key, 0) + 1
        if self.file is None:
            Path(self.folder).mkdir(parents=True, exist_ok=True)
            self.file = open(Path(self.folder) / f"{rank:05d}.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        self.file.write(json.dumps({"key": key, **row}, ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


class KitFilter(BaseFilter):
    """A datatrove filter around ``keep(doc, config)``; drop reasons become ``dropped_<reason>`` stats."""

    name = "🔻 kit filter"

    def __init__(
        self,
        stage: str,
        keep: Callable[[dict[str, Any], Any], bool | str],
        config: Any,
        samples_dir: str | None = None,
        sample_rows: int = 5,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__()
        self.stage, self.keep, self.config = stage, keep, config
        self.samples_dir, self.sample_rows, self.progress = samples_dir, sample_rows, progress
        self._rank = 0
        self._samples: _Samples | None = None
        self._done = 0

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        verdict = self.keep(_as_dict(doc), self.config)
        self._done += 1
        if self.progress is not None:
            self.progress(self._done)
        if verdict is True:
            return True
        if verdict is False:
            reason = DEFAULT_REASON
        elif isinstance(verdict, str):
            reason = reason_key(verdict)
        else:
            raise TypeError(
                f"{self.stage}: keep() returned {type(verdict).__name__} for document {doc.id!r}; "
                "return True (keep), False or a drop-reason string"
            )
        if self._samples is not None and self._samples.wants(reason):
            self._samples.add(reason, self._rank, {"id": doc.id, "chars": len(doc.text), "text": _snippet(doc.text)})
        return False, reason

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        self._rank = rank
        self._samples = _Samples(self.samples_dir, self.sample_rows)
        try:
            yield from super().run(data, rank, world_size)
        finally:
            self._samples.close()


class KitMapper(PipelineStep):
    """A datatrove step around ``map_fn(doc, config) -> doc``; counts changed/unchanged documents and characters."""

    name = "🔀 kit mapper"
    type = "✂️ - FORMAT"

    def __init__(
        self,
        stage: str,
        map_fn: Callable[[dict[str, Any], Any], dict[str, Any]],
        config: Any,
        samples_dir: str | None = None,
        sample_rows: int = 5,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__()
        self.stage, self.map_fn, self.config = stage, map_fn, config
        self.samples_dir, self.sample_rows, self.progress = samples_dir, sample_rows, progress

    def _apply(self, doc: Document) -> bool:
        before_text, before_meta = doc.text, doc.metadata
        out = self.map_fn(_as_dict(doc, copy_metadata=True), self.config)
        if not isinstance(out, Mapping) or not isinstance(out.get("text"), str):
            got = type(out).__name__ if not isinstance(out, Mapping) else f"a dict with text {out.get('text')!r:.40}"
            raise TypeError(
                f"{self.stage}: map_fn returned {got} for document {doc.id!r}; "
                "return the document dict with a string 'text'"
            )
        metadata = out.get("metadata", before_meta)
        if not isinstance(metadata, Mapping):
            raise TypeError(
                f"{self.stage}: map_fn returned metadata of type {type(metadata).__name__} for document "
                f"{doc.id!r}; it must be a dict"
            )
        doc.text, doc.id, doc.metadata = out["text"], str(out.get("id", doc.id)), dict(metadata)
        return doc.text != before_text or doc.metadata != before_meta

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        samples = _Samples(self.samples_dir, self.sample_rows)
        done = 0
        try:
            for doc in data:
                before = doc.text
                with self.track_time():
                    changed = self._apply(doc)
                self.stat_update("total")
                self.stat_update("changed" if changed else "unchanged")
                self.stat_update("chars_in", value=len(before))
                self.stat_update("chars_out", value=len(doc.text))
                if changed and samples.wants("changed"):
                    old, new = _change_snippets(before, doc.text)
                    samples.add("changed", rank, {"id": doc.id, "before": old, "after": new})
                done += 1
                if self.progress is not None:
                    self.progress(done)
                self.update_doc_stats(doc)
                yield doc
        finally:
            samples.close()


# --------------------------------------------------------------------------------------------------
# Running a documents → step → documents pipeline


def _in_process(executor: ExecutorConfig) -> bool:
    """Whether datatrove runs the tasks in this process (so a progress callback may be passed to the step)."""
    return getattr(executor, "kind", "local") == "local" and min(executor.workers, executor.tasks) == 1


def _shard_root(documents: Artifact, shards: list[Path]) -> Path:
    """The folder the reader's relative paths start from: the artifact's directory, else the shards' common one."""
    root = documents.path if documents.path.is_dir() else documents.path.parent
    if all(p.is_relative_to(root) for p in shards):
        return root
    return Path(os.path.commonpath([p.parent for p in shards]))


def run_document_step(
    ctx: StageContext,
    executor: ExecutorConfig,
    documents: Artifact,
    step: PipelineStep,
    stage: str,
) -> dict[str, dict[str, float]]:
    """Run reader → ``step`` → writer over ``documents`` into ``ctx.output_dir`` on ``executor``.

    The reader is :class:`StrictJsonlReader` over the artifact's shards (in name order, sharded over the
    executor's tasks); the writer puts one ``NNNNN.jsonl.gz`` per task. Use it with any datatrove filter,
    formatter or your own step. Returns the steps' metric totals by label ``reader``, ``step``, ``writer``.
    """
    shards = require_documents(documents, stage)
    root = _shard_root(documents, shards)
    scratch = ctx.work_dir / "kit"
    scratch.mkdir(parents=True, exist_ok=True)
    paths_file = scratch / "inputs.txt"
    paths_file.write_text("".join(f"{p.relative_to(root).as_posix()}\n" for p in shards), encoding="utf-8")
    steps = [StrictJsonlReader(str(root), str(paths_file)), step, DeterministicJsonlWriter(ctx.output_dir)]
    ctx.progress(0, None, f"{len(shards)} input shard(s), {executor.tasks} task(s)")
    labels = ["reader", "step", "writer"]
    return run_datatrove(steps, executor=executor, logging_dir=scratch / "datatrove", labels=labels)


def _read_samples(folder: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        rows.extend(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line)
    return rows


def _progress_fn(ctx: StageContext, executor: ExecutorConfig, what: str) -> Callable[[int], None] | None:
    if not _in_process(executor):
        return None
    return lambda done: ctx.progress(done, None, what)


def _check_config(config: type, base: type, helper: str) -> None:
    if not (isinstance(config, type) and issubclass(config, base)):
        raise TypeError(f"{helper}: config must be a subclass of gristmill.lib.kit.{base.__name__}, got {config!r}")


def _doc(fn: Callable[..., Any], doc: str) -> str:
    return doc or " ".join((fn.__doc__ or "").split())


# --------------------------------------------------------------------------------------------------
# document_filter


def document_filter(
    name: str,
    keep: Callable[[dict[str, Any], Any], bool | str],
    config: type[FilterConfig] = FilterConfig,
    version: str = "1",
    doc: str = "",
    group: str = "data",
) -> StageSpec:
    """A ``documents → documents`` stage keeping the documents for which ``keep(doc, config)`` is True.

    ``keep`` gets ``{"text", "id", "metadata"}`` (metadata keys it adds are written for kept documents) and the
    validated config; it returns True to keep, or False / a reason string to drop (reasons are counted as
    ``dropped_<reason>``; False counts as ``dropped_rejected``). ``config`` must subclass :class:`FilterConfig`.
    The result has ``documents_in``, ``documents_kept``, ``documents_dropped``, ``kept_fraction``, one
    ``dropped_<reason>`` per reason and ``skipped_empty``; metadata ``drop_reasons`` (dict), ``dropped_sample``
    (Table of up to ``sample_rows`` dropped documents per reason) and ``drops_per_reason`` (bar chart).
    """
    _check_config(config, FilterConfig, "document_filter")

    def run(ctx: StageContext, cfg: FilterConfig, inputs: dict[str, Artifact]) -> StageResult:
        samples = ctx.work_dir / "kit" / "samples"
        step = KitFilter(name, keep, cfg, str(samples), cfg.sample_rows, _progress_fn(ctx, cfg.executor, "filtered"))
        stats = run_document_step(ctx, cfg.executor, inputs["documents"], step, name)
        metrics = stats["step"]
        n_in, kept = int(metrics.get("total", 0)), int(metrics.get("forwarded", 0))
        reasons = {k.removeprefix("dropped_"): int(v) for k, v in metrics.items() if k.startswith("dropped_")}
        reasons = dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
        counts: dict[str, int | float] = {
            "documents_kept": kept,
            "documents_in": n_in,
            "documents_dropped": n_in - kept,
            "kept_fraction": round(kept / n_in, 6) if n_in else 0.0,
            **{f"dropped_{r}": n for r, n in reasons.items()},
            "skipped_empty": int(stats["reader"].get("skipped_empty", 0)),
        }
        rows = sorted(_read_samples(samples), key=lambda r: list(reasons).index(r["key"]) if r["key"] in reasons else 0)
        table = [{"reason": r.pop("key"), **r} for r in _limit_per_key(rows, cfg.sample_rows)]
        ctx.log.info("%s: kept %d of %d documents; dropped %s", ctx.instance, kept, n_in, reasons or "none")
        metadata: dict[str, Any] = {
            "drop_reasons": reasons,
            "dropped_sample": Table(table),
            "drops_per_reason": bar_chart(
                list(reasons), list(reasons.values()), f"{name}: documents dropped per reason", "documents"
            ),
        }
        return StageResult(counts=counts, metadata=metadata)

    return _documents_spec(name, version, config, run, _doc(keep, doc), "documents_kept", group)


def _documents_spec(
    name: str, version: str, config: type, run: Callable[..., StageResult], doc: str, kept_key: str, group: str
) -> StageSpec:
    """The ``documents → documents`` spec of a kit filter/mapper, gated by ``min_documents`` on ``kept_key``."""
    run.__doc__ = doc
    return StageSpec(
        name=name,
        version=version,
        inputs={"documents": "documents"},
        output="documents",
        config=config,
        run=run,
        description=doc,
        checks=(min_documents_check(name, kept_key),),
        group=group,
    )


def _limit_per_key(rows: Sequence[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    seen: dict[str, int] = {}
    out = []
    for row in rows:
        if seen.get(row["key"], 0) < limit:
            seen[row["key"]] = seen.get(row["key"], 0) + 1
            out.append(dict(row))
    return out


# --------------------------------------------------------------------------------------------------
# document_mapper


def document_mapper(
    name: str,
    map_fn: Callable[[dict[str, Any], Any], dict[str, Any]],
    config: type[MapperConfig] = MapperConfig,
    version: str = "1",
    doc: str = "",
    group: str = "data",
) -> StageSpec:
    """A ``documents → documents`` stage writing ``map_fn(doc, config)`` for every document.

    ``map_fn`` gets ``{"text", "id", "metadata"}`` (a copy: mutate and return it, or return a new dict with a
    string ``text``; ``id``/``metadata`` default to the input's). ``config`` must subclass :class:`MapperConfig`.
    The result has ``documents_in``, ``documents_out``, ``documents_changed``, ``documents_unchanged``,
    ``chars_in``, ``chars_out``, ``skipped_empty``; metadata ``changed_sample`` (Table of before/after snippets)
    and ``documents_changed`` (bar chart).
    """
    _check_config(config, MapperConfig, "document_mapper")

    def run(ctx: StageContext, cfg: MapperConfig, inputs: dict[str, Artifact]) -> StageResult:
        samples = ctx.work_dir / "kit" / "samples"
        step = KitMapper(name, map_fn, cfg, str(samples), cfg.sample_rows, _progress_fn(ctx, cfg.executor, "mapped"))
        stats = run_document_step(ctx, cfg.executor, inputs["documents"], step, name)
        metrics = stats["step"]
        changed, unchanged = int(metrics.get("changed", 0)), int(metrics.get("unchanged", 0))
        counts: dict[str, int | float] = {
            "documents_out": int(metrics.get("total", 0)),
            "documents_in": int(metrics.get("total", 0)),
            "documents_changed": changed,
            "documents_unchanged": unchanged,
            "chars_in": int(metrics.get("chars_in", 0)),
            "chars_out": int(metrics.get("chars_out", 0)),
            "skipped_empty": int(stats["reader"].get("skipped_empty", 0)),
        }
        rows = [
            {k: v for k, v in r.items() if k != "key"} for r in _limit_per_key(_read_samples(samples), cfg.sample_rows)
        ]
        ctx.log.info("%s: changed %d of %d documents", ctx.instance, changed, changed + unchanged)
        metadata: dict[str, Any] = {
            "changed_sample": Table(rows),
            "documents_changed": bar_chart(
                ["changed", "unchanged"], [changed, unchanged], f"{name}: documents changed", "documents"
            ),
        }
        return StageResult(counts=counts, metadata=metadata)

    return _documents_spec(name, version, config, run, _doc(map_fn, doc), "documents_out", group)


# --------------------------------------------------------------------------------------------------
# trainer_stage


class TrainerConfig(StageConfig):
    """Base config of kit trainer stages: the common optimizer/schedule options, the loss check, the launch."""

    max_steps: int = Field(100, ge=1, description="Optimizer steps.")
    lr: float = Field(2e-5, gt=0, description="Peak learning rate (AdamW).")
    batch_size: int = Field(8, ge=1, description="Examples per device per micro-batch.")
    grad_accum: int = Field(1, ge=1, description="Micro-batches accumulated per optimizer step.")
    warmup_steps: int = Field(0, ge=0, description="Steps spent warming the learning rate up.")
    lr_scheduler: str = Field("cosine", description="transformers lr_scheduler_type after warmup.")
    bf16: bool = Field(True, description="bf16 mixed precision (only used on GPUs that support it).")
    min_loss_drop: float = Field(
        0.05, ge=0, lt=1, description="Check: the final loss is at least this fraction below the first step's."
    )
    launch: LaunchConfig = Field(
        default_factory=LaunchConfig, description="inline, or a child accelerate launch job (processes, machines)."
    )


@dataclass
class TrainerSetup:
    """What ``build`` gets: pass ``args`` (keyword arguments for a TRL/transformers ``TrainingArguments``) and
    ``callbacks`` to the trainer it returns; ``model``/``tokenizer`` come from the ``model`` input."""

    ctx: StageContext
    config: Any
    inputs: dict[str, Artifact]
    model: Any
    tokenizer: Any
    args: dict[str, Any]
    callbacks: list[Any] = field(default_factory=list)


def trainer_stage(
    name: str,
    build: Callable[[TrainerSetup], Any],
    config: type[TrainerConfig] = TrainerConfig,
    inputs: Mapping[str, str] | None = None,
    version: str = "1",
    doc: str = "",
) -> StageSpec:
    """A ``model`` (+ ``dataset`` …) → ``model`` fine-tuning stage around a trainer that ``build(setup)`` returns.

    The kit loads the ``model`` input (:func:`gristmill.lib.post_training.load_policy`, right padding), prepares the
    shared trainer arguments (:func:`gristmill.lib.post_training.trainer_args`: CPU/GPU, seed, scratch output dir, no
    hub/reporting/checkpoints, no activation checkpointing, plus ``learning_rate``, ``max_steps``, batch size,
    accumulation, warmup and schedule from :class:`TrainerConfig`) and a progress/loss-history callback, runs
    ``trainer.train()``, saves the model folder (:func:`gristmill.lib.train.export.save_model_dir`, rank 0 only) and
    returns ``steps``, ``first_loss``, ``final_loss``, ``train_seconds`` and a loss-curve plot, with the
    ``loss_decreased`` check. The stage uses ``launch="accelerate"``. ``inputs`` must contain
    ``"model": "model"`` (default: model + dataset).
    """
    _check_config(config, TrainerConfig, "trainer_stage")
    declared = dict(inputs or {"model": "model", "dataset": "dataset"})
    if declared.get("model") != "model":
        raise ValueError(f"trainer_stage {name!r}: inputs must include 'model': 'model', got {declared}")

    def run(ctx: StageContext, cfg: TrainerConfig, arts: dict[str, Artifact]) -> StageResult:
        from transformers import PrinterCallback

        from gristmill.engine.launch import process_state
        from gristmill.lib.post_training import history_plot, load_policy, stage_callback, trainer_args
        from gristmill.lib.train.export import save_model_dir

        model_art = arts["model"]
        model, tokenizer = load_policy(model_art, for_generation=False)
        model.config.use_cache = False
        history: list[dict[str, float]] = []
        args = trainer_args(
            ctx,
            bf16=cfg.bf16,
            learning_rate=cfg.lr,
            max_steps=cfg.max_steps,
            per_device_train_batch_size=cfg.batch_size,
            gradient_accumulation_steps=cfg.grad_accum,
            warmup_steps=cfg.warmup_steps,
            lr_scheduler_type=cfg.lr_scheduler,
            logging_steps=max(1, cfg.max_steps // 50),
            logging_first_step=True,
            activation_checkpointing=False,  # TRL configs default to True: slower, only worth it for big models
        )
        trainer = build(TrainerSetup(ctx, cfg, arts, model, tokenizer, args, [stage_callback(ctx, history)]))
        trainer.remove_callback(PrinterCallback)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        if not process_state().is_main_process:
            return StageResult()
        save_model_dir(trainer.accelerator.unwrap_model(trainer.model), ctx.output_dir, model_art.path)
        losses = [h["loss"] for h in history if "loss" in h]
        tail = losses[-max(1, min(10, len(losses) // 4)) :] if losses else []
        counts: dict[str, int | float] = {
            "steps": int(trainer.state.global_step),
            "first_loss": round(losses[0], 4) if losses else math.nan,
            "final_loss": round(sum(tail) / len(tail), 4) if tail else math.nan,
            "train_seconds": round(seconds, 2),
        }
        metadata = {"loss_curve": history_plot(history, [("loss", "train")], f"{name} loss curve", ylabel="loss")}
        return StageResult(counts=counts, metadata=metadata)

    run.__doc__ = _doc(build, doc)
    return StageSpec(
        name=name,
        version=version,
        inputs=declared,
        output="model",
        config=config,
        run=run,
        description=_doc(build, doc),
        launch="accelerate",
        checks=(loss_decreased_check(),),
        group="training",
    )
