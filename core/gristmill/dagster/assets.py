"""Asset factory: a validated :class:`~gristmill.pipeline.config.Pipeline` → Dagster definitions.

One observable source asset per raw source (data version = file fingerprint) and one asset per
stage instance (code version = stage, stage version and config hash; data version = the
artifact's content hash; an automation condition, retry policy and concurrency pool from the
pipeline file). Stages never see Dagster: the asset body calls :func:`gristmill.engine.runner.execute`
and turns the result into metadata and check results.

Re-runs on data change: the ``<pipeline>_observe_sources`` sensor records a source's new data
version when its files change; the ``<pipeline>_automation`` sensor (both RUNNING by default)
evaluates the stages' conditions, and an eager stage is requested together with every eager
stage below it in the same tick (Dagster's staleness alone propagates one hop only).
"""

# No `from __future__ import annotations` here: Dagster reads annotations at definition time.

import dagster as dg
import pydantic

from gristmill.dagster.automation import ROUNDS, automation_condition
from gristmill.dagster.interrupts import INTERRUPTS, interrupted, stop_on_interrupt
from gristmill.dagster.metadata import execution_metadata
from gristmill.dagster.sources import source_asset
from gristmill.engine.runner import execute
from gristmill.engine.store import ArtifactStore, StoreError
from gristmill.errors import StageInputError
from gristmill.pipeline.config import Pipeline, StageInstance

FORCE_TAG = "gristmill/force"  # run tag: comma-separated instance names recomputed even on a cache hit (--force)


def _stage_asset(pipeline: Pipeline, inst: StageInstance, prefix: list[str]) -> dg.AssetsDefinition:
    spec = inst.spec
    key = dg.AssetKey([*prefix, inst.name])
    check_specs = [
        dg.AssetCheckSpec(c.name, asset=key, blocking=c.blocking, description=c.description) for c in spec.checks
    ]
    description = "\n\n".join(p for p in (inst.description, spec.doc) if p)
    store_root = pipeline.store

    @dg.asset(
        key=key,
        deps=[dg.AssetKey([*prefix, ref]) for ref in dict.fromkeys(inst.refs)],
        group_name=inst.group,
        code_version=inst.code_version,
        description=description or None,
        check_specs=check_specs or None,
        partitions_def=ROUNDS if inst.partitioned else None,
        kinds={spec.output},
        metadata={"gristmill/stage": spec.name, "gristmill/stage_version": spec.version},
        tags={"gristmill/launch": spec.launch},
        automation_condition=automation_condition(inst),
        retry_policy=(
            dg.RetryPolicy(max_retries=inst.retries, delay=pipeline.retry_delay_s, backoff=dg.Backoff.EXPONENTIAL)
            if inst.retries
            else None
        ),
        pool=inst.pool,
        hooks={stop_on_interrupt},
    )
    def _materialize(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        partition = context.partition_key if context.has_partition_key else None
        logger = context.log  # a logging.Logger: stage logs land in the Dagster run log

        def progress(done: int, total: int | None, message: str) -> None:
            pct = f" ({100 * done / total:.0f}%)" if total else ""
            context.log.info(f"{inst.name}: {done}/{total or '?'}{pct} {message}".rstrip())

        force = inst.name in context.run.tags.get(FORCE_TAG, "").split(",")
        try:
            run = execute(pipeline, inst.name, ArtifactStore(store_root), partition, logger, progress, force)
        except (StageInputError, StoreError, pydantic.ValidationError) as exc:  # bad input/config, missing upstream
            raise dg.Failure(description=f"{inst.name}: {exc}", allow_retries=False) from exc
        except INTERRUPTS as exc:  # Ctrl-C, SIGTERM, a UI termination: stop the run, never retry
            raise interrupted(context, inst.name, exc) from exc
        context.log.info(
            f"{inst.name}: {'cache hit' if run.cache_hit else 'committed'} {run.artifact.id} "
            f"({run.duration_s:.1f}s) → {run.artifact.path}"
        )
        return dg.MaterializeResult(
            data_version=dg.DataVersion(run.artifact.content_hash),
            metadata=execution_metadata(run),
            check_results=[
                dg.AssetCheckResult(
                    check_name=name,
                    passed=outcome.passed,
                    description=outcome.description or None,
                    severity=dg.AssetCheckSeverity.ERROR,
                )
                for name, outcome in run.checks.items()
            ],
        )

    return _materialize


def build_assets(pipeline: Pipeline, key_prefix: str | None = None) -> list[dg.AssetsDefinition | dg.SourceAsset]:
    """Source assets then stage assets for ``pipeline``, in dependency order."""
    prefix = [key_prefix] if key_prefix else []
    sources = [source_asset(pipeline, name, prefix) for name in pipeline.sources]
    stages = [_stage_asset(pipeline, pipeline.stages[name], prefix) for name in pipeline.order]
    return [*sources, *stages]
