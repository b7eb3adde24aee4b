"""The Airflow UI of ``make airflow`` in a real browser: Playwright drives the system Chromium.

As an operator would: log in, find the view's DAG, fill ``start`` and ``end`` in
the trigger form, trigger, wait for the run. A successful run's days are in the
feature table (read with Spark and Delta, equal to ``kiln backfill``); a run that
fails its expectations points its ``publish`` log at the HTML report, and the
report shows the failed expectation in the browser.

The server is the session's ``airflow standalone`` (tests/orchestration/standalone.py),
shared with the REST tests.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import date, datetime, timezone
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurekiln.samples import PURCHASES_SCHEMA
from tests.orchestration.conftest import VIEW
from tests.orchestration.standalone import DAG_ID, PASSWORD, RUN_SECONDS, USER, Airflow, wait_for
from tests.quality.browser import playwright_chromium

pytestmark = pytest.mark.slow

UI_DAYS = ("2025-01-11", "2025-01-12")  # inside the days of the session's `kiln backfill` reference
BAD_DAY = "2025-03-01"  # after every day the other tests compute: its bad event changes none of them
BAD_USER = 990_001
UI_SECONDS = 60


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with playwright_chromium() as chromium:
        yield chromium


@pytest.fixture
def page(browser, airflow_server: Airflow) -> Iterator:
    """A fresh browser tab, logged in to the Airflow UI with the simple auth manager's user."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(UI_SECONDS * 1000)
    tab.goto(airflow_server.base + "/")
    tab.wait_for_url(re.compile(r"/auth/login"))
    tab.get_by_label("Username").fill(USER)
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url(airflow_server.base + "/")
    yield tab
    context.close()


def trigger_from_the_form(page, start: str, end: str) -> str:  # noqa: ANN001 - a Playwright Page
    """Find the view's DAG, fill ``start`` and ``end`` in the trigger form, trigger; the new run's id."""
    page.get_by_role("link", name="Dags").first.click()
    page.get_by_placeholder("Search Dags").fill(DAG_ID)
    page.get_by_role("link", name=DAG_ID, exact=True).click()
    page.get_by_role("heading", name="Latest Dag Version").wait_for()  # the DAG's page, not the list any more
    page.get_by_role("button", name="Trigger Dag").click()
    form = page.get_by_role("dialog")
    form.locator("[name=element_start]").fill(start)
    form.locator("[name=element_end]").fill(end)
    form.get_by_role("button", name="Trigger").click()
    page.wait_for_url(re.compile(rf"/dags/{DAG_ID}/runs/[^/?]+(\?.*)?$"))
    return unquote(urlparse(page.url).path.rsplit("/runs/", 1)[1])


# Scroll every scrollable element of the page to its end (step None) or up by `step` pixels; whether any moved.
# The UI renders long task logs as a virtual list: a line exists in the DOM only near the scroll position.
_SCROLL = """(step) => {
  let moved = false;
  for (const e of document.querySelectorAll('*')) {
    const overflow = getComputedStyle(e).overflowY;
    if ((overflow === 'auto' || overflow === 'scroll') && e.scrollHeight > e.clientHeight + 1) {
      const before = e.scrollTop;
      e.scrollTop = step === null ? e.scrollHeight : Math.max(0, e.scrollTop - step);
      moved = moved || e.scrollTop !== before;
    }
  }
  return moved;
}"""


def log_line(page, pattern: re.Pattern[str]) -> str:  # noqa: ANN001 - a Playwright Page
    """The text of the task-log line that matches ``pattern``: from the end of the log upwards."""
    deadline = time.monotonic() + UI_SECONDS
    while time.monotonic() < deadline:
        page.evaluate(_SCROLL, None)
        while True:
            line = page.get_by_text(pattern)
            if line.count():
                return line.first.inner_text()
            if not page.evaluate(_SCROLL, 300):
                break
            page.wait_for_timeout(50)
        page.wait_for_timeout(1000)  # the log may still be loading
    raise AssertionError(f"no line of the log in the UI matches {pattern.pattern}")


def finished(server: Airflow, run_id: str) -> dict:
    return wait_for(f"run {run_id}", lambda: server.run_state(run_id), RUN_SECONDS, server, every=5)


def test_trigger_form_backfills_the_days(page, airflow_server, airflow_warehouse, cli_reference, table_rows) -> None:
    run_id = trigger_from_the_form(page, *UI_DAYS)
    _, run = airflow_server.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}")
    assert (run["conf"]["start"], run["conf"]["end"]) == UI_DAYS
    assert finished(airflow_server, run_id)["state"] == "success"
    page.reload()
    page.get_by_text("Success").first.wait_for()
    ours = table_rows(str(airflow_warehouse / "features" / VIEW), UI_DAYS)
    assert sorted({d.isoformat() for d in ours["ds"]}) == list(UI_DAYS)
    assert ours.equals(table_rows(cli_reference, UI_DAYS))


def add_bad_purchase(warehouse: Path) -> None:
    """A completed purchase with a negative amount on BAD_DAY, beside the sample file."""
    when = datetime.fromisoformat(BAD_DAY).replace(hour=12, tzinfo=timezone.utc)
    row = {"purchase_id": "bad-1", "user_id": BAD_USER, "merchant_id": 101, "country": "US", "category": "books",
           "amount": -25.0, "status": "completed", "event_ts": when}
    table = pa.Table.from_pylist([row], schema=PURCHASES_SCHEMA)
    pq.write_table(table, warehouse / "raw" / "purchases" / "part-99999-bad.parquet")


def run_failing_day(server: Airflow, warehouse: Path) -> str:
    """Add the bad purchase on BAD_DAY, run BAD_DAY through the REST API; the run's id, once it failed."""
    add_bad_purchase(warehouse)
    # Other tests' runs have tiled BAD_DAY (it is in their windows) and may have materialized it:
    # recompute it from the changed source (force, retile).
    status, body = server.request("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {
        "logical_date": None, "conf": {"start": BAD_DAY, "end": BAD_DAY, "force": True, "retile": True}})
    assert status == 200, body
    run_id = body["dag_run_id"]
    assert finished(server, run_id)["state"] == "failed"
    return run_id


def test_failed_run_report_shows_the_failed_expectation(page, airflow_server, airflow_warehouse, failed_run,
                                                        table_rows) -> None:
    run_id = failed_run

    # The publish task's log, in the UI, names the run's report.
    page.goto(f"{airflow_server.base}/dags/{DAG_ID}/runs/{quote(run_id, safe='')}/tasks/publish")
    report = Path(re.search(r"report:? (\S+\.html)", log_line(page, re.compile(r"report:? \S+\.html"))).group(1))
    assert report.parent == airflow_warehouse / "_reports" / VIEW

    page.goto(report.as_uri())
    assert page.locator("#status").inner_text() == "FAILED"
    assert "expect_column_values_to_be_between(spend_30d)" in page.locator("#failed").inner_text()
    row = page.locator("tr.fail", has_text="spend_30d").first
    assert row.is_visible()
    cells = [c.strip() for c in row.locator("td").all_inner_texts()]
    assert cells[1:4] == ["spend_30d", "error", "FAIL"] and "-25.0" in cells[7]
    assert row.locator("td").first.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(255, 235, 233)"

    published = table_rows(str(airflow_warehouse / "features" / VIEW))
    assert date.fromisoformat(BAD_DAY) not in set(published["ds"])  # the gate published nothing
