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

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from gristmill.engine.runner import Execution, execute
from gristmill.engine.store import ArtifactStore, StoreError
from gristmill.pipeline.config import Pipeline, SourceDef, StageInstance
from gristmill.pipeline.rounds import PARTITIONS_NAME, pending_round, rounds_fingerprint
from gristmill.pipeline.sources import fingerprint, matched_files
from gristmill.stage import Markdown, Plot, Table

ROUNDS = dg.DynamicPartitionsDefinition(name=PARTITIONS_NAME)
_MAX_TABLE_ROWS = 50


def _table(rows: list[dict[str, Any]]) -> dg.TableMetadataValue:
    rows = rows[:_MAX_TABLE_ROWS]
    columns: dict[str, str] = {}
    for row in rows:
        for key, value in row.items():
            kind = (
                "int"
                if isinstance(value, int) and not isinstance(value, bool)
                else ("float" if isinstance(value, float) else "bool" if isinstance(value, bool) else "string")
            )
            columns.setdefault(key, kind)
    records = [
        dg.TableRecord({k: (row.get(k) if columns[k] != "string" else str(row.get(k, ""))) for k in columns})
        for row in rows
    ]
    schema = dg.TableSchema(columns=[dg.TableColumn(name=k, type=t) for k, t in columns.items()])
    return dg.MetadataValue.table(records=records, schema=schema)


def _png_markdown(path: Path, title: str) -> dg.MarkdownMetadataValue:
    data = base64.b64encode(path.read_bytes()).decode()
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{data})")


def to_dagster_metadata(values: Mapping[str, Any], artifact_dir: Path | None = None) -> dict[str, Any]:
    """Turn stage result values into Dagster metadata values."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Table):
            out[key] = _table(value.rows)
        elif isinstance(value, Markdown):
            out[key] = dg.MetadataValue.md(value.text)
        elif isinstance(value, Plot):
            path = Path(value.path) if artifact_dir is None else artifact_dir / value.path
            out[key] = _png_markdown(path, key) if path.is_file() else dg.MetadataValue.text(f"missing plot {path}")
        elif isinstance(value, dict | list):
            out[key] = dg.MetadataValue.json(value)
        elif isinstance(value, bool | int | float | str) or value is None:
            out[key] = value
        else:
            out[key] = str(value)
    return out


def execution_metadata(run: Execution) -> dict[str, Any]:
    """Everything the UI shows for a materialization: counts, stage metadata, artifact location."""
    art = run.artifact
    meta = to_dagster_metadata(run.counts)
    meta.update(to_dagster_metadata(run.metadata, art.path))
    meta.update(
        {
            "gristmill/artifact": dg.MetadataValue.path(str(art.path)),
            "gristmill/manifest": dg.MetadataValue.path(str(art.path / "manifest.json")),
            "gristmill/artifact_id": art.id,
            "gristmill/cache_hit": run.cache_hit,
            "gristmill/bytes": int(art.manifest.get("bytes", 0)),
            "gristmill/duration_s": round(run.duration_s, 3),
        }
    )
    return meta


def source_version(source: SourceDef) -> tuple[str, dict[str, int]]:
    """A source's data version (fingerprint of its matched files) and its file/byte counts."""
    files = matched_files(source)
    version = fingerprint(files, source.hash_content) if files else "no-files"
    return version, {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}


def _source_asset(pipeline: Pipeline, name: str, prefix: list[str]) -> dg.SourceAsset:
    source = pipeline.sources[name]

    @dg.observable_source_asset(
        name=name,
        key_prefix=prefix or None,
        group_name="sources",
        description=source.description or f"Raw {source.kind} files matching {source.path!r}.",
        metadata={"path": str(source.path), "kind": source.kind},
    )
    def _observe() -> dg.ObserveResult:
        version, counts = source_version(source)
        return dg.ObserveResult(data_version=dg.DataVersion(version), metadata=counts)

    return _observe


def source_observations(
    pipeline: Pipeline, instance: dg.DagsterInstance, prefix: list[str] | None = None
) -> list[dg.AssetObservation]:
    """Observations for the sources whose files changed since the instance last recorded their data version."""
    from dagster._core.definitions.data_version import DATA_VERSION_TAG, extract_data_version_from_entry

    events = []
    for name, source in pipeline.sources.items():
        key = dg.AssetKey([*(prefix or []), name])
        version, counts = source_version(source)
        record = instance.get_latest_data_version_record(key, is_source=True)
        last = extract_data_version_from_entry(record.event_log_entry) if record else None
        if last is None or last.value != version:
            events.append(dg.AssetObservation(asset_key=key, metadata=counts, tags={DATA_VERSION_TAG: version}))
    return events


def eager_condition() -> dg.AutomationCondition:
    """Dagster's ``eager()`` plus a changed code version (config or stage version): run when an input was updated
    (or will be, in this same tick), when the asset becomes missing, or when its code version changed; never while
    an input is missing or running."""
    ac = dg.AutomationCondition
    return (
        ac.in_latest_time_window()
        & (ac.newly_missing() | ac.any_deps_updated() | ac.code_version_changed()).since_last_handled()
        & ~ac.any_deps_missing()
        & ~ac.any_deps_in_progress()
        & ~ac.in_progress()
    ).with_label("eager: input, config or version changed")


def automation_condition(inst: StageInstance) -> dg.AutomationCondition | None:
    """The instance's condition from its ``automation`` field (None for manual)."""
    if inst.automation == "manual":
        return None
    if inst.automation == "eager":
        return eager_condition()
    return dg.AutomationCondition.on_cron(inst.automation)


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
    )
    def _materialize(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        partition = context.partition_key if context.has_partition_key else None
        logger = context.log  # a logging.Logger: stage logs land in the Dagster run log

        def progress(done: int, total: int | None, message: str) -> None:
            pct = f" ({100 * done / total:.0f}%)" if total else ""
            context.log.info(f"{inst.name}: {done}/{total or '?'}{pct} {message}".rstrip())

        try:
            run = execute(pipeline, inst.name, ArtifactStore(store_root), partition, logger, progress)
        except (ValueError, StoreError) as exc:  # bad input, config or a missing upstream: a retry cannot help
            raise dg.Failure(description=f"{inst.name}: {exc}", allow_retries=False) from exc
        context.log.info(
            f"{inst.name}: {'cache hit' if run.cache_hit else 'committed'} {run.artifact.id} "
            f"({run.duration_s:.1f}s) → {run.artifact.path}"
        )
        outcomes = [(c, c.check(run.counts, inst.config)) for c in spec.checks]
        return dg.MaterializeResult(
            data_version=dg.DataVersion(run.artifact.content_hash),
            metadata=execution_metadata(run),
            check_results=[
                dg.AssetCheckResult(
                    check_name=c.name,
                    passed=o.passed,
                    description=o.description or None,
                    severity=dg.AssetCheckSeverity.ERROR,
                )
                for c, o in outcomes
            ],
        )

    return _materialize


def build_assets(pipeline: Pipeline, key_prefix: str | None = None) -> list[dg.AssetsDefinition | dg.SourceAsset]:
    """Source assets then stage assets for ``pipeline``, in dependency order."""
    prefix = [key_prefix] if key_prefix else []
    sources = [_source_asset(pipeline, name, prefix) for name in pipeline.sources]
    stages = [_stage_asset(pipeline, pipeline.stages[name], prefix) for name in pipeline.order]
    return [*sources, *stages]


def rounds_automation(pipeline: Pipeline, job: Any) -> tuple[dg.ScheduleDefinition, dg.SensorDefinition]:
    """The schedule and the sensor that start post-training rounds (both defined STOPPED: turn them on in the UI).

    Schedule ``<pipeline>_next_round`` (cron ``rounds.cron``): adds the next ``round-NNN`` key and requests its run;
    if the newest round is unfinished (failed, interrupted) it requests that round again instead, so finished
    rounds are never redone. Sensor ``<pipeline>_round_on_new_data``: requests a new round when what the rounds read
    (prompt pool, preference data, reward model — sources or upstream artifacts) changes; its first tick only
    records the current state.
    """
    store = ArtifactStore(pipeline.store)
    stopped = dg.DefaultScheduleStatus.STOPPED

    @dg.schedule(
        name=f"{pipeline.name}_next_round",
        job=job,
        cron_schedule=pipeline.rounds.cron,
        default_status=stopped,
        description="Add the next post-training round and run it.",
    )
    def next_round_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        existing = list(context.instance.get_dynamic_partitions(PARTITIONS_NAME))
        key = pending_round(pipeline, store, existing)
        if key not in existing:  # schedules cannot return AddDynamicPartitionsRequest; the instance API can
            context.instance.add_dynamic_partitions(PARTITIONS_NAME, [key])
        return dg.RunRequest(partition_key=key, tags={"gristmill/round": key, "gristmill/trigger": "schedule"})

    @dg.sensor(
        name=f"{pipeline.name}_round_on_new_data",
        job=job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Start a post-training round when the rounds' prompts/preference data change.",
    )
    def new_data_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        current = rounds_fingerprint(pipeline, store)
        if current is None:
            return dg.SkipReason("the rounds' inputs are not all materialized yet")
        if context.cursor is None:
            return dg.SensorResult(skip_reason="recorded the current data; waiting for new data", cursor=current)
        if context.cursor == current:
            return dg.SkipReason("no new prompts or preference data")
        existing = list(context.instance.get_dynamic_partitions(PARTITIONS_NAME))
        key = pending_round(pipeline, store, existing)
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=f"{key}:{current}",
                    partition_key=key,
                    tags={"gristmill/round": key, "gristmill/trigger": "new data"},
                )
            ],
            dynamic_partitions_requests=[] if key in existing else [ROUNDS.build_add_request([key])],
            cursor=current,
        )

    return next_round_schedule, new_data_sensor


def data_change_sensors(pipeline: Pipeline, prefix: list[str]) -> list[dg.SensorDefinition]:
    """``<pipeline>_observe_sources`` and ``<pipeline>_automation``, both RUNNING by default (they act only where
    the Dagster daemon runs: ``gristmill ui`` starts it)."""
    running = dg.DefaultSensorStatus.RUNNING
    sensors: list[dg.SensorDefinition] = []
    if pipeline.sources:

        @dg.sensor(
            name=f"{pipeline.name}_observe_sources",
            minimum_interval_seconds=pipeline.sensor_interval_s,
            default_status=running,
            description="Record a raw source's new data version when its files change.",
        )
        def observe_sources(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
            events = source_observations(pipeline, context.instance, prefix)
            if not events:
                return dg.SkipReason("no source changed")
            return dg.SensorResult(asset_events=events)

        sensors.append(observe_sources)
    automated = [dg.AssetKey([*prefix, n]) for n in pipeline.order if pipeline.stages[n].automation != "manual"]
    if automated:
        sensors.append(
            dg.AutomationConditionSensorDefinition(
                f"{pipeline.name}_automation",
                target=dg.AssetSelection.assets(*automated),
                default_status=running,
                minimum_interval_seconds=pipeline.sensor_interval_s,
                description="Re-materialize stages whose inputs, config or version changed (per-stage `automation`).",
            )
        )
    return sensors


def build_definitions(pipelines: list[Pipeline], executor: Any = None) -> dg.Definitions:
    """Definitions for one or more pipelines (keys prefixed by pipeline name when more than one): assets, a job
    over the unpartitioned stages, the data-change sensors and — for pipelines with rounds — a rounds job,
    schedule and sensor. ``executor`` defaults to ``in_process_executor`` (pass e.g. dagster-celery's
    ``celery_executor`` or dagster-k8s's ``k8s_job_executor`` to run each stage as its own task or pod)."""
    assets: list[Any] = []
    jobs: list[Any] = []
    schedules, sensors = [], []
    for pipeline in pipelines:
        prefix = [pipeline.name] if len(pipelines) > 1 else []
        assets.extend(build_assets(pipeline, prefix[0] if prefix else None))
        sensors.extend(data_change_sensors(pipeline, prefix))
        # A job cannot mix partitioned and unpartitioned assets: one job each.
        plain = [dg.AssetKey([*prefix, n]) for n in pipeline.order if not pipeline.stages[n].partitioned]
        jobs.append(dg.define_asset_job(f"{pipeline.name}_job", selection=plain))
        if pipeline.partitioned:
            rounds_job = dg.define_asset_job(
                f"{pipeline.name}_rounds_job",
                selection=[dg.AssetKey([*prefix, n]) for n in pipeline.partitioned],
                partitions_def=ROUNDS,
                description="One post-training round (partition round-NNN) of every round-partitioned stage.",
            )
            jobs.append(rounds_job)
            schedule, sensor = rounds_automation(pipeline, rounds_job)
            schedules.append(schedule)
            sensors.append(sensor)
    return dg.Definitions(
        assets=assets, jobs=jobs, schedules=schedules, sensors=sensors, executor=executor or dg.in_process_executor
    )
