"""Drift monitors: a view's ``monitors:`` checked on every day a run computes (pure: no Spark).

A monitor watches one per-day statistic of one feature
(:class:`~featurekiln.quality.statistics.FeatureDayStats`): either against absolute
bounds (``min``/``max``, inclusive) or against a baseline: the median of the
statistic over the ``baseline`` days before the day, using the days that have
statistics (stored days of the same definition, and the earlier days of the same
run, so a backfill checks each of its days against the days before it). A day
whose statistic breaks the monitor gives a failed :class:`Outcome` naming the
monitor, the feature, the day, the observed value and the baseline; severity
``fail`` blocks the chunk like a blocking expectation, ``warn`` is reported.
Days within bounds give one passing outcome per monitor and chunk, and days that
cannot be checked (no baseline day, no value) one skipped outcome per reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from statistics import median

from featurekiln.definitions.models import FeatureView, Monitor
from featurekiln.quality.results import ChunkValidation, Outcome
from featurekiln.quality.statistics import FeatureDayStats

PREFIX = "monitor:"

StatsIndex = dict[tuple[str, date], FeatureDayStats]


def is_monitor(outcome: Outcome) -> bool:
    """Whether ``outcome`` is a drift monitor's (its expectation is ``monitor:<stat>``)."""
    return outcome.expectation.startswith(PREFIX)


def longest_baseline(view: FeatureView) -> int:
    """The most days before a day that any of the view's monitors reads (0 without relative monitors)."""
    return max((m.baseline or 0 for m in view.monitors if m.max_change is not None), default=0)


def baseline_history(view: FeatureView, stored: Iterable[FeatureDayStats], run: Iterable[FeatureDayStats]) -> StatsIndex:
    """The statistics a baseline may use, by ``(feature, ds)``: the ``stored`` days written by the view's current
    definition (its fingerprint; a day of another definition is not comparable), replaced by the run's own
    statistics of the same day (``run``, the newer values) where it has them."""
    fingerprint = view.fingerprint()
    index: StatsIndex = {(s.feature, s.ds): s for s in stored if s.fingerprint == fingerprint}
    index.update({(s.feature, s.ds): s for s in run})
    return index


def _number(value: float) -> str:
    return f"{value:.6g}"


def _days(days: Sequence[date]) -> str:
    if len(days) == 1:
        return str(days[0])
    return f"{len(days)} days ({days[0]} → {days[-1]})"


class _Check:
    """One monitor over the days of one chunk: the outcomes it gives."""

    def __init__(self, view: FeatureView, index: int, monitor: Monitor) -> None:
        self.monitor = monitor
        self.source = view.where(f"monitors[{index}]")
        self.flagged: list[Outcome] = []
        self.passed: list[tuple[date, float, float | None]] = []
        self.skipped: dict[str, list[date]] = {}

    def outcome(self, success: bool, observed: str, day: date | None = None, skipped: bool = False) -> Outcome:
        monitor = self.monitor
        return Outcome(
            expectation=PREFIX + monitor.stat,
            column=monitor.feature,
            severity="error" if monitor.severity == "fail" else "warn",
            success=success,
            observed=observed,
            expected=monitor.rule,
            source=self.source,
            day=day.isoformat() if day else None,
            skipped=skipped,
        )

    def check(self, day: date, value: float | None, history: StatsIndex) -> None:
        monitor = self.monitor
        if value is None:
            self.skipped.setdefault(f"the day has no {monitor.stat} of {monitor.feature}", []).append(day)
            return
        if monitor.max_change is None:
            low = monitor.min if monitor.min is not None else value
            high = monitor.max if monitor.max is not None else value
            if low <= value <= high:
                self.passed.append((day, value, None))
            else:
                self.flagged.append(self.outcome(False, _number(value), day))
            return
        days = monitor.baseline or 0
        past = [history.get((monitor.feature, day - timedelta(days=back))) for back in range(1, days + 1)]
        values = [found for s in past if s is not None and (found := s.value(monitor.stat)) is not None]
        if not values:
            self.skipped.setdefault(f"no baseline: none of the {days} days before has a {monitor.stat}", []).append(day)
            return
        baseline = median(values)
        change = abs(value - baseline) / abs(baseline) if baseline else (0.0 if value == baseline else float("inf"))
        if change <= monitor.max_change:
            self.passed.append((day, value, change))
            return
        shown = "+inf" if change == float("inf") else f"{(value - baseline) / abs(baseline):+.1%}"
        observed = (f"{_number(value)} (baseline {_number(baseline)}: the median of {len(values)} of the {days} "
                    f"days before; change {shown})")
        self.flagged.append(self.outcome(False, observed, day))

    def outcomes(self) -> list[Outcome]:
        found = list(self.flagged)
        if self.passed:
            days = [d for d, _, _ in self.passed]
            observed = f"within bounds on {_days(days)}"
            changes = [(change, d, value) for d, value, change in self.passed if change is not None]
            if changes:
                change, day, value = max(changes)
                observed += f"; largest change {change:.1%} ({_number(value)} on {day})"
            else:
                values = [value for _, value, _ in self.passed]
                observed += f"; values {_number(min(values))} .. {_number(max(values))}"
            found.append(self.outcome(True, observed))
        for reason, days in self.skipped.items():
            found.append(self.outcome(True, f"{reason} ({_days(days)})", days[0] if len(days) == 1 else None, True))
        return found


def check_monitors(view: FeatureView, chunk: ChunkValidation, history: StatsIndex) -> list[Outcome]:
    """The outcomes of the view's monitors on the days of ``chunk`` (``chunk.start`` .. ``chunk.end``).

    A day's value is the chunk's statistic of the day (``chunk.stats``); a day of
    the chunk without statistics of the feature had no rows (``rows`` 0, no other
    statistic). A chunk without any statistics (a run without them) skips every
    monitor. The baseline of a relative monitor is the median over the
    ``baseline`` days before the day of the values found in ``history``
    (:func:`baseline_history`) and in the chunk's own earlier days.

    Returns:
        Per monitor: one failed outcome per day that breaks it (severity ``error``
        for ``severity: fail``), one passing outcome for the days within bounds,
        and one skipped outcome per reason a day could not be checked.
    """
    if not view.monitors:
        return []
    own: StatsIndex = {(s.feature, s.ds): s for s in chunk.stats}
    history = {**history, **own}
    days = [chunk.start + timedelta(days=n) for n in range((chunk.end - chunk.start).days + 1)]
    found: list[Outcome] = []
    for index, monitor in enumerate(view.monitors):
        check = _Check(view, index, monitor)
        for day in days:
            if not own:
                check.skipped.setdefault("the run computed no statistics", []).append(day)
                continue
            stats = own.get((monitor.feature, day))
            value = stats.value(monitor.stat) if stats is not None else (0.0 if monitor.stat == "rows" else None)
            check.check(day, value, history)
        found.extend(check.outcomes())
    return found

