"""The plan of a run: what one run of one view computes, validates, commits and pushes (pure, JSON-able).

A :class:`RunPlan` is made here, from the ledger's inputs (the day
fingerprints and the held tiles, read by the caller), and executed by the one
executor (:mod:`featurekiln.runner`), whether the run comes from ``kiln
backfill``, ``kiln run``, ``jobs/materialize.py`` or an Airflow task. Every day
range is a half-open :data:`~featurekiln.planning.intervals.Interval`. A plan
goes through Airflow's XCom as :meth:`RunPlan.to_json`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from featurekiln.definitions.models import FeatureView
from featurekiln.errors import PlanError
from featurekiln.planning import intervals
from featurekiln.planning.intervals import ONE_DAY, Interval, merge, widen_back
from featurekiln.planning.materialization import TilePlan, ViewPlan, inclusive, plan_tiles


@dataclass(frozen=True)
class RunPlan:
    """One run of one view.

    Attributes:
        view: the view's name.
        fingerprint: the definition's fingerprint the plan was made for.
        reason: why these days (shown in logs and ``kiln plan``).
        ranges: the snapshot days to compute; each contiguous range is one atomic commit.
        chunk_days: the days validated together (one quality report section each).
        horizon_days: the view's horizon (the event days a snapshot reads, its own included).
        refresh: tile days re-read from the source although stored (late data, ``--retile``).
        tiles: the tile work, from the tile table's ledger when the plan was made.
        validate: run the quality gate (False: the run is recorded as ``unvalidated``).
        push: push the latest validated snapshot online when the store holds an older one.
        asked: the days a DAG run was asked for (its data interval or the trigger form's range), when the
            plan comes from one: a run whose days other runs published first computes nothing and is
            still recorded, with these days.
    """

    view: str
    fingerprint: str
    reason: str
    ranges: tuple[Interval, ...]
    chunk_days: int
    horizon_days: int
    refresh: tuple[Interval, ...] = ()
    tiles: TilePlan = field(default_factory=TilePlan)
    validate: bool = True
    push: bool = False
    asked: Interval | None = None

    @property
    def empty(self) -> bool:
        """Whether the plan computes no day."""
        return not self.ranges

    @property
    def chunks(self) -> tuple[Interval, ...]:
        """The validation chunks: every range split into ``chunk_days`` days (the last of each may be shorter)."""
        return tuple(c for r in self.ranges for c in intervals.chunks(r, self.chunk_days))

    @property
    def span(self) -> Interval:
        """From the first to the last day computed (``(d, d)`` style empty interval when nothing is)."""
        if not self.ranges:
            return (date.min, date.min)
        return (self.ranges[0][0], self.ranges[-1][1])

    def task_steps(self, task: str) -> tuple[str, ...]:
        """The executor's steps that the DAG task ``task`` (``tiles``, ``publish`` or ``push``) runs.

        A plan of one chunk (a night) stores its tiles in its ``publish`` task, so the night starts Spark once
        for both; its ``tiles`` task has nothing to do. A plan of several chunks stores its tiles in a task of
        their own (a failed publish does not read the source again). A plan that computes nothing has a
        ``publish`` only to record a DAG run's :attr:`asked` days.
        """
        if task == "push":
            return ("push",)
        if self.empty:
            return ("publish",) if task == "publish" and self.asked is not None else ()
        if len(self.chunks) == 1:
            return ("tiles", "publish") if task == "publish" else ()
        return (task,)

    def events(self, snapshots: Interval) -> Interval:
        """The event (tile) days the snapshots ``snapshots`` read."""
        return widen_back(snapshots, self.horizon_days - 1)

    @property
    def needed(self) -> tuple[Interval, ...]:
        """The tile days every range reads."""
        return tuple(merge(self.events(r) for r in self.ranges))

    def to_json(self) -> dict[str, Any]:
        """The plan as JSON-able data; ranges as ``[[first, last], ...]`` inclusive ISO days."""
        return {
            "view": self.view,
            "fingerprint": self.fingerprint,
            "reason": self.reason,
            "ranges": inclusive(self.ranges),
            "chunk_days": self.chunk_days,
            "horizon_days": self.horizon_days,
            "refresh": inclusive(self.refresh),
            "tiles": self.tiles.to_json(),
            "validate": self.validate,
            "push": self.push,
            "asked": inclusive([self.asked])[0] if self.asked else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunPlan:
        """The plan :meth:`to_json` gave."""
        return cls(
            view=str(data["view"]),
            fingerprint=str(data["fingerprint"]),
            reason=str(data["reason"]),
            ranges=from_inclusive_json(data["ranges"]),
            chunk_days=int(data["chunk_days"]),
            horizon_days=int(data["horizon_days"]),
            refresh=from_inclusive_json(data.get("refresh", [])),
            tiles=TilePlan.from_json(data.get("tiles", {})),
            validate=bool(data.get("validate", True)),
            push=bool(data.get("push", False)),
            asked=from_inclusive_json([data["asked"]])[0] if data.get("asked") else None,
        )

    def __str__(self) -> str:
        if self.empty:
            return f"nothing to compute ({self.reason})"
        days = ", ".join(a if a == b else f"{a}..{b}" for a, b in inclusive(self.ranges))
        return f"{days} ({self.reason})"


def from_inclusive_json(items: Any) -> tuple[Interval, ...]:
    """``[[first, last], ...]`` inclusive ISO days as half-open intervals."""
    return tuple((date.fromisoformat(a), date.fromisoformat(b) + ONE_DAY) for a, b in items)


def check_range(view: FeatureView, first: date, last: date, chunk_days: int) -> None:
    """Raise :class:`PlanError` unless ``first`` .. ``last`` is a valid backfill range of ``view``."""
    if last < first:
        raise PlanError(f"{view.name}: end {last} is before start {first}")
    if first < view.start:
        raise PlanError(f"{view.name}: start {first} is before the view's start {view.start}")
    if chunk_days < 1:
        raise PlanError(f"chunk size must be at least 1 day, got {chunk_days}")


def plan_ranges(
    view: FeatureView,
    ranges: list[Interval] | tuple[Interval, ...],
    chunk_days: int,
    *,
    reason: str,
    held_tiles: Mapping[date, frozenset[str]] | None = None,
    refresh: list[Interval] | tuple[Interval, ...] = (),
    validate: bool = True,
    push: bool = False,
) -> RunPlan:
    """The plan that computes the snapshot days ``ranges`` of ``view``.

    Args:
        held_tiles: tile day -> partial groups stored (from the tile table's log; none when omitted).
        refresh: tile days to re-read from the source although stored.

    Raises:
        PlanError: ``chunk_days`` is not positive.
    """
    if chunk_days < 1:
        raise PlanError(f"chunk size must be at least 1 day, got {chunk_days}")
    merged = tuple(merge(ranges))
    needed = [widen_back(r, view.horizon_days - 1) for r in merged]
    tiles = plan_tiles(view.partial_groups(), held_tiles or {}, needed, refresh) if merged else TilePlan()
    return RunPlan(
        view=view.name, fingerprint=view.fingerprint(), reason=reason, ranges=merged, chunk_days=chunk_days,
        horizon_days=view.horizon_days, refresh=tuple(merge(refresh)) if merged else (), tiles=tiles,
        validate=validate, push=push,
    )


def plan_backfill(
    view: FeatureView,
    first: date,
    last: date,
    chunk_days: int,
    *,
    held_tiles: Mapping[date, frozenset[str]] | None = None,
    retile: bool = False,
    validate: bool = True,
    reason: str = "backfill",
) -> RunPlan:
    """Plan snapshots ``first`` .. ``last`` (both included) of ``view``: one range, one commit, no push.

    The events read start ``horizon_days - 1`` days before ``first`` so that the
    first snapshot sees its whole window; with ``retile`` all of them are re-read
    from the source.

    Raises:
        PlanError: ``last`` is before ``first``, ``first`` is before the view's
            ``start``, or ``chunk_days`` is not positive.
    """
    check_range(view, first, last, chunk_days)
    snapshots = intervals.from_inclusive(first, last)
    refresh = [widen_back(snapshots, view.horizon_days - 1)] if retile else []
    return plan_ranges(view, [snapshots], chunk_days, reason=reason, held_tiles=held_tiles, refresh=refresh,
                       validate=validate)


def plan_from_ledger(view: FeatureView, ledger: ViewPlan, chunk_days: int, *, reason: str) -> RunPlan:
    """The plan of ``kiln run`` (and of a nightly DAG run): what the ledger's :class:`ViewPlan` says to compute,
    pushing online views.

    Raises:
        StaleTableError: the ledger refuses the run (days of another definition, ``on_change: refuse``).
    """
    from featurekiln.errors import StaleTableError

    if ledger.refused:
        raise StaleTableError(ledger.refused)
    return RunPlan(
        view=view.name, fingerprint=ledger.fingerprint, reason=reason, ranges=ledger.will_compute,
        chunk_days=chunk_days, horizon_days=view.horizon_days, refresh=ledger.refresh if ledger.will_compute else (),
        tiles=ledger.tile_plan, validate=True, push=view.online,
    )
