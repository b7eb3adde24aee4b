"""Drift monitors on hand-made per-day statistics (pure), against an independent oracle (numpy's median).

A shifted day (a feature multiplied by 10) warns or fails as declared, naming the
feature and the day; an unshifted history stays quiet; fewer baseline days than
declared use those that exist, none skips with a note; a backfill checks each of
its days against the days before it; the runner's step adds the outcomes to the
chunks so that a failing ``fail`` monitor blocks the chunk.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest

from featurekiln.definitions import FeatureView
from featurekiln.quality.monitors import baseline_history, check_monitors, is_monitor
from featurekiln.quality.results import ChunkValidation, Outcome, RunReport
from featurekiln.quality.statistics import FeatureDayStats
from featurekiln.runner import _monitored
from featurekiln.settings import Settings

FIRST = date(2025, 1, 1)
ROWS = 1000
STARTED = datetime(2025, 3, 1, tzinfo=timezone.utc)


def a_view(*monitors: dict) -> FeatureView:
    return FeatureView.model_validate({
        "name": "user_purchases",
        "entity": {"name": "user", "keys": ["user_id"]},
        "source": {"path": "raw/purchases", "format": "parquet", "timestamp": "event_ts"},
        "start": "2025-01-01",
        "features": [
            {"name": "purchases_7d", "agg": "count", "window": "7d"},
            {"name": "spend_30d", "agg": "sum", "expr": "amount", "window": "30d"},
        ],
        "monitors": list(monitors),
    })


MEAN_WARN = {"feature": "purchases_7d", "stat": "mean", "max_change": 0.5, "baseline": "28d"}
P95_FAIL = {"feature": "purchases_7d", "stat": "p95", "max_change": 1.0, "baseline": "14d", "severity": "fail"}
NULLS_FAIL = {"feature": "spend_30d", "stat": "null_fraction", "max": 0.01, "severity": "fail"}


def level(n: int) -> float:
    """An unshifted history: a weekly pattern within ±6% of 10."""
    return 10.0 * (1 + 0.06 * math.sin(n * 2 * math.pi / 7))


def day_stats(view: FeatureView, n: int, feature: str = "purchases_7d", scale: float = 1.0, nulls: int = 0,
              fingerprint: str | None = None) -> FeatureDayStats:
    """Statistics of day ``FIRST + n``: a mean of ``level(n)``, quantiles around it, all times ``scale``."""
    mean = level(n) * scale
    return FeatureDayStats(
        view=view.name, ds=FIRST + timedelta(days=n), feature=feature, rows=ROWS, nulls=nulls, min=0.0,
        max=mean * 4, mean=mean, stddev=mean / 3, p50=mean * 0.9, p95=mean * 2, distinct=40,
        fingerprint=fingerprint or view.fingerprint(),
    )


def chunk_of(first: int, last: int, stats: list[FeatureDayStats]) -> ChunkValidation:
    return ChunkValidation(FIRST + timedelta(days=first), FIRST + timedelta(days=last), ROWS * (last - first + 1),
                           None, (), 0.0, stats=stats)


def flagged(outcomes: list[Outcome]) -> list[tuple[str, str, str, str | None]]:
    """(stat, feature, severity, day) of every failed outcome."""
    return [(o.expectation, o.column, o.severity, o.day) for o in outcomes if not o.success]


def oracle_flags(values: list[float], days: int, max_change: float) -> list[int]:
    """The day numbers whose value breaks |value / median(values of up to `days` days before) - 1| <= max_change."""
    found = []
    for n, value in enumerate(values):
        before = values[max(0, n - days):n]
        if before and abs(value / float(np.median(before)) - 1) > max_change:
            found.append(n)
    return found


def test_a_day_multiplied_by_ten_warns_or_fails_as_declared_naming_feature_and_day() -> None:
    view = a_view(MEAN_WARN, P95_FAIL)
    stored = [day_stats(view, n) for n in range(40)]
    own = [day_stats(view, 40), day_stats(view, 41, scale=10), day_stats(view, 42)]
    chunk = chunk_of(40, 42, own)
    outcomes = check_monitors(view, chunk, baseline_history(view, stored, own))

    shifted = str(FIRST + timedelta(days=41))
    assert flagged(outcomes) == [("monitor:mean", "purchases_7d", "warn", shifted),
                                 ("monitor:p95", "purchases_7d", "error", shifted)]
    warn, fail = (o for o in outcomes if not o.success)
    baseline = float(np.median([level(n) for n in range(41 - 28, 41)]))
    assert warn.line() == (
        f"monitor:mean(purchases_7d) on {shifted}: observed {level(41) * 10:.6g} (baseline {baseline:.6g}: the "
        f"median of 28 of the 28 days before; change {level(41) * 10 / baseline - 1:+.1%}); expected "
        "|value / baseline - 1| <= 0.5 (baseline: median of the 28 days before)"
    )
    assert f"baseline {float(np.median([level(n) * 2 for n in range(41 - 14, 41)])):.6g}" in fail.observed
    assert fail.source == "monitors[1]" and fail.blocking and not warn.blocking

    checked = ChunkValidation(chunk.start, chunk.end, chunk.rows, None, tuple(outcomes), 0.0)
    assert checked.failed == [fail] and checked.warnings == [warn] and not checked.success
    # The two other days pass, in one outcome per monitor.
    passes = [o for o in outcomes if o.success]
    assert [(o.expectation, o.day) for o in passes] == [("monitor:mean", None), ("monitor:p95", None)]
    assert all(o.observed.startswith("within bounds on 2 days") for o in passes)


def test_the_day_after_a_shifted_day_is_quiet_again() -> None:
    view = a_view(MEAN_WARN)
    stored = [day_stats(view, n) for n in range(28)]
    own = [day_stats(view, 28, scale=10), day_stats(view, 29)]
    outcomes = check_monitors(view, chunk_of(28, 29, own), baseline_history(view, stored, own))
    assert [o.day for o in outcomes if not o.success] == [str(FIRST + timedelta(days=28))]


def test_an_unshifted_history_stays_quiet() -> None:
    view = a_view(MEAN_WARN, P95_FAIL, NULLS_FAIL)
    stored = [day_stats(view, n, f) for n in range(60) for f in ("purchases_7d", "spend_30d")]
    own = [day_stats(view, n, f, nulls=5) for n in range(60, 90) for f in ("purchases_7d", "spend_30d")]
    outcomes = check_monitors(view, chunk_of(60, 89, own), baseline_history(view, stored, own))
    assert flagged(outcomes) == []
    assert [(o.expectation, o.success, o.skipped) for o in outcomes] == [
        ("monitor:mean", True, False), ("monitor:p95", True, False), ("monitor:null_fraction", True, False)]
    assert outcomes[2].observed == "within bounds on 30 days (2025-03-02 → 2025-03-31); values 0.005 .. 0.005"


def test_fewer_baseline_days_than_declared_use_those_that_exist() -> None:
    view = a_view(MEAN_WARN)
    stored = [day_stats(view, n) for n in range(5)]
    own = [day_stats(view, 5, scale=2)]
    [outcome] = check_monitors(view, chunk_of(5, 5, own), baseline_history(view, stored, own))
    baseline = float(np.median([level(n) for n in range(5)]))
    assert not outcome.success and outcome.day == "2025-01-06"
    assert f"(baseline {baseline:.6g}: the median of 5 of the 28 days before;" in outcome.observed
    # A gap in the stored days: the days that exist count, the missing ones do not.
    stored = [day_stats(view, n) for n in (0, 2, 4)]
    [outcome] = check_monitors(view, chunk_of(5, 5, own), baseline_history(view, stored, own))
    assert f"baseline {float(np.median([level(0), level(2), level(4)])):.6g}: the median of 3 of" in outcome.observed


def test_no_baseline_day_skips_the_monitor_with_a_note() -> None:
    view = a_view(MEAN_WARN)
    stored = [day_stats(view, n) for n in range(3)]  # older than the 28 days before
    own = [day_stats(view, 40, scale=10)]
    [outcome] = check_monitors(view, chunk_of(40, 40, own), baseline_history(view, stored, own))
    assert outcome.success and outcome.skipped and not outcome.blocking
    assert outcome.line() == ("monitor:mean(purchases_7d) on 2025-02-10: skipped: no baseline: none of the 28 days "
                              "before has a mean (2025-02-10)")


def test_a_backfill_checks_each_day_against_the_days_before_it() -> None:
    """No stored day: the first day is skipped, every later one is checked against the run's earlier days."""
    view = a_view(MEAN_WARN)
    scales = [10.0 if n in (12, 13) else (0.2 if n == 30 else 1.0) for n in range(45)]
    own = [day_stats(view, n, scale=scale) for n, scale in enumerate(scales)]
    values = [level(n) * scale for n, scale in enumerate(scales)]
    # Two chunks of one run: the first's own earlier days are its baseline (given no history at all), the
    # second's baseline includes the first's days.
    first = check_monitors(view, chunk_of(0, 19, own[:20]), {})
    second = check_monitors(view, chunk_of(20, 44, own[20:]), baseline_history(view, [], own))
    days = [(date.fromisoformat(o.day) - FIRST).days for o in first + second if not o.success]
    assert days == oracle_flags(values, 28, 0.5) == [12, 13, 30]
    [skipped] = [o for o in first if o.skipped]
    assert skipped.day == "2025-01-01" and "no baseline" in skipped.observed


def test_absolute_bounds_flag_the_days_outside_them() -> None:
    view = a_view(NULLS_FAIL, {"feature": "purchases_7d", "stat": "rows", "min": 500})
    own = [day_stats(view, n, "spend_30d", nulls=[0, 10, 11, 0][n]) for n in range(4)]
    own += [day_stats(view, n, "purchases_7d") for n in (0, 1, 3)]  # day 2 had no rows: no statistics
    outcomes = check_monitors(view, chunk_of(0, 3, own), baseline_history(view, [], own))
    assert flagged(outcomes) == [("monitor:null_fraction", "spend_30d", "error", "2025-01-03"),
                                 ("monitor:rows", "purchases_7d", "warn", "2025-01-03")]
    assert [o.observed for o in outcomes if not o.success] == ["0.011", "0"]
    assert [o.expected for o in outcomes if not o.success] == ["null_fraction <= 0.01", "500 <= rows"]


def test_a_statistic_without_a_value_is_skipped() -> None:
    view = a_view({"feature": "spend_30d", "stat": "mean", "min": 0})
    own = [FeatureDayStats(view.name, FIRST, "spend_30d", ROWS, ROWS, None, None, None, None, None, None, 0,
                           view.fingerprint())]
    [outcome] = check_monitors(view, chunk_of(0, 0, own), {})
    assert outcome.skipped and outcome.observed == "the day has no mean of spend_30d (2025-01-01)"


def test_a_run_without_statistics_skips_every_monitor() -> None:
    view = a_view(MEAN_WARN, NULLS_FAIL)
    outcomes = check_monitors(view, chunk_of(0, 9, []), {})
    assert [(o.skipped, o.observed) for o in outcomes] == [
        (True, "the run computed no statistics (10 days (2025-01-01 → 2025-01-10))")] * 2
    assert check_monitors(a_view(), chunk_of(0, 9, []), {}) == []


def test_the_baseline_uses_the_current_definition_and_the_runs_newer_values() -> None:
    view = a_view(MEAN_WARN)
    other = [day_stats(view, n, scale=10, fingerprint="another") for n in range(10)]
    stored = [day_stats(view, n, scale=10) for n in range(10, 20)]
    rerun = [day_stats(view, n) for n in range(10, 20)]  # the run recomputes days 10..19: its values count
    history = baseline_history(view, [*other, *stored], rerun)
    assert {s.ds for s in history.values()} == {FIRST + timedelta(days=n) for n in range(10, 20)}
    own = [day_stats(view, 20)]
    assert flagged(check_monitors(view, chunk_of(20, 20, own), history)) == []
    assert flagged(check_monitors(view, chunk_of(20, 20, own), baseline_history(view, stored, []))) != []


def test_outcomes_of_monitors_round_trip_through_the_report_json() -> None:
    view = a_view(MEAN_WARN)
    own = [day_stats(view, 0), day_stats(view, 1, scale=10)]
    outcomes = tuple(check_monitors(view, chunk_of(0, 1, own), baseline_history(view, [], own)))
    chunk = ChunkValidation(FIRST, FIRST + timedelta(days=1), 2 * ROWS, None, outcomes, 0.0, stats=own)
    report = RunReport(view.name, "run", "cli", chunk.start, chunk.end, started_at=STARTED,
                       chunks=[chunk])
    again = RunReport.from_dict(report.to_dict())
    assert again.chunks[0].outcomes == outcomes and all(is_monitor(o) for o in outcomes)
    assert [o.day for o in again.chunks[0].outcomes] == ["2025-01-02", "2025-01-01"]
    assert again.warnings == report.warnings and len(report.warnings) == 1


@pytest.mark.parametrize("severity", ["warn", "fail"])
def test_the_gate_step_adds_monitors_to_every_chunk_with_the_runs_earlier_days(tmp_path, severity: str) -> None:
    """The runner's step (featurekiln/runner.py ``_monitored``): the second chunk's shifted day is checked against
    the first chunk's days and an earlier range's (``report.chunks``); a ``fail`` monitor makes the chunk failed,
    which is what quarantines it."""
    view = a_view({**MEAN_WARN, "severity": severity})
    earlier = chunk_of(0, 9, [day_stats(view, n) for n in range(10)])
    report = RunReport(view.name, "run", "cli", FIRST, FIRST + timedelta(days=29),
                       started_at=STARTED, chunks=[earlier])
    chunks = [chunk_of(10, 19, [day_stats(view, n) for n in range(10, 20)]),
              chunk_of(20, 29, [day_stats(view, n, scale=10 if n == 25 else 1) for n in range(20, 30)])]
    first, second = _monitored(Settings(warehouse=str(tmp_path)), view, chunks, report)
    assert first.success and not first.warnings and first.stats == chunks[0].stats
    assert [o.day for o in (second.failed if severity == "fail" else second.warnings)] == ["2025-01-26"]
    assert second.success is (severity == "warn")
    assert "the median of 25 of the 28 days before" in (second.failed or second.warnings)[0].observed


def test_kiln_report_names_the_monitor_feature_day_value_and_baseline(tmp_path) -> None:
    from pathlib import Path

    from typer.testing import CliRunner

    from featurekiln.cli import app
    from featurekiln.quality.report import write_report

    view = a_view(MEAN_WARN)
    own = [day_stats(view, n, scale=10 if n == 3 else 1) for n in range(5)]
    outcomes = tuple(check_monitors(view, chunk_of(0, 4, own), baseline_history(view, [], own)))
    chunk = ChunkValidation(FIRST, FIRST + timedelta(days=4), 5 * ROWS, None, outcomes, 0.0, stats=own)
    report = RunReport(view.name, "run-1", "cli", chunk.start, chunk.end, started_at=STARTED, status="warned",
                       chunks=[chunk])
    write_report(report, Settings(warehouse=str(tmp_path)))
    defs = Path(__file__).resolve().parents[2] / "feature_defs"
    shown = CliRunner().invoke(app, ["--defs", str(defs), "--warehouse", str(tmp_path), "report", view.name,
                                     "--run", "run-1"], env={"COLUMNS": "250"})
    assert shown.exit_code == 0, shown.output
    [row] = [line for line in shown.output.splitlines() if "WARN" in line]
    baseline = float(np.median([level(n) for n in range(3)]))
    assert "monitor:mean" in row and "purchases_7d on 2025-01-04" in row and f"{level(3) * 10:.6g}" in row
    assert f"baseline {baseline:.6g}" in shown.output
    assert "SKIP" in shown.output and "PASS" in shown.output
