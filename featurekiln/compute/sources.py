"""Read a view's source events: format, filter, query, time range and value expressions."""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from typing import TYPE_CHECKING

from featurekiln.errors import SourceError
from featurekiln.planning.intervals import Interval
from featurekiln.settings import Settings
from featurekiln.definitions.models import FeatureView

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

TS = "_ts"


def value_column(index: int) -> str:
    """Name of the column that holds ``features[index].expr`` evaluated per event."""
    return f"_v{index}"


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


def read_source(spark: SparkSession, view: FeatureView, settings: Settings) -> DataFrame:
    """The raw source of ``view`` with its ``filter`` and ``query`` applied.

    ``filter`` is applied to the source first; ``query`` then runs over the
    filtered rows as the temporary view ``source``.

    Raises:
        SourceError: the source cannot be read, or its filter/query fails.
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
        raise SourceError(f"{view.name}: source.path: cannot read {view.source.format} source {path!r}: {_short(error)}") from error
    try:
        if view.source.filter:
            frame = frame.where(view.source.filter)
        if view.source.query:
            frame.createOrReplaceTempView("source")
            frame = spark.sql(view.source.query)
    except PySparkException as error:
        field = "source.query" if view.source.query else "source.filter"
        raise SourceError(f"{view.name}: {field}: {_short(error)}") from error
    return frame


def read_events(spark: SparkSession, view: FeatureView, settings: Settings, events: Interval) -> DataFrame:
    """Events of ``view`` with ``events[0] <= event_ts < events[1]`` (UTC days).

    Returns:
        Columns: the entity keys, ``_ts`` (timestamp) and ``_v<i>`` for every
        feature ``i`` that has an ``expr`` (a floating NaN becomes null). Events
        with a null key or a null timestamp are dropped.

    Raises:
        SourceError: a key, the timestamp or a feature expression does not
            resolve against the source.
    """
    from pyspark.errors import PySparkException
    from pyspark.sql import functions as F
    from pyspark.sql.types import DateType, DoubleType, FloatType, StringType, TimestampNTZType, TimestampType

    frame = read_source(spark, view, settings)
    columns = set(frame.columns)
    needed = [*view.keys, view.source.timestamp]
    absent = [c for c in needed if c not in columns]
    if absent:
        raise SourceError(
            f"{view.name}: the source has no column {', '.join(map(repr, absent))} "
            f"(entity.keys / source.timestamp); it has: {', '.join(sorted(columns))}"
        )
    ts_type = frame.schema[view.source.timestamp].dataType
    if not isinstance(ts_type, (TimestampType, TimestampNTZType, DateType, StringType)):
        raise SourceError(f"{view.name}: source.timestamp: column {view.source.timestamp!r} is {ts_type.simpleString()}, not a timestamp")
    ts = F.col(view.source.timestamp).cast("timestamp")
    selected = [F.col(k) for k in view.keys] + [ts.alias(TS)]
    for i, feature in enumerate(view.features):
        if feature.expr is None:
            continue
        value = F.expr(feature.expr)
        try:
            kind = frame.select(value).schema[0].dataType
        except PySparkException as error:
            raise SourceError(f"{view.name}: features[{i}].expr: {feature.expr!r} does not resolve against the source: {_short(error)}") from error
        if isinstance(kind, (FloatType, DoubleType)):
            value = F.when(~F.isnan(value), value)  # DESIGN.md: NaN counts as null
        selected.append(value.alias(value_column(i)))
    start, end = _midnight(events[0]), _midnight(events[1])
    out = frame.select(*selected).where((F.col(TS) >= F.lit(start)) & (F.col(TS) < F.lit(end)))
    return out.dropna(subset=view.keys)


def _short(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
