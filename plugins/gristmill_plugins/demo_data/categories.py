"""Page categories, English topics, languages, and the URL that carries a page's ground truth."""

import re
from typing import Any

CATEGORIES: dict[str, str] = {
    "good": "English articles (gardening, cooking, town history, travel, science, maths word problems)",
    "pii": "English articles whose contact section holds e-mail and public IPv4 addresses",
    "boilerplate": "navigation, menus and cookie banners with almost no prose",
    "spam": "keyword stuffing and repeated ALL-CAPS calls to action",
    "non_english": "French, German, Spanish and Russian prose",
    "short": "pages with only one or two sentences",
    "exact_dup": "byte-identical copy of a good page at another URL",
    "near_dup": "a good page with a few words or a sentence changed, at another URL",
}
TOPICS = ("gardening", "cooking", "history", "travel", "science", "math")
LANGUAGES = ("fr", "de", "es", "ru")

URL_PATTERN = re.compile(
    r"^https://(?P<host>[a-z0-9.-]+)/(?P<category>[a-z_]+)/(?P<sub>[a-z_]+)/(?P<slug>[a-z0-9-]+)"
    r"-p(?P<page>\d+)\.html(?:\?dup_of=(?P<dup_of>\d+))?$"
)


def parse_synthetic_url(url: str) -> dict[str, Any] | None:
    """Split a synthetic page URL into host, category, sub (topic/language), page and dup_of."""
    m = URL_PATTERN.match(url)
    if m is None:
        return None
    out: dict[str, Any] = m.groupdict()
    out["page"] = int(out["page"])
    out["dup_of"] = int(out["dup_of"]) if out["dup_of"] is not None else None
    return out
