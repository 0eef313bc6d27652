"""Round keys of iterative post-training (``round-001``, ``round-002``, …) and how rounds chain.

A stage instance partitioned by rounds reads its own previous round's artifact through the optional input
``previous`` (see :class:`~gristmill.stage.StageSpec`); round 1 has none and starts from the stage's other inputs.
"""

import hashlib
import json
import re
from typing import TYPE_CHECKING

from gristmill.errors import StageInputError

if TYPE_CHECKING:
    from gristmill.engine.store import ArtifactStore
    from gristmill.pipeline.config import Pipeline

PARTITIONS_NAME = "rounds"
_KEY = re.compile(r"^round-(\d{3,})$")


class RoundKeyError(StageInputError):
    """A partition key that is not ``round-NNN``."""


def round_key(n: int) -> str:
    """``round_key(1) == "round-001"``."""
    if n < 1:
        raise RoundKeyError(f"round numbers start at 1 (got {n})")
    return f"round-{n:03d}"


def round_number(key: str) -> int:
    """``round_number("round-012") == 12``; anything else → :class:`RoundKeyError`."""
    match = _KEY.match(key)
    if match is None or int(match.group(1)) < 1:
        raise RoundKeyError(f"partition key {key!r} is not a round key like 'round-001'")
    return int(match.group(1))


def previous_round(key: str) -> str | None:
    """The key before ``key``, or None for round 1."""
    n = round_number(key)
    return round_key(n - 1) if n > 1 else None


def next_round(existing: list[str]) -> str:
    """The key after the highest round key in ``existing`` (``round-001`` when there is none)."""
    numbers = [round_number(k) for k in existing if _KEY.match(k)]
    return round_key(max(numbers, default=0) + 1)


def round_complete(pipeline: "Pipeline", store: "ArtifactStore", key: str) -> bool:
    """Whether every partitioned stage of ``pipeline`` has a committed artifact for round ``key``."""
    store = store.for_pipeline(pipeline.name)
    return all(store.latest(name, key) is not None for name in pipeline.partitioned)


def pending_round(pipeline: "Pipeline", store: "ArtifactStore", existing: list[str]) -> str:
    """The round to run next: the highest existing round if it is not complete (a failed or interrupted round is
    retried, finished ones are never redone), else the one after it."""
    keys = sorted((k for k in existing if _KEY.match(k)), key=round_number)
    if keys and not round_complete(pipeline, store, keys[-1]):
        return keys[-1]
    return next_round(keys)


def rounds_fingerprint(pipeline: "Pipeline", store: "ArtifactStore") -> str | None:
    """A hash of what the partitioned stages read besides each other: source file fingerprints and upstream
    artifacts' content hashes. None while an input has no artifact yet. New prompts or preference data change it."""
    from gristmill.pipeline.sources import source_version

    store = store.for_pipeline(pipeline.name)
    seen: dict[str, str] = {}
    partitioned = set(pipeline.partitioned)
    for name in pipeline.partitioned:
        for ref in pipeline.stages[name].refs:
            if ref in partitioned or ref in seen:
                continue
            if ref in pipeline.sources:
                version, _ = source_version(pipeline.sources[ref])
                if version is None:
                    return None
                seen[ref] = version
            else:
                art = store.latest(ref)
                if art is None:
                    return None
                seen[ref] = art.content_hash
    blob = json.dumps(seen, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]
