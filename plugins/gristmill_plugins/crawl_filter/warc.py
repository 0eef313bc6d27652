"""Reading WARC files: HTML responses only, broken records and files counted and survived."""

import codecs
import logging
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.readers import WarcReader

from gristmill import Artifact
from gristmill_plugins.crawl_filter.records import MAX_HEADER_BYTES, RecordStream, iter_records

log = logging.getLogger("gristmill.crawl")

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


def _charset_of(content_type: str | None) -> str | None:
    match = re.search(r"charset=[\"']?([\w.:-]+)", content_type or "", re.IGNORECASE)
    return match.group(1) if match else None


_META_CHARSET = re.compile(rb"<meta[^>]+charset=[\"']?([\w.:-]+)", re.IGNORECASE)


def decode_html(payload: bytes, content_type: str | None = None, fallback: bool = True) -> tuple[str | None, str]:
    """Decode an HTML payload: UTF-8, else (with ``fallback``) the declared charset, else cchardet's guess.

    Returns ``(text, charset)``; ``text`` is None when no charset decodes the bytes.
    """
    try:
        return payload.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        if not fallback:
            return None, ""
    candidates = [_charset_of(content_type)]
    if meta := _META_CHARSET.search(payload[:4096]):
        candidates.append(meta.group(1).decode("ascii", "replace"))
    import cchardet  # faust-cchardet: a declared dependency of datatrove's WarcReader

    candidates.append(cchardet.detect(payload).get("encoding"))
    for name in candidates:
        if not name:
            continue
        try:
            codec = codecs.lookup(name).name
        except LookupError:
            continue
        if codec == "utf-8":  # already failed
            continue
        try:
            return payload.decode(codec), codec
        except (UnicodeDecodeError, LookupError):
            continue
    return None, ""


class RobustWarcReader(WarcReader):
    """datatrove's WarcReader over an explicit file list that counts and survives broken input.

    Only HTTP 2xx ``response`` records with an HTML payload are read. Records of other types, other
    statuses or content types, empty, oversized or undecodable payloads are skipped and counted
    (``skipped_*`` stats). A record that cannot be parsed, or whose data ends before its declared
    ``Content-Length`` (its gzip member ends first: reading goes on with the next record), counts as
    ``malformed``; a file whose stream breaks (truncated gzip, garbage, record headers over
    ``max_header_bytes``, a record hiding what follows it) counts in ``files_failed`` and reading goes on
    with the next file (documents read before the break are kept). Records are read by
    :mod:`~gristmill_plugins.crawl_filter.records`, in time linear in the file's inflated size.
    """

    name = "🕷 Warc (gristmill, robust)"

    def __init__(
        self,
        files: Sequence[str | Path],
        max_page_bytes: int = 2_000_000,
        charset_fallback: bool = True,
        on_file_done: Callable[[str], None] | None = None,
        max_header_bytes: int = MAX_HEADER_BYTES,
    ):
        paths = [Path(f).absolute() for f in files]
        root = Path(os.path.commonpath([p.parent for p in paths])) if paths else Path.cwd()
        super().__init__(str(root), compression="infer")
        self.add_file_path = False  # absolute paths would make the output depend on where the input lives
        self.files = sorted(p.relative_to(root).as_posix() for p in paths)
        self.max_page_bytes = max_page_bytes
        self.charset_fallback = charset_fallback
        self.on_file_done = on_file_done
        self.max_header_bytes = max_header_bytes
        self._notes: list[str] = []  # the stats of the record being read, counted once it is read to its end

    def _note(self, stat: str) -> None:
        self._notes.append(stat)

    def _payload_type(self, record: Any) -> str | None:
        declared = record.rec_headers.get_header("WARC-Identified-Payload-Type")
        if not declared and record.http_headers is not None:
            declared = record.http_headers.get_header("Content-Type")
        return declared.split(";")[0].strip().lower() if declared else None

    def process_record(self, record: Any, filepath: str) -> dict | None:
        """The document dict for an HTML response record, or None (with the reason counted)."""
        if record.rec_type != "response":
            self._note(f"skipped_type_{re.sub(r'[^a-z]', '', str(record.rec_type).lower())}")
            return None
        http = record.http_headers
        if http is not None and not str(http.protocol).upper().startswith("HTTP/"):
            self._note("malformed")  # warcio parses any first line as a status line
            return None
        status = http.get_statuscode() if http is not None else None
        if status is not None and not str(status).startswith("2"):
            self._note("skipped_status")
            return None
        ptype = self._payload_type(record)
        if ptype is not None and ptype not in HTML_TYPES:
            self._note("skipped_not_html")
            return None
        payload = record.content_stream().read(self.max_page_bytes + 1)
        if len(payload) > self.max_page_bytes:
            self._note("skipped_too_large")
            return None
        if not payload.strip():
            self._note("skipped_empty")
            return None
        if ptype is None and not re.search(rb"<!doctype html|<html", payload[:2048], re.IGNORECASE):
            self._note("skipped_not_html")
            return None
        html, charset = decode_html(
            payload, http.get_header("Content-Type") if http is not None else None, self.charset_fallback
        )
        if html is None:
            self._note("skipped_undecodable")
            return None
        if charset != "utf-8":
            self._note("non_utf8")
        headers = record.rec_headers
        record_id = headers.get_header("WARC-Record-ID")
        url = headers.get_header("WARC-Target-URI")
        if not record_id or not url:
            self._note("malformed")
            return None
        return {
            "text": html,
            "id": record_id,
            "url": url,
            "date": headers.get_header("WARC-Date"),
            "warc_file": filepath,
        }

    def read_file(self, filepath: str) -> DocumentsPipeline:
        # the raw file: RecordStream inflates it one gzip member at a time
        with self.data_folder.open(filepath, "rb", compression=None) as f:
            stream = RecordStream(f, self.max_header_bytes)
            if filepath.endswith(".gz") and not stream.gzip:
                raise ValueError("not a gzip file")
            for index, (record, finish) in enumerate(iter_records(stream)):
                self.stat_update("records")
                with self.track_time():
                    self._notes = []
                    try:
                        data = self.process_record(record, filepath)
                    except Exception as exc:  # broken headers, bad content-encoding, stream cut mid-record
                        self._notes, data = ["malformed"], None
                        log.debug("malformed record %d in %s: %s: %s", index, filepath, type(exc).__name__, exc)
                    try:
                        cut_short = finish()  # read to its declared end; raises when the file cannot go on
                    except Exception:
                        self.stat_update("malformed")
                        raise
                    if cut_short:
                        self._notes, data = ["malformed"], None
                        log.debug("record %d in %s ends before its Content-Length", index, filepath)
                    for stat in self._notes:
                        self.stat_update(stat)
                    document = self.get_document_from_dict(data, filepath, index) if data else None
                if document is not None:
                    yield document

    def read_files_shard(self, shard: list[str]) -> DocumentsPipeline:
        for filepath in shard:
            self.stat_update("files")
            try:
                for document in self.read_file(filepath):
                    self.stat_update("html_pages")
                    yield document
            except Exception as exc:  # truncated gzip (EOFError), not gzip (BadGzipFile), unparsable WARC
                self.stat_update("files_failed")
                reason = f"{type(exc).__name__}: {exc}".encode("ascii", "backslashreplace").decode()
                log.warning("crawl_filter: skipped the rest of %s: %s", filepath, reason[:300])
            if self.on_file_done is not None:
                self.on_file_done(filepath)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        for document in self.read_files_shard(self.files[rank::world_size]):
            self.update_doc_stats(document)
            yield document


def warc_files(artifact: Artifact) -> list[Path]:
    """The ``*.warc.gz`` / ``*.warc`` files of a ``warc`` artifact (its file list, or under its directory)."""
    found = {*artifact.glob("*.warc.gz"), *artifact.glob("*.warc")}
    if not found and artifact.path.is_file():
        found = {artifact.path}
    return sorted(found)
