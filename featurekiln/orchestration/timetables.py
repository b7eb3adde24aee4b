"""The Airflow schedule of a view, from the ``schedule`` string of its definition.

Cron expressions and presets (``@daily``, ``0 3 * * *``) become a
``CronDataIntervalTimetable`` in UTC, whatever Airflow's
``create_cron_data_intervals`` setting says: each run then covers the data
interval ``[previous tick, tick)`` and computes the snapshots whose cut-off
falls in it (for ``@daily``, the run of ``[D, D+1)`` computes ``ds = D``).
``@once`` is passed through; ``none`` (or an empty string) means manual runs only.
"""

from __future__ import annotations

from typing import Any

from featurekiln.errors import KilnError

MANUAL_ONLY = frozenset({"", "none", "null", "manual"})


class ScheduleError(KilnError):
    """A definition's ``schedule`` is not a cron expression or preset Airflow understands."""


def timetable_for(schedule: str | None) -> Any:
    """The ``schedule=`` argument for a DAG of a view whose schedule is ``schedule``.

    Raises:
        ScheduleError: ``schedule`` is neither a cron expression, a preset, ``@once`` nor ``none``.
    """
    from airflow.sdk import CronDataIntervalTimetable

    text = (schedule or "").strip()
    if text.lower() in MANUAL_ONLY:
        return None
    if text == "@once":
        return "@once"
    from croniter import croniter

    from airflow.sdk.definitions.timetables._cron import CRON_PRESETS

    expression = CRON_PRESETS.get(text, text)
    if not croniter.is_valid(expression):
        presets = ", ".join([*CRON_PRESETS, "@once", "none"])
        raise ScheduleError(f"{schedule!r} is not a cron expression such as '0 3 * * *' or one of {presets}")
    return CronDataIntervalTimetable(expression, timezone="UTC")
