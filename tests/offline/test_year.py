"""A small year: 60 nightly runs with ``lookback: 2d`` and maintenance every 7 nights, on real Spark and Delta.

The nights run in minutes, so a retention in days would keep every replaced
file. The weekly passes run with a retention of 0 days: each may delete every
file replaced before it, as a real retention does with files replaced longer
ago than it; storage must then equal the live files. The last pass runs with a
retention of 1 day, which sets the tables' ``delta.deletedFileRetentionDuration``
back to a day (Delta itself refuses to time-travel past that property). A reader
judges versions by their Delta commit times, as written (none is aged): with the
1-day retention a version replaced after the last pass is reproduced; with a
0-day retention a version whose files a pass deleted is refused with
:class:`RetentionError`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest

from featurekiln.settings import Settings
from tests.offline.test_incremental import RAW, START, VIEW, day, land, landed_until, make_events, view_of
from tests.offline.test_maintenance import data_files, live_files, project_settings
from tests.oracle import assert_frames_match, expected_snapshots

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.slow
NIGHTS = 60
EVERY = 7


def training_rows(spark: SparkSession, settings: Settings, version: int | None) -> pd.DataFrame:
    """A training set of every user at the end of each night, from ``version`` of the table (None: latest)."""
    from featurekiln.training import training_set

    rows = [(user, pd.Timestamp(day(n + 1), tz="UTC").to_pydatetime()) for n in range(1, NIGHTS + 1) for user in range(25)]
    spine = spark.createDataFrame(rows, "user_id BIGINT, ts TIMESTAMP")
    frame = training_set(spark, spine, [VIEW], settings=settings, allow_missing=True,
                         as_of={VIEW: version} if version is not None else None)
    return frame.toPandas().sort_values(["ts", "user_id"]).reset_index(drop=True)


def latest_version(settings: Settings) -> int:
    from featurekiln.layout import table_path
    from featurekiln.offline.delta_log import DeltaLog

    return max(c.version for c in DeltaLog.of(table_path(settings, VIEW), settings).commits())


def test_a_small_year_with_weekly_maintenance(spark: SparkSession, tmp_path: Path, collect_frame) -> None:
    """The table equals one backfill of the year; after every 0-day pass storage holds only the live files
    (<= 1.3x the live bytes), and after every pass at most 1.5 files per day held; a version inside the
    retention is reproduced exactly, one outside it is refused clearly."""
    from featurekiln import runner
    from featurekiln.layout import table_path, tiles_path
    from featurekiln.offline.delta_table import read_table
    from featurekiln.offline.maintenance import maintain
    from featurekiln.offline.retention import RetentionError

    settings = project_settings(tmp_path, retain_days=0)
    root = Path(settings.warehouse)
    view = view_of(RAW)
    events = make_events(nights=NIGHTS)
    for landed in sorted(d for d in events["landed"].unique() if d < START):
        land(root, events, landed)
    features, tiles = Path(table_path(settings, VIEW)), Path(tiles_path(settings, VIEW))
    swept_version = kept_version = None
    kept_rows = None
    passes = []
    last_pass = NIGHTS - NIGHTS % EVERY
    for n in range(1, NIGHTS + 1):
        land(root, events, day(n))
        runner.run(view, day(n), settings=settings, spark=spark)
        if n == EVERY + 1:
            swept_version = latest_version(settings)  # replaced by night n + 1, deleted by the next pass
        if n == NIGHTS - 1:  # after the last pass (1-day retention): replaced by the last night only
            kept_version, kept_rows = latest_version(settings), training_rows(spark, settings, None)
        if n % EVERY:
            continue
        swept = n < last_pass
        done = {d.table: d for d in maintain(spark, settings if swept else replace(settings, retain_days=1), [view])}
        passes.append((n, {t: (d.bytes / d.live_bytes, d.files, d.live_files) for t, d in done.items()
                           if d.live_bytes}))
        held = {"features": n, "tiles": n + 9}  # snapshot days; tile days (the 10-day horizon of night 1)
        for name, path in (("features", features), ("tiles", tiles)):
            on_storage = data_files(path)
            live = live_files(spark, path)
            if swept:
                assert on_storage == live, f"night {n}: {name}: only live files are left after a 0-day pass"
                live_bytes = sum((path / f).stat().st_size for f in live)
                assert sum((path / f).stat().st_size for f in on_storage) <= 1.3 * live_bytes
            assert len(live) <= 1.5 * held[name], f"night {n}: {name}: {len(live)} files for {held[name]} days"
    print("before each pass: x live bytes, files, live files:", *passes, sep="\n")  # noqa: T201

    arrived = landed_until(events, day(NIGHTS))
    too_late = (arrived["user_id"] == 3) & (arrived["amount"] == 1000)  # landed 5 days late: outside the lookback
    actual = collect_frame(read_table(spark, settings, VIEW))
    assert_frames_match(actual, expected_snapshots(arrived[~too_late].drop(columns=["landed"]), RAW, START,
                                                   day(NIGHTS)), ["user_id"])

    reader = replace(settings, retain_days=1)
    pd.testing.assert_frame_equal(training_rows(spark, reader, kept_version), kept_rows)
    with pytest.raises(RetentionError, match=rf"version {swept_version} .* retention of 0 day"):
        training_rows(spark, settings, swept_version)
