"""Run a stage function. Inline for now; ``launch: accelerate`` stages get a child process later."""

from typing import Any

from gristmill.stage import Artifact, StageContext, StageResult, StageSpec


class StageFailed(RuntimeError):
    """A stage raised; the message names the stage instance."""


def launch_stage(spec: StageSpec, ctx: StageContext, config: Any, inputs: dict[str, Artifact]) -> StageResult:
    """Call ``spec.run`` and check it returned a :class:`StageResult`."""
    result = spec.run(ctx, config, inputs)
    if not isinstance(result, StageResult):
        raise StageFailed(f"stage {spec.name!r} ({ctx.instance}) returned {type(result).__name__}, not StageResult")
    return result
