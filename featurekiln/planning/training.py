"""What a training set needs, decided without an engine: which features, which keys, which days.

Point-in-time rule (docs/semantics.md): a spine row at time ``t`` gets the snapshot
``ds = date_utc(t) - 1 day``. Each needed ``ds`` must be materialized with the
definition the training set expects (its fingerprint); :func:`day_coverage`
says which needed days are missing or stale, as half-open intervals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from featurekiln.definitions.models import FeatureView
from featurekiln.errors import PlanError, UnknownViewError
from featurekiln.planning.intervals import ONE_DAY, Interval, merge

COLUMN_SEPARATOR = "__"


@dataclass(frozen=True)
class ViewSelection:
    """The features of one view a training set asks for, and the spine column of each key.

    Attributes:
        view: the view's definition.
        features: feature names in definition order.
        key_columns: per key of the view (in order), the spine column that holds it.
    """

    view: FeatureView
    features: tuple[str, ...]
    key_columns: tuple[str, ...]

    def output_column(self, feature: str) -> str:
        """The output column of ``feature``: ``<view>__<feature>``."""
        return f"{self.view.name}{COLUMN_SEPARATOR}{feature}"

    @property
    def output_columns(self) -> tuple[str, ...]:
        """Every output column of this view, in definition order."""
        return tuple(self.output_column(f) for f in self.features)


def parse_key_map(pairs: Sequence[str]) -> dict[tuple[str, str], str]:
    """``["merchant_risk.merchant_id=merchant"]`` -> ``{("merchant_risk", "merchant_id"): "merchant"}``.

    Raises:
        PlanError: a pair is not ``view.key=column`` or a key is mapped twice.
    """
    out: dict[tuple[str, str], str] = {}
    for pair in pairs:
        left, sep, column = pair.partition("=")
        view, dot, key = left.partition(".")
        if not (sep and dot and view and key and column):
            raise PlanError(f"--map {pair!r}: write view.key=column, e.g. merchant_risk.merchant_id=merchant")
        if (view, key) in out:
            raise PlanError(f"--map: {view}.{key} is mapped twice")
        out[(view, key)] = column
    return out


def parse_versions(pairs: Sequence[str]) -> dict[str, int]:
    """``["user_purchases=12"]`` -> ``{"user_purchases": 12}`` (the ``--as-of-version`` option).

    Raises:
        PlanError: a pair is not ``view=VERSION`` with a whole number, or a view is given twice.
    """
    out: dict[str, int] = {}
    for pair in pairs:
        view, sep, version = pair.partition("=")
        if not (sep and view and version.strip().isdigit()):
            raise PlanError(f"--as-of-version {pair!r}: write view=VERSION, e.g. user_purchases=12")
        if view in out:
            raise PlanError(f"--as-of-version: {view} is given twice")
        out[view] = int(version)
    return out


def select_features(
    refs: Sequence[str],
    views: Mapping[str, FeatureView],
    spine_columns: Sequence[str],
    key_map: Mapping[tuple[str, str], str] | None = None,
) -> list[ViewSelection]:
    """Resolve ``view`` / ``view:feature`` references against the catalog and the spine's columns.

    A view named alone gives all its features; several references to one view are
    merged; output order follows the references (views) and the definitions
    (features). Keys are matched to spine columns by name unless ``key_map`` says otherwise.

    Raises:
        UnknownViewError: a reference names no view.
        PlanError: a feature is unknown, nothing is selected, a key has no spine column,
            the map names an unknown view or key, or an output column already is a spine column.
    """
    key_map = dict(key_map or {})
    wanted: dict[str, set[str] | None] = {}
    problems: list[str] = []
    for ref in refs:
        name, _, feature = ref.strip().partition(":")
        if name not in views:
            raise UnknownViewError(f"--features {ref!r}: no view named {name!r} (views: {', '.join(sorted(views)) or 'none'})")
        known = [f.name for f in views[name].features]
        if feature and feature not in known:
            problems.append(f"--features {ref!r}: {name} has no feature {feature!r} (features: {', '.join(known)})")
            continue
        current = wanted.setdefault(name, set())
        if not feature or current is None:
            wanted[name] = None
        else:
            current.add(feature)
    if not refs:
        problems.append("--features: name at least one view or view:feature")
    for view_name, key in key_map:
        if view_name not in wanted:
            problems.append(f"--map {view_name}.{key}: {view_name} is not among the selected views")
        elif key not in views[view_name].keys:
            problems.append(f"--map {view_name}.{key}: {view_name} has no key {key!r} (keys: {', '.join(views[view_name].keys)})")
    selections: list[ViewSelection] = []
    for name, chosen in wanted.items():
        view = views[name]
        features = tuple(f.name for f in view.features if chosen is None or f.name in chosen)
        columns = tuple(key_map.get((name, key), key) for key in view.keys)
        for key, column in zip(view.keys, columns, strict=True):
            if column not in spine_columns:
                problems.append(
                    f"{name}: key {key} has no spine column {column!r}; map it with --map {name}.{key}=COLUMN "
                    f"(spine columns: {', '.join(spine_columns)})"
                )
        selection = ViewSelection(view, features, columns)
        clash = [c for c in selection.output_columns if c in spine_columns]
        if clash:
            problems.append(f"{name}: the spine already has column(s) {', '.join(clash)}; rename them first")
        selections.append(selection)
    if problems:
        raise PlanError("\n".join(problems))
    return selections


@dataclass(frozen=True)
class DayCoverage:
    """Which needed snapshot days of one view can be used.

    Attributes:
        view: the view name.
        missing: needed days never materialized, as merged ``[start, end)`` intervals.
        stale: needed days materialized by another definition (fingerprint), merged.
        before_start: needed days before the view's ``start`` (no snapshot can exist; nulls, not an error).
        usable: the needed days materialized with the expected fingerprint, sorted.
    """

    view: str
    missing: tuple[Interval, ...]
    stale: tuple[Interval, ...]
    before_start: tuple[Interval, ...]
    usable: tuple[date, ...]

    @property
    def complete(self) -> bool:
        """True when no needed day is missing or stale."""
        return not self.missing and not self.stale

    def unusable(self) -> list[Interval]:
        """The missing and stale days, merged."""
        return merge([*self.missing, *self.stale])

    def describe(self) -> str:
        """One line for an error or a warning: the missing and stale days as inclusive ranges."""
        parts = []
        if self.missing:
            parts.append(f"missing {describe_days(self.missing)}")
        if self.stale:
            parts.append(f"stale (built by another definition) {describe_days(self.stale)}")
        return f"{self.view}: " + "; ".join(parts)


def describe_days(intervals: Iterable[Interval]) -> str:
    """``[(Jan 3, Jan 6), (Feb 1, Feb 2)]`` -> ``'2025-01-03..2025-01-05, 2025-02-01'`` (inclusive ends)."""
    parts = []
    for start, end in intervals:
        last = end - ONE_DAY
        parts.append(start.isoformat() if last == start else f"{start}..{last}")
    return ", ".join(parts)


def day_coverage(view: str, needed: Iterable[date], present: Mapping[date, str], fingerprint: str, start: date) -> DayCoverage:
    """Classify the ``needed`` snapshot days of a view.

    Args:
        view: the view name (for messages).
        needed: the snapshot days the spine asks for (any order, repeats allowed).
        present: the materialized days and the fingerprint of the definition that built each.
        fingerprint: the fingerprint the training set expects.
        start: the view's first snapshot day; earlier days are ``before_start``.

    Returns:
        The missing, stale and before-start days as merged half-open intervals, and the usable days.
    """
    missing, stale, early, usable = [], [], [], []
    for day in sorted(set(needed)):
        single = (day, day + ONE_DAY)
        if day < start:
            early.append(single)
        elif day not in present:
            missing.append(single)
        elif present[day] != fingerprint:
            stale.append(single)
        else:
            usable.append(day)
    return DayCoverage(view, tuple(merge(missing)), tuple(merge(stale)), tuple(merge(early)), tuple(usable))

