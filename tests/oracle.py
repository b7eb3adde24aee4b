"""An independent, deliberately naive oracle of the snapshot semantics in docs/semantics.md.

It does not import featurekiln. It reads the raw YAML mapping of a definition
and, for every snapshot day and every key, filters the events of the window
with plain pandas and aggregates them in plain Python. Slow on purpose: it is
meant to be obviously right, not fast.

Limits: ``expr`` must be a plain column name, and ``filter``/``query`` are not
evaluated (tests apply the equivalent pandas transformation to the events).
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

_DAYS = re.compile(r"^\s*([1-9][0-9]*)d\s*$")
_MISSING = object()


def parse_days(text: object) -> int:
    """``'7d'`` -> 7."""
    match = _DAYS.match(str(text))
    if not match:
        raise ValueError(f"not a whole number of days: {text!r}")
    return int(match.group(1))


def effective_ttl(definition: dict) -> int:
    """The ttl in days: ``ttl`` if given, else the longest window."""
    if definition.get("ttl") is not None:
        return parse_days(definition["ttl"])
    return max(parse_days(f["window"]) for f in definition["features"] if f.get("window") is not None)


def is_null(value: Any) -> bool:
    """True for None, NaN, NaT and pandas.NA."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    return False


def plain(value: Any) -> Any:
    """A numpy/pandas scalar as a plain Python value (None for every kind of null)."""
    if is_null(value):
        return None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.str_):
        return str(value)
    return value


def utc_timestamp(value: Any) -> pd.Timestamp | None:
    """A timestamp as tz-aware UTC (naive values are taken as UTC)."""
    if is_null(value):
        return None
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def cut_off(ds: date) -> pd.Timestamp:
    """The cut-off of snapshot ``ds``: ``ds + 1 day`` at 00:00 UTC (exclusive)."""
    return pd.Timestamp(ds + timedelta(days=1)).tz_localize("UTC")


def aggregate(agg: str, rows: list[tuple[pd.Timestamp, Any]], has_expr: bool) -> Any:
    """Aggregate ``(event_ts, value)`` pairs of one key and one window.

    ``count`` without expr counts the rows; every other case ignores null values,
    NaN included (docs/semantics.md: a floating NaN counts as null).
    """
    if agg == "count" and not has_expr:
        return len(rows)
    values = [(ts, v) for ts, v in rows if not is_null(v)]
    if agg == "count":
        return len(values)
    if agg == "count_distinct":
        return len({v for _, v in values})
    if not values:
        return None
    plain_values = [v for _, v in values]
    if agg == "sum":
        if all(isinstance(v, int) for v in plain_values):
            return sum(plain_values)
        return math.fsum(plain_values)
    if agg == "avg":
        return math.fsum(plain_values) / len(plain_values)
    if agg == "min":
        return min(plain_values)
    if agg == "max":
        return max(plain_values)
    if agg == "last":
        latest = max(ts for ts, _ in values)
        return max(v for ts, v in values if ts == latest)
    if agg == "first":
        earliest = min(ts for ts, _ in values)
        return max(v for ts, v in values if ts == earliest)
    raise ValueError(f"unknown aggregation {agg!r}")


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def expected_snapshots(events: pd.DataFrame, definition: dict, first: date, last: date) -> pd.DataFrame:
    """The feature table docs/semantics.md prescribes for snapshots ``first`` .. ``last`` (inclusive).

    Args:
        events: the source rows after any filter/query (tests apply those in pandas).
        definition: the raw YAML mapping of the view.
        first: first snapshot day.
        last: last snapshot day.

    Returns:
        Columns: keys..., ``ds`` (datetime.date), ``feature_ts`` (UTC cut-off),
        then the features in definition order, as plain Python values (object
        columns; None for null).
    """
    keys: list[str] = list(definition["entity"]["keys"])
    ts_col: str = definition["source"]["timestamp"]
    features: list[dict] = list(definition["features"])
    ttl = effective_ttl(definition)

    rows_by_key: dict[tuple, list[dict[str, Any]]] = {}
    for record in events.to_dict("records"):
        key = tuple(plain(record[k]) for k in keys)
        ts = utc_timestamp(record[ts_col])
        if ts is None or any(k is None for k in key):
            continue
        item = {name: plain(value) for name, value in record.items()}
        item[ts_col] = ts
        rows_by_key.setdefault(key, []).append(item)

    out: list[dict[str, Any]] = []
    for ds in _days(first, last):
        end = cut_off(ds)
        for key in sorted(rows_by_key):
            events_of_key = rows_by_key[key]
            if not any(end - timedelta(days=ttl) <= e[ts_col] < end for e in events_of_key):
                continue
            row: dict[str, Any] = dict(zip(keys, key, strict=True))
            row["ds"] = ds
            row["feature_ts"] = end
            for feature in features:
                window = parse_days(feature["window"]) if feature.get("window") is not None else ttl
                expr = feature.get("expr")
                if expr is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(expr)):
                    raise ValueError(f"the oracle only evaluates plain column names, got expr {expr!r}")
                in_window = [e for e in events_of_key if end - timedelta(days=window) <= e[ts_col] < end]
                pairs = [(e[ts_col], e[expr] if expr is not None else _MISSING) for e in in_window]
                row[feature["name"]] = aggregate(feature["agg"], pairs, expr is not None)
            out.append(row)

    columns = [*keys, "ds", "feature_ts", *(f["name"] for f in features)]
    return pd.DataFrame({c: pd.Series([r[c] for r in out], dtype=object) for c in columns}, columns=columns)


def _normalize(value: Any) -> Any:
    value = plain(value)
    if isinstance(value, pd.Timestamp | datetime | np.datetime64):
        return utc_timestamp(value)
    return value


def _day(value: Any) -> date | None:
    if is_null(value):
        return None
    if isinstance(value, datetime | pd.Timestamp):
        return value.date()
    if isinstance(value, date):
        return value
    return pd.Timestamp(value).date()


def values_equal(actual: Any, expected: Any) -> bool:
    """Nulls equal nulls, floats within rel 1e-9, ints exactly, timestamps as UTC instants."""
    actual, expected = _normalize(actual), _normalize(expected)
    if actual is None or expected is None:
        return actual is None and expected is None
    numbers = (int, float)
    if isinstance(actual, numbers) and isinstance(expected, numbers) and not isinstance(actual, bool):
        if isinstance(expected, int) and not isinstance(expected, bool):
            if isinstance(actual, float):
                return actual.is_integer() and int(actual) == expected
            return actual == expected
        return math.isclose(float(actual), float(expected), rel_tol=1e-9, abs_tol=1e-12)
    return type(actual) is type(expected) and actual == expected or (
        isinstance(actual, pd.Timestamp) and isinstance(expected, pd.Timestamp) and actual == expected
    )


def _sorted_records(frame: pd.DataFrame, keys: list[str]) -> list[dict[str, Any]]:
    records = []
    for record in frame.to_dict("records"):
        record = {k: _normalize(v) for k, v in record.items()}
        record["ds"] = _day(record["ds"])
        records.append(record)

    def order(record: dict[str, Any]) -> tuple:
        parts = [(record[k] is None, str(type(record[k])), 0 if record[k] is None else record[k]) for k in keys]
        return (*parts, record["ds"])

    return sorted(records, key=order)


def _identity(record: dict[str, Any], keys: list[str]) -> tuple:
    return (*(record[k] for k in keys), record["ds"])


def frame_differences(actual: pd.DataFrame, expected: pd.DataFrame, keys: list[str], limit: int = 5) -> list[str]:
    """How two feature tables differ, as readable lines (empty when they match).

    Rows are matched by ``keys + ds``; floats compare with relative tolerance
    1e-9, ints exactly, nulls equal nulls. At most ``limit`` rows are detailed.
    """
    problems: list[str] = []
    if list(actual.columns) != list(expected.columns):
        problems.append(f"columns differ:\n  actual   {list(actual.columns)}\n  expected {list(expected.columns)}")
    columns = [c for c in expected.columns if c in actual.columns]
    got = _sorted_records(actual, keys)
    want = _sorted_records(expected, keys)
    got_ids = {_identity(r, keys): r for r in got}
    want_ids = {_identity(r, keys): r for r in want}
    if len(got_ids) != len(got):
        problems.append(f"actual has {len(got) - len(got_ids)} duplicate rows for the same keys + ds")
    extra = [i for i in got_ids if i not in want_ids]
    missing = [i for i in want_ids if i not in got_ids]
    if extra:
        problems.append(f"{len(extra)} unexpected rows (keys..., ds), first: {extra[:limit]}")
    if missing:
        problems.append(f"{len(missing)} missing rows (keys..., ds), first: {missing[:limit]}")

    differing = []
    for identity, want_row in want_ids.items():
        got_row = got_ids.get(identity)
        if got_row is None:
            continue
        bad = [c for c in columns if not values_equal(got_row.get(c), want_row.get(c))]
        if bad:
            differing.append((identity, bad, got_row, want_row))
    if differing:
        problems.append(f"{len(differing)} of {len(want_ids)} rows differ; first {min(limit, len(differing))}:")
        for identity, bad, got_row, want_row in differing[:limit]:
            lines = [f"  row {identity}:"]
            for c in bad:
                lines.append(f"    {c}: actual {got_row.get(c)!r} != expected {want_row.get(c)!r}")
            problems.append("\n".join(lines))
    return problems


def assert_frames_match(actual: pd.DataFrame, expected: pd.DataFrame, keys: list[str], limit: int = 5) -> None:
    """Assert that two feature tables hold the same rows and values (see :func:`frame_differences`).

    On mismatch the AssertionError message (also printed) shows the first
    ``limit`` differing rows column by column.
    """
    problems = frame_differences(actual, expected, keys, limit)
    if problems:
        message = "feature tables differ:\n" + "\n".join(problems)
        print(message)
        raise AssertionError(message)
