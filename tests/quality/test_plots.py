"""The report's plots: inline SVG small multiples of per-day statistics (pure), and the report in a real browser."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from featurekiln.quality.plots import BOTTOM, HEIGHT, LEFT, PLOT_DAYS, ROWS, TOP, day_flags, feature_plots, plot_svg
from featurekiln.quality.report import render_html, write_report
from featurekiln.quality.results import ChunkValidation, Outcome, RunReport
from featurekiln.quality.statistics import FeatureDayStats
from featurekiln.settings import Settings

SVG = "{http://www.w3.org/2000/svg}"
LAST = date(2025, 4, 30)
RUN = (date(2025, 4, 21), LAST)


def stats(day: date, feature: str, mean: float | None, *, rows: int = 100, nulls: int = 1) -> FeatureDayStats:
    numeric = mean is not None
    return FeatureDayStats("v", day, feature, rows, nulls, 0.0 if numeric else None, 9.0 if numeric else None, mean,
                           1.0 if numeric else None, mean, mean * 2 if numeric else None, 7, "fp")


def days_back(n: int) -> date:
    return LAST - timedelta(days=n)


def section(html: str) -> ET.Element:
    return ET.fromstring(html)


def plots(root: ET.Element, feature: str) -> dict[str, ET.Element]:
    [div] = [d for d in root.iter("div") if d.get("data-feature") == feature]
    return {svg.get("data-stat"): svg for svg in div.iter(f"{SVG}svg")}


def points(svg: ET.Element, kind: str = "polyline") -> list[list[tuple[float, float]]]:
    return [[tuple(map(float, p.split(","))) for p in line.get("points").split()] for line in svg.iter(f"{SVG}{kind}")]


def test_one_row_of_plots_per_feature_after_the_rows_in_the_order_of_the_statistics() -> None:
    found = [stats(days_back(n), f, 10.0) for n in range(30) for f in ("b_feature", "a_feature")]
    root = section(feature_plots(found, RUN, {}))
    assert [d.get("data-feature") for d in root.iter("div") if d.get("class") == "feature"] == [
        ROWS, "b_feature", "a_feature"]
    assert list(plots(root, "a_feature")) == ["null_fraction", "mean", "p50_p95", "distinct"]
    assert list(plots(root, ROWS)) == ["rows"]
    assert root.find("h2").text == f"Feature statistics, last {PLOT_DAYS} days"


def test_values_land_where_they_belong_and_missing_days_are_gaps() -> None:
    values = {n: 10.0 + n for n in range(20) if n != 7}  # day 7 has no statistics
    found = [stats(days_back(n), "f", v) for n, v in values.items()]
    svg = plots(section(feature_plots(found, RUN, {})), "f")["mean"]
    lines = points(svg)
    assert [len(line) for line in lines] == [12, 7]  # oldest first: days back 19..8, then 6..0
    flat = [p for line in lines for p in line]
    expected_days = sorted((n for n in values), reverse=True)
    step = (float(svg.get("width")) - LEFT - 6) / 19  # 20 days: from the first day with statistics
    for (x, y), n in zip(flat, expected_days, strict=True):
        assert x == pytest.approx(LEFT + (19 - n) * step, abs=0.06)
        share = (values[n] - min(values.values())) / (max(values.values()) - min(values.values()))
        assert y == pytest.approx(HEIGHT - BOTTOM - share * (HEIGHT - BOTTOM - TOP), abs=0.06)


def test_the_band_runs_from_p50_to_p95_and_counts_start_at_zero() -> None:
    found = [stats(days_back(n), "f", 10.0 + n % 3, nulls=n % 4) for n in range(10)]
    by_stat = plots(section(feature_plots(found, RUN, {})), "f")
    [band] = points(by_stat["p50_p95"], "polygon")
    upper, lower = band[:10], band[10:]
    assert all(u[1] < lo[1] for u, lo in zip(upper, reversed(lower), strict=True))  # p95 above p50 on every day
    labels = [t.text for t in by_stat["null_fraction"].iter(f"{SVG}text")]
    assert labels[1:3] == ["0.03", "0"]  # the axis: the largest null fraction, down to 0


def test_the_runs_days_are_shaded_and_flagged_days_highlighted_with_their_values() -> None:
    found = [stats(days_back(n), "f", 10.0) for n in range(60)]
    flags = {"f": {days_back(3): "fail", days_back(5): "warn", days_back(200): "fail"}}
    svg = plots(section(feature_plots(found, RUN, flags)), "f")["mean"]
    [run] = [r for r in svg.iter(f"{SVG}rect") if r.get("class") == "run-days"]
    step = (float(svg.get("width")) - LEFT - 6) / 59  # 60 days: from the first day with statistics
    assert float(run.get("width")) == pytest.approx(10 * step, abs=0.2)
    marked = {r.get("data-day"): r.get("class") for r in svg.iter(f"{SVG}rect") if r.get("data-day")}
    assert marked == {str(days_back(3)): "flag fail", str(days_back(5)): "flag warn"}  # outside the window: left out
    dots = {c.get("data-day"): (c.get("class"), c.find(f"{SVG}title").text) for c in svg.iter(f"{SVG}circle")}
    assert len(dots) == 10 and dots[str(days_back(3))] == ("point fail", f"{days_back(3)}: 10")
    assert dots[str(LAST)] == ("point", f"{LAST}: 10")


def test_the_plots_cover_90_days_from_the_first_with_statistics_in_the_definitions_order() -> None:
    def span(found: list[FeatureDayStats], order: tuple[str, ...] = ()) -> tuple[str, str, list[str]]:
        root = section(feature_plots(found, RUN, {}, order=order))
        labels = [t.text for t in plots(root, ROWS)["rows"].iter(f"{SVG}text")]
        features = [d.get("data-feature") for d in root.iter("div") if d.get("class") == "feature"]
        return labels[-2], labels[-1], features[1:]

    assert span([stats(days_back(n), "f", 1.0) for n in range(200)]) == (
        str(days_back(PLOT_DAYS - 1)), str(LAST), ["f"])
    assert span([stats(days_back(n), "f", 1.0) for n in range(30)]) == (str(days_back(29)), str(LAST), ["f"])
    # Fewer days of statistics than the run: the run's days.
    found = [stats(days_back(n), f, 1.0) for n in range(3) for f in ("a", "b", "c")]
    assert span(found, ("c", "a")) == (str(RUN[0]), str(LAST), ["c", "a", "b"])


def test_a_string_feature_has_no_numeric_plots_and_no_statistics_is_said() -> None:
    found = [stats(days_back(n), "country", None) for n in range(5)]
    by_stat = plots(section(feature_plots(found, RUN, {})), "country")
    assert [t.text for t in by_stat["mean"].iter(f"{SVG}text") if t.get("class") == "empty"] == ["no values"]
    assert not any(t.get("class") == "empty" for t in by_stat["distinct"].iter(f"{SVG}text"))
    old = [stats(days_back(PLOT_DAYS + n), "f", 1.0) for n in range(5)]  # all older than the window
    assert 'id="no-stats"' in feature_plots(old, RUN, {})


def test_a_flat_series_and_a_single_day_render() -> None:
    svg = ET.fromstring(plot_svg("mean", "mean", [LAST], {LAST: 5.0}, run=(LAST, LAST)))
    [circle] = svg.iter(f"{SVG}circle")
    assert TOP <= float(circle.get("cy")) <= HEIGHT - BOTTOM


def test_day_flags_from_monitors_and_failed_expectations() -> None:
    def monitor(stat: str, feature: str, day: str, severity: str, success: bool = False) -> Outcome:
        return Outcome(f"monitor:{stat}", feature, severity, success, "x", "y", day=day)

    expectation = Outcome("expect_column_values_to_be_between", "spend, count", "warn", False, "x", "y")
    table = Outcome("expect_table_row_count_to_be_between", "", "error", False, "x", "y")
    chunk = ChunkValidation(date(2025, 1, 1), date(2025, 1, 3), 1, None, (
        monitor("mean", "spend", "2025-01-02", "error"), monitor("rows", "count", "2025-01-03", "warn"),
        monitor("mean", "other", "2025-01-01", "warn", success=True), expectation), 0.0)
    other = ChunkValidation(date(2025, 1, 4), date(2025, 1, 4), 1, None, (table,), 0.0)
    d = date.fromisoformat
    assert day_flags([chunk, other]) == {
        "spend": {d("2025-01-01"): "warn", d("2025-01-02"): "fail", d("2025-01-03"): "warn"},
        "count": {d("2025-01-01"): "warn", d("2025-01-02"): "warn", d("2025-01-03"): "warn"},
        ROWS: {d("2025-01-03"): "warn", d("2025-01-04"): "fail"},
    }


def shifted_run() -> RunReport:
    """A run of ten days whose 2025-04-26 mean of spend_1d was flagged by a ``fail`` monitor."""
    own = [stats(RUN[0] + timedelta(days=n), f, 100.0 if (n, f) == (5, "spend_1d") else 10.0)
           for n in range(10) for f in ("spend_1d", "count_1d")]
    flagged = Outcome("monitor:mean", "spend_1d", "error", False, "100 (baseline 10: the median of 28 of the 28 days "
                      "before; change +900.0%)", "|value / baseline - 1| <= 3", source="monitors[0]", day="2025-04-26")
    chunk = ChunkValidation(RUN[0], LAST, 1000, None, (flagged,), 0.1, stats=own)
    return RunReport("v", "manual__2025-05-01", "cli", RUN[0], LAST, datetime(2025, 5, 1, tzinfo=timezone.utc),
                     status="failed", chunks=[chunk])


def test_the_report_page_holds_the_plots_inline_with_no_network_address() -> None:
    report = shifted_run()
    stored = [stats(days_back(n), "spend_1d", 10.0) for n in range(10, 80)]
    page = render_html(report, stats=[*stored, *report.chunks[0].stats])
    assert page.count("<svg ") == 1 + 2 * 4 and 'id="plots"' in page
    assert "<script" not in page and not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert re.findall(r"https?://[^\s\"'<>]+", page) == ["http://www.w3.org/2000/svg"] * 9  # the SVG namespace only
    assert render_html(report).count("<svg ") == 0  # no statistics given: no plots section


@pytest.mark.server  # a browser
def test_a_report_shows_the_plots_and_the_flagged_day_in_chromium(tmp_path: Path) -> None:
    from tests.quality.browser import playwright_chromium

    path = Path(write_report(shifted_run(), Settings(warehouse=str(tmp_path))))
    requested: list[str] = []
    with playwright_chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("request", lambda request: requested.append(request.url))
        page.goto(path.as_uri())
        assert "monitor:mean(spend_1d) on 2025-04-26" in page.locator("#failed").inner_text()
        features = page.locator("#plots div.feature")
        assert features.evaluate_all("(divs) => divs.map(d => d.dataset.feature)") == [ROWS, "spend_1d", "count_1d"]
        assert page.locator("#plots svg.plot").count() == 9
        for svg in page.locator("#plots svg.plot").all():
            box = svg.bounding_box()
            assert box is not None and box["width"] > 200 and box["height"] > 80
        flag = page.locator("div[data-feature=spend_1d] svg[data-stat=mean] rect.flag.fail[data-day='2025-04-26']")
        flag.scroll_into_view_if_needed()
        box = flag.bounding_box()
        assert box is not None and box["width"] >= 3 and box["height"] > 50
        assert page.locator("div[data-feature=count_1d] rect.flag").count() == 0
        dot = page.locator("div[data-feature=spend_1d] svg[data-stat=mean] circle.fail")
        assert dot.locator("title").text_content() == "2025-04-26: 100"
        assert page.locator("#index-link").get_attribute("href") == "../index.html"
    assert requested == [path.as_uri()]


def test_a_report_is_written_when_the_stored_statistics_cannot_be_read(tmp_path: Path, monkeypatch, caplog) -> None:
    from featurekiln.errors import KilnError
    from featurekiln.quality import report as report_module

    def unreadable(*_args: object, **_kwargs: object) -> list[FeatureDayStats]:
        raise KilnError("the stats table is unreadable")

    monkeypatch.setattr(report_module, "read_stats", unreadable)
    path = Path(write_report(shifted_run(), Settings(warehouse=str(tmp_path))))
    page = path.read_text()
    assert page.count('<svg class="plot"') == 9  # the run's own statistics
    assert "plots no stored statistics: the stats table is unreadable" in caplog.text


def test_the_log_table_names_a_monitors_day() -> None:
    from featurekiln.quality.report import outcome_table

    [flagged] = shifted_run().chunks[0].outcomes
    text = outcome_table([flagged])
    assert "spend_1d on 2025-04-26" in text and "| FAIL" in text
