"""Verifiers for tasks with one exact numeric answer (the demo's arithmetic problems, GSM8K).

A completion's answer is the number after the *last* ``The answer is`` (the demo format) or ``####`` (GSM8K);
commas, a trailing ``.0`` and a leading ``$`` are ignored. No final-answer marker means no answer: a completion that
merely mentions the right number somewhere does not count as correct.
"""

import re

_MARKERS = re.compile(r"(?:The answer is|####)\s*\$?\s*(-?[\d,]*\d(?:\.\d+)?)", re.IGNORECASE)


def normalize_number(text: str) -> str | None:
    """``"1,234"`` → ``"1234"``, ``"12.0"`` → ``"12"``, ``"-3.50"`` → ``"-3.5"``; ``None`` if not a number."""
    raw = text.strip().lstrip("$").replace(",", "")
    try:
        value = float(raw)
    except ValueError:
        return None
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return str(int(value)) if value == int(value) else repr(value)


def extract_answer(completion: str) -> str | None:
    """The normalized number after the last ``The answer is`` / ``####`` marker, or ``None``."""
    found = _MARKERS.findall(completion)
    return normalize_number(found[-1]) if found else None


def is_correct(completion: str, answer: str | int | float) -> bool:
    """Whether ``completion``'s final answer equals ``answer`` exactly (after normalization)."""
    got, want = extract_answer(completion), normalize_number(str(answer))
    return got is not None and got == want
