"""gristmill.lib.jsonl: the one JSONL reader and writer (plain and gzip, errors naming file and line, exact bytes)."""

import gzip

import pytest

from gristmill.errors import StageInputError
from gristmill.lib.jsonl import JsonlError, JsonlWriter, read_jsonl, write_jsonl

ROWS = [{"b": 1, "a": "é"}, {"text": "x", "n": [1, 2]}]


def test_rows_round_trip_plain_and_gzip_with_the_exact_bytes(tmp_path):
    assert write_jsonl(tmp_path / "plain.jsonl", ROWS) == 2
    assert (tmp_path / "plain.jsonl").read_bytes() == '{"b": 1, "a": "é"}\n{"text": "x", "n": [1, 2]}\n'.encode()
    write_jsonl(tmp_path / "sorted.jsonl", ROWS, sort_keys=True, compact=True)
    assert (tmp_path / "sorted.jsonl").read_text(encoding="utf-8") == '{"a":"é","b":1}\n{"n":[1,2],"text":"x"}\n'
    for name in ("a.jsonl.gz", "b.jsonl.gz"):
        with JsonlWriter(tmp_path / name, compact=True) as writer:
            writer.write_all(ROWS)
        assert writer.count == 2
    data = (tmp_path / "a.jsonl.gz").read_bytes()
    assert data == (tmp_path / "b.jsonl.gz").read_bytes()
    assert data[3] == 0 and data[4:8] == b"\0\0\0\0"  # no file name, mtime 0: equal rows, equal bytes
    assert gzip.decompress(data).decode() == '{"b":1,"a":"é"}\n{"text":"x","n":[1,2]}\n'
    assert [row for _, row in read_jsonl(tmp_path / "a.jsonl.gz")] == ROWS
    with JsonlWriter(tmp_path / "plain.jsonl", append=True) as writer:
        writer.write({"c": 3})
    assert [n for n, _ in read_jsonl(tmp_path / "plain.jsonl")] == [1, 2, 3]


class _Reworded(JsonlError):
    not_json = "not a record: {msg}"


def test_bad_lines_and_files_are_named(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n  \n[1, 2]\n{oops\n', encoding="utf-8")
    rows = read_jsonl(path)
    assert next(rows) == (1, {"a": 1})
    with pytest.raises(JsonlError, match=r"rows\.jsonl:4: expected a JSON object, got list"):
        next(rows)
    path.write_text('{"a": 1}\n{oops\n', encoding="utf-8")
    with pytest.raises(_Reworded, match=r"rows\.jsonl:2: not a record: Expecting property name"):
        list(read_jsonl(path, _Reworded))
    assert issubclass(JsonlError, StageInputError)
    truncated = tmp_path / "t.jsonl.gz"
    truncated.write_bytes(gzip.compress(b'{"a": 1}\n' * 1000)[:40])
    with pytest.raises(JsonlError, match=r"t\.jsonl\.gz: unreadable JSONL file: EOFError"):
        list(read_jsonl(truncated))
    with pytest.raises(JsonlError, match=r"absent\.jsonl: unreadable JSONL file: FileNotFoundError"):
        list(read_jsonl(tmp_path / "absent.jsonl"))


@pytest.mark.parametrize("gz", [False, True])
def test_lines_over_max_line_bytes_are_skipped_and_counted_or_refused(tmp_path, gz):
    """Lines are read in 1 MiB chunks: lines at, just over and far over the cap, with and without a final newline."""
    from gristmill.lib.jsonl import SkippedLines

    def line(n: int) -> str:  # a JSON object line of exactly n bytes
        return '{"t": "' + "x" * (n - 9) + '"}'

    cap = 3 << 20
    lines = [line(cap), line(cap + 1), '{"a": 1}', line(5 << 20), "", '{"a": 2}', line(cap + 2)]
    path = tmp_path / ("rows.jsonl.gz" if gz else "rows.jsonl")
    with (gzip.open if gz else open)(path, "wt", encoding="utf-8") as f:
        f.write("\r\n".join(lines[:3]) + "\n" + "\n".join(lines[3:]))
    skipped = SkippedLines()
    rows = [(n, len(r.get("t", ""))) for n, r in read_jsonl(path, max_line_bytes=cap + 1, skipped=skipped)]
    # "\r\n" endings: the "\r" counts toward the line (json.loads ignores it)
    assert rows == [(1, cap - 9), (3, 0), (6, 0)]
    assert skipped.count == 3 and skipped.examples[0].endswith(":2 (3,145,730 bytes)")
    assert [n for n, _ in read_jsonl(path, max_line_bytes=None)] == [1, 2, 3, 4, 6, 7]
    with pytest.raises(
        JsonlError, match=r"rows\.jsonl(\.gz)?:2: a line of 3,145,730 bytes, over the limit of 3,145,729"
    ):
        list(read_jsonl(path, max_line_bytes=cap + 1))
