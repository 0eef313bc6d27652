from pathlib import Path

import pytest

from tests.core.lib.train.helpers import write_tokens


@pytest.fixture
def tokens(tmp_path: Path) -> Path:
    """A small patterned ``tokens`` artifact (64+ sequences of 32 ids, vocab 256)."""
    return write_tokens(tmp_path / "tokens")
