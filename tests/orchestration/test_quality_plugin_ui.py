"""The data-quality plugin in the session's ``airflow standalone`` (plugins/ folder, as ``make airflow`` loads it).

Over REST: Airflow lists the plugin, and its routes refuse a request without
Airflow's token (401) and serve it with one. In Chromium, as a reviewer: log in,
open a run that failed its expectations, click the run's "Data quality" tab and
read the failed expectation in it; the navigation entry opens the index, which
links to that run's report.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx
import pytest

from tests.orchestration.standalone import DAG_ID
from tests.orchestration.test_airflow_ui import browser, page  # noqa: F401

pytestmark = pytest.mark.slow

PREFIX = "/featurekiln-quality"


def test_airflow_serves_the_plugin_behind_its_authentication(airflow_server) -> None:
    status, plugins = airflow_server.request("GET", "/api/v2/plugins")
    assert status == 200
    ours = next(p for p in plugins["plugins"] if p["name"] == "featurekiln_quality")
    assert {v["destination"] for v in ours["external_views"]} == {"dag_run", "nav"}

    for path in (f"{PREFIX}/", f"{PREFIX}/dags/{DAG_ID}/runs/any"):
        assert httpx.get(airflow_server.base + path, timeout=30).status_code == 401
        forged = {"Authorization": "Bearer " + ".".join(airflow_server.token.split(".")[:2]) + ".AAAA"}
        assert httpx.get(airflow_server.base + path, headers=forged, timeout=30).status_code == 403
    signed = {"Authorization": f"Bearer {airflow_server.token}"}
    index = httpx.get(airflow_server.base + f"{PREFIX}/", headers=signed, timeout=30)
    assert index.status_code == 200 and "<h1>Data quality</h1>" in index.text


def test_the_data_quality_tab_shows_the_failed_expectation(page, airflow_server, failed_run) -> None:  # noqa: F811
    run_id = failed_run
    page.goto(f"{airflow_server.base}/dags/{DAG_ID}/runs/{quote(run_id, safe='')}")
    page.get_by_test_id("main-content").get_by_role("link", name="Data quality").click()
    page.wait_for_url(re.compile(r"/plugin/featurekiln-quality-run$"))
    report = page.frame_locator("iframe[title='Data quality']")
    report.locator("h1").first.wait_for()
    frame = page.locator("iframe[title='Data quality']").element_handle().content_frame()
    assert report.locator("#run-id").count() == 1, f"{frame.url}: {frame.inner_text('body')[:2000]}"
    assert report.locator("#run-id").inner_text() == run_id
    assert report.locator("#status").inner_text() == "FAILED"
    assert "expect_column_values_to_be_between(spend_30d)" in report.locator("#failed").inner_text()
    assert report.locator("tr.fail", has_text="spend_30d").first.is_visible()

    # The navigation entry: the index, whose row for this run links to the same report.
    page.get_by_test_id("nav-sidebar").get_by_role("link", name="Data quality").click()
    # Once the index has loaded in the frame, Airflow's UI appends the frame's own path to the page's URL
    # (``/plugin/featurekiln-quality/featurekiln-quality/``), so both forms are the navigation entry's page.
    page.wait_for_url(re.compile(r"/plugin/featurekiln-quality(/featurekiln-quality/)?$"))
    index = page.frame_locator("iframe[title='Data quality']")
    row = index.locator("table[data-view=user_purchases] tr", has_text=run_id)
    assert "FAILED" in row.inner_text()
    row.get_by_role("link", name=run_id).click()
    assert index.locator("#run-id").inner_text() == run_id
