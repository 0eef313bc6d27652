"""Tiny real stages used to test the framework without the heavy built-ins."""

import errno
import json
import os
import time
from pathlib import Path
from typing import Literal

from pydantic import Field

from gristmill import (
    TRAINING,
    CheckOutcome,
    CheckSpec,
    Input,
    LaunchableConfig,
    StageConfig,
    StageInputError,
    StageResult,
    StageSpec,
    Table,
    hookimpl,
)


class WordsConfig(StageConfig):
    words: list[str] = Field(["alpha", "beta", "gamma"], description="One document per word.")
    sleep_s: float = Field(0.0, description="Pause after writing half the output (for kill tests).")


def make_words(ctx, config: WordsConfig, inputs) -> StageResult:
    """Write one JSONL document per configured word."""
    out = ctx.output_dir / "00000.jsonl"
    with open(out, "w", encoding="utf-8") as f:
        for i, word in enumerate(config.words):
            f.write(json.dumps({"id": str(i), "text": word, "metadata": {}}) + "\n")
            if i == len(config.words) // 2 and config.sleep_s:
                f.flush()
                marker = os.environ.get("TOY_STARTED_MARKER")
                if marker:
                    open(marker, "w").close()
                time.sleep(config.sleep_s)
    return StageResult(
        counts={"documents": len(config.words)}, metadata={"sample": Table([{"id": "0", "text": config.words[0]}])}
    )


class UpperConfig(StageConfig):
    min_documents: int = Field(1, description="Check: at least this many documents out.")


def upper(ctx, config: UpperConfig, inputs) -> StageResult:
    """Upper-case every document's text."""
    n = 0
    with open(ctx.output_dir / "00000.jsonl", "w", encoding="utf-8") as out:
        for path in inputs["documents"].glob("*.jsonl"):
            for line in path.read_text(encoding="utf-8").splitlines():
                doc = json.loads(line)
                doc["text"] = doc["text"].upper()
                out.write(json.dumps(doc) + "\n")
                n += 1
    CALLS.append(ctx.instance)
    return StageResult(counts={"documents_in": n, "documents_out": n})


def _enough(counts, config: UpperConfig) -> CheckOutcome:
    n = counts.get("documents_out", 0)
    return CheckOutcome(n >= config.min_documents, f"{n} documents (min {config.min_documents})")


CALLS: list[str] = []

WORDS = StageSpec(name="toy_words", version="1", inputs={}, output="documents", config=WordsConfig, run=make_words)
UPPER = StageSpec(
    name="toy_upper",
    version="1",
    inputs={"documents": "documents"},
    output="documents",
    config=UpperConfig,
    run=upper,
    checks=(CheckSpec("min_documents", "enough documents out", _enough),),
)


def next_round(ctx, config: UpperConfig, inputs) -> StageResult:
    """One line per round: the previous round's lines (``ctx.previous``, or the input's texts) plus this round's key."""
    start = ctx.previous or inputs["documents"]
    lines = [line for p in start.glob("*.jsonl") for line in p.read_text(encoding="utf-8").splitlines()]
    lines.append(json.dumps({"id": str(len(lines)), "text": ctx.partition_key or "no round", "metadata": {}}))
    (ctx.output_dir / "00000.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    counts = {"documents_out": len(lines), "from_previous": int(ctx.previous is not None), "round": ctx.round or 0}
    return StageResult(counts=counts, metadata={"previous_id": ctx.previous.id if ctx.previous else None})


def collect(ctx, config: UpperConfig, inputs) -> StageResult:
    """Write which artifacts (asset, partition) the list input received."""
    rows = [{"asset": a.manifest.get("asset"), "partition": a.manifest.get("partition")} for a in inputs["documents"]]
    (ctx.output_dir / "inputs.json").write_text(json.dumps(rows), encoding="utf-8")
    return StageResult(counts={"inputs": len(rows)})


ROUND = StageSpec(
    name="toy_round",
    version="1",
    inputs={"documents": "documents"},
    output="documents",
    config=UpperConfig,
    run=next_round,
    rounds=True,
)
COLLECT = StageSpec(
    name="toy_collect",
    version="1",
    inputs={"documents": Input("documents", many=True)},
    output="report",
    config=UpperConfig,
    run=collect,
)


class FlakyConfig(StageConfig):
    attempts_file: str = Field(description="Counts attempts (one line each).")
    fail_first: int = Field(1, description="Attempts that fail before one succeeds.")
    error: Literal["os", "runtime", "input"] = Field(
        "os",
        description="os: a transient OSError; runtime: a crash (RuntimeError); input: bad input (StageInputError).",
    )


def flaky(ctx, config: FlakyConfig, inputs) -> StageResult:
    """Fail the first ``fail_first`` attempts (writing half an output first), then succeed."""
    with open(config.attempts_file, "a", encoding="utf-8") as f:
        f.write("attempt\n")
    attempts = len(Path(config.attempts_file).read_text(encoding="utf-8").splitlines())
    (ctx.output_dir / "00000.jsonl").write_text('{"id": "0", "text": "half', encoding="utf-8")
    if attempts <= config.fail_first:
        if config.error == "input":
            raise StageInputError(f"{config.attempts_file}: line 1: not a document")
        if config.error == "runtime":
            raise RuntimeError("worker crashed (injected)")
        raise OSError(5, "Input/output error (injected)")
    (ctx.output_dir / "00000.jsonl").write_text('{"id": "0", "text": "whole", "metadata": {}}\n', encoding="utf-8")
    return StageResult(counts={"attempts": attempts})


class SleepConfig(StageConfig):
    seconds: float = Field(1.0, description="How long the stage runs.")


def sleep(ctx, config: SleepConfig, inputs) -> StageResult:
    """Sleep, recording when it started and ended (for concurrency tests)."""
    start = time.time()
    time.sleep(config.seconds)
    end = time.time()
    (ctx.output_dir / "times.json").write_text(json.dumps([start, end]), encoding="utf-8")
    return StageResult(counts={"start": start, "end": end})


class FillConfig(StageConfig):
    megabytes: int = Field(1, description="Size of the file written.")
    disk_limit_mb: int | None = Field(
        None, description="Raise ENOSPC once this much is written (a small disk where none can be mounted)."
    )


def fill(ctx, config: FillConfig, inputs) -> StageResult:
    """Write ``megabytes`` of data in 256 KiB chunks (for disk-full tests)."""
    chunk = bytes(range(256)) * 1024
    with open(ctx.output_dir / "blob.bin", "wb") as f:
        for i in range(config.megabytes * 4):
            if config.disk_limit_mb is not None and i >= config.disk_limit_mb * 4:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(ctx.output_dir / "blob.bin"))
            f.write(chunk)
            f.flush()
    return StageResult(counts={"megabytes": config.megabytes})


class LaunchedConfig(LaunchableConfig):
    """Only the ``launch:`` block."""


def launched(ctx, config: LaunchedConfig, inputs) -> StageResult:
    """Record what the (child) process got: its pid, the round and the previous round's artifact."""
    from gristmill.engine.launch import process_state

    seen = {"pid": os.getpid(), "round": ctx.round, "previous": None}
    if ctx.previous is not None:
        seen["previous"] = {
            "id": ctx.previous.id,
            "kind": ctx.previous.kind,
            "seen": (ctx.previous.path / "seen.json").is_file(),
        }
    if process_state().is_main_process:
        (ctx.output_dir / "seen.json").write_text(json.dumps(seen), encoding="utf-8")
    return StageResult(counts={"round": ctx.round or 0})


LAUNCHED = StageSpec(
    name="toy_launched",
    version="1",
    inputs={},
    output="report",
    config=LaunchedConfig,
    run=launched,
    policy=TRAINING,
    rounds=True,
)
FILL = StageSpec(name="toy_fill", version="1", inputs={}, output="report", config=FillConfig, run=fill)
FLAKY = StageSpec(name="toy_flaky", version="1", inputs={}, output="documents", config=FlakyConfig, run=flaky)
SLEEP = StageSpec(name="toy_sleep", version="1", inputs={}, output="report", config=SleepConfig, run=sleep)


@hookimpl
def gristmill_register_stages():
    return [WORDS, UPPER, ROUND, COLLECT, FLAKY, SLEEP, FILL, LAUNCHED]
