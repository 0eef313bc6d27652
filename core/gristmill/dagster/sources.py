"""Raw sources in Dagster: observable source assets whose data version is the files' fingerprint, and the
observations recorded when those files change."""

# No `from __future__ import annotations` here: Dagster reads annotations at definition time.

from typing import Any

import dagster as dg

from gristmill.pipeline.config import Pipeline, SourceDef
from gristmill.pipeline.sources import fingerprint, source_matches


def source_version(source: SourceDef) -> tuple[str, dict[str, Any]]:
    """A source's data version (fingerprint of its matched files), its file/byte counts and the paths skipped
    (symbolic links outside its folder, broken links, loops), each with the reason."""
    matches = source_matches(source)
    files = matches.files
    version = fingerprint(files, source.hash_content) if files else "no-files"
    meta: dict[str, Any] = {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}
    meta["skipped"] = len(matches.skipped)
    if matches.skipped:
        meta["skipped_paths"] = dg.MetadataValue.json([str(s) for s in matches.skipped])
    return version, meta


def source_asset(pipeline: Pipeline, name: str, prefix: list[str]) -> dg.SourceAsset:
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
