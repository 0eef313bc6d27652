"""Pipeline YAML → validated models; every error names the file, the stage instance and the field.

A pipeline file::

    store: ./.gristmill            # artifact store root (relative to the working directory)
    seed: 0
    sources:                       # raw inputs → observable source assets
      raw_crawl: {kind: warc, path: "data/*.warc.gz"}
    stages:                        # instance name → stage, inputs, config
      crawl: {stage: crawl_filter, inputs: {warcs: raw_crawl}, config: {languages: [en]}}
"""

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gristmill.configs import StageConfig
from gristmill.errors import StageInputError
from gristmill.kinds import ArtifactKind, kinds_by_name, source_kinds
from gristmill.pipeline.limits import EXCERPT_CHARS, check_names, clip, excerpt, load_yaml_file, name_problem
from gristmill.plugins import StageRegistry, get_registry
from gristmill.stage import StageSpec


class PipelineError(StageInputError):
    """A pipeline file that cannot run; the message names file, stage and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceDef(_Strict):
    """A raw input: files matched by a glob, observed by Dagster as a source asset."""

    kind: str = Field(
        description="Artifact kind the matched files form: a kind that can be a raw source (built in, or added by a "
        "plugin's `gristmill_register_kinds`)."
    )
    path: str | list[str] = Field(description="Glob(s) or directory of the files, relative to the working directory.")
    hash_content: bool = Field(
        False, description="Data version from file contents (slow) instead of names, sizes and mtimes."
    )
    follow_external_links: bool = Field(
        False,
        description="Read symbolic links whose target lies outside the source's folder (by default they are "
        "skipped and named in the source's metadata).",
    )
    description: str = Field("", description="Shown in the Dagster UI.")
    _directory_glob: str = PrivateAttr("*")

    @field_validator("kind")
    @classmethod
    def _source_kind(cls, value: str, info: ValidationInfo) -> str:
        """One of the registry's source kinds (passed as validation context ``source_kinds``; built-ins without)."""
        allowed = _context_kinds(info)
        if value not in allowed:
            raise ValueError(f"{value!r} is not a source kind; allowed: {', '.join(allowed)}")
        return value

    @model_validator(mode="after")
    def _kind_glob(self, info: ValidationInfo) -> "SourceDef":
        self._directory_glob = _context_kinds(info)[self.kind].source_glob or "*"
        return self

    @property
    def directory_glob(self) -> str:
        """The files a directory ``path`` matches: the kind's ``source_glob``."""
        return self._directory_glob


def _context_kinds(info: ValidationInfo) -> dict[str, ArtifactKind]:
    context = info.context if isinstance(info.context, dict) else {}
    return context.get("source_kinds") or source_kinds(kinds_by_name())


class CronAutomation(_Strict):
    """Materialize on a cron schedule, once every input has been updated since the previous tick."""

    cron: str = Field(description="Cron expression (5 fields, UTC), e.g. `0 3 * * *`.")


Automation = Literal["eager", "manual"] | CronAutomation


class StageDef(_Strict):
    """One stage instance: which stage, wired to which inputs, with which config."""

    stage: str = Field(description="Registered stage name (see `gristmill stages`).")
    inputs: dict[str, str | list[str]] = Field(
        default_factory=dict,
        description="Stage input name → source or stage instance (a list for inputs that take many, e.g. eval's "
        "`models`).",
    )
    config: dict[str, Any] = Field(default_factory=dict, description="Options of the stage (validated by its model).")
    partitions: Literal["rounds"] | None = Field(None, description="Partition the asset by iterative rounds.")
    group: str | None = Field(None, description="Dagster asset group (default: the stage's own group).")
    seed: int | None = Field(None, description="Overrides the pipeline seed for this instance.")
    description: str = Field("", description="Extra text for the Dagster UI.")
    automation: Automation | None = Field(
        None,
        description="When Dagster's automation sensor re-materializes it: `eager` (an input's data or this stage's "
        "config/version changed), `manual`, or `{cron: EXPR}`. Default: the pipeline's `automation`; round-partitioned "
        "stages are always `manual` (rounds are started by the schedule and the sensor).",
    )
    retries: int | None = Field(
        None,
        ge=0,
        le=10,
        description="Retries after a transient failure (I/O, crashes; bad input is never retried). Default: the "
        "stage's run policy (2 for data stages, 0 for stages that train).",
    )
    pool: str | None = Field(
        "auto",
        pattern=r"^\S+$",
        description="Dagster concurrency pool. `auto`: the stage's run policy's pool — stages that train share "
        "`gristmill_accelerator` (one slot by default: one training stage at a time per device), others use none; "
        "`null`: none; any other name: that pool.",
    )

    @field_validator("automation", mode="before")
    @classmethod
    def _automation_shape(cls, value: Any) -> Any:
        if value is None or value in ("eager", "manual") or isinstance(value, CronAutomation):
            return value
        if isinstance(value, dict) and set(value) == {"cron"} and isinstance(value["cron"], str):
            return CronAutomation(cron=value["cron"])
        raise ValueError("must be eager, manual or {cron: EXPR}")


class RoundsDef(_Strict):
    """Iterative post-training rounds: the stages with ``partitions: rounds`` (keys ``round-001``, …)."""

    initial: int = Field(
        0, ge=0, description="Rounds `gristmill run`/`gristmill demo` materialize (round-001…round-N) by default."
    )
    cron: str = Field(
        "0 3 * * *",
        description="When the next-round schedule fires (the schedule is defined stopped; turn it on "
        "in the UI or with `dagster schedule start`).",
    )


class PipelineDef(_Strict):
    """The top level of a pipeline YAML file."""

    name: str = Field("pipeline", description="Pipeline name; prefixes Dagster job names.")
    store: str = Field("./.gristmill", description="Artifact store root directory.")
    seed: int = Field(0, description="Default seed for every stage.")
    sources: dict[str, SourceDef] = Field(default_factory=dict, description="Raw inputs by name.")
    stages: dict[str, StageDef] = Field(description="Stage instances by name (asset names).")
    rounds: RoundsDef = Field(default_factory=RoundsDef, description="Iterative rounds (partitioned stages).")
    automation: Literal["eager", "manual"] = Field(
        "eager", description="Default `automation` of every stage instance (see the stage field)."
    )
    retry_delay_s: float = Field(10.0, ge=0, description="Seconds before the first retry (doubling after each).")
    sensor_interval_s: int = Field(
        30, ge=5, description="How often the daemon checks the sources for changes and evaluates automation."
    )
    verify_on_hit: bool = Field(
        False,
        description="Re-hash every file of a cached artifact (and of every input) before using it. Default: names "
        "and sizes always, contents of artifacts up to 8 MB and of files whose mtime changed.",
    )

    @field_validator("name")
    @classmethod
    def _pipeline_name(cls, value: str) -> str:
        if problem := name_problem(value):
            raise ValueError(f"the pipeline name {problem}")
        return value

    @field_validator("sources", "stages")
    @classmethod
    def _portable_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if problem := name_problem(key):
                raise ValueError(f"name {excerpt(key, 80)} {problem}")
        return value


@dataclass(frozen=True)
class StageInstance:
    """A validated stage instance: its spec, typed config and resolved inputs."""

    name: str
    spec: StageSpec
    config: StageConfig
    inputs: dict[str, str | list[str]]
    seed: int
    group: str
    partitioned: bool
    description: str
    automation: str = "manual"  # "eager", "manual" or a cron expression
    retries: int = 0
    pool: str | None = None

    @property
    def config_hash(self) -> str:
        return config_hash(self.config)

    @property
    def refs(self) -> list[str]:
        """Every source/stage this instance reads (list inputs flattened), in input order."""
        out: list[str] = []
        for ref in self.inputs.values():
            out.extend([ref] if isinstance(ref, str) else ref)
        return out

    @property
    def code_version(self) -> str:
        return f"{self.spec.name}@{self.spec.version}:{self.config_hash}"


@dataclass(frozen=True)
class Pipeline:
    """A validated pipeline; ``order`` lists stage instances so every input comes first."""

    path: str
    name: str
    store: Path
    sources: dict[str, SourceDef]
    stages: dict[str, StageInstance]
    order: tuple[str, ...]
    rounds: RoundsDef = field(default_factory=RoundsDef)
    retry_delay_s: float = 10.0
    sensor_interval_s: int = 30
    verify_on_hit: bool = False

    @property
    def partitioned(self) -> list[str]:
        """Stage instances partitioned by rounds, in run order."""
        return [n for n in self.order if self.stages[n].partitioned]

    def output_kind(self, name: str) -> str:
        return self.sources[name].kind if name in self.sources else self.stages[name].spec.output

    def upstream(self, name: str) -> set[str]:
        """Stage instances ``name`` (transitively) reads."""
        out: set[str] = set()
        todo = [r for r in self.stages[name].refs if r in self.stages]
        while todo:
            ref = todo.pop()
            if ref not in out:
                out.add(ref)
                todo.extend(r for r in self.stages[ref].refs if r in self.stages)
        return out

    def downstream(self, name: str) -> set[str]:
        """Stage instances that (transitively) read ``name``."""
        out: set[str] = set()
        for inst in self.order:
            deps = set(self.stages[inst].refs)
            if name in deps or deps & out:
                out.add(inst)
        return out


def config_hash(config: BaseModel) -> str:
    """Stable short hash of a validated config (canonical JSON of all fields, defaults included)."""
    blob = json.dumps(config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "<top level>"


def _fmt_validation(where: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        got = "" if err["type"] == "missing" or isinstance(err["input"], dict) else f" (got {excerpt(err['input'])})"
        lines.append(f"{where}: {_loc(err['loc'])}: {err['msg']}{got}")
    return "\n".join(lines)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a pipeline file (bounded: :mod:`gristmill.pipeline.limits`); YAML syntax errors name file, line and
    column."""
    path = Path(path)
    data = load_yaml_file(path, PipelineError)
    if not isinstance(data, dict):
        raise PipelineError(f"{path}: a pipeline file must be a mapping with 'stages:', got {type(data).__name__}")
    return data


def load_pipeline(
    path: str | Path,
    registry: StageRegistry | None = None,
    store: str | Path | None = None,
) -> Pipeline:
    """Read and validate a pipeline file before any work starts."""
    return validate_pipeline(read_yaml(path), str(path), registry, store)


def validate_pipeline(
    data: dict[str, Any],
    path: str = "<pipeline>",
    registry: StageRegistry | None = None,
    store: str | Path | None = None,
) -> Pipeline:
    """Validate parsed YAML: schema, stage names, config fields, input wiring and kinds, cycles."""
    registry = registry or get_registry()
    check_names(data, path, PipelineError)
    try:
        pdef = PipelineDef.model_validate(data, context={"source_kinds": registry.source_kinds})
    except ValidationError as exc:
        raise PipelineError(_fmt_validation(path, exc)) from exc

    clash = set(pdef.sources) & set(pdef.stages)
    if clash:
        raise PipelineError(f"{path}: names used both as source and stage: {', '.join(sorted(clash))}")

    instances: dict[str, StageInstance] = {}
    for name, sdef in pdef.stages.items():
        where = f"{path}: stages.{name}"
        try:
            spec = registry.get(sdef.stage)
        except KeyError as exc:
            unknown = exc.args[0] if len(sdef.stage) <= EXCERPT_CHARS else f"unknown stage {excerpt(sdef.stage)}"
            raise PipelineError(f"{where}.stage: {unknown}") from exc
        try:
            cfg = spec.config.model_validate(sdef.config)
        except ValidationError as exc:
            raise PipelineError(_fmt_validation(f"{where}.config", exc)) from exc
        instances[name] = StageInstance(
            name=name,
            spec=spec,
            config=cfg,
            inputs=dict(sdef.inputs),
            seed=pdef.seed if sdef.seed is None else sdef.seed,
            group=sdef.group or spec.group,
            partitioned=sdef.partitions is not None,
            description=sdef.description,
            automation=_automation(where, sdef, pdef.automation),
            retries=spec.policy.retries if sdef.retries is None else sdef.retries,
            pool=spec.policy.pool if sdef.pool == "auto" else sdef.pool,
        )

    def kind_of(ref: str) -> str:
        return pdef.sources[ref].kind if ref in pdef.sources else instances[ref].spec.output

    for name, inst in instances.items():
        where = f"{path}: stages.{name}.inputs"
        spec = inst.spec
        for param, value in inst.inputs.items():
            declared = spec.inputs.get(param)
            if declared is None:
                raise PipelineError(
                    f"{where}.{clip(param)}: stage {spec.name!r} has no input {excerpt(param)}; "
                    f"its inputs: {', '.join(spec.inputs) or 'none'}"
                )
            accepted, many = declared.kind, declared.many
            if isinstance(value, list) and not many:
                raise PipelineError(f"{where}.{param}: takes one source or stage, not a list")
            refs = [value] if isinstance(value, str) else value
            if many and not refs:
                raise PipelineError(f"{where}.{param}: the list is empty")
            for ref in refs:
                if ref not in pdef.sources and ref not in instances:
                    known = ", ".join(sorted([*pdef.sources, *instances])) or "none"
                    raise PipelineError(
                        f"{where}.{param}: {excerpt(ref)} is neither a source nor a stage; known: {known}"
                    )
                if kind_of(ref) != accepted:
                    raise PipelineError(
                        f"{where}.{param}: expects a {accepted!r} artifact but {ref!r} produces {kind_of(ref)!r}"
                    )
                if ref in instances and instances[ref].partitioned and not (many or inst.partitioned):
                    raise PipelineError(
                        f"{where}.{param}: {ref!r} is partitioned by rounds; read it from a partitioned stage or "
                        "through an input that takes a list (every round)"
                    )
        missing = [p for p, declared in spec.inputs.items() if not declared.optional and p not in inst.inputs]
        if missing:
            raise PipelineError(f"{where}: missing required input(s) {', '.join(missing)} of stage {spec.name!r}")

    order = _topological_order(path, {n: set(i.refs) & set(instances) for n, i in instances.items()})
    store_root = Path(store if store is not None else pdef.store).expanduser()
    return Pipeline(
        path,
        pdef.name,
        store_root,
        dict(pdef.sources),
        instances,
        order,
        pdef.rounds,
        pdef.retry_delay_s,
        pdef.sensor_interval_s,
        pdef.verify_on_hit,
    )


def _automation(where: str, sdef: StageDef, default: str) -> str:
    """``eager``, ``manual`` or a validated cron expression; rounds are never automated per asset."""
    chosen = sdef.automation
    if sdef.partitions is not None:
        if chosen not in (None, "manual"):
            raise PipelineError(
                f"{where}.automation: a round-partitioned stage is started by the rounds schedule/sensor, not by "
                f"automation; remove the field or set it to manual (got {excerpt(chosen)})"
            )
        return "manual"
    if isinstance(chosen, CronAutomation):
        from dagster._utils.schedules import is_valid_cron_string

        if not is_valid_cron_string(chosen.cron):
            raise PipelineError(f"{where}.automation.cron: not a valid cron expression (got {excerpt(chosen.cron)})")
        return chosen.cron
    return chosen or default


def _topological_order(path: str, deps: dict[str, set[str]]) -> tuple[str, ...]:
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = visiting, 2 = done

    def visit(node: str, trail: list[str]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            cycle = " → ".join([*trail[trail.index(node) :], node])
            raise PipelineError(f"{path}: stages form a cycle: {cycle}")
        state[node] = 1
        for dep in sorted(deps[node]):
            visit(dep, [*trail, node])
        state[node] = 2
        order.append(node)

    for node in deps:
        visit(node, [])
    return tuple(order)


def pipeline_json_schema() -> dict[str, Any]:
    """JSON schema of the pipeline file (per-stage config schemas under ``$defs.stage_configs``)."""
    schema = PipelineDef.model_json_schema()
    registry = get_registry()
    schema["$defs"]["SourceDef"]["properties"]["kind"]["enum"] = list(registry.source_kinds)
    schema["x-stage-configs"] = {
        name: reg.spec.config.model_json_schema() for name, reg in sorted(registry.stages.items())
    }
    schema["x-artifact-kinds"] = {name: kind.description for name, kind in registry.kinds.items()}
    return schema
