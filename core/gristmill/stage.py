"""The stage contract: everything a stage plugin sees, and nothing from Dagster.

A stage is a plain function ``run(ctx, config, inputs) -> StageResult`` described by a
:class:`StageSpec`. It reads its input :class:`Artifact` s, writes its output into
``ctx.output_dir`` and returns metadata. The store commits the output atomically; the asset
factory turns the spec into a Dagster asset and the result into Dagster metadata.
"""

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gristmill.checks import CheckOutcome, CheckSpec
from gristmill.configs import LaunchableConfig, StageConfig


@dataclass(frozen=True)
class Artifact:
    """A committed artifact (or a raw source) handed to a stage as input.

    ``path`` is the artifact's directory; ``files`` lists its data files (for a raw source:
    the files its glob matched).
    """

    kind: str
    path: Path
    id: str
    content_hash: str
    files: tuple[Path, ...] = ()
    manifest: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """How error messages name it: ``"<asset> artifact <id> (<path>)"`` (the kind when there is no asset)."""
        return f"{self.manifest.get('asset', self.kind)} artifact {self.id} ({self.path})"

    @classmethod
    def from_manifest(cls, path: Path, manifest: Mapping[str, Any]) -> "Artifact":
        """The committed artifact in ``path`` described by its ``manifest.json`` (the store's one reader)."""
        files = tuple(path / f["path"] for f in manifest.get("files", []))
        return cls(manifest["kind"], path, manifest["id"], manifest["content_hash"], files, dict(manifest))

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form (child launch requests); :meth:`from_json` reads it back."""
        return {
            "kind": self.kind,
            "path": str(self.path),
            "id": self.id,
            "content_hash": self.content_hash,
            "files": [str(f) for f in self.files],
            "manifest": dict(self.manifest),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Artifact":
        """Inverse of :meth:`to_json`."""
        files = tuple(Path(f) for f in data.get("files", []))
        return cls(data["kind"], Path(data["path"]), data["id"], data["content_hash"], files, data.get("manifest", {}))

    def input_record(self) -> dict[str, Any]:
        """What a manifest says of this artifact as an input: asset, partition, id and content hash."""
        return {
            "ref": self.manifest.get("asset", self.kind),
            "partition": self.manifest.get("partition"),
            "id": self.id,
            "content_hash": self.content_hash,
        }

    def glob(self, pattern: str) -> list[Path]:
        """Data files of this artifact matching ``pattern`` (a file-name glob), sorted."""
        if self.files:
            return sorted(p for p in self.files if p.match(pattern))
        return sorted(p for p in self.path.rglob(pattern) if p.is_file())


InputValue = Artifact | list[Artifact]


def encode_input(value: InputValue) -> Any:
    """JSON form of an input (one artifact, or a list for inputs that take many)."""
    return [a.to_json() for a in value] if isinstance(value, list) else value.to_json()


def decode_input(data: Any) -> InputValue:
    """Inverse of :func:`encode_input`."""
    return [Artifact.from_json(d) for d in data] if isinstance(data, list) else Artifact.from_json(data)


def input_record(value: InputValue) -> Any:
    """What a manifest says of an input (a list for list inputs); see :meth:`Artifact.input_record`."""
    return [a.input_record() for a in value] if isinstance(value, list) else value.input_record()


@dataclass
class Table:
    """Rows (dicts with the same keys) shown as a table in the Dagster UI."""

    rows: list[dict[str, Any]]


@dataclass
class Plot:
    """A PNG written by the stage (path relative to the output dir), shown in the UI."""

    path: str


@dataclass
class Markdown:
    """Free text rendered as markdown in the UI."""

    text: str


@dataclass
class StageResult:
    """What a stage returns: metadata for the UI and the manifest.

    Values may be plain JSON values (numbers, strings, lists, dicts) or :class:`Table`,
    :class:`Plot`, :class:`Markdown`. ``counts`` are the headline numbers (documents in/out…).
    """

    counts: dict[str, int | float] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, CheckOutcome] = field(default_factory=dict)  # filled by the engine, never by the stage


ProgressFn = Callable[[int, int | None, str], None]


@dataclass(frozen=True)
class Input:
    """One declared input of a stage: the artifact kind it accepts.

    ``optional``: a pipeline may leave it unwired (the stage's ``inputs`` then has no such key). ``many``: it is
    wired to a list of sources/stages and the stage gets ``list[Artifact]`` (a round-partitioned stage in the list
    contributes every committed round, in order).
    """

    kind: str
    optional: bool = False
    many: bool = False
    description: str = ""

    def summary(self) -> str:
        """``kind``, ``list of kind``, with `` (optional)`` when it may be left unwired."""
        return ("list of " if self.many else "") + self.kind + (" (optional)" if self.optional else "")


@dataclass(frozen=True)
class RunPolicy:
    """How the framework runs a stage's instances (the defaults suit a data stage).

    ``launch``: ``"inline"`` calls ``run`` in the materializing process; ``"accelerate"`` lets the config's
    ``launch:`` block (:class:`~gristmill.configs.LaunchableConfig`) start it as an ``accelerate launch`` child job
    (several processes, GPUs, machines). ``retries``: default retries after a transient failure (bad input never
    retries; a pipeline's ``retries:`` overrides it). ``pool``: the Dagster concurrency pool that ``pool: auto``
    picks (None: no pool). ``resumable``: the run gets ``ctx.resume_dir``, scratch that survives a failed run of
    the same artifact (checkpoints) and is removed after the commit.
    """

    launch: Literal["inline", "accelerate"] = "inline"
    retries: int = 2
    pool: str | None = None
    resumable: bool = False


TRAINING = RunPolicy(launch="accelerate", retries=0, pool="gristmill_accelerator", resumable=True)
"""Stages that train: accelerate-launched, never retried (a run is long; it resumes from its checkpoints instead),
one at a time per device through the shared ``gristmill_accelerator`` pool, with a resume dir."""


@dataclass
class StageContext:
    """What the framework gives a running stage.

    ``output_dir`` holds the artifact being written (everything in it is hashed and committed);
    ``work_dir`` is scratch space (logs, temp files) removed after the run; ``resume_dir`` (stages whose
    :class:`RunPolicy` is ``resumable``, e.g. :data:`TRAINING`) is scratch that survives a failed run of the same
    artifact and is removed after the commit: checkpoints there let a re-run continue instead of starting over.
    ``round`` is the round number of an instance partitioned by rounds (``partition_key`` ``round-003`` → 3; None
    when unpartitioned); ``previous`` is, for a stage declared with ``rounds=True``, the same instance's artifact
    of the round before (None in round 1 and for other stages).
    """

    instance: str
    output_dir: Path
    work_dir: Path
    log: logging.Logger
    seed: int = 0
    partition_key: str | None = None
    round: int | None = None
    previous: Artifact | None = None
    resume_dir: Path | None = None
    device: str = "cpu"
    progress_fn: ProgressFn | None = None
    _last_progress: float = field(default=0.0, repr=False)

    def progress(self, done: int, total: int | None = None, message: str = "", every_s: float = 2.0) -> None:
        """Report progress; throttled to one report per ``every_s`` seconds (and the last one)."""
        now = time.monotonic()
        if total is not None and done >= total or now - self._last_progress >= every_s:
            self._last_progress = now
            if self.progress_fn is not None:
                self.progress_fn(done, total, message)
            else:
                pct = f" ({100 * done / total:.0f}%)" if total else ""
                self.log.info("%s: %d/%s%s %s", self.instance, done, total if total else "?", pct, message)


StageFn = Callable[[StageContext, Any, dict[str, Artifact]], StageResult]


@dataclass(frozen=True)
class StageSpec:
    """Describes one stage: its inputs, output, config model and the function that runs it.

    ``inputs`` maps the stage's parameter names to an :class:`Input` (a plain string is a required single input
    of that kind: ``{"documents": "documents"}``); it is normalized to ``dict[str, Input]``. ``rounds=True``: the
    stage chains rounds — an instance partitioned by rounds gets, in round N, its own round N−1 artifact as
    ``ctx.previous``. ``policy`` says how the framework runs it (:class:`RunPolicy`; :data:`TRAINING` for stages
    that train, whose config must subclass :class:`~gristmill.configs.LaunchableConfig`). ``group`` is the default
    Dagster asset group. Kinds are checked against the kind registry when the plugin's stages are collected.
    """

    name: str
    version: str
    inputs: Mapping[str, Input | str]
    output: str
    config: type[StageConfig]
    run: StageFn
    description: str = ""
    policy: RunPolicy = RunPolicy()
    rounds: bool = False
    checks: tuple[CheckSpec, ...] = ()
    group: str = "stages"

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"stage name {self.name!r} must be a Python identifier")
        object.__setattr__(self, "inputs", {key: self._input(key, value) for key, value in self.inputs.items()})
        if self.rounds and "previous" in self.inputs:
            raise ValueError(
                f"stage {self.name!r}: rounds=True delivers the previous round as ctx.previous; "
                "remove the input named 'previous'"
            )
        if self.policy.launch == "accelerate" and not (
            isinstance(self.config, type) and issubclass(self.config, LaunchableConfig)
        ):
            raise TypeError(
                f"stage {self.name!r}: launch='accelerate' needs a config class that subclasses "
                f"gristmill.configs.LaunchableConfig (its launch: block says where it runs), got {self.config!r}"
            )

    def _input(self, key: str, value: "Input | str") -> Input:
        if key.endswith(("?", "*")):
            flag = "optional=True" if key.endswith("?") else "many=True"
            kind = value.kind if isinstance(value, Input) else value
            raise ValueError(
                f"stage {self.name!r}: input key {key!r}: name suffixes are no longer read; declare "
                f"{key[:-1]!r}: Input({kind!r}, {flag})"
            )
        if isinstance(value, Input):
            return value
        if isinstance(value, str):
            return Input(value)
        raise TypeError(f"stage {self.name!r}: input {key!r} must be an Input or a kind name, got {value!r}")

    @property
    def doc(self) -> str:
        """The description, falling back to the run function's docstring."""
        return self.description or (self.run.__doc__ or "").strip()

    @property
    def launch(self) -> Literal["inline", "accelerate"]:
        """``policy.launch``."""
        return self.policy.launch

    @property
    def kinds(self) -> list[str]:
        """Every artifact kind the stage names: its output's, then its inputs'."""
        return [self.output, *(i.kind for i in self.inputs.values())]


def encode_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """JSON form of result metadata (Table/Plot/Markdown tagged with ``__type__``) for manifests."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if isinstance(value, Table | Plot | Markdown):
            out[key] = {"__type__": type(value).__name__, **value.__dict__}
        else:
            out[key] = value
    return out


def decode_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`encode_metadata`."""
    types = {"Table": Table, "Plot": Plot, "Markdown": Markdown}
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if isinstance(value, dict) and value.get("__type__") in types:
            fields = {k: v for k, v in value.items() if k != "__type__"}
            out[key] = types[value["__type__"]](**fields)
        else:
            out[key] = value
    return out
