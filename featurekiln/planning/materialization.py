"""What ``kiln plan`` shows and ``kiln run`` computes for a view (pure: dates and fingerprints).

Input: the snapshot days a feature table holds, each with the fingerprint of the
definition that computed it (:meth:`FeatureView.fingerprint`), and the last day
wanted (``until``, by default yesterday UTC). Output, as half-open intervals:

* ``materialized``: days held with the current definition;
* ``missing``: days from the view's ``start`` to ``until`` that the table lacks;
* ``stale``: days held with another definition;
* ``will_compute``: what a run computes: the missing days, the ``lookback`` days
  before the newest missing range when it ends at ``until`` (late data: a run
  after missed nights covers the lookback of every night it missed), and the
  stale days when the view says ``on_change: rebuild``;
* ``refresh``: the tile days a run re-reads from the source although they are
  stored: the same late-data range (the lookback days and the new days);
* ``tiles``: the tile days stored with every partial group of the definition;
* ``reads_events``: the event days a run reads from the source (:func:`plan_tiles`):
  the tile days its snapshots need (each computed range widened back by the
  horizon, the longest of ttl and windows, minus one day) that are not stored,
  lack a partial group, or are refreshed. The others are read from the stored tiles.

With stale days and ``on_change: refuse`` (the default) a run computes nothing:
a new day would publish new semantics into an old-semantics table. The plan says
why and the one command that rebuilds the stale days.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from featurekiln.definitions.models import FeatureView
from featurekiln.planning.intervals import ONE_DAY, Interval, days, from_inclusive, merge, missing, widen_back


@dataclass(frozen=True)
class TilePlan:
    """What a run does with tiles before it assembles snapshots.

    Attributes:
        needed: the tile days the snapshots read.
        from_source: tile days computed from the source events, every group.
        add: tile days that are stored with some groups: the groups they already
            hold, the missing groups to compute from the source, and the days.
    """

    needed: tuple[Interval, ...] = ()
    from_source: tuple[Interval, ...] = ()
    add: tuple[tuple[frozenset[str], frozenset[str], tuple[Interval, ...]], ...] = ()

    @property
    def empty(self) -> bool:
        """Whether there is nothing to tile."""
        return not self.from_source and not self.add

    @property
    def reads_events(self) -> tuple[Interval, ...]:
        """The event days read from the source."""
        return tuple(merge([*self.from_source, *(i for _, _, spans in self.add for i in spans)]))

    def to_json(self) -> dict[str, Any]:
        """The tile work as JSON-able data (ranges as inclusive ISO days, groups sorted)."""
        return {
            "needed": inclusive(self.needed),
            "from_source": inclusive(self.from_source),
            "add": [{"have": sorted(have), "new": sorted(new), "days": inclusive(spans)} for have, new, spans in self.add],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TilePlan:
        """The tile work :meth:`to_json` gave (nothing to do for ``{}``)."""
        def spans(items: Any) -> tuple[Interval, ...]:
            return tuple((date.fromisoformat(a), date.fromisoformat(b) + ONE_DAY) for a, b in items)

        return cls(
            needed=spans(data.get("needed", [])),
            from_source=spans(data.get("from_source", [])),
            add=tuple((frozenset(a["have"]), frozenset(a["new"]), spans(a["days"])) for a in data.get("add", [])),
        )


def plan_tiles(
    groups: Collection[str],
    held: Mapping[date, frozenset[str]],
    needed: Iterable[Interval],
    refresh: Iterable[Interval] = (),
) -> TilePlan:
    """Which tile days to compute from the source, and which to complete with new partial groups.

    Args:
        groups: the partial groups of the current definition.
        held: tile day -> the groups stored for it.
        needed: the tile days the snapshots read.
        refresh: tile days to re-read from the source even when stored (late data, ``--retile``).
    """
    wanted = frozenset(groups)
    needed = merge(needed)
    fresh = {d for interval in merge(refresh) for d in days(interval)}
    whole: list[date] = []
    partial: dict[frozenset[str], list[date]] = {}
    for interval in needed:
        for day in days(interval):
            have = held.get(day, frozenset()) & wanted
            if day in fresh or not have:
                whole.append(day)
            elif have != wanted:
                partial.setdefault(have, []).append(day)
    return TilePlan(
        needed=tuple(needed),
        from_source=tuple(_runs(whole)),
        add=tuple((have, wanted - have, tuple(_runs(spans))) for have, spans in sorted(partial.items(), key=_first)),
    )


def _first(item: tuple[frozenset[str], list[date]]) -> date:
    return min(item[1])


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
    refresh: tuple[Interval, ...] = ()
    tiles: tuple[Interval, ...] = ()
    tile_plan: TilePlan = field(default_factory=TilePlan)

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
               ("materialized", "missing", "stale", "will_compute", "reads_events", "refresh", "tiles")},
            "refused": self.refused,
        }


def inclusive(intervals: tuple[Interval, ...] | list[Interval]) -> list[list[str]]:
    """Half-open intervals as ``[[first, last], ...]`` with inclusive ISO days."""
    return [[start.isoformat(), (end - ONE_DAY).isoformat()] for start, end in intervals]


def _runs(days: list[date]) -> list[Interval]:
    return merge((day, day + ONE_DAY) for day in days)


def plan_view(
    view: FeatureView, held: Mapping[date, str], until: date, tiles: Mapping[date, frozenset[str]] | None = None
) -> ViewPlan:
    """Plan a run of ``view`` up to snapshot day ``until`` (included), given the days its tables hold.

    Args:
        view: the current definition.
        held: snapshot day -> fingerprint of the definition that computed it.
        until: the last snapshot day wanted.
        tiles: tile day -> partial groups stored (none stored when omitted).
    """
    current = view.fingerprint()
    materialized = _runs([d for d, f in held.items() if f == current])
    stale = _runs([d for d, f in held.items() if f != current])
    wanted = from_inclusive(view.start, until) if until >= view.start else (view.start, view.start)
    absent = missing(wanted, _runs(list(held)))
    compute = list(absent)
    refresh: list[Interval] = []
    if absent and absent[-1][1] == wanted[1]:
        late = absent[-1][0] - timedelta(days=view.lookback_days)
        refresh = [(late, wanted[1])]  # tile days, also before the view's start
        compute.append((max(view.start, late), wanted[1]))
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
        compute, refresh = [], []
    will_compute = merge(compute)
    groups = view.partial_groups()
    stored = tiles or {}
    tile_plan = plan_tiles(groups, stored, (widen_back(i, view.horizon_days - 1) for i in will_compute), refresh)
    return ViewPlan(
        view=view.name,
        fingerprint=current,
        until=until,
        materialized=tuple(materialized),
        missing=tuple(absent),
        stale=tuple(stale),
        will_compute=tuple(will_compute),
        reads_events=tile_plan.reads_events,
        refused=refused,
        refresh=tuple(refresh),
        tiles=tuple(_runs([d for d, g in stored.items() if g >= frozenset(groups)])),
        tile_plan=tile_plan,
    )
