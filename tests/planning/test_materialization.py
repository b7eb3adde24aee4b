"""kiln plan / kiln run decisions, from literal dates and fingerprints (no Spark)."""

from __future__ import annotations

from datetime import date, timedelta

from featurekiln.definitions.models import FeatureView
from featurekiln.planning.materialization import inclusive, plan_tiles, plan_view


def jan(day: int) -> date:
    return date(2025, 1, 1) + timedelta(days=day - 1)


def view(**changes: object) -> FeatureView:
    data = {
        "name": "v", "entity": {"name": "u", "keys": ["k"]},
        "source": {"path": "raw/x", "format": "parquet", "timestamp": "ts"}, "start": "2025-01-01",
        "features": [{"name": "n_7d", "agg": "count", "window": "7d"}],
    }
    data.update(changes)
    return FeatureView.model_validate(data)


def held(v: FeatureView, first: int, last: int, fingerprint: str | None = None) -> dict[date, str]:
    return {jan(d): fingerprint or v.fingerprint() for d in range(first, last + 1)}


def test_an_empty_table_is_backfilled_from_the_start() -> None:
    plan = plan_view(view(), {}, jan(10))
    assert plan.materialized == () and plan.stale == ()
    assert inclusive(plan.missing) == [["2025-01-01", "2025-01-10"]]
    assert inclusive(plan.will_compute) == [["2025-01-01", "2025-01-10"]]
    assert inclusive(plan.reads_events) == [["2024-12-26", "2025-01-10"]], "7-day window: 6 days before the first"


def test_a_complete_table_has_nothing_to_do() -> None:
    v = view(lookback="2d")
    plan = plan_view(v, held(v, 1, 10), jan(10))
    assert plan.nothing_to_do and plan.will_compute == () and plan.reads_events == ()
    assert inclusive(plan.materialized) == [["2025-01-01", "2025-01-10"]]


def test_a_nightly_day_computes_itself_and_its_lookback() -> None:
    v = view(lookback="2d")
    plan = plan_view(v, held(v, 1, 10), jan(11))
    assert inclusive(plan.missing) == [["2025-01-11", "2025-01-11"]]
    assert inclusive(plan.will_compute) == [["2025-01-09", "2025-01-11"]]
    assert inclusive(plan.reads_events) == [["2025-01-03", "2025-01-11"]]


def test_missed_nights_heal_and_holes_are_filled() -> None:
    v = view()
    days = {**held(v, 1, 3), **held(v, 6, 8)}
    plan = plan_view(v, days, jan(11))
    assert inclusive(plan.missing) == [["2025-01-04", "2025-01-05"], ["2025-01-09", "2025-01-11"]]
    assert plan.will_compute == plan.missing


def test_lookback_never_reaches_before_the_start() -> None:
    v = view(lookback="5d")
    assert inclusive(plan_view(v, held(v, 1, 1), jan(2)).will_compute) == [["2025-01-01", "2025-01-02"]]


def test_stale_days_are_refused_by_default_with_the_rebuild_command() -> None:
    v = view()
    plan = plan_view(v, {**held(v, 1, 4, "old"), **held(v, 5, 10)}, jan(12))
    assert inclusive(plan.stale) == [["2025-01-01", "2025-01-04"]]
    assert inclusive(plan.materialized) == [["2025-01-05", "2025-01-10"]]
    assert inclusive(plan.missing) == [["2025-01-11", "2025-01-12"]]
    assert plan.will_compute == () and not plan.nothing_to_do
    assert plan.refused is not None and "kiln backfill v --start 2025-01-01 --end 2025-01-04" in plan.refused


def test_on_change_rebuild_recomputes_the_stale_days() -> None:
    v = view(on_change="rebuild")
    plan = plan_view(v, {**held(v, 1, 4, "old"), **held(v, 5, 10)}, jan(12))
    assert plan.refused is None
    assert inclusive(plan.will_compute) == [["2025-01-01", "2025-01-04"], ["2025-01-11", "2025-01-12"]]


def test_until_before_the_start_plans_nothing() -> None:
    plan = plan_view(view(start="2025-02-01"), {}, jan(10))
    assert plan.missing == () and plan.will_compute == () and plan.nothing_to_do


def test_json_lists_inclusive_iso_ranges() -> None:
    v = view()
    document = plan_view(v, held(v, 1, 2), jan(3)).to_json()
    assert set(document) >= {"view", "fingerprint", "materialized", "missing", "stale", "will_compute", "reads_events"}
    assert document["materialized"] == [["2025-01-01", "2025-01-02"]]
    assert document["will_compute"] == [["2025-01-03", "2025-01-03"]]


def tiles(v: FeatureView, first: int, last: int, groups: frozenset[str] | None = None) -> dict[date, frozenset[str]]:
    return {jan(d): frozenset(v.partial_groups()) if groups is None else groups for d in range(first, last + 1)}


def test_with_stored_tiles_a_nightly_run_reads_its_day_and_lookback_only() -> None:
    v = view(lookback="2d")
    plan = plan_view(v, held(v, 1, 10), jan(11), tiles(v, -5, 10))
    assert inclusive(plan.will_compute) == [["2025-01-09", "2025-01-11"]]
    assert inclusive(plan.refresh) == [["2025-01-09", "2025-01-11"]]
    assert inclusive(plan.reads_events) == [["2025-01-09", "2025-01-11"]], "1 + lookback days, not the window"
    assert inclusive(plan.tiles) == [["2024-12-26", "2025-01-10"]]


def test_missed_nights_refresh_the_lookback_of_the_first_missed_day_even_before_the_start() -> None:
    v = view(lookback="3d")
    plan = plan_view(v, held(v, 1, 2), jan(6), tiles(v, -6, 2))
    assert inclusive(plan.will_compute) == [["2025-01-01", "2025-01-06"]]
    assert inclusive(plan.refresh) == [["2024-12-31", "2025-01-06"]], "tile days before the start get late events too"
    assert inclusive(plan.reads_events) == [["2024-12-31", "2025-01-06"]]


def test_a_window_change_rebuilds_from_tiles_and_a_new_feature_reads_only_its_partials() -> None:
    v = view(lookback="2d")
    stored = tiles(v, -5, 10)
    wider = view(lookback="2d", on_change="rebuild", features=[{"name": "n_7d", "agg": "count", "window": "5d"}])
    plan = plan_view(wider, held(v, 1, 10), jan(10), stored)
    assert inclusive(plan.will_compute) == [["2025-01-01", "2025-01-10"]] and plan.reads_events == ()
    added = view(on_change="rebuild", features=[{"name": "n_7d", "agg": "count", "window": "7d"},
                                                {"name": "s", "agg": "sum", "expr": "x", "window": "7d"}])
    plan = plan_view(added, held(v, 1, 10), jan(10), stored)
    new = added.partial_group(added.features[1])
    assert plan.tile_plan.from_source == ()
    assert [(sorted(g), inclusive(spans)) for _, g, spans in plan.tile_plan.add] == [
        ([new], [["2024-12-26", "2025-01-10"]])
    ]
    assert inclusive(plan.reads_events) == [["2024-12-26", "2025-01-10"]]


def test_tile_days_of_another_source_are_tiled_again() -> None:
    v = view()
    other = frozenset({"0123456789"})
    plan = plan_tiles(v.partial_groups(), tiles(v, 1, 5, other), [(jan(1), jan(6))])
    assert plan.from_source == ((jan(1), jan(6)),) and plan.add == ()
