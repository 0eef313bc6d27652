"""Writing planned pages as gzipped WARC files: a ``warcinfo`` record, ``robots.txt``, then a ``request`` +
``response`` pair per page, with ``WARC-Gristmill-*`` ground-truth headers and seeded dates and record ids."""

import random
import uuid
from datetime import datetime, timedelta
from email.utils import format_datetime
from io import BytesIO
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from gristmill_plugins.demo_data.pages import Page

FILE_PATTERN = "synthetic-crawl-{index:05d}.warc.gz"
USER_AGENT = "gristmill-synthetic-crawler/1.0 (+https://gristmill.example/crawler)"


def _warc_date(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _record_id(rng: random.Random) -> str:
    return f"<urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}>"


def _write_file(
    path: Path, pages: list[Page], rng: random.Random, clock: datetime, index: int, total: int, seed: int
) -> tuple[int, datetime]:
    """Write one .warc.gz; returns (records written, clock after the last record)."""
    records = 0
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        info = {
            "software": "gristmill synthetic_crawl/1 (warcio)",
            "format": "WARC File Format 1.0",
            "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.0/",
            "isPartOf": f"gristmill-synthetic-crawl-seed-{seed}",
            "description": f"Synthetic crawl for tests and demos, file {index + 1} of {total}",
            "robots": "classic",
            "operator": "gristmill demo",
        }
        warcinfo = writer.create_warcinfo_record(path.name, info)
        info_id = _record_id(rng)
        warcinfo.rec_headers.replace_header("WARC-Record-ID", info_id)
        warcinfo.rec_headers.replace_header("WARC-Date", _warc_date(clock))
        writer.write_record(warcinfo)
        records += 1
        robots_host = pages[0].host if pages else "gristmill.example"
        robots = b"User-agent: *\nDisallow: /cart/\nDisallow: /search\n"
        clock += timedelta(seconds=rng.randint(1, 9))
        records += _write_pair(
            writer, f"https://{robots_host}/robots.txt", robots, "text/plain", rng, clock, info_id, {}
        )
        for page in pages:
            clock += timedelta(seconds=rng.randint(1, 20))
            extra = {"WARC-Gristmill-Category": page.category, "WARC-Gristmill-Language": page.lang}
            if page.category in ("good", "pii", "exact_dup", "near_dup"):
                extra["WARC-Gristmill-Topic"] = page.sub
            if page.original is not None:
                extra["WARC-Gristmill-Dup-Of"] = page.original.url
            if page.pii:
                extra["WARC-Gristmill-PII"] = " ".join(page.pii)
            ctype = f"text/html; charset={page.charset}"
            records += _write_pair(writer, page.url, page.body, ctype, rng, clock, info_id, extra)
    return records, clock


def _write_pair(
    writer: WARCWriter,
    url: str,
    body: bytes,
    ctype: str,
    rng: random.Random,
    when: datetime,
    info_id: str,
    extra: dict[str, str],
) -> int:
    """A request record followed by its response record."""
    host, _, path = url[len("https://") :].partition("/")
    resp_id, req_id = _record_id(rng), _record_id(rng)
    http = StatusAndHeaders(
        "200 OK",
        [
            ("Date", format_datetime(when, usegmt=True)),
            ("Server", rng.choice(("nginx", "Apache", "cloudflare", "LiteSpeed"))),
            ("Content-Type", ctype),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
        ],
        protocol="HTTP/1.1",
    )
    payload_type = ctype.split(";")[0]
    resp = writer.create_warc_record(
        url,
        "response",
        payload=BytesIO(body),
        length=len(body),
        http_headers=http,
        warc_headers_dict={
            "WARC-Record-ID": resp_id,
            "WARC-Date": _warc_date(when),
            "WARC-Warcinfo-ID": info_id,
            "WARC-Identified-Payload-Type": payload_type,
            **extra,
        },
    )
    req_http = StatusAndHeaders(
        f"GET /{path} HTTP/1.1",
        [
            ("Host", host),
            ("User-Agent", USER_AGENT),
            ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
            ("Accept-Language", "en-US,en;q=0.5"),
        ],
        is_http_request=True,
    )
    req = writer.create_warc_record(
        url,
        "request",
        http_headers=req_http,
        warc_headers_dict={
            "WARC-Record-ID": req_id,
            "WARC-Date": _warc_date(when),
            "WARC-Warcinfo-ID": info_id,
            "WARC-Concurrent-To": resp_id,
        },
    )
    writer.write_record(req)
    writer.write_record(resp)
    return 2
