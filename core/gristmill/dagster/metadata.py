"""Stage results → Dagster metadata: tables, markdown, embedded PNG plots, the artifact's location."""

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from gristmill.engine.runner import Execution
from gristmill.stage import Markdown, Plot, Table

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
