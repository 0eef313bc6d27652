"""An interrupt is not a failure: SIGINT/SIGTERM during a stage stops the run, without Dagster's retry.

Dagster turns SIGINT and SIGTERM inside a step into ``DagsterExecutionInterruptedError`` and, for a step with a retry
policy, into a retry 10 s later ("respect retry policy when interrupts occur"): Ctrl-C restarted the stage and the run
ended "succeeded". Here the asset body catches the interrupt (the stage's staging folder is already gone: the store
removes it whatever happens), marks the run CANCELING and fails the step with ``allow_retries=False``; the asset's
failure hook then re-raises the interrupt outside the step, where Dagster ends the run as CANCELED instead of going
on with the next step. A Terminate from the UI (which marks the run CANCELING and interrupts its process) takes the
same path.
"""

# No `from __future__ import annotations` here: Dagster reads annotations at definition time.

from typing import Any

import dagster as dg
from dagster._core.errors import DagsterExecutionInterruptedError

INTERRUPTS = (KeyboardInterrupt, DagsterExecutionInterruptedError)
_STOPPING = (dg.DagsterRunStatus.CANCELING, dg.DagsterRunStatus.CANCELED)


def interrupted(context: dg.AssetExecutionContext, name: str, exc: BaseException) -> dg.Failure:
    """The run is being stopped: mark it CANCELING (unless the UI already did) and return the step's failure, which
    Dagster must not retry."""
    instance = context.instance
    run = instance.get_run_by_id(context.run_id)
    if run is not None and run.status not in _STOPPING:
        instance.report_run_canceling(run, message=f"gristmill: {name} was interrupted ({type(exc).__name__})")
    return dg.Failure(
        description=f"{name}: interrupted (SIGINT/SIGTERM or a termination request): the run is canceled; "
        "the stage's partial output was removed and nothing was committed; not retried",
        allow_retries=False,
    )


@dg.failure_hook(name="gristmill_stop_on_interrupt")
def stop_on_interrupt(context: Any) -> None:
    """After a failed step of a run that is being canceled: stop the whole run (Dagster marks it CANCELED)."""
    run = context.instance.get_run_by_id(context.run_id)
    if run is not None and run.status in _STOPPING:
        raise KeyboardInterrupt(f"run {context.run_id} canceled")
