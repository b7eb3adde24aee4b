"""Which snapshot days an Airflow run computes. Pure: plain dates and datetimes, no Airflow.

Rules (all days UTC; a snapshot ``ds`` has its cut-off at ``ds + 1 day`` 00:00):

* Trigger-form backfill: the params ``start`` .. ``end`` (both included).
* A run with a data interval ``[start, end)`` of positive length (a scheduled
  run, a catch-up run, a run of Airflow's native backfill): every ``ds`` whose
  cut-off lies in ``(start, end]``. For ``@daily`` that is ``ds = start.date()``;
  for a weekly schedule it is the seven days of the week; a run whose interval
  contains no midnight (an hourly run during the day) computes nothing.
* A run without a usable data interval (a manual run triggered without params,
  whose interval is empty or missing): the latest complete day at its logical
  date (or, without one, when it was allowed to run), that is
  ``date(reference) - 1 day``. This is the same snapshot the nightly run right
  after that moment computes, and the one the point-in-time rule serves at it.

A run without params then computes what ``kiln run --until <its last day>``
would (:func:`featurekiln.orchestration.steps.plan_dag_run`): its days, the
``lookback`` days before them (late data) and any day a missed night left out.

The days come back as :data:`RunDays`: the half-open interval of snapshot days
and the reason they were chosen (an empty interval computes nothing).
"""

from __future__ import annotations

from datetime import date, datetime

from featurekiln.errors import PlanError
from featurekiln.planning.intervals import ONE_DAY, Interval, latest_complete_day
from featurekiln.planning.intervals import as_utc as _utc

RunDays = tuple[Interval, str]


def interval_days(start: datetime, end: datetime) -> Interval:
    """The snapshot days whose cut-off lies in ``(start, end]``, as a half-open interval.

    The result is empty when the interval holds no midnight.
    """
    return _utc(start).date(), latest_complete_day(_utc(end)) + ONE_DAY


def parse_day(value: object, name: str) -> date | None:
    """Parse a param value (``YYYY-MM-DD``, a date or None/empty) into a date.

    Raises:
        PlanError: the value is not a date; the message names the param.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return _utc(value).date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise PlanError(f"param {name}: {value!r} is not a date like 2025-01-31") from None


def requested_range(start: object, end: object, view_start: date, now: datetime) -> RunDays | None:
    """The backfill range the trigger form asks for, or None when neither param is set.

    Args:
        start: the ``start`` param (first snapshot day, included).
        end: the ``end`` param (last snapshot day, included); defaults to ``start``.
        view_start: the view's ``start``; no snapshot before it exists.
        now: the current time; the last day must be complete at ``now``.

    Raises:
        PlanError: a param is not a date, ``start`` is missing while ``end`` is set,
            ``end`` is before ``start``, ``start`` is before the view's start, or
            ``end`` is not a complete day yet. The message names the param.
    """
    first, last = parse_day(start, "start"), parse_day(end, "end")
    if first is None and last is None:
        return None
    if first is None:
        raise PlanError(f"param start: is required when end is set (end = {last})")
    last = first if last is None else last
    problems = []
    if last < first:
        problems.append(f"param end: {last} is before start {first}")
    if first < view_start:
        problems.append(f"param start: {first} is before the view's start {view_start}")
    complete = latest_complete_day(now)
    if last > complete:
        problems.append(
            f"param end: {last} is not a complete day yet (its cut-off is {last + ONE_DAY} 00:00 UTC); "
            f"the latest complete day is {complete}"
        )
    if problems:
        raise PlanError("; ".join(problems))
    return (first, last + ONE_DAY), "backfill requested with params start/end"


def scheduled_range(
    interval_start: datetime | None,
    interval_end: datetime | None,
    reference: datetime,
    *,
    view_start: date | None = None,
) -> RunDays:
    """The snapshot days of a run without params (see the module rules).

    Args:
        interval_start: the run's data interval start, or None.
        interval_end: the run's data interval end, or None.
        reference: the run's logical date, or when it may run if it has none;
            used only when the data interval is missing or empty.
        view_start: clip the range so that it never starts before the view's start.
    """
    if interval_start is not None and interval_end is not None and interval_end > interval_start:
        first, end = interval_days(interval_start, interval_end)
        reason = f"data interval {_utc(interval_start).isoformat()} .. {_utc(interval_end).isoformat()}"
    else:
        first = latest_complete_day(reference)
        end = first + ONE_DAY
        reason = f"latest complete day at {_utc(reference).isoformat()}"
    if view_start is not None and first < view_start:
        first = view_start
        reason += f", clipped to the view's start {view_start}"
    return (first, end), reason
