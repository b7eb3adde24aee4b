"""The sample source generator: deterministic, realistic, and full of edge cases. No Spark."""

from __future__ import annotations

import csv
import re
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurekiln.samples import clicks_frame, purchases_frame, write_sample_sources

START = date(2025, 1, 1)
DAYS = 60
USERS = 500


@pytest.fixture(scope="module")
def purchases() -> pd.DataFrame:
    return purchases_frame(START, DAYS, USERS, seed=11)


@pytest.fixture(scope="module")
def clicks() -> pd.DataFrame:
    return clicks_frame(START, DAYS, USERS, seed=11)


def _time_of_day(ts: pd.Series) -> pd.Series:
    return ts - ts.dt.floor("D")


def test_same_seed_gives_identical_frames() -> None:
    pd.testing.assert_frame_equal(purchases_frame(START, 20, 100, 3), purchases_frame(START, 20, 100, 3))
    pd.testing.assert_frame_equal(clicks_frame(START, 20, 100, 3), clicks_frame(START, 20, 100, 3))


def test_other_seed_gives_other_frames() -> None:
    assert not purchases_frame(START, 20, 100, 3).equals(purchases_frame(START, 20, 100, 4))
    assert not clicks_frame(START, 20, 100, 3).equals(clicks_frame(START, 20, 100, 4))


def test_purchases_columns_and_types(purchases: pd.DataFrame) -> None:
    assert list(purchases.columns) == [
        "purchase_id", "user_id", "merchant_id", "country", "category", "amount", "status", "event_ts",
    ]
    assert purchases["user_id"].dtype == "int64"
    assert purchases["merchant_id"].dtype == "int64"
    assert purchases["amount"].dtype == "float64"
    assert str(purchases["event_ts"].dtype) == "datetime64[us, UTC]"
    for column in ("purchase_id", "country", "category", "status"):
        assert purchases[column].map(type).eq(str).all(), column
    assert purchases["purchase_id"].is_unique
    assert purchases["event_ts"].is_monotonic_increasing


def test_clicks_columns_and_types(clicks: pd.DataFrame) -> None:
    assert list(clicks.columns) == ["user_id", "page", "dwell_ms", "event_ts"]
    assert clicks["user_id"].dtype == "int64"
    assert str(clicks["dwell_ms"].dtype) == "Int64"
    assert str(clicks["event_ts"].dtype) == "datetime64[us, UTC]"
    assert clicks["page"].map(type).eq(str).all()


@pytest.mark.parametrize("make", [purchases_frame, clicks_frame])
def test_events_lie_in_the_requested_days_with_microseconds(make) -> None:
    frame = make(START, DAYS, USERS, 11)
    assert frame["event_ts"].min() >= pd.Timestamp(START, tz="UTC")
    assert frame["event_ts"].max() < pd.Timestamp(START + timedelta(days=DAYS), tz="UTC")
    assert (frame["event_ts"].dt.microsecond % 1000 != 0).any(), "timestamps should use microsecond precision"
    assert frame["user_id"].between(1, USERS).all()


@pytest.mark.parametrize("make", [purchases_frame, clicks_frame])
def test_events_exactly_at_midnight_and_just_before(make) -> None:
    tod = _time_of_day(make(START, DAYS, USERS, 11)["event_ts"])
    assert (tod == pd.Timedelta(0)).sum() >= DAYS // 2
    assert (tod == pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)).sum() >= DAYS // 2


def test_same_timestamp_ties_with_different_values(purchases: pd.DataFrame) -> None:
    groups = purchases.groupby(["user_id", "event_ts"])
    ties = groups.filter(lambda g: len(g) > 1 and g["amount"].nunique() > 1 and g["category"].nunique() > 1)
    assert len(ties) >= 3
    completed = ties[ties["status"] == "completed"]
    assert completed.groupby(["user_id", "event_ts"]).size().max() >= 2, "ties must survive the completed filter"


def test_nulls_in_value_columns(purchases: pd.DataFrame, clicks: pd.DataFrame) -> None:
    assert 0.01 < purchases["amount"].isna().mean() < 0.06
    assert 0.05 < clicks["dwell_ms"].isna().mean() < 0.15
    assert purchases.drop(columns="amount").notna().all().all()
    assert clicks.drop(columns="dwell_ms").notna().all().all()


def test_statuses_countries_and_merchants_are_skewed(purchases: pd.DataFrame) -> None:
    status = purchases["status"].value_counts(normalize=True)
    assert set(status.index) == {"completed", "refunded", "pending"}
    assert status["completed"] > 0.8
    country = purchases["country"].value_counts(normalize=True)
    assert 3 <= len(country) <= 10 and country.iloc[0] > 2 * country.iloc[-1]
    merchants = purchases["merchant_id"].value_counts()
    assert 40 <= len(merchants) <= 50
    assert merchants.iloc[0] > 5 * merchants.median()


@pytest.mark.parametrize("make", [purchases_frame, clicks_frame])
def test_user_activity_is_skewed(make) -> None:
    per_user = make(START, DAYS, USERS, 11)["user_id"].value_counts()
    assert per_user.iloc[0] > 5 * per_user.median()


@pytest.mark.parametrize("make", [purchases_frame, clicks_frame])
def test_some_keys_go_quiet_for_weeks_then_come_back(make) -> None:
    frame = make(START, DAYS, USERS, 11)
    active = frame["user_id"].value_counts()
    busy = active[active >= DAYS].index  # users that normally buy/click every day
    gaps = (
        frame[frame["user_id"].isin(busy)]
        .sort_values("event_ts")
        .groupby("user_id")["event_ts"]
        .apply(lambda ts: ts.diff().max())
    )
    assert (gaps >= pd.Timedelta(days=14)).any()


def test_rejects_empty_ranges() -> None:
    with pytest.raises(ValueError, match="days"):
        purchases_frame(START, 0, 10, 1)
    with pytest.raises(ValueError, match="users"):
        clicks_frame(START, 10, 0, 1)


def test_write_sample_sources_writes_readable_files(tmp_path: Path) -> None:
    counts = write_sample_sources(tmp_path, start=START, days=10, users=50, seed=5)

    parquet_files = list((tmp_path / "raw" / "purchases").glob("*.parquet"))
    assert len(parquet_files) == 1
    table = pq.read_table(parquet_files[0])
    assert table.schema.field("event_ts").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("user_id").type == pa.int64()
    assert table.num_rows == counts["purchases"]
    expected = purchases_frame(START, 10, 50, 5)
    pd.testing.assert_frame_equal(table.to_pandas().astype(expected.dtypes.to_dict()), expected)

    csv_files = list((tmp_path / "raw" / "clicks").glob("*.csv"))
    assert len(csv_files) == 1
    with csv_files[0].open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["user_id", "page", "dwell_ms", "event_ts"]
    assert len(rows) == counts["clicks"]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", r["event_ts"]) for r in rows)
    assert any(r["event_ts"].endswith("T00:00:00.000000Z") for r in rows)
    assert any(r["dwell_ms"] == "" for r in rows)
    assert all(r["dwell_ms"] == "" or r["dwell_ms"].isdigit() for r in rows)

    clicks = clicks_frame(START, 10, 50, 5)
    parsed = pd.read_csv(csv_files[0], dtype={"dwell_ms": "Int64"})
    parsed["event_ts"] = pd.to_datetime(parsed["event_ts"], utc=True, format="ISO8601").astype("datetime64[us, UTC]")
    pd.testing.assert_frame_equal(parsed.astype(clicks.dtypes.to_dict()), clicks)


def test_write_sample_sources_overwrites_previous_output(tmp_path: Path) -> None:
    write_sample_sources(tmp_path, start=START, days=10, users=80, seed=1)
    (tmp_path / "raw" / "clicks" / "stale.csv").write_text("user_id,page,dwell_ms,event_ts\n")
    counts = write_sample_sources(str(tmp_path), start=START, days=5, users=30, seed=2)

    assert [p.name for p in (tmp_path / "raw" / "clicks").iterdir()] == ["part-00000.csv"]
    assert len(list((tmp_path / "raw" / "purchases").iterdir())) == 1
    assert pq.read_table(tmp_path / "raw" / "purchases").num_rows == counts["purchases"]
    assert len(pd.read_csv(tmp_path / "raw" / "clicks" / "part-00000.csv")) == counts["clicks"]


def test_default_size_is_about_100k_rows_per_source(tmp_path: Path) -> None:
    counts = write_sample_sources(tmp_path)
    assert 80_000 <= counts["purchases"] <= 120_000
    assert 80_000 <= counts["clicks"] <= 120_000
