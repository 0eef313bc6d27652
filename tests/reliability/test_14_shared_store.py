"""Case 14: two pipelines on one store never see each other's artifacts.

An artifact lives in ``<store>/<pipeline>/<instance>/<partition or _>/<id>/``: pipeline A's ``tokenizer`` reads A's
``dedup`` even after pipeline B (with its own ``dedup``) ran on the same store — through ``gristmill run`` and through
one Dagster ``Definitions`` holding both pipelines. A store in the layout before pipelines had their own folder
(``<store>/<instance>/…``) is refused with one line until ``gristmill store migrate`` moves it under a pipeline.
"""

import json
import shutil
from pathlib import Path

import dagster as dg
import pytest

from gristmill.dagster.definitions import build_definitions
from gristmill.engine.store import ArtifactStore, StoreError
from gristmill.pipeline.config import validate_pipeline
from tests.reliability.test_04_killed_dagster_run import gristmill
from tests.support import toy_registry


def stages(n_words: int) -> dict:
    """``words`` (``n_words`` documents) → ``dedup`` → ``tokenizer`` (both toy_upper: they count what they read)."""
    return {
        "words": {"stage": "toy_words", "config": {"words": [f"w{i}" for i in range(n_words)]}},
        "dedup": {"stage": "toy_upper", "inputs": {"documents": "words"}},
        "tokenizer": {"stage": "toy_upper", "inputs": {"documents": "dedup"}},
    }


def write_pipeline(path: Path, name: str, n_words: int) -> Path:
    path.write_text(json.dumps({"name": name, "retry_delay_s": 0, "stages": stages(n_words)}))  # JSON is YAML
    return path


def summary(out: str, asset: str) -> str:
    """The summary table's line for ``asset``."""
    return next(line for line in out.splitlines() if line.startswith(f"{asset} "))


def test_two_pipelines_on_one_store_through_the_cli(tmp_path, toy_plugin_site_module):
    write_pipeline(tmp_path / "a.yaml", "team_a", 300)
    write_pipeline(tmp_path / "b.yaml", "team_b", 39)

    def run(*args: str):
        proc = gristmill(["run", *args, "--store", "st"], toy_plugin_site_module, tmp_path)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        return proc.stdout

    run("a.yaml", "--select", "+dedup")
    assert "documents_out=39" in summary(run("b.yaml"), "tokenizer")
    out = run("a.yaml", "--select", "tokenizer")
    assert "documents_in=300" in summary(out, "tokenizer"), out  # A's dedup, not B's 39 documents

    store = tmp_path / "st"
    for team, n in (("team_a", 300), ("team_b", 39)):
        slot = store / team / "tokenizer" / "_"
        manifest = json.loads((slot / (slot / "latest").read_text().strip() / "manifest.json").read_text())
        dedup_id = (store / team / "dedup" / "_" / "latest").read_text().strip()
        assert manifest["pipeline"] == team and manifest["counts"]["documents_in"] == n
        assert manifest["inputs"]["documents"]["id"] == dedup_id  # the lineage names its own pipeline's dedup
    verify = gristmill(["store", "verify", "--store", "st"], toy_plugin_site_module, tmp_path)
    assert verify.returncode == 0 and "6 artifacts checked" in verify.stdout, verify.stdout + verify.stderr


def test_two_pipelines_in_one_dagster_definitions(tmp_path):
    reg = toy_registry()
    team_a, team_b = (
        validate_pipeline({"name": name, "stages": stages(n)}, f"{name}.yaml", reg, store=tmp_path / "st")
        for name, n in (("team_a", 300), ("team_b", 39))
    )
    assets = list(build_definitions([team_a, team_b]).assets)

    def materialize(*keys: list[str]) -> dict[str, dg.AssetMaterialization]:
        result = dg.materialize(assets, instance=instance, selection=[dg.AssetKey(k) for k in keys])
        assert result.success
        return {e.asset_key.to_user_string(): e.materialization for e in result.get_asset_materialization_events()}

    with dg.DagsterInstance.ephemeral() as instance:
        materialize(["team_a", "words"], ["team_a", "dedup"])
        materialize(["team_b", "words"], ["team_b", "dedup"])
        tokenizer = materialize(["team_a", "tokenizer"])["team_a/tokenizer"]
    assert tokenizer.metadata["documents_in"].value == 300
    assert {p.name for p in (tmp_path / "st").iterdir() if not p.name.startswith(".")} == {"team_a", "team_b"}
    a_dedup = ArtifactStore(tmp_path / "st", pipeline="team_a").latest("dedup")
    b_dedup = ArtifactStore(tmp_path / "st", pipeline="team_b").latest("dedup")
    assert a_dedup.path.parent.parent.parent.name == "team_a" and b_dedup.path.parent.parent.parent.name == "team_b"
    assert a_dedup.id != b_dedup.id


def test_a_store_in_the_old_layout_is_refused_until_migrated(tmp_path, toy_plugin_site_module):
    write_pipeline(tmp_path / "a.yaml", "team_a", 5)
    first = gristmill(["run", "a.yaml", "--store", "st"], toy_plugin_site_module, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    store = tmp_path / "st"
    for asset in (store / "team_a").iterdir():  # what the store looked like before pipelines had their own folder
        shutil.move(asset, store / asset.name)
    (store / "team_a").rmdir()
    for marker in store.glob(".gristmill-store*"):
        marker.unlink()

    refused = gristmill(["run", "a.yaml", "--store", "st"], toy_plugin_site_module, tmp_path)
    assert refused.returncode != 0
    errors = [line for line in refused.stderr.splitlines() if line.startswith("gristmill: error:")]
    assert len(errors) == 1 and "store migrate" in errors[0] and "Traceback" not in refused.stderr, refused.stderr
    assert not (store / "team_a").exists()  # nothing ran

    migrate = gristmill(["store", "migrate", "--store", "st", "--pipeline", "team_a"], toy_plugin_site_module, tmp_path)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    again = gristmill(["run", "a.yaml", "--store", "st"], toy_plugin_site_module, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert all("cache hit" in summary(again.stdout, a) for a in ("words", "dedup", "tokenizer")), again.stdout


@pytest.mark.parametrize("name", ["../escape", "dagster_home", ".tmp", "x" * 300])
def test_a_pipeline_name_that_is_not_a_folder_name_is_refused(tmp_path, name):
    with pytest.raises(StoreError, match="pipeline name"):
        ArtifactStore(tmp_path / "st", pipeline=name)
