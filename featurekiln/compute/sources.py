"""Read a view's source events: format, filter, query, time range and value expressions."""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from typing import TYPE_CHECKING

from featurekiln.compute.read_scope import ReadScope
from featurekiln.errors import SourceError
from featurekiln.planning.intervals import Interval
from featurekiln.settings import Settings
from featurekiln.definitions.models import FeatureView

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import DataType

TS = "_ts"


def value_column(index: int) -> str:
    """Name of the column that holds ``features[index].expr`` evaluated per event."""
    return f"_v{index}"


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


def read_source(
    spark: SparkSession,
    view: FeatureView,
    settings: Settings,
    scope: ReadScope | None = None,
    landed_from: date | None = None,
) -> DataFrame:
    """The raw source of ``view`` with its ``filter`` and ``query`` applied.

    ``filter`` is applied to the source first; ``query`` then runs over the
    filtered rows as the temporary view ``source``. Nothing is computed.

    Args:
        scope: what the source may read; by default the files under ``source.path``.
        landed_from: with a ``source.partition_by`` column (the day an event landed,
            never before its event day), read only the partitions that landed on or
            after this day: the events of days ``>= landed_from`` all lie there.

    Raises:
        SourceError: the source cannot be read, its filter/query fails, or the
            result reads anything outside ``source.path``.
    """
    from pyspark.errors import PySparkException

    path = settings.resolve(view.source.path)
    try:
        reader = spark.read
        if view.source.format == "csv":
            frame = reader.option("header", True).option("inferSchema", True).csv(path)
        else:
            frame = reader.format(view.source.format).load(path)
    except PySparkException as error:
        problem = f"no {view.source.format} data at {path!r}" if "PATH_NOT_FOUND" in str(error) else (
            f"cannot read {view.source.format} source {path!r}: {_short(error)}")
        raise SourceError(f"{view.name}: {view.where('source.path')}: {problem}") from error
    if landed_from is not None and view.source.partition_by:
        frame = _landed_since(view, frame, landed_from)
    try:
        if view.source.filter:
            frame = frame.where(view.source.filter)
        if view.source.query:
            frame.createOrReplaceTempView("source")
            frame = spark.sql(view.source.query)
    except PySparkException as error:
        field = "source.query" if view.source.query else "source.filter"
        raise SourceError(f"{view.name}: {view.where(field)}: {_short(error)}") from error
    field = "source.query" if view.source.query else "source.filter" if view.source.filter else "source.path"
    (scope or ReadScope(path)).require(frame, f"{view.name}: {view.where(field)}")
    return frame


def read_events(spark: SparkSession, view: FeatureView, settings: Settings, events: Interval) -> DataFrame:
    """Events of ``view`` with ``events[0] <= event_ts < events[1]`` (UTC days).

    Returns:
        Columns: the entity keys, ``_ts`` (timestamp) and ``_v<i>`` for every
        feature ``i`` that has an ``expr`` (a floating NaN becomes null). Events
        with a null key or a null timestamp are dropped.

    Raises:
        SourceError: a key, the timestamp or a feature expression does not
            resolve against the source, or something reads outside ``source.path``.
    """
    from pyspark.errors import PySparkException
    from pyspark.sql import functions as F
    from pyspark.sql.types import DateType, DoubleType, FloatType, StringType, TimestampNTZType, TimestampType

    scope = ReadScope(settings.resolve(view.source.path))
    frame = read_source(spark, view, settings, scope, landed_from=events[0])
    columns = set(frame.columns)
    needed = [*view.keys, view.source.timestamp]
    absent = [c for c in needed if c not in columns]
    if absent:
        field = "source.timestamp" if absent == [view.source.timestamp] else "entity.keys"
        raise SourceError(
            f"{view.name}: {view.where(field)}: the source has no column {', '.join(map(repr, absent))}; "
            f"it has: {', '.join(sorted(columns))}"
        )
    ts_type = frame.schema[view.source.timestamp].dataType
    if not isinstance(ts_type, (TimestampType, TimestampNTZType, DateType, StringType)):
        raise SourceError(
            f"{view.name}: {view.where('source.timestamp')}: column {view.source.timestamp!r} is "
            f"{ts_type.simpleString()}, not a timestamp"
        )
    ts = _event_time(view, F.col(view.source.timestamp), ts_type)
    selected = [F.col(k) for k in view.keys] + [ts.alias(TS)]
    for i, feature in enumerate(view.features):
        if feature.expr is None:
            continue
        value = F.expr(feature.expr)
        try:
            probe = frame.select(value)
            scope.require(probe, f"{view.name}: {view.where(f'features[{i}].expr')}")
            kind = probe.schema[0].dataType
        except PySparkException as error:
            raise SourceError(
                f"{view.name}: {view.where(f'features[{i}].expr')}: {feature.expr!r} does not resolve against the "
                f"source: {_short(error)}"
            ) from error
        if isinstance(kind, (FloatType, DoubleType)):
            value = F.when(~F.isnan(value), value)  # docs/semantics.md: NaN counts as null
        selected.append(value.alias(value_column(i)))
    start, end = _midnight(events[0]), _midnight(events[1])
    out = frame.select(*selected).where((F.col(TS) >= F.lit(start)) & (F.col(TS) < F.lit(end)))
    return out.dropna(subset=view.keys)


def _landed_since(view: FeatureView, frame: DataFrame, first: date) -> DataFrame:
    """Rows whose landing day (``source.partition_by``) is ``first`` or later; pruned partitions are not read."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DateType, StringType

    column = view.source.partition_by
    if column not in frame.columns:
        raise SourceError(f"{view.name}: {view.where('source.partition_by')}: the source has no column {column!r}; "
                          f"it has: {', '.join(sorted(frame.columns))}")
    kind = frame.schema[column].dataType
    if isinstance(kind, DateType):
        return frame.where(F.col(column) >= F.lit(first))
    if isinstance(kind, StringType):  # 'YYYY-MM-DD' sorts like the day it names
        return frame.where(F.col(column) >= F.lit(first.isoformat()))
    raise SourceError(f"{view.name}: {view.where('source.partition_by')}: column {column!r} is "
                      f"{kind.simpleString()}; use a date or a 'YYYY-MM-DD' string column")


def _event_time(view: FeatureView, raw: Column, raw_type: DataType) -> Column:
    """The event time as a timestamp; a string that is not one stops the run with the field named."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    if not isinstance(raw_type, StringType):
        return raw.cast("timestamp")
    parsed = raw.try_cast("timestamp")
    message = F.concat(
        F.lit(f"{view.name}: {view.where('source.timestamp')}: column {view.source.timestamp!r} holds '"),
        raw,
        F.lit("', which is not a timestamp (use ISO 8601 like 2025-01-31T12:00:00Z, or a timestamp column)"),
    )
    return F.when(raw.isNotNull() & parsed.isNull(), F.raise_error(message)).otherwise(parsed)


def _short(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
