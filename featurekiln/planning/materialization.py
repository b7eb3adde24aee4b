"""What ``kiln plan`` shows and ``kiln run`` computes for a view (pure: dates and fingerprints).

Input: the snapshot days a feature table holds, each with the fingerprint of the
definition that computed it (:meth:`FeatureView.fingerprint`), and the last day
wanted (``until``, by default yesterday UTC). Output, as half-open intervals:

* ``materialized``: days held with the current definition;
* ``missing``: days from the view's ``start`` to ``until`` that the table lacks;
* ``stale``: days held with another definition;
* ``will_compute``: what a run computes: the missing days, the ``lookback`` days
  before ``until`` when ``until`` itself is new (late data), and the stale days
  when the view says ``on_change: rebuild``;
* ``reads_events``: the event days those snapshots read (each computed range
  widened back by the horizon, the longest of ttl and windows, minus one day).

With stale days and ``on_change: refuse`` (the default) a run computes nothing:
a new day would publish new semantics into an old-semantics table. The plan says
why and the one command that rebuilds the stale days.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from featurekiln.definitions.models import FeatureView
from featurekiln.planning.intervals import ONE_DAY, Interval, from_inclusive, merge, missing, widen_back


@dataclass(frozen=True)
class ViewPlan:
    """The state of a view's table and what a run would do about it."""

    view: str
    fingerprint: str
    until: date
    materialized: tuple[Interval, ...]
    missing: tuple[Interval, ...]
    stale: tuple[Interval, ...]
    will_compute: tuple[Interval, ...]
    reads_events: tuple[Interval, ...]
    refused: str | None = None

    @property
    def nothing_to_do(self) -> bool:
        return not self.will_compute and self.refused is None

    def to_json(self) -> dict[str, object]:
        """``{"view", "fingerprint", "materialized", ...}``; ranges as ``[[first, last], ...]``, inclusive ISO days."""
        return {
            "view": self.view,
            "fingerprint": self.fingerprint,
            "until": self.until.isoformat(),
            **{name: inclusive(getattr(self, name)) for name in
               ("materialized", "missing", "stale", "will_compute", "reads_events")},
            "refused": self.refused,
        }


def inclusive(intervals: tuple[Interval, ...] | list[Interval]) -> list[list[str]]:
    """Half-open intervals as ``[[first, last], ...]`` with inclusive ISO days."""
    return [[start.isoformat(), (end - ONE_DAY).isoformat()] for start, end in intervals]


def _runs(days: list[date]) -> list[Interval]:
    return merge((day, day + ONE_DAY) for day in days)


def plan_view(view: FeatureView, held: Mapping[date, str], until: date) -> ViewPlan:
    """Plan a run of ``view`` up to snapshot day ``until`` (included), given the days its table holds.

    Args:
        view: the current definition.
        held: snapshot day -> fingerprint of the definition that computed it.
        until: the last snapshot day wanted.
    """
    current = view.fingerprint()
    materialized = _runs([d for d, f in held.items() if f == current])
    stale = _runs([d for d, f in held.items() if f != current])
    wanted = from_inclusive(view.start, until) if until >= view.start else (view.start, view.start)
    absent = missing(wanted, _runs(list(held)))
    compute = list(absent)
    if absent and absent[-1][1] == wanted[1] and view.lookback_days:
        compute.append((max(view.start, until - timedelta(days=view.lookback_days)), wanted[1]))
    refused = None
    if stale and view.on_change == "rebuild":
        compute += stale
    elif stale:
        first, last = stale[0][0], stale[-1][1] - ONE_DAY
        refused = (
            f"{view.name}: {sum((e - s).days for s, e in stale)} day(s) of the table were computed with another "
            f"version of the definition ({', '.join(f'{a}..{b}' for a, b in inclusive(stale))}); a run would mix "
            f"two semantics. Rebuild them with `kiln backfill {view.name} --start {first} --end {last}`, or set "
            "`on_change: rebuild` in the definition"
        )
        compute = []
    will_compute = merge(compute)
    reads = merge(widen_back(interval, view.horizon_days - 1) for interval in will_compute)
    return ViewPlan(
        view=view.name,
        fingerprint=current,
        until=until,
        materialized=tuple(materialized),
        missing=tuple(absent),
        stale=tuple(stale),
        will_compute=tuple(will_compute),
        reads_events=tuple(reads),
        refused=refused,
    )
