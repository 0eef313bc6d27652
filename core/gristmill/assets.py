"""Asset factory: a validated :class:`~gristmill.config.Pipeline` → Dagster definitions.

One observable source asset per raw source (data version = file fingerprint) and one asset per
stage instance (code version = stage, stage version and config hash; data version = the
artifact's content hash). Stages never see Dagster: the asset body calls
:func:`gristmill.runner.execute` and turns the result into metadata and check results.
"""

# No `from __future__ import annotations` here: Dagster reads annotations at definition time.

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from gristmill.config import Pipeline, StageInstance
from gristmill.rounds import PARTITIONS_NAME, pending_round, rounds_fingerprint
from gristmill.runner import Execution, execute
from gristmill.sources import fingerprint, matched_files
from gristmill.stage import Markdown, Plot, Table
from gristmill.store import ArtifactStore

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
        files = matched_files(source)
        version = fingerprint(files, source.hash_content) if files else "no-files"
        return dg.ObserveResult(
            data_version=dg.DataVersion(version),
            metadata={"files": len(files), "bytes": sum(p.stat().st_size for p in files)},
        )

    return _observe


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
    )
    def _materialize(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        partition = context.partition_key if context.has_partition_key else None
        logger = context.log  # a logging.Logger: stage logs land in the Dagster run log

        def progress(done: int, total: int | None, message: str) -> None:
            pct = f" ({100 * done / total:.0f}%)" if total else ""
            context.log.info(f"{inst.name}: {done}/{total or '?'}{pct} {message}".rstrip())

        run = execute(pipeline, inst.name, ArtifactStore(store_root), partition, logger, progress)
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


def rounds_automation(
    pipeline: Pipeline, job: Any
) -> tuple[dg.ScheduleDefinition, dg.SensorDefinition]:
    """The schedule and the sensor that start post-training rounds (both defined STOPPED: turn them on in the UI).

    Schedule ``<pipeline>_next_round`` (cron ``rounds.cron``): adds the next ``round-NNN`` key and requests its run;
    if the newest round is unfinished (failed, interrupted) it requests that round again instead, so finished
    rounds are never redone. Sensor ``<pipeline>_round_on_new_data``: requests a new round when what the rounds read
    (prompt pool, preference data, reward model — sources or upstream artifacts) changes; its first tick only
    records the current state.
    """
    store = ArtifactStore(pipeline.store)
    stopped = dg.DefaultScheduleStatus.STOPPED

    @dg.schedule(name=f"{pipeline.name}_next_round", job=job, cron_schedule=pipeline.rounds.cron,
                 default_status=stopped, description="Add the next post-training round and run it.")  # fmt: skip
    def next_round_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        existing = list(context.instance.get_dynamic_partitions(PARTITIONS_NAME))
        key = pending_round(pipeline, store, existing)
        if key not in existing:  # schedules cannot return AddDynamicPartitionsRequest; the instance API can
            context.instance.add_dynamic_partitions(PARTITIONS_NAME, [key])
        return dg.RunRequest(partition_key=key, tags={"gristmill/round": key, "gristmill/trigger": "schedule"})

    @dg.sensor(name=f"{pipeline.name}_round_on_new_data", job=job, minimum_interval_seconds=60,
               default_status=dg.DefaultSensorStatus.STOPPED,
               description="Start a post-training round when the rounds' prompts/preference data change.")  # fmt: skip
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
            run_requests=[dg.RunRequest(run_key=f"{key}:{current}", partition_key=key,
                                        tags={"gristmill/round": key, "gristmill/trigger": "new data"})],
            dynamic_partitions_requests=[] if key in existing else [ROUNDS.build_add_request([key])],
            cursor=current,
        )  # fmt: skip

    return next_round_schedule, new_data_sensor


def build_definitions(pipelines: list[Pipeline]) -> dg.Definitions:
    """Definitions for one or more pipelines (keys prefixed by pipeline name when more than one): assets, a job
    over the unpartitioned stages, and — for pipelines with rounds — a rounds job, schedule and sensor."""
    assets: list[Any] = []
    jobs: list[Any] = []
    schedules, sensors = [], []
    for pipeline in pipelines:
        prefix = [pipeline.name] if len(pipelines) > 1 else []
        assets.extend(build_assets(pipeline, prefix[0] if prefix else None))
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
    return dg.Definitions(assets=assets, jobs=jobs, schedules=schedules, sensors=sensors,
                          executor=dg.in_process_executor)  # fmt: skip
