"""The exact-answer verifier on the demo format and on real GSM8K answers."""

import json

import pytest

from gristmill.lib.verify import extract_answer, is_correct, normalize_number


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("3 + 4 = 7. The answer is 7.", "7"),
        ("The answer is 9. Wait, no. The answer is 10.", "10"),  # the last marker counts
        ("#### 1,234", "1234"),
        ("the answer is $12.00", "12"),
        ("The answer is -3.50", "-3.5"),
        ("I think it is 7.", None),  # no marker: no answer
        ("The answer is seven.", None),
    ],
)
def test_extract_answer(text, want):
    assert extract_answer(text) == want


def test_is_correct_is_exact():
    assert is_correct("so 6 × 7 = 42. The answer is 42.", 42)
    assert is_correct("The answer is 42.", "42.0")
    assert not is_correct("The answer is 43.", "42")
    assert not is_correct("42", "42")  # the number without the final-answer marker does not count
    assert normalize_number("nan") is None and normalize_number("abc") is None


@pytest.mark.shared_data
def test_real_gsm8k_answers_verify(shared_data):
    """Every GSM8K reference solution (`#### N` format) verifies against its own final number."""
    lines = (shared_data / "sft" / "gsm8k_train_first2000.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == 2000
    for row in rows:
        final = row["answer"].rsplit("####", 1)[1]
        assert is_correct(row["answer"], final), row["answer"][-80:]
        assert not is_correct(row["answer"], float(final.replace(",", "")) + 1)
