"""Artifact kinds: what a stage input or output holds, and which kinds a pipeline's raw source may declare.

The built-in kinds are the base set of every registry; a plugin adds its own through the hook
``gristmill_register_kinds`` (collected by :func:`gristmill.plugins.collect_stages` before the stages, so its
stages and pipeline ``sources:`` can use them).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class ArtifactKind:
    """One artifact kind.

    ``source_glob`` is the file glob a raw source of this kind matches when its ``path`` is a directory; None: the
    kind cannot be a raw source (only a stage can produce it).
    """

    name: str
    description: str
    source_glob: str | None = None

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"artifact kind name {self.name!r} must be a Python identifier")


BUILTIN_KINDS: tuple[ArtifactKind, ...] = (
    ArtifactKind("warc", "WARC(.gz) files of crawled pages", "*.warc.gz"),
    ArtifactKind("documents", "datatrove JSONL(.gz) shards with text, id, metadata", "*.jsonl*"),
    ArtifactKind("dataset", "JSONL in TRL conversational / preference formats", "*.jsonl"),
    ArtifactKind("tokenizer", "Hugging Face tokenizer directory (tokenizer.json)", "tokenizer.json"),
    ArtifactKind("tokens", "packed uint16/uint32 token shards + index JSON", "*"),
    ArtifactKind("model", "Hugging Face model directory (config.json + *.safetensors)", "*"),
    ArtifactKind("classifier", "fastText .bin model"),
    ArtifactKind("report", "JSON report (+ PNG plots)"),
)


def kinds_by_name(kinds: tuple[ArtifactKind, ...] | list[ArtifactKind] = BUILTIN_KINDS) -> dict[str, ArtifactKind]:
    """``{name: kind}`` in declaration order."""
    return {kind.name: kind for kind in kinds}


def source_kinds(kinds: dict[str, ArtifactKind]) -> dict[str, ArtifactKind]:
    """The kinds a raw source may declare (those with a ``source_glob``), in declaration order."""
    return {name: kind for name, kind in kinds.items() if kind.source_glob is not None}
