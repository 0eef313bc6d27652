"""Fixtures shared with the suites the reliability cases came from."""

from pathlib import Path

import pytest

from tests.conftest import write_toy_site
from tests.core.lib.train.conftest import tokens  # noqa: F401 - a small patterned tokens artifact


@pytest.fixture(scope="module")
def toy_plugin_site_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``toy_plugin_site`` shared by a module's tests: the toy stages installed as an entry-point plugin."""
    return write_toy_site(tmp_path_factory.mktemp("toy-site") / "site")
