"""gristmill.lib.plots helpers: a real PNG in a data URI, byte-identical across calls."""

import base64
import re

from gristmill import Markdown
from gristmill.lib.plots import bar_chart, histogram

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png(markdown: Markdown, alt: str) -> bytes:
    match = re.fullmatch(r"!\[(.*)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", markdown.text)
    assert match is not None, markdown.text[:80]
    assert match.group(1) == alt
    return base64.b64decode(match.group(2), validate=True)


def test_bar_chart_is_a_deterministic_png() -> None:
    args = (["good", "spam", "non_english"], [12, 3, 5], "pages per category", "pages")
    first, second = bar_chart(*args), bar_chart(*args)
    assert isinstance(first, Markdown)
    assert _png(first, "pages per category").startswith(PNG_SIGNATURE)
    assert first.text == second.text
    assert bar_chart(["good", "spam", "non_english"], [12, 4, 5], "pages per category", "pages").text != first.text


def test_histogram_is_a_deterministic_png() -> None:
    values = [(i * 37) % 101 + 0.5 for i in range(200)]
    first, second = histogram(values, "document lengths", "words"), histogram(values, "document lengths", "words")
    assert _png(first, "document lengths").startswith(PNG_SIGNATURE)
    assert first.text == second.text
    ints = histogram([1, 2, 2, 3, 3, 3, 9], "token lengths", "bytes", bins=30)  # one bar per integer
    assert _png(ints, "token lengths").startswith(PNG_SIGNATURE)
    assert histogram(values, "document lengths", "words", bins=5).text != first.text


def test_empty_input_is_a_note_not_a_plot() -> None:
    assert "data:image" not in bar_chart([], [], "nothing", "n").text
    assert "data:image" not in histogram([], "nothing", "n").text
