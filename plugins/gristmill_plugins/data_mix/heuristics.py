"""Heuristic document categories of ``data_mix``: ``multilingual``, ``code``, ``math`` or ``general``.

:func:`heuristic_category` is ``data_mix``'s last resort when a document has no category field and no classifier
input is connected: ``multilingual`` when ``metadata.language`` is not a primary language (or, without language
metadata, when the text has few English stop words), ``code`` when enough lines look like source code, ``math`` for
calculations / number-dense word problems, else ``general``.
"""

import re
from collections.abc import Mapping, Sequence
from typing import Any

_CODE_LINE = re.compile(
    r"^\s*(def |class |import |from [\w.]+ import |return\b|raise |yield |async |await |elif |except\b|try:|"
    r"#include|#define|package |public |private |protected |static |function\b|var |let |const |fn |func |"
    r"impl |struct |enum |match |case .*:|switch\s*\(|if\s*\(|for\s*\(|while\s*\(|}|@\w+|//|/\*|\*/|<\?php|"
    r"SELECT |INSERT |UPDATE |CREATE |\w+(\.\w+)*\s*(\+|-|\*|/)?=\s*\S|\w+(\.\w+)*\(.*\)\s*;?$)"
)
_CODE_END = re.compile(r"([{;]|\)\s*:|[\[(,]|\belse:|\btry:|\bfinally:)\s*$")
_CALCULATION = re.compile(r"\d[\d.,]*\s*[-+*/×÷^x]\s*\(?\$?\d[\d.,]*\)?\s*=\s*\$?-?\d")
_MATH_MARKUP = re.compile(
    r"<<[^<>\n]*=[^<>\n]*>>|\\(?:frac|sum|int|sqrt|cdot|times|le|ge|alpha|pi)\b|\$[^$\n]{1,80}=[^$\n]{1,80}\$"
)
_NUMBER = re.compile(r"(?<![\w.])[$€£]?\d+(?:[.,]\d+)*%?")
_MATH_WORDS = re.compile(
    r"\b(how many|how much|how long|how far|what is the|total|altogether|each|per|percent|sum|product|"
    r"difference|equals?|times|twice|half|average|remain(?:s|ing)?|left over|calculate|compute|solve|"
    r"equation|fraction|multipl(?:y|ied)|divid(?:e|ed)|ratio|probability|integer|prime|area|perimeter)\b",
    re.IGNORECASE,
)
_QUESTION = re.compile(
    r"\b(how (many|much|long|far|old|fast|often|tall|heavy|big)\b[^.?!]*\?|what percent(age)?\b[^.?!]*\?|"
    r"what(?: i|\'|’)s the (total|sum|difference|average|number|percentage|price|cost|value|area|ratio|"
    r"probability|final|combined|remaining)\b[^.?!]*\?|(what|how) (is|was|will be|would be) the (total|sum|"
    r"difference|average|number|percentage|price|cost|value|area|ratio|probability|final|combined|remaining)\b"
    r"[^.?!]*\?|\bcalculate the\b)",
    re.IGNORECASE,
)
_NUMBER_WORD = re.compile(
    r"\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|"
    r"hundred|thousand|half|twice|double|triple|third|quarter|dozen)\b",
    re.IGNORECASE,
)
_DIGIT = re.compile(r"\d")
_INDENTED = re.compile(r"^( {2,}|\t)\S")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_STOP_WORDS = (
    "a about after all also an and any are as at be because been but by can could did do does for from had has "
    "have he her him his how i if in into is it its just like me more my no not now of on one only or other our "
    "out over said she so some than that the their them then there these they this to up us very was we were "
    "what when which who will with would you your"
)
ENGLISH_STOP_WORDS = frozenset(_STOP_WORDS.split())


def looks_like_code(text: str) -> bool:
    """At least 3 non-blank lines, 40 % of them look like code (keywords, assignments, calls, braces, lines
    ending in ``{ ; ( [ ,`` or ``):``, or indented), and code symbols make up 1.5 % of the characters."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 3:
        return False
    codey = sum(1 for line in lines if _CODE_LINE.match(line) or _CODE_END.search(line) or _INDENTED.match(line))
    symbols = sum(text.count(c) for c in "{}[]()=;<>_#")
    return codey / len(lines) >= 0.4 and symbols / max(len(text), 1) >= 0.015


def looks_like_math(text: str) -> bool:
    """Math markup (``<<a*b=c>>``, LaTeX), two calculations (``3 + 4 = 7``), a word problem (a ``how
    many/much…?`` / ``what is the total…?`` / ``calculate the`` question, two numbers in digits or words, and
    digits ≥ 1 % of the words), or number-dense text with math words (numbers ≥ 8 % of the words, math
    words ≥ 3 %)."""
    if _MATH_MARKUP.search(text) or len(_CALCULATION.findall(text)) >= 2:
        return True
    words = len(text.split())
    if not words:
        return False
    numbers = len(_NUMBER.findall(text))
    if _QUESTION.search(text) and numbers + len(_NUMBER_WORD.findall(text)) >= 2 and numbers / words >= 0.01:
        return True
    math_words = len(_MATH_WORDS.findall(text))
    return numbers >= 3 and numbers / words >= 0.08 and math_words / words >= 0.03


def looks_english(text: str) -> bool:
    """English stop words are at least 15 % of the alphabetic words (texts of 8+ words); shorter texts:
    mostly ASCII letters."""
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) >= 8:
        return sum(w in ENGLISH_STOP_WORDS for w in words) / len(words) >= 0.15
    letters = [c for c in text if c.isalpha()]
    return not letters or sum(c.isascii() for c in letters) / len(letters) >= 0.9


def heuristic_category(
    text: str, metadata: Mapping[str, Any] | None = None, primary_languages: Sequence[str] = ("en",)
) -> str:
    """``multilingual`` | ``code`` | ``math`` | ``general`` from simple rules (see the module docstring)."""
    language = (metadata or {}).get("language")
    if isinstance(language, str) and language and language.lower() not in primary_languages:
        return "multilingual"
    if _MATH_MARKUP.search(text):
        return "math"
    if looks_like_code(text):
        return "code"
    if looks_like_math(text):
        return "math"
    if not isinstance(language, str) and not looks_english(text):
        return "multilingual"
    return "general"
