"""Run one stage instance against the store: resolve inputs, hit the cache or run and commit.

Independent of Dagster: the asset factory and tests call :func:`execute`.
"""

import logging
import time
from dataclasses import dataclass
from typing import Any

from gristmill import __version__
from gristmill.config import Pipeline, StageInstance
from gristmill.launch import launch_stage
from gristmill.plugins import get_plugin_manager
from gristmill.sources import resolve_source
from gristmill.stage import Artifact, ProgressFn, StageContext, decode_metadata, encode_metadata
from gristmill.store import ArtifactStore, StoreError, cache_key

log = logging.getLogger("gristmill.runner")


@dataclass(frozen=True)
class Execution:
    """Outcome of :func:`execute`: the committed artifact and whether it came from the cache."""

    artifact: Artifact
    cache_hit: bool
    duration_s: float

    @property
    def counts(self) -> dict[str, Any]:
        return dict(self.artifact.manifest.get("counts", {}))

    @property
    def metadata(self) -> dict[str, Any]:
        return decode_metadata(self.artifact.manifest.get("metadata", {}))


def resolve_inputs(pipeline: Pipeline, inst: StageInstance, store: ArtifactStore) -> dict[str, Artifact]:
    """Input artifacts of ``inst``: sources from their files, stages from the store's ``latest``."""
    inputs = {}
    for param, ref in inst.inputs.items():
        if ref in pipeline.sources:
            inputs[param] = resolve_source(ref, pipeline.sources[ref])
            continue
        upstream = store.latest(ref)
        if upstream is None:
            raise StoreError(
                f"stage {inst.name!r}: input {param!r} reads {ref!r}, which has no artifact in {store.root} yet; "
                f"materialize {ref!r} first"
            )
        inputs[param] = upstream
    return inputs


def execute(
    pipeline: Pipeline,
    name: str,
    store: ArtifactStore,
    partition: str | None = None,
    logger: logging.Logger | None = None,
    progress_fn: ProgressFn | None = None,
    force: bool = False,
) -> Execution:
    """Materialize stage instance ``name``: reuse the cached artifact or run the stage and commit."""
    inst = pipeline.stages[name]
    spec = inst.spec
    logger = logger or log
    started = time.monotonic()
    inputs = resolve_inputs(pipeline, inst, store)
    input_hashes = {param: art.content_hash for param, art in inputs.items()}
    artifact_id = cache_key(spec.name, spec.version, inst.config_hash, input_hashes, inst.seed, partition)

    cached = None if force else store.lookup(name, artifact_id, partition)
    if cached is not None:
        store.set_latest(name, artifact_id, partition)
        return Execution(cached, True, time.monotonic() - started)

    with store.staging() as staging:
        ctx = StageContext(
            instance=name,
            output_dir=staging.out,
            work_dir=staging.work,
            log=logger,
            seed=inst.seed,
            partition_key=partition,
            resume_dir=store.resume_dir(name, artifact_id, partition) if spec.launch == "accelerate" else None,
            progress_fn=progress_fn,
        )
        result = launch_stage(spec, ctx, inst.config, inputs)
        manifest = {
            "stage": spec.name,
            "stage_version": spec.version,
            "code_version": inst.code_version,
            "config": inst.config.model_dump(mode="json"),
            "config_hash": inst.config_hash,
            "seed": inst.seed,
            "inputs": {
                p: {"ref": inst.inputs[p], "id": a.id, "content_hash": a.content_hash} for p, a in inputs.items()
            },
            "counts": dict(result.counts),
            "metadata": encode_metadata(result.metadata),
            "duration_s": round(time.monotonic() - started, 3),
            "gristmill_version": __version__,
        }
        artifact = store.commit(staging, name, artifact_id, spec.output, manifest, partition)
    if ctx.resume_dir is not None:
        store.drop_resume_dir(name, artifact_id, partition)
    _notify_finished(spec, artifact, ctx, logger)
    return Execution(artifact, False, time.monotonic() - started)


def _notify_finished(spec: Any, artifact: Artifact, ctx: StageContext, logger: logging.Logger) -> None:
    for impl in get_plugin_manager().hook.gristmill_stage_finished.get_hookimpls():
        try:
            impl.function(spec=spec, artifact=artifact, context=ctx)
        except Exception:  # noqa: BLE001 - an observer must not fail the run
            logger.exception("plugin %r: gristmill_stage_finished raised", impl.plugin_name)
