"""Plans: what a backfill computes, as small frozen steps that one runner executes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from featurekiln.errors import PlanError
from featurekiln.planning import intervals
from featurekiln.planning.intervals import Interval
from featurekiln.definitions.models import FeatureView


@dataclass(frozen=True)
class Chunk:
    """Snapshots ``[start, end)`` validated together (and one Airflow task)."""

    start: date
    end: date

    @property
    def interval(self) -> Interval:
        return (self.start, self.end)

    @property
    def last(self) -> date:
        """The last snapshot day of the chunk (included)."""
        return self.end - timedelta(days=1)

    def __str__(self) -> str:
        return f"{self.start}..{self.last}"


@dataclass(frozen=True)
class BackfillPlan:
    """Compute snapshots ``[start, end)`` of ``view`` from events in ``events``, commit by chunk."""

    view: str
    snapshots: Interval
    events: Interval
    chunks: tuple[Chunk, ...]


def plan_backfill(view: FeatureView, first: date, last: date, chunk_days: int) -> BackfillPlan:
    """Plan snapshots ``first`` .. ``last`` (both included) of ``view``.

    The events read start ``horizon_days - 1`` days before ``first`` so that the
    first snapshot sees its whole window.

    Raises:
        PlanError: ``last`` is before ``first``, ``first`` is before the view's
            ``start``, or ``chunk_days`` is not positive.
    """
    if last < first:
        raise PlanError(f"{view.name}: end {last} is before start {first}")
    if first < view.start:
        raise PlanError(f"{view.name}: start {first} is before the view's start {view.start}")
    if chunk_days < 1:
        raise PlanError(f"chunk size must be at least 1 day, got {chunk_days}")
    snapshots = intervals.from_inclusive(first, last)
    events = intervals.widen_back(snapshots, view.horizon_days - 1)
    chunk_list = tuple(Chunk(s, e) for s, e in intervals.chunks(snapshots, chunk_days))
    return BackfillPlan(view=view.name, snapshots=snapshots, events=events, chunks=chunk_list)
