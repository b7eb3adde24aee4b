"""Training sets: every spine row with the features it would have been served at its time.

``training_set(spark, spine, features=[...], timestamp="ts")`` returns a lazy Spark
DataFrame; :func:`write_training_set` (``kiln training-set``) also writes it, with
a record of the feature-table versions read and a report. The steps:

1. resolve the features against the catalog and the spine's columns (pure, :mod:`featurekiln.planning.training`);
2. count the spine rows per needed snapshot day (one aggregation);
3. per view, pin the Delta version (the latest or ``as_of``) and check that every needed
   day was materialized by the expected definition (:mod:`featurekiln.offline.materialized`):
   missing or stale days are an error, or with ``allow_missing`` give nulls and a warning;
4. read only the usable ``ds`` partitions of that version and join (:mod:`featurekiln.compute.training`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from featurekiln.compute.training import FeatureInput, point_in_time_join, spine_days
from featurekiln.definitions.loader import load_catalog
from featurekiln.errors import TrainingSetError
from featurekiln.offline.delta_table import table_path
from featurekiln.offline.delta_log import DeltaLog
from featurekiln.offline.materialized import materialized_days
from featurekiln.offline.retention import check_version_kept, retain_days
from featurekiln.offline.training_output import OutputFormat, write_output, write_record
from featurekiln.planning.intervals import length
from featurekiln.planning.training import DayCoverage, ViewSelection, day_coverage, parse_key_map, select_features
from featurekiln.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Observation, SparkSession

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ViewRead:
    """What was read of one view: the table, its pinned Delta version and the day coverage."""

    selection: ViewSelection
    path: str
    version: int
    coverage: DayCoverage
    unusable_rows: int


@dataclass
class Prepared:
    """A training set ready to compute: the joined frame (lazy), what it reads, and its warnings."""

    frame: DataFrame
    reads: list[ViewRead]
    rows_in: int
    warnings: list[str] = field(default_factory=list)

    @property
    def versions(self) -> dict[str, int]:
        """The Delta version read of each view's feature table."""
        return {r.selection.view.name: r.version for r in self.reads}


@dataclass(frozen=True)
class TrainingRequest:
    """What a training set asks for (see :func:`training_set` for each field)."""

    features: tuple[str, ...]
    timestamp: str = "ts"
    key_map: Mapping[str, str] = field(default_factory=dict)
    allow_missing: bool = False
    as_of: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The request as JSON-able data (part of the output's record)."""
        return {
            "features": list(self.features),
            "timestamp": self.timestamp,
            "key_map": dict(self.key_map),
            "allow_missing": self.allow_missing,
        }


def _view_read(
    spark: SparkSession, settings: Settings, selection: ViewSelection, days: Mapping[date | None, int], version: int | None
) -> tuple[ViewRead, DataFrame]:
    from pyspark.sql import functions as F

    view = selection.view
    path = table_path(settings, view.table_name)
    ledger = DeltaLog.of(path, settings)
    materialized = materialized_days(ledger, view.name, version)
    if version is not None:
        check_version_kept(ledger, view.name, version, retain_days(settings))
    # Pinned to an old version, a day is judged by the definition in force at that version.
    expected = view.fingerprint() if version is None else (materialized.fingerprint or view.fingerprint())
    needed = [d for d in days if d is not None]
    coverage = day_coverage(view.name, needed, materialized.days, expected, view.start)
    unusable = sum(n for d, n in days.items() if d is not None and any(s <= d < e for s, e in coverage.unusable()))
    frame = spark.read.format("delta").option("versionAsOf", materialized.version).load(path)
    absent = [c for c in (*view.keys, "ds", *selection.features) if c not in frame.columns]
    if absent:
        raise TrainingSetError(
            f"{view.name}: the feature table (version {materialized.version}) has no column(s) {', '.join(absent)}; "
            "backfill the view again"
        )
    usable = frame.where(F.col("ds").isin(list(coverage.usable)))
    return ViewRead(selection, path, materialized.version, coverage, unusable), usable


def prepare(
    spark: SparkSession,
    spine: DataFrame,
    request: TrainingRequest,
    settings: Settings | None = None,
    observation: Observation | None = None,
) -> Prepared:
    """Resolve, check and plan a training set; see :func:`training_set` for the request's fields.

    Args:
        observation: filled with the report's counts when the frame is computed.

    Raises:
        UnknownViewError, PlanError: a feature reference or a key mapping is wrong.
        TableError: a feature table or a pinned version does not exist.
        RetentionError: a pinned version was replaced longer ago than the retention
            (:mod:`featurekiln.offline.retention`).
        TrainingSetError: needed days are missing or stale (without ``allow_missing``), or a
            spine column has the wrong type.
    """
    settings = settings or Settings.from_env()
    views = load_catalog(settings.defs_dir)
    key_map = parse_key_map([f"{k}={v}" for k, v in request.key_map.items()])
    selections = select_features(request.features, views, spine.columns, key_map)
    as_of = dict(request.as_of)
    unknown = sorted(set(as_of) - {s.view.name for s in selections})
    if unknown:
        raise TrainingSetError(f"--as-of-version names view(s) not selected: {', '.join(unknown)}")
    days = spine_days(spine, request.timestamp)
    reads, inputs = [], []
    for selection in selections:
        read, frame = _view_read(spark, settings, selection, days, as_of.get(selection.view.name))
        reads.append(read)
        inputs.append(FeatureInput(selection, frame))
    incomplete = [r for r in reads if not r.coverage.complete]
    if incomplete and not request.allow_missing:
        lines = [f"{r.coverage.describe()} ({r.unusable_rows} spine rows)" for r in incomplete]
        raise TrainingSetError(
            "needed snapshot days are not materialized by the current definition; backfill them, "
            "or pass --allow-missing for null features:\n" + "\n".join(lines)
        )
    warnings = []
    for read in incomplete:
        days_count = sum(length(i) for i in read.coverage.unusable())
        warnings.append(f"{read.coverage.describe()}: {days_count} day(s), {read.unusable_rows} spine rows get null features")
    for line in warnings:
        log.warning(line)
    frame = point_in_time_join(spine, request.timestamp, inputs, observation)
    return Prepared(frame=frame, reads=reads, rows_in=sum(days.values()), warnings=warnings)


def training_set(
    spark: SparkSession,
    spine: DataFrame,
    features: Sequence[str],
    timestamp: str = "ts",
    *,
    settings: Settings | None = None,
    key_map: Mapping[str, str] | None = None,
    allow_missing: bool = False,
    as_of: Mapping[str, int] | None = None,
) -> DataFrame:
    """Every row of ``spine`` with the features it would have been served at its ``timestamp``.

    A row at time ``t`` gets each view's snapshot ``ds = date_utc(t) - 1 day``, so it never
    sees an event at or after ``t``. Every spine row comes out exactly once with all its
    columns, then ``<view>__<feature>`` columns; keys absent from the snapshot, null keys and
    null timestamps get nulls.

    Args:
        spark: the Spark session (with Delta).
        spine: the rows to enrich (any DataFrame: labels, events, ...).
        features: ``"view"`` (all its features) or ``"view:feature"``, in output order.
        timestamp: the spine's time column: timestamp (UTC instant), timestamp_ntz (UTC) or date.
        settings: where the definitions and tables are (default: ``Settings.from_env()``).
        key_map: ``{"view.key": "spine_column"}`` where a key's spine column has another name.
        allow_missing: needed days that are missing or stale give nulls and a logged warning
            instead of an error.
        as_of: ``{"view": version}``: read that Delta version of the view's table (to rebuild
            an old training set exactly).

    Returns:
        A lazy DataFrame; nothing is joined until it is written or collected.

    Raises:
        See :func:`prepare`.
    """
    request = TrainingRequest(tuple(features), timestamp, dict(key_map or {}), allow_missing, dict(as_of or {}))
    return prepare(spark, spine, request, settings).frame


def read_spine(spark: SparkSession, source: str) -> DataFrame:
    """The spine at ``source``: a Delta table (a directory with ``_delta_log``), CSV (``*.csv``) or parquet.

    Raises:
        TrainingSetError: the spine cannot be read.
    """
    from pyspark.errors import PySparkException

    from featurekiln.offline.delta_table import table_exists

    try:
        if table_exists(spark, source):
            return spark.read.format("delta").load(source)
        if source.lower().rstrip("/").endswith(".csv"):
            return spark.read.option("header", "true").option("inferSchema", "true").csv(source)
        return spark.read.parquet(source)
    except PySparkException as error:
        raise TrainingSetError(f"spine {source}: cannot be read: {str(error).strip().splitlines()[0]}") from error


@dataclass(frozen=True)
class ViewStats:
    """Per view of a written training set: version read, rows matched, nulls per output column."""

    view: str
    version: int
    matched: int
    nulls: dict[str, int]


@dataclass(frozen=True)
class TrainingSetReport:
    """Rows in and out, and per view the version read, the match rate and the null rate per column."""

    rows_in: int
    rows_out: int
    views: list[ViewStats]
    warnings: list[str]

    def match_rate(self, stats: ViewStats) -> float:
        """Share of output rows that found a snapshot row of the view (0 for an empty output)."""
        return stats.matched / self.rows_out if self.rows_out else 0.0

    def null_rate(self, stats: ViewStats, column: str) -> float:
        """Share of output rows whose ``column`` is null (0 for an empty output)."""
        return stats.nulls[column] / self.rows_out if self.rows_out else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-able data (written into the record)."""
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "views": [
                {
                    "view": s.view,
                    "version": s.version,
                    "matched": s.matched,
                    "match_rate": self.match_rate(s),
                    "nulls": s.nulls,
                    "null_rate": {c: self.null_rate(s, c) for c in s.nulls},
                }
                for s in self.views
            ],
            "warnings": self.warnings,
        }


@dataclass(frozen=True)
class TrainingSetResult:
    """What :func:`write_training_set` wrote: where, in which format, its report and record, how long it took."""

    out: str
    output_format: str
    report: TrainingSetReport
    record: str
    seconds: float


def write_training_set(
    spark: SparkSession,
    spine: str | DataFrame,
    out: str,
    request: TrainingRequest,
    settings: Settings | None = None,
    output_format: OutputFormat = "parquet",
) -> TrainingSetResult:
    """Build a training set, write it to ``out`` with its record, and report rows, match and null rates.

    The record ``<out>/_kiln_training_set.json`` (and, for Delta output, the commit's
    ``userMetadata``) holds the request, the Delta version read of every feature table
    (pass them as ``as_of`` to rebuild the same rows) and the report.

    Raises:
        TrainingSetError: as :func:`prepare`, or ``out`` is the spine itself.
        See :func:`prepare` for the others.
    """
    from pyspark.sql import Observation

    started = time.perf_counter()
    if isinstance(spine, str) and spine.rstrip("/") == out.rstrip("/"):
        raise TrainingSetError(f"--out {out} is the spine itself; write the training set elsewhere")
    frame = read_spine(spark, spine) if isinstance(spine, str) else spine
    observation = Observation("kiln_training_set")
    prepared = prepare(spark, frame, request, settings, observation)
    record = {
        **request.to_dict(),
        "spine": spine if isinstance(spine, str) else None,
        "as_of_version": prepared.versions,
        "created_at": datetime.now(UTC).isoformat(),
    }
    write_output(prepared.frame, out, output_format, record)
    metrics = observation.get
    views = [
        ViewStats(
            view=r.selection.view.name,
            version=r.version,
            matched=int(metrics[f"{r.selection.view.name}__matched"]),
            nulls={c: int(metrics[f"{c}__nulls"]) for c in r.selection.output_columns},
        )
        for r in prepared.reads
    ]
    rows_out = int(metrics["rows"])
    report = TrainingSetReport(prepared.rows_in, rows_out, views, prepared.warnings)
    path = write_record(spark, out, {**record, "report": report.to_dict()})
    if rows_out != prepared.rows_in:
        raise TrainingSetError(f"{out}: wrote {rows_out} rows for {prepared.rows_in} spine rows; please report this bug")
    return TrainingSetResult(out, output_format, report, path, time.perf_counter() - started)
