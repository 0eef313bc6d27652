"""``keyword_filter``: drop documents that match keyword lists (blocklists of words and phrases).

Each list has a name — the drop reason, counted as ``dropped_<name>`` — and holds words or phrases, given inline
(``keywords``) and/or as files with one entry per line (``keyword_files``; read when the pipeline is loaded, so
the list's content is part of the config and of the cache key). Matching is whole-word and case-insensitive by
default; a document is dropped when one list matches more than ``max_hits`` times. Kept documents get the number
of matches in ``metadata[hits_field]``.

The stage is built with :func:`gristmill.lib.kit.document_filter`, so it runs as a datatrove pipeline on the
configured ``executor`` and reports counts, a sample of dropped documents, a bar chart of drops per list and
the ``min_documents_kept`` check without any code of its own.
"""

import re
from functools import cached_property
from pathlib import Path
from typing import Any

from gristmill import StageSpec, hookimpl
from gristmill.lib.kit import FilterConfig, document_filter, reason_key
from pydantic import Field, model_validator


class KeywordFilterConfig(FilterConfig):
    """Options of the ``keyword_filter`` stage (plus ``executor``, ``min_documents``, ``sample_rows``)."""

    keywords: dict[str, list[str]] = Field(
        default_factory=dict, description="List name (the drop reason) → words/phrases, e.g. {spam: [buy now]}."
    )
    keyword_files: dict[str, str] = Field(
        default_factory=dict,
        description="List name → a UTF-8 file with one word/phrase per line ('#' starts a comment); merged into "
        "keywords when the config is validated (relative paths: from the working directory).",
    )
    whole_words: bool = Field(True, description="Match whole words only ('cat' does not match 'category').")
    case_sensitive: bool = Field(False, description="Match case exactly (default: case-insensitive).")
    max_hits: int = Field(0, ge=0, description="Drop a document when one list matches more than this (0: any match).")
    hits_field: str | None = Field(
        "keyword_hits", description="Metadata key for the matches in a kept document (None: not written)."
    )

    @model_validator(mode="before")
    @classmethod
    def _merge_files(cls, data: Any) -> Any:
        """Read ``keyword_files`` into ``keywords`` (idempotent), clean entries, name lists as count keys."""
        if not isinstance(data, dict):
            return data
        lists: dict[str, list[str]] = {}
        for name, words in (data.get("keywords") or {}).items():
            lists.setdefault(reason_key(str(name)), []).extend(words if isinstance(words, list) else [words])
        for name, path in (data.get("keyword_files") or {}).items():
            file = Path(str(path)).expanduser()
            try:
                lines = file.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise ValueError(f"keyword_files.{name}: cannot read {file}: {exc.strerror or exc}") from exc
            entries = [line.split("#", 1)[0] for line in lines]
            lists.setdefault(reason_key(str(name)), []).extend(e for e in entries if e.strip())
        cleaned = {
            name: list(dict.fromkeys(" ".join(str(w).split()) for w in words if str(w).strip()))
            for name, words in lists.items()
        }
        cleaned = {name: words for name, words in cleaned.items() if words}
        if not cleaned:
            raise ValueError("keyword_filter needs at least one non-empty list in keywords or keyword_files")
        return {**data, "keywords": cleaned}

    @cached_property
    def patterns(self) -> dict[str, re.Pattern[str]]:
        """One compiled pattern per list (built once per process)."""
        flags = 0 if self.case_sensitive else re.IGNORECASE
        out = {}
        for name, words in self.keywords.items():
            longest_first = sorted(words, key=len, reverse=True)
            alternatives = "|".join(r"\s+".join(map(re.escape, w.split())) for w in longest_first)
            body = rf"(?<!\w)(?:{alternatives})(?!\w)" if self.whole_words else f"(?:{alternatives})"
            out[name] = re.compile(body, flags)
        return out


def keyword_filter(doc: dict[str, Any], config: KeywordFilterConfig) -> bool | str:
    """Drop documents that match a keyword list more than max_hits times (the list's name is the drop reason)."""
    hits = {name: len(pattern.findall(doc["text"])) for name, pattern in config.patterns.items()}
    over = sorted((-n, name) for name, n in hits.items() if n > config.max_hits)
    if over:
        return over[0][1]
    if config.hits_field:
        doc["metadata"][config.hits_field] = sum(hits.values())
    return True


SPEC = document_filter("keyword_filter", keyword_filter, config=KeywordFilterConfig)


@hookimpl
def gristmill_register_stages() -> list[StageSpec]:
    return [SPEC]
