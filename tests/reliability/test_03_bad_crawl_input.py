"""Case 3: malformed WARC records, truncated gzip, non-UTF-8 HTML, empty and very large pages are counted and
skipped; the run completes and the counts reach the Dagster materialization's metadata."""

import gzip
from pathlib import Path

import dagster as dg
import pytest

from gristmill.dagster.assets import build_assets
from gristmill.pipeline.config import validate_pipeline
from gristmill.testing import artifact_from_dir, run_stage
from gristmill_plugins.crawl_filter import SPEC
from tests.plugins.test_crawl_filter import (
    BREAD,
    FAST,
    SPAM_WARC,
    _article,
    _assert_consistent,
    _docs,
    _good_warc,
    _raw_record,
    _write_warc,
)


def test_truncated_and_garbled_warcs_are_counted_and_skipped(shared_data: Path, tmp_path: Path) -> None:
    real = (shared_data / "web" / SPAM_WARC).read_bytes()
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a-truncated.warc.gz").write_bytes(real[: len(real) // 2])
    (folder / "b-truncated-garbage.warc.gz").write_bytes(real[: len(real) // 2] + b"\x00\xffgarbage" * 500)
    (folder / "c-not-gzip.warc.gz").write_bytes(b"this is not a WARC file at all\n" * 20)
    (folder / "d-bad-header.warc.gz").write_bytes(gzip.compress(b"GARBAGE/1.0\r\nfoo: bar\r\n\r\n", mtime=0))
    _good_warc(folder / "e-good.warc.gz")
    result, art = run_stage(SPEC, tmp_path / "out", FAST, {"warcs": artifact_from_dir("warc", folder)})
    counts = result.counts
    assert counts["warc_files"] == 5
    assert counts["warc_files_failed"] == 4
    assert counts["records_read"] > 10  # the records before the break were read
    docs = _docs(art.path)
    assert [d["metadata"]["warc_file"] for d in docs] == ["e-good.warc.gz"]
    rows = {row["step"]: row for row in result.metadata["filters"].rows}
    assert "files_failed: 4" in rows["reader"]["reasons"]


def test_odd_records_are_counted_and_skipped(tmp_path: Path) -> None:
    cp1252 = _article("Bread", BREAD).encode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        cp1252.decode("utf-8")
    big = _article("Big", ["A very long page about nothing in particular. " * 40] * 40).encode()
    records = [
        ("response", "https://bread-notes.org/loaf.html", cp1252, "text/html"),  # no charset: not UTF-8
        ("response", "https://bread-notes.org/empty.html", b"", "text/html; charset=utf-8"),
        ("response", "https://bread-notes.org/blank.html", b"   \n  ", "text/html"),
        ("response", "https://bread-notes.org/big.html", big, "text/html"),
        ("response", "https://bread-notes.org/logo.png", b"\x89PNG\r\n\x1a\n" + bytes(100), "image/png"),
        ("response", "https://bread-notes.org/old", b"", "text/html", "301 Moved Permanently"),
        ("response", "https://bread-notes.org/binary.html", bytes(range(256)) * 40, "text/html"),
        ("resource", "metadata://gristmill/test.log", b"a log line\n"),
        ("metadata", "https://bread-notes.org/loaf.html", b"fetchTimeMs: 12\n"),
    ]
    folder = tmp_path / "in"
    folder.mkdir()
    _write_warc(folder / "odd.warc.gz", records)
    _good_warc(folder / "good.warc.gz")
    (folder / "raw.warc.gz").write_bytes(
        _raw_record("https://bread-notes.org/raw", b"this is not an HTTP response\r\n\r\n<html></html>")
    )
    config = {**FAST, "max_page_bytes": 50_000}
    result, art = run_stage(SPEC, tmp_path / "out", config, {"warcs": artifact_from_dir("warc", folder)})
    counts = result.counts
    _assert_consistent(counts)
    assert len(big) > 50_000
    assert counts["records_skipped_too_large"] == 1
    assert counts["records_skipped_empty"] == 2
    assert counts["records_skipped_not_html"] == 1
    assert counts["records_skipped_status"] == 1
    assert counts["records_malformed"] == 1
    assert counts["records_non_utf8"] == 1  # the cp1252 page, decoded with cchardet's guess
    assert counts["records_skipped_undecodable"] == 1  # the binary junk
    assert counts["warc_files_failed"] == 0
    texts = {d["metadata"]["url"]: d["text"] for d in _docs(art.path)}
    assert set(texts) == {"https://tomato-notes.org/growing-tomatoes.html", "https://bread-notes.org/loaf.html"}
    assert "The café down the street sells a naïve little sourdough" in texts["https://bread-notes.org/loaf.html"]

    strict, art2 = run_stage(
        SPEC, tmp_path / "strict", {**config, "charset_fallback": False}, {"warcs": artifact_from_dir("warc", folder)}
    )
    assert strict.counts["records_non_utf8"] == 0
    assert strict.counts["records_skipped_undecodable"] == 2
    assert [d["metadata"]["url"] for d in _docs(art2.path)] == ["https://tomato-notes.org/growing-tomatoes.html"]


def test_bad_files_are_counted_in_the_dagster_metadata(shared_data: Path, tmp_path: Path) -> None:
    """Through Dagster: the run succeeds and the UI's metadata shows the failed files and skipped records."""
    real = (shared_data / "web" / SPAM_WARC).read_bytes()
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a-truncated.warc.gz").write_bytes(real[: len(real) // 3])  # cut inside a record header
    (folder / "b-not-gzip.warc.gz").write_bytes(b"\x00" * 1000)
    _good_warc(folder / "c-good.warc.gz")
    pipeline = validate_pipeline(
        {
            "sources": {"web": {"kind": "warc", "path": str(folder / "*.warc.gz")}},
            "stages": {"crawl": {"stage": "crawl_filter", "inputs": {"warcs": "web"}, "config": FAST}},
        },
        "reliability.yaml",
        store=tmp_path / "store",
    )
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(build_assets(pipeline), instance=instance, selection=[dg.AssetKey("crawl")])
        assert result.success
        event = instance.get_latest_materialization_event(dg.AssetKey("crawl"))
    metadata = event.asset_materialization.metadata
    assert metadata["warc_files"].value == 3 and metadata["warc_files_failed"].value == 2
    assert metadata["documents_kept"].value >= 1
