"""crawl_filter on real datatrove, trafilatura/resiliparse and fastText: real WARCs and hand-built broken ones."""

import gzip
import hashlib
import io
import re
import shutil
import socket
from pathlib import Path

import pytest
from loguru import logger as loguru_logger
from pydantic import ValidationError
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from gristmill import Input
from gristmill.lib.documents import iter_documents
from gristmill.lib.executors import quiet_datatrove_logs
from gristmill.testing import artifact_from_dir, run_stage
from gristmill_plugins import crawl_filter
from gristmill_plugins.crawl_filter import SPEC, CrawlFilterConfig
from gristmill_plugins.crawl_filter.pipeline import build_pipeline
from gristmill_plugins.crawl_filter.steps import bundled_lid_model
from gristmill_plugins.crawl_filter.warc import warc_files

# Real Common Crawl / wget WARCs (AEB's 91 large pages are left to the benchmark to keep tests fast).
REAL_WARCS = (
    "cc-main-2020-34_resiliparse-sample.warc.gz",
    "cc-main-2024-22_whirlwind.warc.gz",
    "dolma-wget-sample-0000.warc.gz",
)
SPAM_WARC = "cc-main-2020-34_resiliparse-sample.warc.gz"
FAST = {"url_filter": False}  # the URL blocklist takes ~2 s to load; only tests about it keep it on

EMAIL = "jane.gardener@tomato-notes.org"
PUBLIC_IP = "93.184.216.34"

GARDEN = [
    "Growing tomatoes in a small garden is easier than most people think, and the reward is worth the effort.",
    "Start the seeds indoors about six weeks before the last frost, and keep them in a bright and warm place.",
    "When the seedlings have two true leaves, move them into larger pots so that the roots have room to grow.",
    "Before planting them outside, harden the young plants by leaving them outdoors for a few hours each day.",
    "Choose a sunny spot, because tomatoes need at least six hours of direct light to produce a good crop.",
    "Water the plants deeply at the base once or twice a week instead of giving them a little water every day.",
    "A layer of straw around the stems keeps the soil moist and stops the lower leaves from touching the mud.",
    "Tie the main stem to a stake as it grows, and pinch out the side shoots that appear between stem and leaf.",
    "Feed the plants with a potash fertilizer once the first flowers have opened and the fruit starts to set.",
    "Pick the fruit when it is fully coloured, and leave the green ones on the vine to ripen in the late sun.",
    f"If you have questions about the seeds I grow, write to me at {EMAIL} and I will answer within a week.",
    f"The seed catalogue is served from our small public server at {PUBLIC_IP}, which we keep running all year.",
]
BREAD = [
    "Baking bread at home takes patience, but the method itself is simple and needs only four ingredients.",
    "Mix the flour with water and leave it to rest for half an hour, so that the gluten can begin to form.",
    "Add the salt and the yeast, then knead the dough until it feels smooth, elastic and a little bit tacky.",
    "Let the dough rise in a covered bowl until it has doubled in size, which can take two hours or more.",
    "Shape the loaf gently so that you keep the air inside, and place it in a basket dusted with rice flour.",
    "Heat the oven with a heavy pot inside, because the trapped steam gives the crust its colour and crunch.",
    "Bake the bread with the lid on for twenty minutes, then remove the lid and bake until it is deep brown.",
    "Wait until the loaf has cooled completely before you cut it, otherwise the crumb will be gummy and wet.",
    "The café down the street sells a naïve little sourdough that is surprisingly good — try it one day.",
]


def _article(title: str, paragraphs: list[str]) -> str:
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<!DOCTYPE html><html><head><title>{title}</title></head><body>"
        f"<nav><a href='/'>Home</a> <a href='/about'>About</a></nav>"
        f"<article><h1>{title}</h1>\n{body}\n</article><footer>Small garden notes</footer></body></html>"
    )


def _write_warc(path: Path, records: list[tuple]) -> Path:
    """Write a gzipped WARC with warcio. Records: ("response", url, body, content_type[, status]) or
    ("request" | "resource" | "metadata", url, body)."""
    with open(path, "wb") as f:
        writer = WARCWriter(f, gzip=True)
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "gristmill-tests"}))
        for rec in records:
            kind, url, body = rec[0], rec[1], rec[2]
            if kind == "response":
                content_type, status = rec[3], (rec[4] if len(rec) > 4 else "200 OK")
                headers = [("Content-Type", content_type)] if content_type else []
                http = StatusAndHeaders(status, headers, protocol="HTTP/1.1")
                record = writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http)
            elif kind == "request":
                http = StatusAndHeaders(f"GET {url} HTTP/1.1", [("Host", "example.org")], is_http_request=True)
                record = writer.create_warc_record(url, "request", payload=io.BytesIO(b""), http_headers=http)
            else:
                record = writer.create_warc_record(url, kind, payload=io.BytesIO(body), warc_content_type="text/plain")
            writer.write_record(record)
    return path


def _raw_record(url: str, block: bytes) -> bytes:
    """A gzipped WARC response record written by hand (warcio refuses to write a non-HTTP block)."""
    head = (
        "WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:12345678-1234-5678-1234-567812345678>\r\n"
        f"WARC-Target-URI: {url}\r\nWARC-Date: 2024-01-01T00:00:00Z\r\n"
        f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(block)}\r\n\r\n"
    ).encode()
    return gzip.compress(head + block + b"\r\n\r\n", mtime=0)


def _good_warc(path: Path) -> Path:
    return _write_warc(
        path,
        [
            ("request", "https://tomato-notes.org/growing-tomatoes.html", b""),
            (
                "response",
                "https://tomato-notes.org/growing-tomatoes.html",
                _article("Tomatoes", GARDEN).encode(),
                "text/html; charset=utf-8",
            ),
        ],
    )


def _run(tmp_path: Path, files: list[Path], name: str = "out", **config) -> tuple:
    folder = files[0].parent
    return run_stage(SPEC, tmp_path / name, config, {"warcs": artifact_from_dir("warc", folder, files)})


def _docs(out: Path) -> list[dict]:
    return list(iter_documents(out))


def _hashes(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}


def _assert_consistent(counts: dict) -> None:
    skipped = sum(v for k, v in counts.items() if k.startswith("records_skipped_")) + counts["records_malformed"]
    assert counts["records_read"] == skipped + counts["html_pages"]
    before_extraction = counts.get("dropped_url", 0) + counts["extraction_failed"] + counts["documents_extracted"]
    assert counts["html_pages"] == before_extraction
    drops = sum(
        counts[f"dropped_{k}"]
        for k in ("language", "gopher_repetition", "gopher_quality", "c4", "fineweb")
        if f"dropped_{k}" in counts
    )
    assert counts["documents_extracted"] == counts["documents_kept"] + drops


@pytest.fixture(scope="module")
def real_run(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """One default-config run (URL filter on) over the real WARCs, shared by the tests below."""
    web = shared_data / "web"
    files = [web / name for name in REAL_WARCS]
    out = tmp_path_factory.mktemp("crawl_real") / "out"
    result, artifact = run_stage(SPEC, out, {}, {"warcs": artifact_from_dir("warc", web, files)})
    return result, out


def test_real_warcs_extract_and_keep_only_english(real_run: tuple) -> None:
    result, out = real_run
    counts = result.counts
    docs = _docs(out)
    assert counts["warc_files"] == 3 and counts["warc_files_failed"] == 0
    # 16 + 1 + 22 HTML responses; requests, metadata, warcinfo and wget's resource records are skipped
    assert counts["html_pages"] == 39
    assert counts["records_skipped_type"] == counts["records_read"] - 39
    assert result.metadata["skipped_record_types"]["resource"] == 2
    assert counts["documents_extracted"] >= 35
    assert 5 <= counts["documents_kept"] == len(docs) < counts["documents_extracted"]
    for doc in docs:
        assert set(doc) == {"text", "id", "metadata"}
        assert doc["metadata"]["language"] == "en" and doc["metadata"]["language_score"] >= 0.65
        assert doc["metadata"]["url"].startswith("http") and doc["metadata"]["warc_file"] in REAL_WARCS
        assert doc["id"].startswith("<urn:uuid:") and len(doc["text"]) > 200
    assert len({doc["id"] for doc in docs}) == len(docs)
    assert [p.name for p in out.iterdir()] == ["00000.jsonl.gz"]  # nothing but data in the hashed output


def test_real_counts_are_consistent(real_run: tuple) -> None:
    result, _ = real_run
    counts = result.counts
    _assert_consistent(counts)
    assert counts["dropped_url"] == 0 and counts["records_malformed"] == 0
    hist = result.metadata["language_histogram"]
    assert sum(hist.values()) == counts["documents_extracted"]
    assert counts["dropped_language"] == counts["documents_extracted"] - hist["en"]
    rows = {row["step"]: row for row in result.metadata["filters"].rows}
    assert rows["language"]["dropped"] == counts["dropped_language"]
    assert rows["writer"]["in"] == counts["documents_kept"]
    assert result.metadata["sample"].rows and len(result.metadata["sample"].rows) <= 10
    assert result.metadata["length_histogram"].text.startswith("![")
    assert "data:image/png;base64," in result.metadata["length_histogram"].text
    assert len(result.metadata["length_histogram"].text) < 40_000


def test_chinese_and_russian_spam_is_dropped(real_run: tuple) -> None:
    result, out = real_run
    hist = result.metadata["language_histogram"]
    assert hist["zh"] >= 5 and hist["ru"] >= 1  # the spam-heavy CC sample is really multilingual
    assert result.counts["records_non_utf8"] >= 5  # GBK / cp1251 pages decoded with their declared charset
    rows = {row["step"]: row for row in result.metadata["filters"].rows}
    dropped_by_language = int(re.search(r"\blanguage: (\d+)", rows["language"]["reasons"]).group(1))
    assert dropped_by_language >= hist["zh"] + hist["ru"]  # dropped by language id, not only by later filters
    from_spam = [d for d in _docs(out) if d["metadata"]["warc_file"] == SPAM_WARC]
    assert all(d["metadata"]["language"] == "en" for d in from_spam)
    assert not any(re.search(r"\.(cn|ru)(/|$)", d["metadata"]["url"]) for d in from_spam)
    assert len(from_spam) <= 1


def test_language_filter_alone_keeps_only_english(shared_data: Path, tmp_path: Path) -> None:
    """With every quality filter off, only language id stands between the spam sample and the output."""
    off = dict(url_filter=False, gopher_repetition=False, gopher_quality=False, c4=False, fineweb=False)
    result, art = _run(tmp_path, [shared_data / "web" / SPAM_WARC], **off)
    docs = _docs(art.path)
    hist = result.metadata["language_histogram"]
    assert len(docs) == hist.get("en", 0) == result.counts["documents_kept"]
    assert result.counts["dropped_language"] == result.counts["documents_extracted"] - len(docs) >= 10
    assert all(d["metadata"]["language"] == "en" and d["metadata"]["language_score"] >= 0.65 for d in docs)

    lenient, art2 = _run(tmp_path, [shared_data / "web" / SPAM_WARC], "all", languages=["en", "zh", "ru"], **off)
    langs = {d["metadata"]["language"] for d in _docs(art2.path)}
    assert {"zh", "ru"} <= langs


def test_real_kept_text_has_no_emails_or_public_ips(real_run: tuple) -> None:
    _, out = real_run
    email = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
    for doc in _docs(out):
        for match in email.finditer(doc["text"]):
            assert match.group(0).endswith(("@example.com", "@example.org")), match.group(0)


@pytest.mark.parametrize("pii", [True, False])
def test_pii_is_redacted(tmp_path: Path, pii: bool) -> None:
    warc = _good_warc(tmp_path / "garden.warc.gz")
    result, art = _run(tmp_path, [warc], pii=pii, **FAST)
    docs = _docs(art.path)
    assert result.counts["documents_kept"] == len(docs) == 1
    text = docs[0]["text"]
    assert "harden the young plants" in text
    if pii:
        assert EMAIL not in text and PUBLIC_IP not in text
        assert "email@example.com" in text or "firstname.lastname@example.org" in text
    else:
        assert EMAIL in text and PUBLIC_IP in text


def test_same_input_gives_identical_files_and_bare_pipeline_matches(shared_data: Path, tmp_path: Path) -> None:
    web = shared_data / "web"
    files = [web / "dolma-wget-sample-0000.warc.gz", web / SPAM_WARC]
    first, art1 = _run(tmp_path, files, "one", **FAST)
    second, art2 = _run(tmp_path, files, "two", **FAST)
    assert first.counts == second.counts and first.counts["documents_kept"] > 0
    assert _hashes(art1.path) == _hashes(art2.path)
    shard = art1.path / "00000.jsonl.gz"
    assert shard.read_bytes()[4:8] == b"\x00\x00\x00\x00"  # gzip mtime 0

    # the same datatrove steps run bare (stock executor) write the same bytes
    from datatrove.executor import LocalPipelineExecutor

    bare = tmp_path / "bare"
    steps = build_pipeline(CrawlFilterConfig(**FAST), files, bare)
    with quiet_datatrove_logs():
        LocalPipelineExecutor(steps, tasks=1, workers=1, logging_dir=str(tmp_path / "logs")).run()
    assert _hashes(bare) == _hashes(art1.path)


def test_parallel_workers_match_sequential_run(shared_data: Path, tmp_path: Path) -> None:
    """tasks=2/workers=2 runs the steps in datatrove's worker processes (pickled, quiet there too)."""
    folder = tmp_path / "in"
    folder.mkdir()
    _good_warc(folder / "a-garden.warc.gz")
    shutil.copy(shared_data / "web" / "dolma-wget-sample-0000.warc.gz", folder / "b-dolma.warc.gz")
    inputs = {"warcs": artifact_from_dir("warc", folder)}
    parallel, art_p = run_stage(SPEC, tmp_path / "par", {**FAST, "executor": {"tasks": 2, "workers": 2}}, inputs)
    sequential, art_s = run_stage(SPEC, tmp_path / "seq", {**FAST, "executor": {"tasks": 2, "workers": 1}}, inputs)
    assert parallel.counts == sequential.counts and parallel.counts["warc_files"] == 2
    assert sorted(_hashes(art_p.path)) == ["00000.jsonl.gz", "00001.jsonl.gz"]
    assert _hashes(art_p.path) == _hashes(art_s.path)


def test_resiliparse_extractor(shared_data: Path, tmp_path: Path) -> None:
    files = [shared_data / "web" / "dolma-wget-sample-0000.warc.gz"]
    result, art = _run(tmp_path, files, extractor="resiliparse", **FAST)
    _assert_consistent(result.counts)
    rows = {row["step"]: row for row in result.metadata["filters"].rows}
    assert rows["extractor"]["in"] == 22
    docs = _docs(art.path)
    assert result.counts["documents_kept"] == len(docs) >= 5
    assert all(d["metadata"]["language"] == "en" for d in docs)
    assert all("<div" not in d["text"] and "<p>" not in d["text"] for d in docs)


def test_min_documents_check(tmp_path: Path) -> None:
    warc = _good_warc(tmp_path / "garden.warc.gz")
    result, _ = _run(tmp_path, [warc], **FAST)
    kept = result.counts["documents_kept"]
    assert kept == 1
    (check,) = SPEC.checks
    assert check.name == "min_documents_kept"
    assert check.check(result.counts, CrawlFilterConfig(min_documents=kept)).passed
    outcome = check.check(result.counts, CrawlFilterConfig(min_documents=kept + 1))
    assert not outcome.passed and "1 documents kept" in outcome.description


def test_filters_can_be_switched_off(tmp_path: Path) -> None:
    warc = _good_warc(tmp_path / "garden.warc.gz")
    off = dict(url_filter=False, gopher_repetition=False, gopher_quality=False, c4=False, fineweb=False, pii=False)
    result, _ = _run(tmp_path, [warc], **off)
    steps = [row["step"] for row in result.metadata["filters"].rows]
    assert steps == ["reader", "extractor", "language", "writer"]
    assert not any(k in result.counts for k in ("dropped_url", "dropped_c4", "dropped_fineweb"))
    _assert_consistent(result.counts)


def test_url_filter_runs_offline_and_other_loguru_handlers_survive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The URL filter (tldextract, bundled blocklist) and language id never touch the network; datatrove
    neither removes other loguru sinks nor spams them."""
    real_connect = socket.socket.connect

    def no_internet(sock: socket.socket, address: object) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            raise AssertionError(f"network access attempted: {address}")
        return real_connect(sock, address)

    def no_dns(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"DNS lookup attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", no_internet)
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    seen: list[str] = []
    sink = loguru_logger.add(lambda message: seen.append(message.record["name"]), level="DEBUG")
    try:
        warc = _write_warc(
            tmp_path / "mixed.warc.gz",
            [
                ("response", "https://www.pornhub.com/bread.html", _article("Bread", BREAD).encode(), "text/html"),
                ("response", "https://tomato-notes.org/t.html", _article("Tomatoes", GARDEN).encode(), "text/html"),
            ],
        )
        result, art = _run(tmp_path, [warc])  # default config: URL filter on
        loguru_logger.info("still here")
    finally:
        loguru_logger.remove(sink)  # raises ValueError if datatrove had removed our handler
    assert len(seen) == 1 and seen[0].endswith("test_crawl_filter")  # no datatrove chatter; our sink still works
    counts = result.counts
    assert counts["dropped_url"] == 1 and counts["documents_kept"] == 1
    assert [d["metadata"]["url"] for d in _docs(art.path)] == ["https://tomato-notes.org/t.html"]
    _assert_consistent(counts)


def test_config_is_validated() -> None:
    with pytest.raises(ValidationError, match="extractor"):
        CrawlFilterConfig(extractor="lynx")
    with pytest.raises(ValidationError, match="no_such_option"):
        CrawlFilterConfig(no_such_option=1)
    assert CrawlFilterConfig(languages=[" EN "]).languages == ["en"]
    for name, field in CrawlFilterConfig.model_fields.items():
        assert field.description, name


def test_bad_language_model_fails_clearly(tmp_path: Path) -> None:
    bogus = tmp_path / "lid.bin"
    bogus.write_bytes(b"not a model")
    warc = _good_warc(tmp_path / "garden.warc.gz")
    with pytest.raises(ValueError, match="not a fastText model"):
        _run(tmp_path, [warc], language_model=str(bogus), **FAST)
    assert bundled_lid_model().is_file()


def test_registered_as_plugin_and_input_dir(tmp_path: Path) -> None:
    assert crawl_filter.gristmill_register_stages() == [SPEC]
    assert SPEC.inputs == {"warcs": Input("warc")} and SPEC.output == "documents" and SPEC.group == "data"
    folder = tmp_path / "crawl"
    (folder / "sub").mkdir(parents=True)
    _good_warc(folder / "sub" / "garden.warc.gz")
    shutil.copy(folder / "sub" / "garden.warc.gz", folder / "garden.warc")  # uncompressed name, gz content
    (folder / "notes.txt").write_text("not a warc")
    files = warc_files(artifact_from_dir("warc", folder))
    assert [p.name for p in files] == ["garden.warc", "garden.warc.gz"]
    with pytest.raises(ValueError, match="no \\*.warc"):
        run_stage(SPEC, tmp_path / "out", FAST, {"warcs": artifact_from_dir("warc", tmp_path / "crawl" / "sub2")})
