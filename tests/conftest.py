"""Test-wide settings: never touch the network, locate ../shared/data."""

import os
from pathlib import Path

import pytest

for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY", "TRANSFORMERS_OFFLINE"):
    os.environ[_var] = "1"
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GRISTMILL_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real Common Crawl WARCs, texts…); skips the test when absent."""
    if not (SHARED_DATA / "MANIFEST.md").is_file():
        pytest.skip(f"real data not found at {SHARED_DATA} (set GRISTMILL_SHARED_DATA)")
    return SHARED_DATA


def write_plugin_dist(site: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str]) -> Path:
    """Make ``site`` hold an installed-looking distribution: modules + dist-info with entry points.

    Put ``site`` on ``sys.path`` (or ``PYTHONPATH``) and ``importlib.metadata`` finds its
    ``gristmill`` entry points exactly as for a pip-installed plugin.
    """
    site.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (site / f"{name}.py").write_text(source, encoding="utf-8")
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n", encoding="utf-8")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[gristmill]\n{lines}\n", encoding="utf-8")
    return site


def write_toy_site(site: Path) -> Path:
    """A site dir whose entry point ``toy`` registers the toy stages of tests/support."""
    return write_plugin_dist(
        site,
        "gristmill_toy",
        {"toy": "gm_toy_plugin"},
        {
            "gm_toy_plugin": "from tests.support.toy_stages import *  # noqa\n"
            "from tests.support.toy_stages import gristmill_register_stages  # noqa\n"
        },
    )


@pytest.fixture
def toy_plugin_site(tmp_path: Path) -> Path:
    """A site dir whose entry point ``toy`` registers the toy stages of tests/support."""
    return write_toy_site(tmp_path / "site")
