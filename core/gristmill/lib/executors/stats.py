"""What a run's tasks leave in its logging folder: completion files, per-task stats and logs.

:func:`read_step_stats` reads the per-step totals a stage reports; :class:`ExecutorError` is raised when tasks did
not complete.
"""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


class ExecutorError(RuntimeError):
    """A datatrove pipeline did not complete on its executor (the message says where the logs are)."""


def incomplete_ranks(logging_dir: Path, tasks: int) -> list[int]:
    return [rank for rank in range(tasks) if not (logging_dir / "completions" / f"{rank:05d}").is_file()]


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def merge_task_stats(logging_dir: Path, tasks: int) -> None:
    """Sum the tasks' ``stats/NNNNN.json`` into ``stats.json`` (what datatrove's local executor writes)."""
    from datatrove.utils.stats import PipelineStats

    total = PipelineStats()
    for rank in range(tasks):
        total += PipelineStats.from_json(json.loads((logging_dir / "stats" / f"{rank:05d}.json").read_text()))
    with open(logging_dir / "stats.json", "w") as f:
        total.save_to_disk(f)


def _total(value: Any) -> float:
    """A datatrove stats.json metric as a number (it is either a number or a dict with ``total``)."""
    if isinstance(value, Mapping):
        return value.get("total", 0) or 0
    return value or 0


def read_step_stats(stats_json: Path, labels: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per-step metric totals from the executor's ``stats.json`` (a list in pipeline order), by label.

    Each step's dict also holds ``_seconds``: its processing time summed over tasks.
    """
    entries = json.loads(Path(stats_json).read_text())
    if len(entries) != len(labels):
        raise RuntimeError(f"{stats_json}: {len(entries)} steps, expected {len(labels)}")
    out: dict[str, dict[str, float]] = {}
    for label, entry in zip(labels, entries, strict=True):
        metrics = {key: _total(value) for key, value in entry.get("stats", {}).items()}
        metrics["_seconds"] = _total(entry.get("time_stats", 0))
        out[label] = metrics
    return out
