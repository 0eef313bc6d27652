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
from gristmill.runner import Execution, execute
from gristmill.sources import fingerprint, matched_files
from gristmill.stage import Markdown, Plot, Table
from gristmill.store import ArtifactStore

ROUNDS = dg.DynamicPartitionsDefinition(name="rounds")
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
        deps=[dg.AssetKey([*prefix, ref]) for ref in inst.inputs.values()],
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


def build_definitions(pipelines: list[Pipeline]) -> dg.Definitions:
    """Definitions for one or more pipelines (keys prefixed by pipeline name when more than one)."""
    assets: list[Any] = []
    jobs = []
    for pipeline in pipelines:
        prefix = pipeline.name if len(pipelines) > 1 else None
        built = build_assets(pipeline, prefix)
        assets.extend(built)
        # One job over the unpartitioned stages (a job cannot mix partitioned and unpartitioned assets).
        stage_keys = [dg.AssetKey([*([prefix] if prefix else []), n]) for n in pipeline.order
                      if not pipeline.stages[n].partitioned]
        jobs.append(dg.define_asset_job(f"{pipeline.name}_job", selection=stage_keys))
    return dg.Definitions(assets=assets, jobs=jobs, executor=dg.in_process_executor)
