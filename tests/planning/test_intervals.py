"""Half-open day intervals: plain functions, literal dates."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

import pytest

from featurekiln.errors import PlanError
from featurekiln.planning import intervals
from featurekiln.planning.materialization import inclusive
from featurekiln.planning.plan import RunPlan, plan_backfill
from featurekiln.definitions import load_catalog

D = date


def test_from_inclusive_and_days() -> None:
    interval = intervals.from_inclusive(D(2025, 1, 30), D(2025, 2, 2))
    assert interval == (D(2025, 1, 30), D(2025, 2, 3))
    assert list(intervals.days(interval)) == [D(2025, 1, 30), D(2025, 1, 31), D(2025, 2, 1), D(2025, 2, 2)]
    assert intervals.length(interval) == 4
    assert intervals.length((D(2025, 1, 2), D(2025, 1, 1))) == 0


def test_chunks_cover_exactly() -> None:
    assert intervals.chunks((D(2025, 1, 1), D(2025, 1, 8)), 3) == [
        (D(2025, 1, 1), D(2025, 1, 4)),
        (D(2025, 1, 4), D(2025, 1, 7)),
        (D(2025, 1, 7), D(2025, 1, 8)),
    ]
    assert intervals.chunks((D(2025, 1, 1), D(2025, 1, 1)), 3) == []
    with pytest.raises(ValueError, match="at least 1 day"):
        intervals.chunks((D(2025, 1, 1), D(2025, 1, 2)), 0)


def test_merge_and_missing() -> None:
    have = [(D(2025, 1, 5), D(2025, 1, 7)), (D(2025, 1, 1), D(2025, 1, 3)), (D(2025, 1, 3), D(2025, 1, 4))]
    assert intervals.merge(have) == [(D(2025, 1, 1), D(2025, 1, 4)), (D(2025, 1, 5), D(2025, 1, 7))]
    assert intervals.missing((D(2025, 1, 1), D(2025, 1, 10)), have) == [
        (D(2025, 1, 4), D(2025, 1, 5)),
        (D(2025, 1, 7), D(2025, 1, 10)),
    ]
    assert intervals.missing((D(2025, 1, 2), D(2025, 1, 3)), have) == []
    assert intervals.missing((D(2025, 1, 1), D(2025, 1, 2)), []) == [(D(2025, 1, 1), D(2025, 1, 2))]


def test_plan_backfill_reads_the_horizon_before_the_first_day() -> None:
    view = load_catalog("feature_defs")["user_purchases"]  # longest window 90d
    plan = plan_backfill(view, D(2025, 3, 1), D(2025, 3, 31), chunk_days=10)
    assert plan.ranges == ((D(2025, 3, 1), D(2025, 4, 1)),)
    assert plan.needed == ((D(2024, 12, 2), D(2025, 4, 1)),)
    assert plan.tiles.from_source == plan.needed, "no tiles stored: every tile day is read from the source"
    assert [f"{a}..{b}" for a, b in inclusive(plan.chunks)] == [
        "2025-03-01..2025-03-10", "2025-03-11..2025-03-20", "2025-03-21..2025-03-30", "2025-03-31..2025-03-31"
    ]
    assert RunPlan.from_json(json.loads(json.dumps(plan.to_json()))) == plan
    assert not plan.push and plan.validate
    asked = replace(plan, ranges=(), asked=(D(2025, 3, 5), D(2025, 3, 6)))
    assert asked.to_json()["asked"] == ["2025-03-05", "2025-03-05"]
    assert RunPlan.from_json(json.loads(json.dumps(asked.to_json()))) == asked


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        (D(2025, 2, 2), D(2025, 2, 1), "end 2025-02-01 is before start 2025-02-02"),
        (D(2024, 12, 31), D(2025, 2, 1), "start 2024-12-31 is before the view's start 2025-01-01"),
    ],
)
def test_plan_backfill_rejects_bad_ranges(first: date, last: date, message: str) -> None:
    view = load_catalog("feature_defs")["user_clicks"]
    with pytest.raises(PlanError, match=message):
        plan_backfill(view, first, last, chunk_days=5)


def test_lookback_defaults_to_zero_and_parses_days(tmp_path) -> None:  # noqa: ANN001
    import yaml

    from featurekiln.definitions.loader import load_file

    data = yaml.safe_load(open("feature_defs/user_clicks.yaml").read())
    assert load_catalog("feature_defs")["user_clicks"].lookback_days == 0
    data["lookback"] = "3d"
    (tmp_path / "v.yaml").write_text(yaml.safe_dump(data))
    view, _, problems = load_file(tmp_path / "v.yaml")
    assert problems == [] and view is not None and view.lookback_days == 3


def test_gaps_are_the_uncovered_days_between_intervals() -> None:
    from featurekiln.planning.intervals import gaps

    jan = lambda d: date(2025, 1, d)  # noqa: E731
    assert gaps([]) == []
    assert gaps([(jan(1), jan(5))]) == []
    assert gaps([(jan(10), jan(12)), (jan(1), jan(5)), (jan(4), jan(8))]) == [(jan(8), jan(10))]
    assert gaps([(jan(1), jan(3)), (jan(3), jan(5)), (jan(6), jan(7))]) == [(jan(5), jan(6))]


def test_epoch_days_counts_days_since_1970() -> None:
    assert intervals.epoch_days((date(1970, 1, 1), date(1970, 1, 2))) == (0, 1)
    assert intervals.epoch_days((date(2025, 1, 1), date(2025, 3, 1))) == (20089, 20148)
    assert intervals.epoch_days((date(1969, 12, 31), date(1969, 12, 31))) == (-1, -1)
