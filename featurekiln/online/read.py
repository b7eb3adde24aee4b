"""``get_features``: read the online values of a batch of keys, one backend round trip per call.

Stores are cached per process and config (their clients pool connections), and
so is each view's :class:`OnlineTable`, which reads need to parse the keys.
A stored row is returned only if its ``ds`` is at least the view's newest
completed push: a key absent from the newest snapshot has no online value even
before the push's sweep has deleted it, and so no value older than the ttl
relative to the newest snapshot is ever returned.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from featurekiln.online.codec import day_from_number, from_wire, timestamp_from_micros, wire_key
from featurekiln.online.config import online_store_config, open_store
from featurekiln.online.errors import OnlineKeyError, ViewNotOnlineError
from featurekiln.online.protocol import OnlineStore, OnlineTable, ReadResult, StoreConfig
from featurekiln.settings import Settings

_lock = threading.Lock()
_stores: dict[str, OnlineStore] = {}
_tables: dict[tuple[str, str], OnlineTable] = {}


def store_for(config: StoreConfig) -> OnlineStore:
    """The process's store for ``config`` (created once, then reused: connection pooling)."""
    key = config.model_dump_json()
    store = _stores.get(key)
    if store is None:
        with _lock:
            store = _stores.get(key) or open_store(config)
            _stores[key] = store
    return store


def close_stores() -> None:
    """Close every cached store (tests, process shutdown)."""
    with _lock:
        for store in _stores.values():
            store.close()
        _stores.clear()
        _tables.clear()


def _not_online(view: str, config: StoreConfig) -> ViewNotOnlineError:
    return ViewNotOnlineError(
        f"{view}: not in the online store {config.describe()} ({config.origin}); run `kiln push {view}`"
    )


def _table(store: OnlineStore, cache_key: tuple[str, str], view: str, config: StoreConfig) -> OnlineTable:
    table = _tables.get(cache_key)
    if table is None:
        schema = store.read_rows(view, []).schema
        if schema is None:
            raise _not_online(view, config)
        table = _tables[cache_key] = OnlineTable.from_json(schema)
    return table


def get_features(
    view: str,
    keys: Sequence[Mapping[str, Any]],
    features: Sequence[str] | None = None,
    *,
    settings: Settings | None = None,
) -> list[dict[str, Any] | None]:
    """The online values of ``keys``, in order: a dict per key, or None where the key is not online.

    Args:
        view: the view name.
        keys: one mapping per key, with every key column (``{"user_id": 42}``); values may be
            strings, which are parsed by the column's kind.
        features: the features to return (default: all, in definition order).
        settings: where the store is configured (default: ``Settings.from_env()``).

    Returns:
        Per key: the key columns, ``ds`` (date), ``feature_ts`` (UTC datetime) and the features.

    Raises:
        ViewNotOnlineError: the view has never been pushed to the store.
        OnlineKeyError: a key misses a key column or has a value of the wrong kind, or a
            feature is unknown.
        OnlineStoreError: the store is misconfigured or unreachable.
    """
    config = online_store_config(settings or Settings.from_env())
    store = store_for(config)
    cache_key = (config.model_dump_json(), view)
    table = _table(store, cache_key, view, config)
    wire_keys = [wire_key(table, key) for key in keys]
    result = store.read_rows(view, wire_keys)
    if result.schema is None:
        _tables.pop(cache_key, None)
        raise _not_online(view, config)
    current = OnlineTable.from_json(result.schema)
    if current != table:  # the view was re-pushed with another shape: parse the keys again
        _tables[cache_key] = current
        return get_features(view, keys, features, settings=settings)
    return decode_rows(current, wire_keys, result, features)


def decode_rows(
    table: OnlineTable, keys: Sequence[tuple[Any, ...]], result: ReadResult, features: Sequence[str] | None = None
) -> list[dict[str, Any] | None]:
    """Turn a backend's wire rows into the dicts of :func:`get_features`, hiding rows older than the newest push."""
    positions = list(range(len(table.features)))
    if features is not None:
        index = {c.name: i for i, c in enumerate(table.features)}
        unknown = [f for f in features if f not in index]
        if unknown:
            raise OnlineKeyError(
                f"{table.name}: unknown feature(s) {', '.join(unknown)} (features: {', '.join(index)})"
            )
        positions = [index[f] for f in features]
    wanted = [(table.features[i].name, table.features[i].kind, i + 2) for i in positions]
    key_columns = [(c.name, c.kind) for c in table.keys]
    newest = result.newest
    out: list[dict[str, Any] | None] = []
    for key, row in zip(keys, result.rows, strict=True):
        if row is None or (newest is not None and row[0] < newest):
            out.append(None)
            continue
        item = {name: from_wire(kind, value) for (name, kind), value in zip(key_columns, key, strict=True)}
        item["ds"] = day_from_number(row[0])
        item["feature_ts"] = timestamp_from_micros(row[1])
        for name, kind, at in wanted:
            item[name] = from_wire(kind, row[at])
        out.append(item)
    return out
