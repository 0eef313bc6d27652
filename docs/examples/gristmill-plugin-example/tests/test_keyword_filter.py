"""keyword_filter as a plain function (gristmill.testing): no Dagster, no store."""

from pathlib import Path

import pytest
from gristmill.lib.documents import DocumentWriter, iter_documents
from gristmill.testing import artifact_from_dir, run_stage
from pydantic import ValidationError

from gristmill_plugin_example import SPEC, KeywordFilterConfig

DOCS = [
    "A quiet walk along the river, with a picnic on the way back.",
    "CHEAP watches! Buy now, buy   now, limited offer.",
    "The category of this post is gardening.",
    "Poker night at the casino, and one more casino visit.",
]


def _documents(tmp_path: Path) -> dict:
    with DocumentWriter(tmp_path / "in") as writer:
        writer.write_all({"text": t, "id": f"d{i}", "metadata": {}} for i, t in enumerate(DOCS))
    return {"documents": artifact_from_dir("documents", tmp_path / "in")}


def test_lists_are_drop_reasons_and_matching_is_whole_word_and_case_folded(tmp_path):
    config = {"keywords": {"promotional": ["cheap", "buy now"], "gambling": ["casino", "poker"], "pets": ["cat"]}}
    result, out = run_stage(SPEC, tmp_path / "out", config, _documents(tmp_path))
    c = result.counts
    assert (c["documents_in"], c["documents_kept"]) == (4, 2)
    assert c["dropped_promotional"] == 1 and c["dropped_gambling"] == 1  # "category" is not the word "cat"
    kept = list(iter_documents(out))
    assert [d["id"] for d in kept] == ["d0", "d2"] and all(d["metadata"]["keyword_hits"] == 0 for d in kept)
    assert {r["reason"] for r in result.metadata["dropped_sample"].rows} == {"promotional", "gambling"}


def test_max_hits_and_keyword_files(tmp_path):
    words = tmp_path / "gambling.txt"
    words.write_text("# one entry per line\ncasino\npoker  # inline comment\n", encoding="utf-8")
    config = {"keyword_files": {"gambling": str(words)}, "max_hits": 2}
    result, out = run_stage(SPEC, tmp_path / "out", config, _documents(tmp_path))
    assert result.counts["documents_kept"] == 3  # 3 hits > 2
    assert [d["metadata"]["keyword_hits"] for d in iter_documents(out)] == [0, 0, 0]
    with pytest.raises(ValidationError, match="at least one non-empty list"):
        KeywordFilterConfig.model_validate({"keywords": {"x": ["  "]}})
