"""The pipeline's tile and snapshot steps: store the daily tiles a run needs, then assemble its snapshots
from the stored tiles alone (so a run reads raw events only for tile days not stored yet)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from featurekiln.definitions.models import FeatureView
from featurekiln.planning.intervals import ONE_DAY, Interval, length
from featurekiln.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from featurekiln.planning.materialization import TilePlan

log = logging.getLogger(__name__)


def tile_work(
    view: FeatureView, settings: Settings, needed: Sequence[Interval], refresh: Sequence[Interval] = ()
) -> TilePlan:
    """What :func:`ensure_tiles` must do so that the tile days ``needed`` are stored with every partial group
    of ``view`` (from the tile table's Delta log; no Spark).

    Tile days not stored (or stored for another source, filter or keys), and the
    days in ``refresh``, are to be computed from the source with every group;
    days stored without some groups (a feature was added) get just those groups.
    """
    from featurekiln.layout import tiles_path
    from featurekiln.offline.tile_store import held_tiles
    from featurekiln.planning.materialization import plan_tiles

    return plan_tiles(view.partial_groups(), held_tiles(settings, tiles_path(settings, view.name)), needed, refresh)


def ensure_tiles(spark: SparkSession, view: FeatureView, settings: Settings, work: TilePlan, *, run_id: str,
                 trigger: str) -> TilePlan:
    """Do the tile ``work`` of :func:`tile_work`: compute tiles from the source and store them.

    Days to compute from the source replace what was stored; days that lack some
    groups get those from the source, joined to what is stored. Each range is one
    atomic commit that records its days and groups (the ledger).

    Returns:
        ``work`` (nothing was done when it is empty).
    """
    from pyspark.sql import functions as F

    from featurekiln.compute.sources import read_events
    from featurekiln.compute.tiles import DAY, build_tiles, feature_columns
    from featurekiln.layout import tiles_path
    from featurekiln.offline.tile_store import read_tiles, tile_metadata, write_tiles

    path = tiles_path(settings, view.name)
    groups = view.partial_groups()
    for interval in work.from_source:
        log.info("%s: tiling event days %s..%s from the source", view.name, interval[0], interval[1] - ONE_DAY)
        tiles = build_tiles(read_events(spark, view, settings, interval), view)
        metadata = tile_metadata(view.name, list(groups), interval, read="source", run_id=run_id, trigger=trigger)
        write_tiles(spark, settings, path, tiles, interval, metadata, view.name)
    for have, new, spans in work.add:
        columns = {c for i in (groups[g] for g in new) for c in feature_columns(view, i)}
        for interval in spans:
            log.info("%s: adding %d partial group(s) to the stored tiles of %s..%s", view.name, len(new),
                     interval[0], interval[1] - ONE_DAY)
            stored = spark.read.format("delta").load(path)
            kept = [c for c in stored.columns if c not in columns]
            added = build_tiles(read_events(spark, view, settings, interval), view, sorted(new))
            added = added.withColumn(DAY, F.col(DAY).cast(stored.schema[DAY].dataType))
            tiles = read_tiles(spark, path, interval, kept).join(added, on=[*view.keys, DAY], how="full")
            metadata = tile_metadata(view.name, sorted(have | new), interval, read="tiles+source", run_id=run_id,
                                     trigger=trigger)
            write_tiles(spark, settings, path, tiles, interval, metadata, view.name)
    return work


def compute_snapshots(spark: SparkSession, view: FeatureView, settings: Settings, days: Interval) -> DataFrame:
    """The snapshots of the days ``days`` (lazy), assembled from the stored tiles (see :func:`ensure_tiles`)
    of the event days ``days`` reads (widened back by the view's horizon)."""
    from featurekiln.compute.tiles import DAY, feature_columns
    from featurekiln.compute.windows import snapshots
    from featurekiln.layout import tiles_path
    from featurekiln.offline.tile_store import read_tiles
    from featurekiln.planning.intervals import widen_back

    columns = list(dict.fromkeys(c for i in range(len(view.features)) for c in feature_columns(view, i)))
    events = widen_back(days, view.horizon_days - 1)
    tiles = read_tiles(spark, tiles_path(settings, view.name), events, [*view.keys, DAY, *columns])
    return snapshots(tiles, view, days)


def describe(work: TilePlan) -> str:
    """What :func:`ensure_tiles` is about to do, in a line."""
    read = sum(length(i) for i in work.reads_events)
    return f"tiling {read} event day(s) from the source" if read else "reading stored tiles"
