"""The OnlineStore contract, run unchanged against SQLite, a real redis-server and moto server (DynamoDB)."""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from featurekiln.online import Column, OnlineTable, get_features, open_store, parse_store_url
from featurekiln.online.codec import day_number, to_wire
from featurekiln.online.errors import OnlineKeyError, ViewNotOnlineError
from featurekiln.online.push import PushResult, push_rows
from featurekiln.settings import Settings

TABLE = OnlineTable(
    name="user_purchases",
    keys=(Column("user_id", "int"),),
    features=(
        Column("purchases_7d", "int"),
        Column("spend_30d", "float"),
        Column("last_category", "string"),
        Column("is_vip", "bool"),
        Column("first_day", "date"),
        Column("last_seen", "timestamp"),
    ),
    ttl_days=7,
)
PAIR = OnlineTable(
    name="merchant_country",
    keys=(Column("merchant_id", "int"), Column("country", "string")),
    features=(Column("orders_1d", "int"), Column("spend_7d", "float")),
    ttl_days=30,
)
D1, D2, D3 = date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 3)


def cutoff(ds: date) -> datetime:
    return datetime(ds.year, ds.month, ds.day, tzinfo=UTC) + timedelta(days=1)


def wire(table: OnlineTable, key: Sequence[Any], ds: date, features: Sequence[Any]) -> tuple[Any, ...]:
    """A wire row from Python values."""
    values = [*key, ds, cutoff(ds), *features]
    return tuple(to_wire(column.kind, value) for column, value in zip(table.columns, values, strict=True))


def sample(user_id: int, ds: date) -> list[Any]:
    """Features of ``user_id`` in snapshot ``ds``: every kind, and nulls on every third key."""
    salt = ds.toordinal() % 100
    if user_id % 3 == 0:
        return [0, None, None, None, None, None]
    return [
        user_id * 10 + salt,
        user_id / 7 + salt,
        f"cat-{user_id}-é-{salt}",
        user_id % 2 == 0,
        date(2024, 1, 1) + timedelta(days=user_id),
        datetime(2025, 2, 1, 12, 30, 15, 123456, tzinfo=UTC) + timedelta(seconds=user_id + salt),
    ]


def snapshot(ds: date, users: Sequence[int]) -> list[tuple[Any, ...]]:
    return [wire(TABLE, [u], ds, sample(u, ds)) for u in users]


def expected(user_id: int, ds: date) -> dict[str, Any]:
    names = [c.name for c in TABLE.features]
    return {"user_id": user_id, "ds": ds, "feature_ts": cutoff(ds), **dict(zip(names, sample(user_id, ds), strict=True))}


def push(url: str, ds: date, rows: Sequence[tuple[Any, ...]], table: OnlineTable = TABLE, batch: int = 10_000) -> PushResult:
    return push_rows(parse_store_url(url), table, ds, rows, batch_size=batch)


def get(url: str, keys: Sequence[dict[str, Any]], view: str = "user_purchases", **kwargs: Any) -> list[dict[str, Any] | None]:
    return get_features(view, keys, settings=Settings(online_store=url), **kwargs)


def users(*ids: int) -> list[dict[str, Any]]:
    return [{"user_id": i} for i in ids]


def test_round_trip_of_every_feature_kind_and_nulls(store: str) -> None:
    result = push(store, D1, snapshot(D1, range(1, 31)))
    assert (result.rows, result.written, result.skipped, result.deleted, result.newest) == (30, 30, 0, 0, D1)
    assert get(store, users(*range(1, 31))) == [expected(u, D1) for u in range(1, 31)]
    row = get(store, users(2))[0]
    assert type(row["purchases_7d"]) is int and type(row["spend_30d"]) is float and type(row["is_vip"]) is bool
    assert row["last_seen"].tzinfo is not None and row["feature_ts"] == datetime(2025, 3, 2, tzinfo=UTC)
    assert get(store, users(3))[0]["spend_30d"] is None


def test_multi_column_keys_and_string_values_parsed_by_kind(store: str) -> None:
    rows = [wire(PAIR, [m, c], D1, [m * 2, m / 2]) for m in range(5) for c in ("DE", "FR", "F|R", '"x"')]
    push(store, D1, rows, table=PAIR)
    got = get(store, [{"merchant_id": "3", "country": "FR"}, {"merchant_id": 3, "country": "F|R"},
                      {"country": '"x"', "merchant_id": 4}, {"merchant_id": 3, "country": "ES"}], view="merchant_country")
    assert [g and (g["merchant_id"], g["country"], g["orders_1d"]) for g in got] == [
        (3, "FR", 6), (3, "F|R", 6), (4, '"x"', 8), None
    ]


def test_batch_read_keeps_order_with_missing_and_repeated_keys(store: str) -> None:
    push(store, D1, snapshot(D1, range(0, 200, 2)))
    wanted = [7, 4, 4, 199, 0, 198, 1000, 2]
    got = get(store, users(*wanted))
    assert got == [expected(u, D1) if u % 2 == 0 and u < 200 else None for u in wanted]
    hundred = list(range(100))
    assert [g is not None for g in get(store, users(*hundred))] == [u % 2 == 0 for u in hundred]


def test_an_older_snapshot_pushed_later_never_overwrites_a_newer_one(store: str) -> None:
    push(store, D2, snapshot(D2, range(0, 50)))
    late = push(store, D1, snapshot(D1, range(0, 60)))  # a backfill or a retried old run
    assert (late.written, late.skipped, late.newest) == (10, 50, D2)
    assert late.deleted == 10  # keys 50..59 exist only in the older snapshot: swept again
    assert get(store, users(*range(0, 60))) == [expected(u, D2) for u in range(0, 50)] + [None] * 10


def test_concurrent_overlapping_pushes_converge_to_the_newest(store: str) -> None:
    days = [D1, D2, D3, D1, D2]
    population = {D1: range(0, 80), D2: range(10, 90), D3: range(20, 100)}
    errors: list[BaseException] = []

    def run(ds: date, seed: int) -> None:
        rows = snapshot(ds, population[ds])
        random.Random(seed).shuffle(rows)
        try:
            push(store, ds, rows, batch=7)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(ds, i)) for i, ds in enumerate(days)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert get(store, users(*range(0, 100))) == [None] * 20 + [expected(u, D3) for u in range(20, 100)]


def test_keys_absent_from_a_newer_snapshot_are_deleted(store: str) -> None:
    push(store, D1, snapshot(D1, range(10)))
    result = push(store, D2, snapshot(D2, range(5)))
    assert (result.written, result.deleted) == (5, 5)
    assert get(store, users(*range(10))) == [expected(u, D2) for u in range(5)] + [None] * 5
    raw = open_store(parse_store_url(store)).read_rows(TABLE.name, [(u,) for u in range(10)])
    assert [r is None for r in raw.rows] == [False] * 5 + [True] * 5  # gone from storage, not only hidden


def test_rows_older_than_the_newest_push_are_never_returned_even_before_the_sweep(store: str) -> None:
    backend = open_store(parse_store_url(store))
    backend.ensure_table(TABLE)
    newest = D1 + timedelta(days=TABLE.ttl_days + 1)
    backend.write_rows(TABLE, snapshot(D1, [1, 2]) + snapshot(newest, [3]))
    backend.advance_newest(TABLE, day_number(newest))  # a push that died before its sweep
    assert get(store, users(1, 2, 3)) == [None, None, expected(3, newest)]


@pytest.mark.parametrize("store", ["redis", "dynamodb"], indirect=True)  # SQLite: read-time check and sweep only
def test_storage_expiry_follows_the_ttl(store: str) -> None:
    push(store, D1, snapshot(D1, [1]))
    ttl = TABLE.ttl_days * 86_400
    config = parse_store_url(store)
    if config.type == "redis":
        import redis

        client = redis.Redis(host=config.host, port=config.port)
        assert ttl - 60 <= client.ttl(f"{config.key_prefix}:{{user_purchases}}:[1]") <= ttl
    else:
        import time

        import boto3

        client = boto3.client("dynamodb", region_name=config.region, endpoint_url=config.endpoint_url)
        name = f"{config.prefix}user_purchases"
        assert client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]["AttributeName"] == "exp"
        expires = int(client.get_item(TableName=name, Key={"pk": {"S": "[1]"}})["Item"]["exp"]["N"])
        assert abs(expires - (time.time() + ttl)) < 60


def test_pushing_the_same_snapshot_twice_changes_nothing(store: str) -> None:
    push(store, D1, snapshot(D1, range(20)))
    push(store, D2, snapshot(D2, range(10)))
    backend = open_store(parse_store_url(store))
    before = backend.read_rows(TABLE.name, [(u,) for u in range(20)])
    again = push(store, D2, snapshot(D2, range(10)))
    assert (again.written, again.skipped, again.deleted) == (0, 10, 0)
    assert backend.read_rows(TABLE.name, [(u,) for u in range(20)]) == before


def test_a_corrected_rerun_of_the_same_day_replaces_its_values(store: str) -> None:
    push(store, D1, snapshot(D1, range(5)))
    fixed = [wire(TABLE, [u], D1, [999, *sample(u, D1)[1:]]) for u in range(5)]
    assert push(store, D1, fixed).written == 5
    assert {g["purchases_7d"] for g in get(store, users(*range(5)))} == {999}


def test_delete_keys_drop_and_a_changed_shape(store: str) -> None:
    push(store, D1, snapshot(D1, range(5)))
    backend = open_store(parse_store_url(store))
    backend.delete_keys(TABLE.name, [(1,), (3,), (77,)])
    assert [g is not None for g in get(store, users(*range(5)))] == [True, False, True, False, True]
    narrower = OnlineTable(TABLE.name, TABLE.keys, TABLE.features[:1], TABLE.ttl_days)
    push(store, D2, [wire(narrower, [u], D2, [u]) for u in range(2)], table=narrower)
    assert get(store, users(0, 1, 2)) == [
        {"user_id": u, "ds": D2, "feature_ts": cutoff(D2), "purchases_7d": u} for u in (0, 1)
    ] + [None]
    backend.drop(TABLE.name)
    with pytest.raises(ViewNotOnlineError, match="kiln push user_purchases"):
        get(store, users(0))


def test_feature_selection_and_key_errors(store: str) -> None:
    push(store, D1, snapshot(D1, [1]))
    assert get(store, users(1), features=["is_vip", "purchases_7d"]) == [
        {"user_id": 1, "ds": D1, "feature_ts": cutoff(D1), "is_vip": False, "purchases_7d": 10 + D1.toordinal() % 100}
    ]
    with pytest.raises(OnlineKeyError, match="unknown feature"):
        get(store, users(1), features=["nope"])
    with pytest.raises(OnlineKeyError, match="missing user_id"):
        get(store, [{"id": 1}])
    with pytest.raises(OnlineKeyError, match="wants a int value, got 'abc'"):
        get(store, [{"user_id": "abc"}])
    with pytest.raises(ViewNotOnlineError, match="other_view"):
        get(store, users(1), view="other_view")
