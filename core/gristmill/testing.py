"""Helpers for testing stages as plain functions, without Dagster or the store."""

import hashlib
import logging
import tempfile
from pathlib import Path
from typing import Any

from gristmill.checks import evaluate_checks
from gristmill.stage import Artifact, StageContext, StageResult, StageSpec


def artifact_from_dir(kind: str, path: Path, files: list[Path] | None = None) -> Artifact:
    """Wrap a directory (or an explicit file list) as an input artifact."""
    path = Path(path)
    listed = tuple(sorted(files)) if files is not None else ()
    ident = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    return Artifact(kind=kind, path=path, id=ident, content_hash=ident, files=listed)


def run_stage(
    spec: StageSpec,
    output_dir: Path,
    config: dict[str, Any] | None = None,
    inputs: dict[str, Artifact] | None = None,
    seed: int = 0,
    round: int | None = None,
    previous: Artifact | None = None,
) -> tuple[StageResult, Artifact]:
    """Validate ``config`` with the spec's model, run the stage into ``output_dir``.

    ``round``/``previous`` are what the engine gives a round-partitioned instance (``ctx.round``, and for a stage
    declared with ``rounds=True`` the previous round's artifact as ``ctx.previous``).

    Returns the result (with ``result.checks``: the spec's checks evaluated as the engine does) and the output
    wrapped as an :class:`Artifact` of the spec's kind.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    cfg = spec.config.model_validate(config or {})
    with tempfile.TemporaryDirectory(prefix=f"gristmill-{spec.name}-") as work:
        ctx = StageContext(
            instance=spec.name,
            output_dir=output_dir,
            work_dir=Path(work),
            log=logging.getLogger(f"gristmill.{spec.name}"),
            seed=seed,
            partition_key=None if round is None else f"round-{round:03d}",
            round=round,
            previous=previous,
        )
        result = spec.run(ctx, cfg, dict(inputs or {}))
    result.checks = evaluate_checks(spec.checks, result.counts, cfg)
    return result, artifact_from_dir(spec.output, output_dir)
