"""Per-day feature statistics: taken as a run writes its rows, stored in ``<warehouse>/_kiln/stats``.

For every published snapshot day and every feature, :class:`FeatureDayStats`
keeps the day's rows, the feature's nulls (NaN counts as null), and, over the
non-null values of a numeric feature, ``min``, ``max``, ``mean``, the sample
``stddev``, ``p50`` and ``p95``, and for every feature the ``distinct`` values.
Statistics that do not apply (a string feature's min/max/mean/stddev/quantiles,
a mean over no value, a stddev over fewer than two) are None.

They come from the quality gate's own pass, without reading the written rows:
the write observes featurekiln's ``DayStats`` aggregate per feature
(``featurekiln/internals/DayStats.java``, :func:`observable`) over its rows as
they go to the files. Each write task holds whole days, sorted by day
(:func:`featurekiln.offline.delta_table.one_file_per_day`), so the aggregate
sees each day's values together and computes them exactly: ``rows``, ``nulls``,
``min``, ``max``, ``mean`` and ``stddev`` exact, ``p50``/``p95`` the value of
rank ``ceil(p * n)`` (what ``percentile_approx`` approximates), ``distinct``
exact for numbers and by 64-bit hash for other types. A day the observation
cannot vouch for (its rows were split between tasks, a day of more than
``DayStats.MAX_VALUES`` values in a task, rows that differ from the files'
statistics, a session without featurekiln's jar, a validation outside a write)
is computed by one Spark query over the rows instead (:func:`query_statistics`:
``percentile_approx`` with accuracy :data:`QUANTILE_ACCURACY`, rank error
1/10000; ``approx_count_distinct`` with relative error :data:`DISTINCT_RSD`),
logged at INFO with its reason.

The runner writes a published range's statistics after the feature table's
commit (:func:`write_stats`: one commit that replaces the view's rows of the
range's days, so a republished day replaces its rows; a lost commit race is
written again). :func:`read_stats` reads them without Spark.
"""

from __future__ import annotations

import logging
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from featurekiln.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from featurekiln.internals.delta_transaction import FileStatistics

log = logging.getLogger(__name__)

STATS = ("rows", "null_fraction", "mean", "stddev", "p50", "p95", "distinct")
STATS_PREFIX = "_stats_"
QUANTILE_ACCURACY = 10_000  # percentile_approx's: rank error at most 1 / 10000
DISTINCT_RSD = 0.02  # approx_count_distinct's relative standard deviation
STATS_SCHEMA = (
    "view STRING, ds DATE, feature STRING, rows BIGINT, nulls BIGINT, min DOUBLE, max DOUBLE, mean DOUBLE, "
    "stddev DOUBLE, p50 DOUBLE, p95 DOUBLE, distinct BIGINT, fingerprint STRING"
)
_COLUMNS = ("view", "ds", "feature", "rows", "nulls", "min", "max", "mean", "stddev", "p50", "p95", "distinct")
# DayStats's records: day, flags, rows, nulls, values, min, max, mean, stddev, p50, p95, distinct.
_RECORD = struct.Struct(">qiqqqddddddq")
_SPLIT, _GAVE_UP = 1, 2
_NUMERIC = frozenset({"ByteType", "ShortType", "IntegerType", "LongType", "FloatType", "DoubleType", "DecimalType"})


@dataclass(frozen=True)
class FeatureDayStats:
    """The statistics of one feature on one published snapshot day (see the module docstring)."""

    view: str
    ds: date
    feature: str
    rows: int
    nulls: int
    min: float | None
    max: float | None
    mean: float | None
    stddev: float | None
    p50: float | None
    p95: float | None
    distinct: int | None
    fingerprint: str

    def value(self, stat: str) -> float | None:
        """One of :data:`STATS`: ``null_fraction`` is ``nulls / rows`` (None for a day without rows)."""
        if stat not in STATS:
            raise ValueError(f"unknown statistic {stat!r}; one of {', '.join(STATS)}")
        if stat == "null_fraction":
            return self.nulls / self.rows if self.rows else None
        found = getattr(self, stat)
        return None if found is None else float(found)

    def to_json(self) -> dict[str, Any]:
        """The object ``kiln stats --json`` prints: ``ds`` ISO, statistics that do not apply null."""
        data = asdict(self)
        return {key: data[key].isoformat() if key == "ds" else data[key] for key in _COLUMNS}

    def to_dict(self) -> dict[str, Any]:
        """:meth:`to_json` with the fingerprint (the run report's form)."""
        return {**self.to_json(), "fingerprint": self.fingerprint}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureDayStats:
        day = data["ds"]
        return cls(**{**{k: data.get(k) for k in (*_COLUMNS, "fingerprint")},
                      "ds": day if isinstance(day, date) else date.fromisoformat(day),
                      "fingerprint": data.get("fingerprint") or ""})


def numeric_features(frame: DataFrame, features: Sequence[str]) -> dict[str, bool]:
    """Each of ``features`` (columns of ``frame``): whether it is numeric (min, max, mean, ... apply)."""
    types = {f.name: type(f.dataType).__name__ for f in frame.schema.fields}
    return {name: types.get(name) in _NUMERIC for name in features}


def _value(name: str, numeric: bool) -> Column:
    """The value DayStats takes: the feature as a double, or a 64-bit hash of a non-numeric one (null stays null)."""
    from pyspark.sql import functions as F

    column = F.col(name)
    return column.cast("double") if numeric else F.when(column.isNotNull(), F.xxhash64(column))


def observable(frame: DataFrame, features: Sequence[str]) -> dict[str, Column]:
    """The aggregates (by name) a write of ``frame`` (partitioned by ``ds``, each task's rows sorted by ``ds``)
    observes for :func:`day_statistics`; none (logged) where the session's JVM lacks ``DayStats``."""
    from pyspark.sql import functions as F

    from featurekiln.internals.catalyst import jvm_aggregate, jvm_class
    from featurekiln.internals.jars import DAY_STATS_CLASS

    if not features:
        return {}
    aggregate = jvm_class(DAY_STATS_CLASS)
    if aggregate is None:
        log.info("featurekiln's %s is not in this session's JVM: the feature statistics come from a query over "
                 "the written rows", DAY_STATS_CLASS)
        return {}
    day = F.unix_date(F.col("ds")).cast("long")
    return {f"{STATS_PREFIX}{name}": jvm_aggregate(aggregate, day, _value(name, numeric))
            for name, numeric in numeric_features(frame, features).items()}


def _number(value: float) -> float | None:
    return None if math.isnan(value) else value


def _decode(data: bytes | bytearray) -> dict[date, tuple[int, int, int, tuple[Any, ...]]]:
    """DayStats's result: day -> (flags, rows, nulls, (min, max, mean, stddev, p50, p95, distinct))."""
    (count,) = struct.unpack_from(">i", data, 0)
    out = {}
    for i in range(count):
        day, flags, rows, nulls, _, *numbers, distinct = _RECORD.unpack_from(data, 4 + i * _RECORD.size)
        values = (*(_number(v) for v in numbers), distinct if distinct >= 0 else None)
        out[date(1970, 1, 1) + timedelta(days=day)] = (flags, rows, nulls, values)
    return out


def day_statistics(
    frame: DataFrame, view: str, fingerprint: str, features: Sequence[str], days: Sequence[date],
    observed: Mapping[str, Any] | None, statistics: Sequence[FileStatistics] | None,
) -> list[FeatureDayStats]:
    """The statistics of every feature on each of ``days`` of ``frame`` (the written rows), ordered by day then
    feature: from the ``observed`` values of :func:`observable` where they vouch for a day, else from one
    query over ``frame`` for the other days.

    Args:
        observed: the write's observed values (None without).
        statistics: Delta's statistics of the written files (one file per day): each day's observed rows must
            equal its files' rows; without them (or ``observed``) every day is queried.
    """
    wanted = sorted(set(days))
    found: dict[date, list[FeatureDayStats]] = {}
    reason = _observed_days(view, fingerprint, features, wanted, observed, statistics, found)
    rest = [d for d in wanted if d not in found]
    if rest:
        log.info("%s: feature statistics of %d day(s) from a query over the written rows: %s", view, len(rest), reason)
        for item in query_statistics(frame, view, fingerprint, features, rest):
            found.setdefault(item.ds, []).append(item)
    return [item for day in wanted for item in sorted(found.get(day, []), key=lambda s: features.index(s.feature))]


def _observed_days(
    view: str, fingerprint: str, features: Sequence[str], days: Sequence[date], observed: Mapping[str, Any] | None,
    statistics: Sequence[FileStatistics] | None, found: dict[date, list[FeatureDayStats]],
) -> str:
    """Fill ``found`` with the days the observed values vouch for; the reason the others are not."""
    if not features:
        return "no features"
    if observed is None or statistics is None:
        return "no values were observed over the written files"
    if any(f"{STATS_PREFIX}{name}" not in observed for name in features):
        return "the write did not observe them"
    files: dict[date, int] = {}
    for item in statistics:
        if item.partition:
            day = date.fromisoformat(item.partition)
            files[day] = files.get(day, 0) + item.rows
    decoded = {name: _decode(observed[f"{STATS_PREFIX}{name}"]) for name in features}
    reasons = set()
    for day in days:
        records = [decoded[name].get(day) for name in features]
        rows = files.get(day, 0)
        if all(r is None for r in records) and rows == 0:
            found[day] = [FeatureDayStats(view, day, name, 0, 0, None, None, None, None, None, None, 0, fingerprint)
                          for name in features]
        elif any(r is None or r[1] != rows for r in records):
            reasons.add("observed rows differ from the files'")
        elif any(r[0] & _SPLIT for r in records):
            reasons.add("a day's rows were in more than one write task")
        elif any(r[0] & _GAVE_UP for r in records):
            reasons.add("a day of a task held too many values to keep")
        else:
            found[day] = [FeatureDayStats(view, day, name, r[1], r[2], *r[3], fingerprint)
                          for name, r in zip(features, records, strict=True)]
    return ", ".join(sorted(reasons))


def query_statistics(
    frame: DataFrame, view: str, fingerprint: str, features: Sequence[str], days: Sequence[date]
) -> list[FeatureDayStats]:
    """The statistics of ``features`` on ``days`` computed by one Spark query over ``frame`` (a day without
    rows gets ``rows`` 0)."""
    from pyspark.sql import functions as F

    numeric = numeric_features(frame, features)
    aggregates = [F.count(F.lit(1)).alias("_rows")]
    for i, name in enumerate(features):
        value = F.col(name)
        if numeric[name]:
            value = F.col(name).cast("double")
            value = F.when(~F.isnan(value), value)
            aggregates += [F.min(value).alias(f"min{i}"), F.max(value).alias(f"max{i}"), F.avg(value).alias(f"mean{i}"),
                           F.stddev_samp(value).alias(f"stddev{i}"),
                           F.percentile_approx(value, [0.5, 0.95], QUANTILE_ACCURACY).alias(f"q{i}")]
        aggregates += [F.count(value).alias(f"count{i}"), F.approx_count_distinct(value, DISTINCT_RSD).alias(f"distinct{i}")]
    rows = (frame.where(F.col("ds").isin(list(days))).groupBy("ds").agg(*aggregates).collect()) if days else []
    by_day = {row["ds"]: row for row in rows}
    out = []
    for day in sorted(set(days)):
        row = by_day.get(day)
        for i, name in enumerate(features):
            if row is None:
                out.append(FeatureDayStats(view, day, name, 0, 0, None, None, None, None, None, None, 0, fingerprint))
                continue
            quantiles = (row[f"q{i}"] or [None, None]) if numeric[name] else [None, None]
            exact = [row[f"{k}{i}"] if numeric[name] else None for k in ("min", "max", "mean", "stddev")]
            out.append(FeatureDayStats(
                view, day, name, int(row["_rows"]), int(row["_rows"]) - int(row[f"count{i}"]),
                *(None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in exact),
                *(None if q is None else float(q) for q in quantiles), int(row[f"distinct{i}"]), fingerprint))
    return out


def write_stats(
    spark: SparkSession, settings: Settings, view: str, stats: Sequence[FeatureDayStats], first: date, last: date
) -> None:
    """Replace the statistics of ``view`` on days ``first`` .. ``last`` (both included) by ``stats`` in one commit
    (the table ``_kiln/stats``, partitioned by view, created on first use;
    :func:`featurekiln.offline.delta_table.replace_rows`); a lost commit race is written again."""
    from featurekiln.layout import stats_path
    from featurekiln.offline.delta_table import replace_rows

    rows = [(s.view, s.ds, s.feature, s.rows, s.nulls, s.min, s.max, s.mean, s.stddev, s.p50, s.p95, s.distinct,
             s.fingerprint) for s in stats if s.view == view and first <= s.ds <= last]
    frame = spark.createDataFrame(rows, STATS_SCHEMA)
    replace_rows(spark, settings, stats_path(settings), frame, partition="view", value=view, column="ds",
                 days=(first, last), metadata={"view": view, "stats": [first.isoformat(), last.isoformat()]},
                 name=view)
    log.info("%s: feature statistics of %s..%s written (%d rows)", view, first, last, len(rows))


def read_stats(
    settings: Settings, view: str, *, features: Sequence[str] | None = None, start: date | None = None,
    end: date | None = None,
) -> list[FeatureDayStats]:
    """The stored statistics of ``view`` (of ``features``, on days ``start`` .. ``end``, both included, when
    given), ordered by day then feature name; read without Spark (:mod:`featurekiln.offline.table_reader`).
    No table is no statistics."""
    from featurekiln.layout import stats_path
    from featurekiln.offline.table_reader import open_table, python_rows

    table = open_table(stats_path(settings), settings)
    if table is None:
        return []
    rows = python_rows(table.read({"view": view}) if "view" in table.partition_columns else table.read())
    chosen = set(features) if features else None
    out = [FeatureDayStats.from_dict(row) for row in rows
           if row["view"] == view and (chosen is None or row["feature"] in chosen)
           and (start is None or row["ds"] >= start) and (end is None or row["ds"] <= end)]
    return sorted(out, key=lambda s: (s.ds, s.feature))
