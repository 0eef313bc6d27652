"""Run one stage instance against the store: resolve inputs, hit the cache or run and commit.

Independent of Dagster: the asset factory and tests call :func:`execute`.
"""

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gristmill import __version__
from gristmill.checks import CheckOutcome, evaluate_checks
from gristmill.engine.launch import launch_stage
from gristmill.engine.store import ArtifactStore, StoreError, cache_key, check_root, os_error
from gristmill.pipeline.config import Pipeline, PipelineError, StageInstance
from gristmill.pipeline.rounds import previous_round, round_number
from gristmill.pipeline.sources import resolve_source
from gristmill.plugins import get_plugin_manager
from gristmill.stage import Artifact, ProgressFn, StageContext, decode_metadata, encode_metadata, input_record

log = logging.getLogger("gristmill.engine.runner")


@dataclass(frozen=True)
class Execution:
    """Outcome of :func:`execute`: the committed artifact and whether it came from the cache."""

    artifact: Artifact
    cache_hit: bool
    duration_s: float
    checks: dict[str, CheckOutcome] = field(default_factory=dict)

    @property
    def failed_checks(self) -> list[str]:
        """Names of the checks that did not pass."""
        return [name for name, outcome in self.checks.items() if not outcome.passed]

    @property
    def counts(self) -> dict[str, Any]:
        return dict(self.artifact.manifest.get("counts", {}))

    @property
    def metadata(self) -> dict[str, Any]:
        return decode_metadata(self.artifact.manifest.get("metadata", {}))


def _artifact_of(pipeline: Pipeline, ref: str, store: ArtifactStore, where: str, partition: str | None) -> Artifact:
    """A source's files, or the upstream's ``latest`` artifact once its files are checked against its manifest (a
    stage never reads a tampered input: its artifact id would be built from a hash its files no longer have)."""
    if ref in pipeline.sources:
        return resolve_source(ref, pipeline.sources[ref])
    which = f"{ref!r} ({partition})" if partition else repr(ref)
    again = f"materialize {which} again (the damaged artifact is moved aside and recomputed)"
    try:
        upstream = store.latest(ref, partition)
        problems = [] if upstream is None else store.check(upstream, verify_on_hit(pipeline))
    except StoreError as exc:
        raise StoreError(f"{where} reads {which}: {exc}; {again}") from exc
    if upstream is None:
        raise StoreError(f"{where} reads {which}, which has no artifact in {store.root} yet; materialize {which} first")
    if problems:
        raise StoreError(
            f"{where} reads {which}, whose artifact {upstream.path} does not match its manifest "
            f"({'; '.join(problems[:5])}); {again}"
        )
    return upstream


def verify_on_hit(pipeline: Pipeline) -> bool:
    """Whether cache hits and inputs are re-hashed in full (the pipeline's ``verify_on_hit``)."""
    return pipeline.verify_on_hit


def check_store_location(pipeline: Pipeline) -> None:
    """Before any work: the pipeline's store is a folder (or can be one), not inside another store, and not under a
    source's folder (the source would read the store's own artifacts)."""
    root = pipeline.store.expanduser().resolve()
    check_root(root)
    for name, source in pipeline.sources.items():
        for pattern in [source.path] if isinstance(source.path, str) else source.path:
            base, depth = _glob_base(pattern)
            if not root.is_relative_to(base):
                continue
            rel = root.relative_to(base).parts
            if depth == -1:  # a directory path: every file below it, hidden folders too
                reaches = True
            elif any(part.startswith(".") for part in rel):  # a glob's * and ** skip hidden folders
                reaches = False
            else:
                reaches = depth is None or depth > len(rel)
            if reaches:
                raise PipelineError(
                    f"{pipeline.path}: sources.{name}.path: source {name!r} reads files under {base} "
                    f"({pattern!r}), and the store {root} is inside it: the source would read the store's own "
                    "artifacts; put the store outside the source's folder"
                )


def _glob_base(pattern: str) -> tuple[Path, int | None]:
    """The folder a source path reads under, and how deep below it a match lies: -1 for a directory path (every
    file below it, hidden folders too), None for a ``**`` glob (any depth), else the glob's number of levels."""
    parts = Path(pattern).expanduser().parts
    magic = next((i for i, part in enumerate(parts) if any(c in part for c in "*?[")), None)
    if magic is None:  # a directory (every file below it) or a file
        return Path(*parts).resolve(), -1
    rest = parts[magic:]
    return Path(*parts[:magic]).resolve() if magic else Path.cwd(), None if "**" in rest else len(rest)


def resolve_inputs(
    pipeline: Pipeline, inst: StageInstance, store: ArtifactStore, partition: str | None = None
) -> dict[str, Any]:
    """Input artifacts of ``inst``: sources from their files, stages from the store's ``latest``.

    A list input gets a list (a partitioned stage in it: every committed round, in order). A partitioned
    instance reads partitioned inputs at its own partition. The previous round is :func:`previous_artifact`.
    """
    inputs: dict[str, Any] = {}
    for param, value in inst.inputs.items():
        where = f"stage {inst.name!r}: input {param!r}"
        if isinstance(value, list):
            arts: list[Artifact] = []
            for ref in value:
                if ref in pipeline.stages and pipeline.stages[ref].partitioned:
                    arts.extend(_artifact_of(pipeline, ref, store, where, p) for p in store.partitions(ref))
                else:
                    arts.append(_artifact_of(pipeline, ref, store, where, None))
            inputs[param] = arts
            continue
        own = partition if value in pipeline.stages and pipeline.stages[value].partitioned else None
        inputs[param] = _artifact_of(pipeline, value, store, where, own)
    return inputs


def previous_artifact(
    pipeline: Pipeline, inst: StageInstance, store: ArtifactStore, partition: str | None
) -> Artifact | None:
    """For a stage that chains rounds (``StageSpec.rounds``) partitioned by rounds: its own artifact of the round
    before ``partition`` (None for round 1; an error if that round is missing). None for every other stage."""
    if not (inst.spec.rounds and inst.partitioned and partition is not None):
        return None
    before = previous_round(partition)
    if before is None:
        return None
    return _artifact_of(pipeline, inst.name, store, f"stage {inst.name!r} ({partition})", before)


def _recorded(inputs: dict[str, Any], previous: Artifact | None) -> dict[str, Any]:
    """What the cache key and the manifest's ``inputs`` cover: the inputs, and the previous round as ``previous``."""
    return inputs if previous is None else {**inputs, "previous": previous}


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
    store = store.for_pipeline(pipeline.name)
    inputs = resolve_inputs(pipeline, inst, store, partition)
    previous = previous_artifact(pipeline, inst, store, partition)
    input_hashes = {
        param: art.content_hash if isinstance(art, Artifact) else [a.content_hash for a in art]
        for param, art in _recorded(inputs, previous).items()
    }
    artifact_id = cache_key(spec.name, spec.version, inst.config_hash, input_hashes, inst.seed, partition)

    what = f"materializing {name!r}" + (f" ({partition})" if partition else "")
    try:
        cached = None if force else store.hit(name, artifact_id, partition, verify_on_hit(pipeline), logger)
        if cached is not None:
            return Execution(cached, True, time.monotonic() - started, _checks(inst, cached))
        store.check_writable(name, artifact_id, partition)
        artifact, ctx = _run_and_commit(
            pipeline, name, store, partition, logger, progress_fn, inputs, previous, artifact_id, force
        )
    except OSError as exc:
        clear = os_error(exc, store.root, what)
        if clear is None:
            raise
        raise clear from exc
    if ctx.resume_dir is not None:
        store.drop_resume_dir(name, artifact_id, partition)
    _notify_finished(spec, artifact, ctx, logger)
    return Execution(artifact, False, time.monotonic() - started, _checks(inst, artifact))


def _checks(inst: StageInstance, artifact: Artifact) -> dict[str, CheckOutcome]:
    """The stage's checks on the committed artifact's counts (the same on a cache hit as after the run)."""
    return evaluate_checks(inst.spec.checks, artifact.manifest.get("counts", {}), inst.config)


def _run_and_commit(
    pipeline: Pipeline,
    name: str,
    store: ArtifactStore,
    partition: str | None,
    logger: logging.Logger,
    progress_fn: ProgressFn | None,
    inputs: dict[str, Any],
    previous: Artifact | None,
    artifact_id: str,
    force: bool = False,
) -> tuple[Artifact, StageContext]:
    """Run the stage into a fresh staging folder and commit its output (the staging folder goes either way)."""
    inst = pipeline.stages[name]
    spec = inst.spec
    started = time.monotonic()
    with store.staging() as staging:
        ctx = StageContext(
            instance=name,
            output_dir=staging.out,
            work_dir=staging.work,
            log=logger,
            seed=inst.seed,
            partition_key=partition,
            round=round_number(partition) if partition is not None else None,
            previous=previous,
            resume_dir=store.resume_dir(name, artifact_id, partition) if spec.policy.resumable else None,
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
            "inputs": {p: input_record(a) for p, a in _recorded(inputs, previous).items()},
            "counts": dict(result.counts),
            "metadata": encode_metadata(result.metadata),
            "duration_s": round(time.monotonic() - started, 3),
            "gristmill_version": __version__,
        }
        artifact = store.commit(staging, name, artifact_id, spec.output, manifest, partition, force, logger)
    return artifact, ctx


def _notify_finished(spec: Any, artifact: Artifact, ctx: StageContext, logger: logging.Logger) -> None:
    for impl in get_plugin_manager().hook.gristmill_stage_finished.get_hookimpls():
        try:
            impl.function(spec=spec, artifact=artifact, context=ctx)
        except Exception:  # noqa: BLE001 - an observer must not fail the run
            logger.exception("plugin %r: gristmill_stage_finished raised", impl.plugin_name)
