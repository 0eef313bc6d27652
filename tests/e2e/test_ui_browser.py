"""`gristmill ui` with the daemon, as a user meets it: the asset pages in a real headless Chromium, and a run
launched through GraphQL that goes through the daemon's run queue and lands in the store."""

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.pipelines.test_definitions import DEMO_GRAPH
from tests.support.dagster_ui import UI, start_ui, stop_ui

pytestmark = pytest.mark.browser

LOCATION = "gristmill_pipelines.definitions"
REPOSITORY = "__repository__"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
NUX_TITLE = "Join the Dagster community"  # Dagster's first-visit dialog, shown on 127.0.0.1/localhost origins only

LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on Error { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""
RUN_STATUS = """
query Run($id: ID!) {
  runOrError(runId: $id) { __typename ... on Run { status } ... on Error { message } }
}"""
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UI]:
    """`gristmill ui` with the daemon (not read-only) on a free loopback port and a fresh store."""
    server = start_ui(tmp_path_factory.mktemp("ui"))
    try:
        yield server
    finally:
        stop_ui(server)


def _launch_params(*asset: str) -> dict[str, Any]:
    return {
        "selector": {
            "repositoryLocationName": LOCATION,
            "repositoryName": REPOSITORY,
            "jobName": "demo_job",
            "assetSelection": [{"path": list(asset)}],
        },
        "runConfigData": {},
    }


def _asset_keys(ui: UI) -> set[str]:
    nodes = ui.graphql("{ assetNodes { assetKey { path } } }")["assetNodes"]
    return {"/".join(n["assetKey"]["path"]) for n in nodes}


def _launch_browser(playwright: Any) -> Any:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).is_file():
        pytest.skip("no Chromium (Debian package chromium) on this machine")
    return playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)


def _screenshot(page: Any, path: Path) -> None:
    page.screenshot(path=str(path))
    assert path.stat().st_size > 20_000, f"{path} is only {path.stat().st_size} bytes"  # a blank page is ~5 kB
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_read_only_ui_refuses_to_launch(tmp_path: Path) -> None:
    """With --read-only (webserver alone, no daemon) the same launch is refused, and nothing reaches the store."""
    server = start_ui(tmp_path, "--read-only")
    try:
        assert _asset_keys(server) == set(DEMO_GRAPH)
        versions = server.graphql('{ assetNodes(assetKeys: [{path: ["crawl"]}]) { opVersion } }')["assetNodes"]
        assert versions[0]["opVersion"].startswith("crawl_filter@1:")
        assert (server.store / "dagster_home" / "workspace.yaml").is_file()
        refused = server.graphql(LAUNCH_RUN, {"params": _launch_params("tasks")})["launchRun"]
        assert refused == {"__typename": "UnauthorizedError", "message": "Authorization failed"}
        runs = server.graphql("{ runsOrError { ... on Runs { results { runId } } } }")["runsOrError"]["results"]
        assert runs == []
        assert not (server.store / "tasks").exists()
    finally:
        stop_ui(server)


def test_asset_pages_render_every_demo_asset_in_chromium(ui: UI, tmp_path: Path) -> None:
    """The Catalog lists every demo asset and the lineage graph draws them all, once the first-visit dialog is
    dismissed; GraphQL agrees on the asset keys; the sensors defined RUNNING are running."""
    assert _asset_keys(ui) == set(DEMO_GRAPH)
    sensors = ui.graphql(
        "query($r: RepositorySelector!) { sensorsOrError(repositorySelector: $r) { __typename "
        "... on Sensors { results { name sensorState { status } } } ... on Error { message } } }",
        {"r": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}},
    )["sensorsOrError"]
    assert sensors["__typename"] == "Sensors", sensors
    status = {s["name"]: s["sensorState"]["status"] for s in sensors["results"]}
    # automation runs by default; the rounds sensor waits to be turned on (the demo has no raw sources to observe)
    assert status == {"demo_automation": "RUNNING", "demo_round_on_new_data": "STOPPED"}, status
    nux_expected = ui.graphql("{ shouldShowNux }")["shouldShowNux"]

    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
    names = sorted(DEMO_GRAPH)
    with sync_api.sync_playwright() as pw:
        browser = _launch_browser(pw)
        try:
            # Tall enough that the virtualized asset table renders all 21 rows at once.
            context = browser.new_context(viewport={"width": 1800, "height": 2200})
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{ui.url}/assets")
            page.locator('a[href="/assets/tasks"]').first.wait_for()
            dialog = page.get_by_text(NUX_TITLE)
            if nux_expected:  # Dagster opens it ~1 s after load; Skip stores `communityNux` and calls setNuxSeen
                dialog.wait_for(timeout=30_000)
                _screenshot(page, tmp_path / "first_visit_dialog.png")
                with page.expect_response(lambda r: "SetNuxSeen" in (r.request.post_data or "")) as seen:
                    page.get_by_role("button", name="Skip").click()
                assert seen.value.ok
                dialog.wait_for(state="hidden")
                assert page.evaluate("localStorage.getItem('communityNux')") is not None
                assert ui.graphql("{ shouldShowNux }")["shouldShowNux"] is False
                assert (ui.store / "dagster_home" / ".nux" / "nux.yaml").is_file()
            else:  # `nux: {enabled: false}` in dagster.yaml, or seen before
                page.wait_for_timeout(2_000)
                assert dialog.count() == 0
            for name in names:
                page.locator(f'a[href="/assets/{name}"]').first.wait_for()
            listed = page.evaluate(
                "[...document.querySelectorAll('a[href^=\"/assets/\"]')].map(a => a.getAttribute('href').slice(8))"
            )
            assert set(names) <= set(listed), sorted(set(names) - set(listed))
            assert NUX_TITLE not in page.inner_text("body")
            assets_png = tmp_path / "ui_assets.png"
            page.set_viewport_size({"width": 1800, "height": 1500})
            _screenshot(page, assets_png)

            # Global lineage: the groups start collapsed; Alt+E is the graph's "Expand all groups" shortcut (its
            # state is kept in localStorage). Reload with the navigation and the asset tree hidden so that the
            # expanded graph is laid out to fit the screenshot.
            page.set_viewport_size({"width": 2000, "height": 1100})
            page.goto(f"{ui.url}/asset-groups")
            page.get_by_text("Global asset lineage").first.wait_for()
            for group in ("data", "training", "evaluation"):
                page.get_by_text(group, exact=True).first.wait_for()
            page.wait_for_timeout(1_000)
            page.keyboard.press("Alt+e")
            for name in names:
                page.get_by_text(name, exact=True).first.wait_for()
            page.get_by_text("Hide navigation").click()
            page.reload()
            jump = page.get_by_placeholder("Jump to…")
            jump.wait_for()
            jump.locator("xpath=following::button[1]").click()  # the asset tree's hide toggle
            jump.wait_for(state="hidden")
            for name in names:
                page.get_by_text(name, exact=True).first.wait_for()
            page.wait_for_timeout(2_000)  # let the layout settle before the screenshot
            graph_png = tmp_path / "ui_graph.png"
            _screenshot(page, graph_png)
            lines = set(page.inner_text("body").splitlines())
            assert set(names) <= lines, sorted(set(names) - lines)
            assert NUX_TITLE not in lines
        finally:
            browser.close()
    print(f"screenshots: {assets_png}, {graph_png}")


def test_run_launched_through_graphql_lands_in_the_store(ui: UI) -> None:
    """`launchRun` for demo_job with only `tasks` (no inputs): queued, dequeued by the daemon, SUCCESS, and the
    artifact is the store's latest `tasks`, the same one the materialization event names."""
    started = time.monotonic()
    launched = ui.graphql(LAUNCH_RUN, {"params": _launch_params("tasks")})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    deadline = started + 240
    while True:
        run = ui.graphql(RUN_STATUS, {"id": run_id})["runOrError"]
        assert run["__typename"] == "Run", run
        if run["status"] in TERMINAL:
            break
        assert time.monotonic() < deadline, f"run {run_id} still {run['status']} after 240 s:\n{ui.tail()}"
        time.sleep(1)
    print(f"launch → {run['status']} in {time.monotonic() - started:.1f} s (run {run_id})")
    assert run["status"] == "SUCCESS", ui.tail()
    latest = (ui.store / "demo" / "tasks" / "_" / "latest").read_text().strip()
    assert (ui.store / "demo" / "tasks" / "_" / latest / "manifest.json").is_file()
    event = ui.graphql(
        '{ assetOrError(assetKey: {path: ["tasks"]}) { ... on Asset { assetMaterializations(limit: 1) { runId '
        "metadataEntries { label ... on TextMetadataEntry { text } } } } } }"
    )["assetOrError"]["assetMaterializations"][0]
    assert event["runId"] == run_id
    metadata = {e["label"]: e.get("text") for e in event["metadataEntries"]}
    assert metadata["gristmill/artifact_id"] == latest, metadata
