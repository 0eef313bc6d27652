"""Re-runs on data change with the real daemon: `gristmill run`, then `gristmill ui`; a WARC dropped into the source
folder is observed by `<pipeline>_observe_sources` and `<pipeline>_automation` launches crawl and dedup — and only
them — which land new artifacts in the store."""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from gristmill_plugins.demo_data import SyntheticCrawlConfig, write_synthetic_crawl
from tests.support.dagster_ui import BIN, start_ui, stop_ui

pytestmark = pytest.mark.slow

PIPELINE = """
name: auto
sensor_interval_s: 5
sources:
  raw: {{kind: warc, path: "{warcs}/*.warc.gz"}}
stages:
  crawl: {{stage: crawl_filter, inputs: {{warcs: raw}}}}
  dedup: {{stage: minhash_dedup, inputs: {{documents: crawl}}}}
  tasks: {{stage: arithmetic_tasks, config: {{sft_examples: 50, prompts: 10, eval_examples: 10}}}}
"""
RUNS = "{ runsOrError { ... on Runs { results { runId status assetSelection { path } tags { key value } } } } }"


def _add_warc(root: Path, seed: int) -> None:
    scratch = root / f"scratch{seed}"
    write_synthetic_crawl(scratch, SyntheticCrawlConfig(pages=16, files=1), seed=seed)
    for path in scratch.glob("*.warc.gz"):
        shutil.move(path, root / "warcs" / f"seed{seed}-{path.name}")


def _latest(store: Path, asset: str) -> str:
    return (store / "auto" / asset / "_" / "latest").read_text().strip()


def test_new_warc_is_picked_up_by_the_daemon(tmp_path):
    (tmp_path / "warcs").mkdir()
    _add_warc(tmp_path, seed=1)
    (tmp_path / "p.yaml").write_text(PIPELINE.format(warcs=tmp_path / "warcs"))
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    first = subprocess.run(
        [str(BIN / "gristmill"), "run", "p.yaml", "--store", "st"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert first.returncode == 0, first.stderr[-3000:]
    store = tmp_path / "st"
    before = {a: _latest(store, a) for a in ("crawl", "dedup", "tasks")}

    ui = start_ui(tmp_path, "--pipeline", "p.yaml")
    try:
        _add_warc(tmp_path, seed=2)
        deadline = time.monotonic() + 300
        while _latest(store, "dedup") == before["dedup"]:
            assert time.monotonic() < deadline, f"no re-run within 300 s:\n{ui.tail()}"
            time.sleep(2)
        while True:  # the run commits dedup, then finishes
            runs = ui.graphql(RUNS)["runsOrError"]["results"]
            if runs and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs):
                break
            assert time.monotonic() < deadline, f"runs still going after 300 s: {runs}"
            time.sleep(1)
    finally:
        stop_ui(ui)
    launched = [r for r in runs if any(t["key"] == "dagster/sensor_name" for t in r["tags"])]
    assert len(runs) == 2 and len(launched) == 1, runs  # the CLI's run, then exactly one automation run
    run = launched[0]
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert run["status"] == "SUCCESS" and tags["dagster/sensor_name"] == "auto_automation", run
    assert {"/".join(a["path"]) for a in run["assetSelection"]} == {"crawl", "dedup"}
    assert _latest(store, "crawl") != before["crawl"]
    assert _latest(store, "tasks") == before["tasks"]  # the other branch was left alone
    manifest = json.loads((store / "auto" / "crawl" / "_" / _latest(store, "crawl") / "manifest.json").read_text())
    assert manifest["counts"]["html_pages"] == 32  # both WARCs were read
