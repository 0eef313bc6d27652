"""The datatrove side of kit filters and mappers: a strict JSONL reader, the steps around the user's ``keep`` /
``map_fn`` (with per-reason sample rows in scratch files), and :func:`run_document_step`, which runs reader → step →
deterministic writer over a ``documents`` artifact on an executor."""

import copy
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.readers import JsonlReader

from gristmill.lib.documents import parse_document_line, require_documents
from gristmill.lib.executors import DeterministicJsonlWriter, ExecutorConfig, run_datatrove
from gristmill.lib.jsonl import JsonlWriter, read_jsonl
from gristmill.stage import Artifact, StageContext

DEFAULT_REASON = "rejected"  # the drop reason when ``keep`` returns False
SNIPPET_CHARS = 300


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
    """Up to ``limit`` sample rows per key, appended to ``<folder>/<rank>.jsonl`` (scratch, read back after the run
    with :func:`read_samples`)."""

    def __init__(self, folder: str | None, limit: int) -> None:
        self.folder, self.limit = folder, limit
        self.seen: dict[str, int] = {}
        self.file: JsonlWriter | None = None

    def wants(self, key: str) -> bool:
        return self.folder is not None and self.seen.get(key, 0) < self.limit

    def add(self, key: str, rank: int, row: dict[str, Any]) -> None:
        self.seen[key] = self.seen.get(key, 0) + 1
        if self.file is None:
            Path(self.folder).mkdir(parents=True, exist_ok=True)
            self.file = JsonlWriter(Path(self.folder) / f"{rank:05d}.jsonl", append=True)
        self.file.write({"key": key, **row})

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


def in_process(executor: ExecutorConfig) -> bool:
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


def read_samples(folder: Path) -> list[dict[str, Any]]:
    """The sample rows the steps wrote into ``folder``, rank by rank."""
    rows: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        rows.extend(row for _, row in read_jsonl(path))
    return rows
