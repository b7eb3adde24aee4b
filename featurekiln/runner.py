"""The one runner: executes a backfill plan. The CLI, the jobs and Airflow all call it."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from featurekiln.errors import KilnError
from featurekiln.planning.plan import BackfillPlan, Chunk, plan_backfill
from featurekiln.settings import Settings
from featurekiln.spec.models import FeatureView

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


class SparkFailure(KilnError):
    """Spark failed while computing or writing a view."""


@dataclass(frozen=True)
class ChunkResult:
    """One committed chunk."""

    chunk: Chunk
    rows: int
    version: int
    seconds: float


@dataclass
class BackfillResult:
    """What a backfill did."""

    view: str
    plan: BackfillPlan
    run_id: str
    table: str
    chunks: list[ChunkResult] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(c.rows for c in self.chunks)


def backfill(
    view: FeatureView,
    first: date,
    last: date,
    *,
    settings: Settings,
    spark: SparkSession,
    chunk_days: int | None = None,
    run_id: str | None = None,
    trigger: str = "cli",
    on_chunk: Callable[[ChunkResult], None] | None = None,
) -> BackfillResult:
    """Compute snapshots ``first`` .. ``last`` (both included) of ``view`` into its Delta table.

    Events are read once and tiled once for the whole range; the snapshots are
    then committed chunk by chunk (``chunk_days`` each), every chunk in one atomic
    ``replaceWhere`` commit. Rerunning gives identical contents.

    Raises:
        PlanError: the range is not valid for the view.
        SourceError: the source cannot be read as the definition says.
        TableError: the existing table does not match the definition.
        SparkFailure: Spark failed otherwise.
    """
    from pyspark import StorageLevel
    from pyspark.errors import PySparkException

    from featurekiln.compute.sources import read_events
    from featurekiln.compute.tiles import build_tiles
    from featurekiln.compute.windows import snapshots
    from featurekiln.offline.delta_table import chunk_metadata, replace_days, table_path

    plan = plan_backfill(view, first, last, chunk_days or settings.chunk_days)
    run_id = run_id or uuid.uuid4().hex[:12]
    path = table_path(settings, view.name)
    result = BackfillResult(view=view.name, plan=plan, run_id=run_id, table=path)
    log.info("%s: backfill %s..%s in %d chunk(s), run %s", view.name, first, last, len(plan.chunks), run_id)
    events = read_events(spark, view, settings, plan.events)
    frame = snapshots(build_tiles(events, view), view, plan.snapshots)
    cached = len(plan.chunks) > 1
    if cached:
        frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        for chunk in plan.chunks:
            started = time.monotonic()
            part = frame.where((frame.ds >= chunk.start) & (frame.ds < chunk.end))
            metadata = chunk_metadata(view.name, view.fingerprint(), chunk.interval, run_id, trigger)
            commit = replace_days(spark, path, part, chunk.interval, metadata, view.name)
            done = ChunkResult(chunk, commit.rows, commit.version, time.monotonic() - started)
            result.chunks.append(done)
            log.info("%s: chunk %s committed as version %d (%d rows)", view.name, chunk, commit.version, commit.rows)
            if on_chunk is not None:
                on_chunk(done)
    except PySparkException as error:
        raise SparkFailure(f"{view.name}: Spark failed: {str(error).strip().splitlines()[0]}") from error
    finally:
        if cached:
            frame.unpersist()
    return result
