"""Conversions between Python values, wire values and the packed text that Redis and DynamoDB store.

Wire values (see :mod:`featurekiln.online.protocol`): a ``date`` is its day number
since 1970-01-01, a timestamp its microseconds since the epoch (UTC); ints,
floats, strings, bools and None stay as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from featurekiln.online.errors import OnlineKeyError
from featurekiln.online.protocol import Column, Kind, OnlineTable, WireKey, WireRow

EPOCH_DAY = date(1970, 1, 1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICRO = timedelta(microseconds=1)
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def day_number(day: date) -> int:
    """Days since 1970-01-01."""
    return (day - EPOCH_DAY).days


def day_from_number(number: int) -> date:
    """The date ``number`` days after 1970-01-01."""
    return EPOCH_DAY + timedelta(days=number)


def micros(moment: datetime) -> int:
    """Microseconds since the epoch; a naive datetime is taken as UTC."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return (aware - EPOCH) // _ONE_MICRO


def timestamp_from_micros(number: int) -> datetime:
    """The UTC datetime ``number`` microseconds after the epoch."""
    return EPOCH + timedelta(microseconds=number)


def to_wire(kind: Kind, value: Any) -> Any:
    """A Python value of ``kind`` in wire form (None stays None)."""
    if value is None:
        return None
    if kind == "date":
        return day_number(value)
    if kind == "timestamp":
        return micros(value)
    return value


def from_wire(kind: Kind, value: Any) -> Any:
    """The Python value of a wire value of ``kind`` (None stays None)."""
    if value is None:
        return None
    if kind == "date":
        return day_from_number(value)
    if kind == "timestamp":
        return timestamp_from_micros(value)
    if kind == "bool":
        return bool(value)
    if kind == "float":
        return float(value)
    return value


def _parse_key_value(column: Column, value: Any) -> Any:
    kind = column.kind
    if kind == "string":
        return value if isinstance(value, str) else str(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if str(value).strip().lower() in _TRUE | _FALSE:
            return str(value).strip().lower() in _TRUE
        raise ValueError("not a boolean")
    if kind == "int":
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError("not an integer")
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "date":
        if isinstance(value, datetime):
            raise ValueError("a datetime, not a date")
        return day_number(value if isinstance(value, date) else date.fromisoformat(str(value)))
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return micros(moment)


def wire_key(table: OnlineTable, key: Mapping[str, Any]) -> WireKey:
    """The wire key of a mapping ``{key column: value}``; strings (from a command line) are parsed by kind.

    Raises:
        OnlineKeyError: a key column is missing or null, a column is not a key column, or a value
            does not parse as its column's kind.
    """
    names = [c.name for c in table.keys]
    if len(key) != len(names) or any(n not in key for n in names):
        missing = [n for n in names if n not in key]
        extra = [n for n in key if n not in names]
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unknown column(s) {', '.join(map(str, extra))}"] if extra else []
        )
        raise OnlineKeyError(f"{table.name}: key {dict(key)!r}: {'; '.join(parts)} (key columns: {', '.join(names)})")
    out = []
    for column in table.keys:
        value = key[column.name]
        try:
            if value is None:
                raise ValueError("a key column cannot be null")
            out.append(_parse_key_value(column, value))
        except (TypeError, ValueError) as error:
            raise OnlineKeyError(
                f"{table.name}: key column {column.name} wants a {column.kind} value, got {value!r} ({error})"
            ) from None
    return tuple(out)


def encode_key(key: WireKey) -> str:
    """A wire key as unambiguous compact text (a JSON array), the row's name in Redis and DynamoDB."""
    return orjson.dumps(list(key)).decode()


def pack(values: Sequence[Any]) -> str:
    """Pack ``(ds, feature_ts, *features)`` as a compact JSON array; ``ds`` comes first so Lua can read it.

    orjson writes no raw newline (Redis pushes send many packed rows as lines of
    one argument) and writes a non-finite float as null.
    """
    return orjson.dumps(list(values)).decode()


def unpack(text: str | bytes) -> list[Any]:
    """Inverse of :func:`pack`."""
    return orjson.loads(text)


def split_row(table: OnlineTable, row: WireRow) -> tuple[WireKey, Sequence[Any]]:
    """Split a wire row to write into its key and its ``(ds, feature_ts, *features)`` values."""
    width = len(table.keys)
    return tuple(row[:width]), row[width:]
