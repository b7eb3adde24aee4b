"""Pydantic models of the YAML contract (README.md, docs/definitions.md).

The models check types and single fields. Checks that span fields (duplicate
names, ``expr`` required, SQL syntax) live in :mod:`featurekiln.definitions.checks` so
that each problem can carry its exact field path.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, PrivateAttr, WithJsonSchema

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
AGGREGATIONS: tuple[str, ...] = ("count", "sum", "avg", "min", "max", "last", "first", "count_distinct")
_DAYS = re.compile(r"^([1-9][0-9]*)d$")


def parse_days(value: object) -> int:
    """Parse a whole-day duration such as ``'7d'`` into a number of days.

    Raises:
        ValueError: the value is not a positive whole number of days like ``'7d'``.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f"{value!r} is not a whole number of days like '7d' (write '{value}d')")
    text = str(value).strip()
    match = _DAYS.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a whole number of days like '7d'")
    return int(match.group(1))


Days = Annotated[
    int,
    BeforeValidator(parse_days),
    PlainSerializer(lambda days: f"{days}d", return_type=str),
    WithJsonSchema({"type": "string", "pattern": "^[1-9][0-9]*d$", "examples": ["1d", "7d", "30d"]}),
]


def _check_aggregation(value: object) -> str:
    if value not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {value!r}; use one of {', '.join(AGGREGATIONS)}")
    return str(value)


Aggregation = Annotated[
    str,
    BeforeValidator(_check_aggregation),
    WithJsonSchema({"enum": list(AGGREGATIONS)}),
]
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
# The per-day statistics a monitor may check (featurekiln/quality/statistics.py computes them).
MonitorStat = Literal["rows", "null_fraction", "mean", "stddev", "p50", "p95", "distinct"]
MONITOR_STATS: tuple[str, ...] = get_args(MonitorStat)
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Feature(_Model):
    """One feature: an aggregation of ``expr`` over a window of whole days."""

    name: Name
    agg: Aggregation
    expr: str | None = Field(default=None, description="Spark SQL expression; optional for count")
    window: Days | None = Field(default=None, description="whole days; none means the view's ttl")
    description: str = ""


class Entity(_Model):
    """The entity a view describes and the source columns that identify it."""

    name: Name
    keys: list[str] = Field(min_length=1)


class Source(_Model):
    """Where the events come from."""

    path: str = Field(min_length=1, description="relative to the warehouse root, or an absolute path / URI")
    format: Literal["parquet", "delta", "csv"]
    timestamp: str = Field(min_length=1, description="event-time column (UTC)")
    filter: str | None = Field(default=None, description="Spark SQL predicate applied to the source")
    query: str | None = Field(default=None, description="Spark SQL SELECT over the view `source`")
    partition_by: str | None = Field(
        default=None,
        description="column the source is partitioned by: the day an event landed (date or 'YYYY-MM-DD'), "
        "never before its event day; limits what a run reads",
    )


class Monitor(_Model):
    """A drift monitor: one per-day statistic of one feature, checked by the quality gate on every day a run
    computes (featurekiln/quality/monitors.py).

    Either ``max_change`` with ``baseline`` (relative to the median of the statistic
    over the ``baseline`` days before the day) or ``min``/``max`` (absolute, inclusive
    bounds); the loader's cross-field checks (featurekiln/definitions/checks.py) say
    which combinations are allowed.
    """

    feature: str = Field(min_length=1, description="a feature of the view")
    stat: MonitorStat
    max_change: Number | None = Field(
        default=None, ge=0, description="largest allowed |value / baseline - 1|; needs baseline"
    )
    baseline: Days | None = Field(default=None, description="the days before the day whose median is the baseline")
    min: Number | None = Field(default=None, description="smallest allowed value (inclusive)")
    max: Number | None = Field(default=None, description="largest allowed value (inclusive)")
    severity: Literal["warn", "fail"] = Field(
        default="warn", description="warn: reported; fail: the chunk is quarantined and nothing is published"
    )

    @property
    def rule(self) -> str:
        """What the monitor asks for, in words: ``|change| <= 50% of the median of the 28 days before`` or
        ``0 <= value <= 0.01``."""
        if self.max_change is not None:
            return f"|value / baseline - 1| <= {self.max_change:g} (baseline: median of the {self.baseline} days before)"
        low = "" if self.min is None else f"{self.min:g} <= "
        high = "" if self.max is None else f" <= {self.max:g}"
        return f"{low}{self.stat}{high}"


class FeatureView(_Model):
    """A feature view: entity keys, a source and windowed aggregations."""

    name: Name
    description: str = ""
    owner: str = "featurekiln"
    tags: list[str] = Field(default_factory=list)
    entity: Entity
    source: Source
    start: date
    schedule: str = "@daily"
    ttl: Days | None = None
    lookback: Days | None = Field(default=None, description="nightly runs also recompute this many recent days (late data)")
    features: list[Feature] = Field(min_length=1)
    online: bool = False
    expectations: str | None = None
    on_change: Literal["refuse", "rebuild"] = Field(
        default="refuse",
        description="what runs do with days computed by an older version of the definition: refuse to mix "
        "them (and say how to rebuild), or rebuild them",
    )
    monitors: list[Monitor] = Field(
        default_factory=list,
        description="drift monitors of per-day feature statistics, checked by the quality gate (not in the "
        "fingerprint)",
    )
    # Where the definition came from: its file and the line of every field (set by the loader).
    _file: str | None = PrivateAttr(default=None)
    _lines: dict[str, int] = PrivateAttr(default_factory=dict)

    def locate(self, file: str, lines: dict[str, int]) -> None:
        """Record the file this view was loaded from and the line of each field path (``features[1].expr``)."""
        self._file, self._lines = file, dict(lines)

    def where(self, field: str) -> str:
        """``file:line: field`` for messages about ``field`` (just ``field`` when the origin is unknown)."""
        if self._file is None:
            return field
        parts = field.split(".")
        for end in range(len(parts), 0, -1):
            line = self._lines.get(".".join(parts[:end]))
            if line is not None:
                return f"{self._file}:{line}: {field}"
        return f"{self._file}: {field}"

    @property
    def keys(self) -> list[str]:
        """The entity key columns."""
        return list(self.entity.keys)

    @property
    def ttl_days(self) -> int:
        """Effective ttl in days: ``ttl`` if set, else the longest window."""
        if self.ttl is not None:
            return self.ttl
        return max(f.window for f in self.features if f.window is not None)

    def window_days(self, feature: Feature) -> int:
        """The number of days ``feature`` aggregates over (its window, else the ttl)."""
        return feature.window if feature.window is not None else self.ttl_days

    @property
    def lookback_days(self) -> int:
        """Recent days a nightly run recomputes besides its own (0 when ``lookback`` is unset)."""
        return self.lookback or 0

    @property
    def horizon_days(self) -> int:
        """How many days of events any snapshot can depend on (max of ttl and windows)."""
        return max([self.ttl_days, *(self.window_days(f) for f in self.features)])

    @property
    def table_name(self) -> str:
        """Name of the feature table under ``<warehouse>/features/``."""
        return self.name

    def fingerprint(self) -> str:
        """A short hash of everything that changes the computed snapshots, and of nothing else.

        Covered: the source (path, format, timestamp, filter, query), the keys, the
        ttl and every feature's name, aggregation, expr and window, in order.
        Not covered: description, owner, tags, entity name, schedule, lookback,
        online, expectations, on_change, monitors, a feature's description, and the
        source's ``partition_by`` (it limits what is read, not what is computed).
        """
        payload = self.model_dump_json(
            include={
                "entity": {"keys"},
                "source": {"path", "format", "timestamp", "filter", "query"},
                "ttl": True,
                "features": {"__all__": {"name", "agg", "expr", "window"}},
            }
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def partial_group(self, feature: Feature) -> str:
        """A short hash naming the daily partials of ``feature`` in the stored tiles.

        Covered: what a tile depends on: the source (path, format, timestamp,
        filter, query), the keys, and the feature's aggregation and expr. Not
        covered: the feature's name and window and the view's ttl (snapshots are
        assembled from the same tiles whatever they are). Two features with the
        same aggregation of the same expr share one group.
        """
        payload = self.model_dump_json(
            include={"entity": {"keys"}, "source": {"path", "format", "timestamp", "filter", "query"}}
        ) + feature.model_dump_json(include={"agg", "expr"})
        return hashlib.sha256(payload.encode()).hexdigest()[:10]

    def partial_groups(self) -> dict[str, int]:
        """Every partial group of the view, with the index of the first feature that has it."""
        groups: dict[str, int] = {}
        for index, feature in enumerate(self.features):
            groups.setdefault(self.partial_group(feature), index)
        return groups
