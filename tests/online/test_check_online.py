"""``check_online`` on every backend: a value changed behind its back, a deleted key and an extra key are found."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from featurekiln.errors import OnlineStoreError
from featurekiln.offline.delta_table import table_path
from featurekiln.online import Column, OnlineTable, online_table, open_store, parse_store_url
from featurekiln.online.codec import to_wire
from featurekiln.online.consistency import check_online, compare_rows
from featurekiln.online.push import push_view
from featurekiln.settings import Settings
from tests.online.test_push import D2, feature_row, view, warehouse_with_table  # noqa: F401 - a fixture

pytestmark = pytest.mark.slow


def wire(table, row: tuple) -> list:  # noqa: ANN001
    return [to_wire(column.kind, value) for column, value in zip(table.columns, row, strict=True)]


def test_check_online_finds_changed_deleted_and_extra_keys(spark, warehouse_with_table: Path, store: str) -> None:  # noqa: ANN001, F811
    settings = Settings(warehouse=str(warehouse_with_table), online_store=store)
    with pytest.raises(OnlineStoreError, match="not in the online store"):
        check_online(spark, view(), settings)
    push_view(spark, view(), settings)
    clean = check_online(spark, view(), settings, sample=None)
    assert clean.ok, clean.examples
    assert (clean.ds, clean.online_ds, clean.compared, clean.scanned) == (D2, D2, 40, 40)

    schema = spark.read.format("delta").load(table_path(settings, "user_purchases")).schema
    table = online_table(view(), schema)
    backend = open_store(parse_store_url(store))
    try:
        changed = list(feature_row(20, D2))
        changed[4] += 1  # purchases_7d, same ds: a corrected value replaces the stored one
        backend.write_rows(table, [wire(table, tuple(changed))])
        backend.delete_keys("user_purchases", [(30, "s0")])
        backend.write_rows(table, [wire(table, feature_row(99, D2))])  # a key the snapshot does not have
    finally:
        backend.close()

    found = check_online(spark, view(), settings, sample=None)
    assert (found.mismatched, found.missing, found.extra) == (1, 1, 1)
    assert (found.compared, found.scanned) == (40, 40)
    assert not found.ok
    assert f"mismatch: user_purchases user_id=20 shop=s2: purchases_7d: table {20 + D2.day}, online {21 + D2.day}" in found.examples
    assert "missing online: user_purchases user_id=30 shop=s0" in found.examples
    assert "extra online: user_purchases user_id=99 shop=s0" in found.examples

    sampled = check_online(spark, view(), settings, sample=5)
    assert (sampled.compared, sampled.scanned) == (5, 5)


def test_values_must_match_with_their_types() -> None:
    table = OnlineTable("v", (Column("k", "int"),), (Column("n", "int"), Column("f", "float"), Column("b", "bool")), 7)
    day, stamp = date(2025, 1, 31), datetime(2025, 2, 1, tzinfo=UTC)
    rows = [(1, 20119, 1738368000000000, 3, 1.0, True)] * 4
    base = {"k": 1, "ds": day, "feature_ts": stamp, "n": 3, "f": 1.0, "b": True}
    served = [base, {**base, "n": 3.0}, {**base, "f": 1}, None]
    mismatched, missing, examples = compare_rows(table, rows, served)
    assert (mismatched, missing) == (2, 1)
    assert examples == [
        "mismatch: v k=1: n: table 3, online 3.0",
        "mismatch: v k=1: f: table 1.0, online 1",
        "missing online: v k=1",
    ]
