"""Half-open day intervals ``[start, end)`` and the small functions over them.

An interval is a plain ``(start, end)`` tuple of :class:`datetime.date`, start
inclusive and end exclusive; an empty interval has ``start >= end``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta, timezone

Interval = tuple[date, date]
ONE_DAY = timedelta(days=1)
EPOCH = date(1970, 1, 1)


def from_inclusive(first: date, last: date) -> Interval:
    """The interval of the days ``first`` .. ``last``, both included."""
    return (first, last + ONE_DAY)


def days(interval: Interval) -> Iterator[date]:
    """Every day of ``interval`` in order (nothing for an empty interval)."""
    day, end = interval
    while day < end:
        yield day
        day += ONE_DAY


def length(interval: Interval) -> int:
    """Number of days in ``interval`` (0 when empty)."""
    return max(0, (interval[1] - interval[0]).days)


def epoch_days(interval: Interval) -> tuple[int, int]:
    """``interval``'s start and end as numbers of days since 1970-01-01 (how tiles store their day)."""
    return (interval[0] - EPOCH).days, (interval[1] - EPOCH).days


def chunks(interval: Interval, size: int) -> list[Interval]:
    """Split ``interval`` into consecutive intervals of ``size`` days (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1 day, got {size}")
    start, end = interval
    out: list[Interval] = []
    while start < end:
        stop = min(start + timedelta(days=size), end)
        out.append((start, stop))
        start = stop
    return out


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted union of ``intervals``: overlapping or touching intervals are joined, empty ones dropped."""
    out: list[Interval] = []
    for start, end in sorted(i for i in intervals if i[0] < i[1]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def missing(wanted: Interval, have: Iterable[Interval]) -> list[Interval]:
    """The parts of ``wanted`` that ``have`` does not cover, in order."""
    out: list[Interval] = []
    cursor, end = wanted
    for start, stop in merge(have):
        if stop <= cursor or start >= end:
            continue
        if start > cursor:
            out.append((cursor, start))
        cursor = max(cursor, stop)
    if cursor < end:
        out.append((cursor, end))
    return out


def widen_back(interval: Interval, days_back: int) -> Interval:
    """``interval`` with its start moved ``days_back`` days earlier."""
    return (interval[0] - timedelta(days=days_back), interval[1])


def gaps(intervals: Iterable[Interval]) -> list[Interval]:
    """The days between the first and the last day of ``intervals`` that none of them covers."""
    merged = merge(intervals)
    return [(left[1], right[0]) for left, right in zip(merged, merged[1:])]


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def latest_complete_day(moment: datetime) -> date:
    """The latest snapshot day whose cut-off (next midnight, UTC) is at or before ``moment``."""
    return as_utc(moment).date() - ONE_DAY
