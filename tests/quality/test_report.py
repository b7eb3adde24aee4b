"""Run reports: the HTML page, the JSON round trip, the text table, and the page in a real browser."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from featurekiln.errors import KilnError
from featurekiln.layout import safe_run_id
from featurekiln.quality.report import (
    outcome_table,
    read_report,
    render_html,
    reports_root,
    write_report,
)
from featurekiln.quality.results import ChunkValidation, Outcome, RunReport
from featurekiln.settings import Settings
from tests.quality.browser import dump_dom, page_text

SUITE = "expectations/user_purchases.json"
FAILING = Outcome(
    expectation="expect_column_values_to_be_between",
    column="spend_30d",
    severity="error",
    success=False,
    observed="3 of 5000 rows unexpected (0.06%)",
    expected="between 0 and +inf",
    unexpected_count=3,
    sample=[-12.5, "<script>alert(1)</script>"],
    source=SUITE,
)
WARNING = Outcome(
    expectation="expect_column_values_to_be_between",
    column="purchases_7d",
    severity="warn",
    success=False,
    observed="12 of 5000 rows unexpected (0.24%)",
    expected="between -inf and 100",
    unexpected_count=12,
    sample=[271, 150],
    source=SUITE,
)
PASSING = Outcome(
    expectation="expect_column_values_to_not_be_null",
    column="user_id",
    severity="error",
    success=True,
    observed="0 of 5000 rows unexpected (0%)",
    expected="-",
    unexpected_count=0,
)
RUN_ID = "manual__2025-02-01T10:00:00+00:00"


@pytest.fixture
def report() -> RunReport:
    """A failed run: one chunk with a passing, a warning and a failing outcome (in that order), one clean chunk."""
    clean = ChunkValidation(date(2025, 1, 1), date(2025, 1, 30), 4800, "user_purchases", (PASSING,), 1.5)
    bad = ChunkValidation(date(2025, 1, 31), date(2025, 2, 1), 5000, "user_purchases", (PASSING, WARNING, FAILING), 2.0)
    return RunReport(
        view="user_purchases",
        run_id=RUN_ID,
        trigger="backfill",
        start=date(2025, 1, 1),
        end=date(2025, 2, 1),
        started_at=datetime(2025, 2, 2, 3, 0, tzinfo=timezone.utc),
        finished_at=datetime(2025, 2, 2, 3, 1, 5, tzinfo=timezone.utc),
        status="failed",
        rows=4800,
        chunks=[clean, bad],
        published=[("2025-01-01", "2025-01-30")],
        quarantine="/wh/_quarantine/user_purchases/run",
    )


def _rows(page: str) -> list[str]:
    """The class of every outcome row, in page order."""
    return re.findall(r'<tr class="(fail|warn|pass)">', page)


def test_header_shows_what_a_reader_needs(report: RunReport) -> None:
    page = render_html(report)
    assert '<span class="badge status-failed" id="status">FAILED</span>' in page
    for text in ("user_purchases", RUN_ID, "backfill", "2025-01-01 → 2025-02-01 (32 days)", "4,800 published",
                 "1 min 5 s", "/wh/_quarantine/user_purchases/run", "4 checked: 1 failed, 1 warning"):
        assert text in page, text


def test_failures_first_then_warnings_highlighted(report: RunReport) -> None:
    page = render_html(report)
    assert _rows(page) == ["pass", "fail", "warn", "pass"]  # clean chunk, then the bad one sorted
    summary = page[page.index('id="failed"') : page.index('id="warnings"')]
    assert "expect_column_values_to_be_between(spend_30d): observed 3 of 5000 rows unexpected" in summary
    assert ".summary.warned" in page and "Warnings (reported, not blocking): 1" in page


def test_html_is_self_contained_and_escaped(report: RunReport) -> None:
    page = render_html(report)
    assert "<script" not in page and "<link" not in page and "http://" not in page and "https://" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<style>" in page


def test_a_successful_run_without_chunks_renders(report: RunReport) -> None:
    report.status, report.chunks, report.quarantine = "unvalidated", [], None
    page = render_html(report)
    assert "status-unvalidated" in page and "No chunk was validated in this run." in page
    assert 'id="failed"' not in page and "Quarantine" not in page


def test_write_and_read_round_trip(report: RunReport, tmp_path: Path) -> None:
    settings = Settings(warehouse=str(tmp_path / "wh"))
    path = write_report(report, settings)
    folder = tmp_path / "wh" / "_reports" / "user_purchases"
    assert path == str(folder / f"{safe_run_id(RUN_ID)}.html") and report.report == path
    assert sorted(p.name for p in folder.iterdir()) == [f"{safe_run_id(RUN_ID)}.{ext}" for ext in ("html", "json")]
    again = read_report(settings, "user_purchases", RUN_ID)
    assert again == report
    assert again.failed == [FAILING] and again.warnings == [WARNING]


def test_read_missing_report_is_a_clear_error(report: RunReport, tmp_path: Path) -> None:
    settings = Settings(warehouse=str(tmp_path))
    write_report(report, settings)
    message = r"no report of run 'nope' of view 'user_purchases': .* does not exist \(latest: manual__"
    with pytest.raises(KilnError, match=message):
        read_report(settings, "user_purchases", "nope")


def test_safe_run_id() -> None:
    assert safe_run_id("cli-20250201T100000") == "cli-20250201T100000"
    airflow = safe_run_id(RUN_ID)
    assert re.fullmatch(r"manual__2025-02-01T10_00_00_00_00-[0-9a-f]{8}", airflow)
    assert len({safe_run_id("a:b"), safe_run_id("a+b"), safe_run_id("a_b")}) == 3
    assert not safe_run_id("../../etc").startswith(".") and "/" not in safe_run_id("../../etc")
    assert len(safe_run_id("x" * 500)) == 129 and safe_run_id("") != ""


def test_reports_live_in_the_warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert reports_root(Settings(warehouse="s3a://bucket/wh/")) == "s3a://bucket/wh/_reports"
    assert reports_root(Settings(warehouse=f"file://{tmp_path}/wh")) == f"{tmp_path}/wh/_reports"
    assert reports_root(Settings(warehouse="wh")) == f"{tmp_path}/wh/_reports"


def test_write_and_read_round_trip_on_s3(report: RunReport, moto_server, s3_bucket: str, tmp_path: Path) -> None:
    import boto3

    settings = Settings(warehouse=f"s3a://{s3_bucket}/wh", s3_endpoint=moto_server.endpoint_url, aws_region="us-east-1")
    path = write_report(report, settings)
    key = f"wh/_reports/user_purchases/{safe_run_id(RUN_ID)}"
    assert path == f"s3a://{s3_bucket}/{key}.html" and report.report == path
    assert read_report(settings, "user_purchases", RUN_ID) == report
    s3 = boto3.client("s3", endpoint_url=moto_server.endpoint_url)
    page = s3.get_object(Bucket=s3_bucket, Key=f"{key}.html")
    assert page["ContentType"] == "text/html; charset=utf-8"
    (tmp_path / "page.html").write_bytes(page["Body"].read())
    assert "expect_column_values_to_be_between(spend_30d): observed 3 of 5000" in page_text(tmp_path / "page.html")
    with pytest.raises(KilnError, match=rf"no report of run 'nope' .*s3a://{s3_bucket}/wh/_reports/user_purchases/nope.json "
                                        r"does not exist \(latest: manual__"):
        read_report(settings, "user_purchases", "nope")


def test_outcome_table_is_plain_text_failures_first() -> None:
    odd = Outcome("expect_column_values_to_match_regex", "page", "error", True, "[red]not markup[/red]", "regex=^/")
    text = outcome_table([PASSING, WARNING, FAILING, odd], title="user_purchases 2025-01-31..2025-02-01")
    assert "\x1b" not in text and all(len(line) <= 160 for line in text.splitlines())
    results = [line.split("|")[-2].strip() for line in text.splitlines() if re.search(r"\| (PASS|FAIL|WARN) ", line)]
    assert results == ["FAIL", "WARN", "PASS", "PASS"]
    assert "[red]not markup[/red]" in text and "user_purchases 2025-01-31..2025-02-01" in text
    assert "3 of 5000 rows unexpected (0.06%)" in text


@pytest.mark.server  # a browser
def test_report_opens_in_headless_chromium(report: RunReport, tmp_path: Path) -> None:
    path = Path(write_report(report, Settings(warehouse=str(tmp_path))))
    assert f"<title>FAILED · user_purchases · {RUN_ID}</title>" in dump_dom(path)
    text = page_text(path)
    assert "FAILED" in text and RUN_ID in text
    assert "expect_column_values_to_be_between(spend_30d): observed 3 of 5000 rows unexpected (0.06%)" in text
    assert "FAIL 3 of 5000 rows unexpected (0.06%) between 0 and +inf 3" in text
