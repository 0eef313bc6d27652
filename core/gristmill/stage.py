"""The stage contract: everything a stage plugin sees, and nothing from Dagster.

A stage is a plain function ``run(ctx, config, inputs) -> StageResult`` described by a
:class:`StageSpec`. It reads its input :class:`Artifact` s, writes its output into
``ctx.output_dir`` and returns metadata. The store commits the output atomically; the asset
factory turns the spec into a Dagster asset and the result into Dagster metadata.
"""

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gristmill.configs import StageConfig

# Artifact kinds and their on-disk formats (DESIGN §5).
ARTIFACT_KINDS: dict[str, str] = {
    "warc": "WARC(.gz) files of crawled pages",
    "documents": "datatrove JSONL(.gz) shards with text, id, metadata",
    "classifier": "fastText .bin model",
    "tokenizer": "Hugging Face tokenizer directory (tokenizer.json)",
    "tokens": "packed uint16/uint32 token shards + index JSON",
    "model": "Hugging Face model directory (config.json + *.safetensors)",
    "dataset": "JSONL in TRL conversational / preference formats",
    "report": "JSON report (+ PNG plots)",
}


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

    def glob(self, pattern: str) -> list[Path]:
        """Data files of this artifact matching ``pattern`` (a file-name glob), sorted."""
        if self.files:
            return sorted(p for p in self.files if p.match(pattern))
        return sorted(p for p in self.path.rglob(pattern) if p.is_file())


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


@dataclass(frozen=True)
class CheckOutcome:
    """Result of a :class:`CheckSpec` evaluated on a finished artifact."""

    passed: bool
    description: str = ""


@dataclass(frozen=True)
class CheckSpec:
    """A quality gate on a stage's output; becomes a Dagster asset check.

    ``check(counts, config)`` receives the result's counts and the stage config.
    A failing blocking check stops downstream assets from materializing.
    """

    name: str
    description: str
    check: Callable[[Mapping[str, Any], Any], CheckOutcome]
    blocking: bool = True


ProgressFn = Callable[[int, int | None, str], None]


@dataclass
class StageContext:
    """What the framework gives a running stage.

    ``output_dir`` holds the artifact being written (everything in it is hashed and committed);
    ``work_dir`` is scratch space (logs, temp files) removed after the run; ``resume_dir`` (training stages,
    ``launch="accelerate"``) is scratch that survives a failed run of the same artifact and is removed after the
    commit: checkpoints there let a re-run continue instead of starting over.
    """

    instance: str
    output_dir: Path
    work_dir: Path
    log: logging.Logger
    seed: int = 0
    partition_key: str | None = None
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

    ``inputs`` maps the stage's parameter names to the artifact kind each accepts; a name ending in ``?`` is
    optional; a name ending in ``*`` takes a list (the stage gets ``list[Artifact]``; a partitioned stage in the
    list contributes every round). An optional input named ``previous`` of the output's kind is, for a stage
    partitioned by rounds, the same instance's artifact from the preceding round. ``group`` is the default
    Dagster asset group.
    """

    name: str
    version: str
    inputs: dict[str, str]
    output: str
    config: type[StageConfig]
    run: StageFn
    description: str = ""
    launch: Literal["inline", "accelerate"] = "inline"
    checks: tuple[CheckSpec, ...] = ()
    group: str = "stages"

    def __post_init__(self) -> None:
        kinds = [self.output, *self.inputs.values()]
        unknown = [k for k in kinds if k not in ARTIFACT_KINDS]
        if unknown:
            known = sorted(ARTIFACT_KINDS)
            raise ValueError(f"stage {self.name!r}: unknown artifact kind(s) {unknown}; known: {known}")
        if not self.name.isidentifier():
            raise ValueError(f"stage name {self.name!r} must be a Python identifier")

    @property
    def doc(self) -> str:
        """The description, falling back to the run function's docstring."""
        return self.description or (self.run.__doc__ or "").strip()

    def required_inputs(self) -> dict[str, str]:
        return {k.rstrip("*"): v for k, v in self.inputs.items() if not k.endswith("?")}

    def input_kind(self, name: str) -> str | None:
        """Kind accepted by input ``name`` (declared as ``name``, ``name?`` or ``name*``)."""
        return self.inputs.get(name) or self.inputs.get(name + "?") or self.inputs.get(name + "*")

    def takes_many(self, name: str) -> bool:
        """Whether input ``name`` takes a list of artifacts (declared ``name*``)."""
        return name + "*" in self.inputs


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


def min_documents_check(stage: str, count_key: str, config_field: str = "min_documents") -> CheckSpec:
    """The common gate ``min_documents_kept``: ``counts[count_key] >= config.<config_field>``."""

    def check(counts: Mapping[str, Any], config: Any) -> CheckOutcome:
        kept, floor = int(counts.get(count_key, 0)), getattr(config, config_field)
        return CheckOutcome(kept >= floor, f"{kept} documents kept (min {floor})")

    return CheckSpec(
        name="min_documents_kept",
        description=f"{stage} kept at least config.{config_field} documents",
        check=check,
    )


def loss_decreased_check() -> CheckSpec:
    """The training gate ``loss_decreased``: final loss ≤ first loss × (1 − ``config.min_loss_drop``)."""

    def check(counts: Mapping[str, Any], config: Any) -> CheckOutcome:
        first, final = float(counts.get("first_loss", math.nan)), float(counts.get("final_loss", math.nan))
        target = first * (1 - config.min_loss_drop)
        ok = math.isfinite(final) and final <= target
        return CheckOutcome(ok, f"final loss {final:.4g} vs first {first:.4g} (must be ≤ {target:.4g})")

    return CheckSpec(
        name="loss_decreased",
        description="the final training loss is at least config.min_loss_drop below the first step's",
        check=check,
    )
