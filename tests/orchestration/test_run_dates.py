"""Which days an Airflow run computes: pure rules over literal dates. No Airflow, no Spark."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from types import SimpleNamespace

import pytest

from featurekiln.errors import PlanError
from featurekiln.orchestration import steps
from featurekiln.orchestration.run_dates import interval_days, latest_complete_day, requested_range, scheduled_range
from featurekiln.planning.intervals import ONE_DAY, from_inclusive, length
from featurekiln.planning.materialization import inclusive
from featurekiln.planning.plan import RunPlan

UTC = timezone.utc
NOW = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)
VIEW_START = date(2025, 1, 1)


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (at(2025, 1, 10), at(2025, 1, 11), (date(2025, 1, 10), date(2025, 1, 10))),  # @daily
        (at(2025, 1, 10, 3), at(2025, 1, 11, 3), (date(2025, 1, 10), date(2025, 1, 10))),  # 0 3 * * *
        (at(2025, 1, 5), at(2025, 1, 12), (date(2025, 1, 5), date(2025, 1, 11))),  # @weekly
        (at(2025, 1, 10, 5), at(2025, 1, 10, 6), (date(2025, 1, 10), date(2025, 1, 9))),  # hourly: nothing
        (at(2025, 1, 10, 23), at(2025, 1, 11), (date(2025, 1, 10), date(2025, 1, 10))),  # the hour ending at midnight
    ],
)
def test_interval_days_are_the_days_whose_cutoff_is_in_the_interval(start, end, expected) -> None:
    assert interval_days(start, end) == (expected[0], expected[1] + ONE_DAY)


def test_latest_complete_day() -> None:
    assert latest_complete_day(at(2025, 1, 11)) == date(2025, 1, 10)
    assert latest_complete_day(at(2025, 1, 11, 23, 59)) == date(2025, 1, 10)
    assert latest_complete_day(datetime(2025, 1, 11, 1)) == date(2025, 1, 10)  # naive means UTC


def test_nightly_run_computes_the_day_of_its_interval() -> None:
    days, _ = scheduled_range(at(2025, 1, 10), at(2025, 1, 11), at(2025, 1, 10))
    assert days == from_inclusive(date(2025, 1, 10), date(2025, 1, 10))


def test_manual_run_with_empty_interval_computes_the_latest_complete_day() -> None:
    moment = at(2025, 1, 11, 14, 5)
    for start, end in [(moment, moment), (None, None)]:
        days, reason = scheduled_range(start, end, moment)
        assert days == from_inclusive(date(2025, 1, 10), date(2025, 1, 10))
        assert "latest complete day" in reason


def test_a_run_before_the_view_start_computes_nothing() -> None:
    days, _ = scheduled_range(at(2024, 12, 1), at(2024, 12, 2), at(2024, 12, 1), view_start=VIEW_START)
    assert length(days) == 0


def test_requested_range_inclusive_and_end_defaults_to_start() -> None:
    days, _ = requested_range("2025-01-03", "2025-01-09", VIEW_START, NOW)
    assert days == from_inclusive(date(2025, 1, 3), date(2025, 1, 9))
    days, _ = requested_range("2025-01-03", None, VIEW_START, NOW)
    assert days == from_inclusive(date(2025, 1, 3), date(2025, 1, 3))
    assert requested_range(None, "", VIEW_START, NOW) is None


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2025-01-09", "2025-01-03", "param end: 2025-01-03 is before start 2025-01-09"),
        ("2024-12-30", "2025-01-03", "param start: 2024-12-30 is before the view's start 2025-01-01"),
        ("2025-02-20", "2025-03-01", "param end: 2025-03-01 is not a complete day yet"),
        ("2025-02-20", "2025-03-05", "the latest complete day is 2025-02-28"),
        ("2025-13-01", None, "param start: '2025-13-01' is not a date like 2025-01-31"),
        (None, "2025-01-03", "param start: is required when end is set"),
    ],
)
def test_requested_range_errors_name_the_param(start, end, message) -> None:
    with pytest.raises(PlanError) as error:
        requested_range(start, end, VIEW_START, NOW)
    assert message in str(error.value)


def test_run_range_prefers_params_else_the_scheduled_days() -> None:
    view = SimpleNamespace(name="v", start=VIEW_START, lookback_days=2)
    interval = {"interval_start": at(2025, 1, 10), "interval_end": at(2025, 1, 11), "reference": at(2025, 1, 10)}
    days, _ = steps.run_range(view, {"start": "2025-01-02", "end": "2025-01-04"}, now=NOW, **interval)
    assert days == from_inclusive(date(2025, 1, 2), date(2025, 1, 4))
    days, _ = steps.run_range(view, {"start": None, "end": None}, now=NOW, **interval)
    assert days == from_inclusive(date(2025, 1, 10), date(2025, 1, 10)), "the plan adds the lookback"


def test_chunk_days_param() -> None:
    assert steps.chunk_days_param(None, 30) == 30
    assert steps.chunk_days_param("7", 30) == 7
    with pytest.raises(PlanError, match="param chunk_days: must be at least 1"):
        steps.chunk_days_param(0, 30)


def test_a_native_backfill_run_computes_its_own_day_and_a_scheduled_run_heals_every_missing_day(tmp_path) -> None:
    """Over an empty warehouse (the ledger is read from files: no Spark, no Airflow)."""
    from featurekiln.definitions.models import FeatureView
    from featurekiln.settings import Settings

    view = FeatureView.model_validate({
        "name": "v", "entity": {"name": "user", "keys": ["user_id"]}, "start": VIEW_START.isoformat(),
        "source": {"path": "raw/e", "format": "parquet", "timestamp": "ts"}, "lookback": "2d",
        "features": [{"name": "n_7d", "agg": "count", "window": "7d"}],
    })
    settings = Settings(defs_dir=tmp_path, warehouse=str(tmp_path / "wh"), chunk_days=30)
    facts = {"interval_start": at(2025, 2, 10), "interval_end": at(2025, 2, 11), "reference": at(2025, 2, 10),
             "now": NOW}

    def days(run_type: object) -> list[tuple[str, str]]:
        plan = steps.plan_dag_run(view, {}, settings, run_type=run_type, **facts)
        assert RunPlan.from_json(json.loads(json.dumps(plan.to_json()))) == plan, "the plan goes through XCom"
        return [tuple(c) for c in inclusive(plan.chunks)]

    from airflow.sdk.api.datamodels._generated import DagRunType  # what a task's context holds; its str() is
    # "DagRunType.BACKFILL"

    assert days(DagRunType.BACKFILL) == days("backfill") == [("2025-02-10", "2025-02-10")]
    assert days(DagRunType.SCHEDULED) == [("2025-01-01", "2025-01-30"), ("2025-01-31", "2025-02-10")]
    assert steps.trigger_of(DagRunType.SCHEDULED) == "nightly" and steps.trigger_of(DagRunType.MANUAL) == "backfill"
