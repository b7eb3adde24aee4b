"""What a training set needs, decided without an engine: literal dates, literal definitions."""

from __future__ import annotations

from datetime import date

import pytest

from featurekiln.definitions.models import FeatureView
from featurekiln.errors import PlanError, UnknownViewError
from featurekiln.planning.training import (
    day_coverage,
    describe_days,
    parse_key_map,
    parse_versions,
    select_features,
)

D = date


def view(name: str, keys: list[str], features: list[str]) -> FeatureView:
    return FeatureView.model_validate(
        {
            "name": name,
            "entity": {"name": "e", "keys": keys},
            "source": {"path": "raw/x", "format": "parquet", "timestamp": "ts"},
            "start": "2025-01-01",
            "features": [{"name": f, "agg": "count", "window": "1d"} for f in features],
        }
    )


VIEWS = {
    "user_purchases": view("user_purchases", ["user_id"], ["a", "b", "c"]),
    "merchant_risk": view("merchant_risk", ["merchant_id", "country"], ["x", "y"]),
}
SPINE = ["user_id", "merchant", "country", "ts"]


def test_day_coverage_splits_needed_days() -> None:
    present = {D(2025, 1, 2): "f1", D(2025, 1, 3): "f1", D(2025, 1, 4): "old", D(2025, 1, 6): "f1"}
    needed = [D(2025, 1, 6), D(2024, 12, 30), D(2025, 1, 2), D(2025, 1, 4), D(2025, 1, 5), D(2025, 1, 7), D(2025, 1, 2)]
    coverage = day_coverage("v", needed, present, "f1", D(2025, 1, 1))
    assert coverage.usable == (D(2025, 1, 2), D(2025, 1, 6))
    assert coverage.missing == ((D(2025, 1, 5), D(2025, 1, 6)), (D(2025, 1, 7), D(2025, 1, 8)))
    assert coverage.stale == ((D(2025, 1, 4), D(2025, 1, 5)),)
    assert coverage.before_start == ((D(2024, 12, 30), D(2024, 12, 31)),)
    assert not coverage.complete
    assert coverage.unusable() == [(D(2025, 1, 4), D(2025, 1, 6)), (D(2025, 1, 7), D(2025, 1, 8))]
    assert coverage.describe() == "v: missing 2025-01-05, 2025-01-07; stale (built by another definition) 2025-01-04"


def test_day_coverage_of_nothing_and_of_everything() -> None:
    assert day_coverage("v", [], {}, "f", D(2025, 1, 1)).complete
    days = {D(2025, 1, d): "f" for d in range(1, 11)}
    full = day_coverage("v", list(days), days, "f", D(2025, 1, 1))
    assert full.complete and len(full.usable) == 10 and not full.before_start
    gap = day_coverage("v", [D(2025, 1, d) for d in range(1, 11)], {}, "f", D(2025, 1, 1))
    assert gap.missing == ((D(2025, 1, 1), D(2025, 1, 11)),)
    assert describe_days(gap.missing) == "2025-01-01..2025-01-10"


def test_select_features_resolves_views_features_and_keys() -> None:
    selections = select_features(
        ["merchant_risk:y", "user_purchases", "merchant_risk:x", "user_purchases:b"],
        VIEWS,
        SPINE,
        {("merchant_risk", "merchant_id"): "merchant"},
    )
    assert [(s.view.name, s.features, s.key_columns) for s in selections] == [
        ("merchant_risk", ("x", "y"), ("merchant", "country")),
        ("user_purchases", ("a", "b", "c"), ("user_id",)),
    ]
    assert selections[0].output_columns == ("merchant_risk__x", "merchant_risk__y")


def test_select_features_reports_every_problem() -> None:
    with pytest.raises(UnknownViewError, match="no view named 'nope'"):
        select_features(["nope"], VIEWS, SPINE)
    with pytest.raises(PlanError) as caught:
        select_features(
            ["user_purchases:zz", "merchant_risk"],
            VIEWS,
            ["user_id", "country", "ts", "merchant_risk__x"],
            {("user_purchases", "id"): "user_id"},
        )
    assert str(caught.value).splitlines() == [
        "--features 'user_purchases:zz': user_purchases has no feature 'zz' (features: a, b, c)",
        "--map user_purchases.id: user_purchases is not among the selected views",
        "merchant_risk: key merchant_id has no spine column 'merchant_id'; map it with --map "
        "merchant_risk.merchant_id=COLUMN (spine columns: user_id, country, ts, merchant_risk__x)",
        "merchant_risk: the spine already has column(s) merchant_risk__x; rename them first",
    ]


def test_parse_options() -> None:
    assert parse_key_map(["merchant_risk.merchant_id=merchant"]) == {("merchant_risk", "merchant_id"): "merchant"}
    with pytest.raises(PlanError, match="write view.key=column"):
        parse_key_map(["merchant_id=merchant"])
    with pytest.raises(PlanError, match="mapped twice"):
        parse_key_map(["a.b=c", "a.b=d"])
    assert parse_versions(["user_purchases=12", "merchant_risk=0"]) == {"user_purchases": 12, "merchant_risk": 0}
    with pytest.raises(PlanError, match="write view=VERSION"):
        parse_versions(["user_purchases=latest"])
