"""The dashboard in real headless Chromium (Debian's, driven by Playwright): the page loads
Plotly from the server, plots render with data of real recorded sessions, comparison of
two sessions works, the Perfetto trace downloads, and a screenshot is saved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genxr.evaluation.dashboard.server import create_app
from tests.helpers.dashboard import RunningServer

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium "
                                                     "(.ci/run installs it: apt-get install -y chromium)"),
]


def plot_data(page, element: str):
    return page.evaluate("id => (document.getElementById(id).data || []).map("
                         "t => ({name: t.name, x: Array.from(t.x || []).length, y: Array.from(t.y || []).length}))",
                         element)


def test_dashboard_renders_real_sessions_compares_them_and_downloads_the_trace(sessions, tmp_path):
    from playwright.sync_api import sync_playwright

    with RunningServer(create_app(sessions)) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1500}, accept_downloads=True)
            errors, foreign = [], []
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("request", lambda request: None if request.url.startswith(url) else foreign.append(request.url))
            page.goto(url)
            page.wait_for_function("() => window.Plotly && (document.getElementById('timeline').data || []).length > 0")
            timeline = {trace["name"]: trace["x"] for trace in plot_data(page, "timeline")}
            assert {"read_tracking", "composite", "submit video", "serve world_model"} <= set(timeline)
            assert timeline["composite"] > 10, "one point per composited frame of the recorded session"
            assert page.locator("#timeline .main-svg").count() > 0, "Plotly drew the figure"
            percentiles = plot_data(page, "percentiles")
            assert [t["name"] for t in percentiles] == ["fast_world p50", "fast_world p95", "fast_world p99"]
            assert plot_data(page, "frametimes")[0]["x"] > 10
            assert page.locator("#comparison-table th").all_inner_texts() == ["measure", "fast_world"]

            page.check("#pick-1")
            page.wait_for_function("() => document.getElementById('frametimes').data.length === 2")
            assert page.locator("#comparison-table th").all_inner_texts() == ["measure", "fast_world", "slow_world"]
            rows = {row.split("\t")[0]: row.split("\t")[1:] for row in page.locator("#comparison-table tr").all_inner_texts()}
            assert rows["world model (Hz)"][0] != rows["world model (Hz)"][1]
            assert [t["name"] for t in plot_data(page, "rates")] == ["fast_world", "slow_world"]
            assert len(plot_data(page, "m2p")) == 4

            with page.expect_download() as download:
                page.locator(".trace-download").first.click()
            saved = tmp_path / "trace.json"
            download.value.save_as(saved)
            trace = json.loads(saved.read_text())
            assert any(e["ph"] == "X" and e["name"] == "composite" for e in trace["traceEvents"])

            screenshot = tmp_path / "dashboard.png"
            page.screenshot(path=str(screenshot), full_page=True)
            assert screenshot.stat().st_size > 20_000
            assert not errors, errors
            assert not foreign, f"the page fetched from elsewhere: {foreign}"
        finally:
            browser.close()
