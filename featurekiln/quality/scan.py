"""The gate's first pass: the checks no proof decided, counted in one scan of every chunk at once.

:func:`decide_chunks` takes the checks that
:mod:`featurekiln.quality.expectation_sql` translates, leaves out those the
proofs decide (:mod:`featurekiln.quality.proofs_from_statistics`, then
:mod:`featurekiln.quality.proofs_observed`, when a write brought statistics and
observed values), and counts the rest in one query over the rows of every chunk
(each row marked with its chunk): a plain aggregation by chunk, or, with a
compound-uniqueness check, its group-by (:mod:`featurekiln.quality.repeated_rows`)
with the other counts riding in its groups. When the proofs decide everything,
no row is read. A failed single-column check takes a few sample values in one
small query; every other failure, and every expectation not translated, is left
to Great Expectations (:mod:`featurekiln.quality.gate`).

Fallbacks are logged at INFO with their reason, never silent: a check that its
proof could have decided but did not goes to the scan, and a scan that Spark
cannot run (a query condition it cannot analyse) leaves every check to Great
Expectations, which reports the error its own way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from featurekiln.quality import proofs_from_statistics, proofs_observed, repeated_rows
from featurekiln.quality.expectation_sql import (
    COUNT_PREFIX,
    NONNULL_PREFIX,
    ROWS,
    Result,
    column_types,
    label,
    results,
    translate,
)
from featurekiln.quality.proofs_from_statistics import Known
from featurekiln.quality.suites import Expectation

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

log = logging.getLogger(__name__)

CHUNK = "__kiln_chunk"


def decide(frame: DataFrame, expectations: Mapping[int, Expectation], samples: int) -> tuple[int, dict[int, Result]]:
    """The rows of ``frame``, and the results, in Great Expectations' shape, of the expectations decided here.

    Args:
        frame: the chunk (written files, or cached by the caller: it is scanned more than once on failures).
        expectations: by index.
        samples: how many unexpected values a failure of a sampled expectation reports.

    Returns:
        The rows, and by index a result with ``success`` for every expectation decided
        here (one scan of the chunk: :func:`decide_chunks` for one chunk). A failure
        carries its unexpected count, and for the sampled types its sample values too
        (one small Spark job each); other failures are left to Great Expectations for samples.
    """
    from pyspark.sql import functions as F

    rows, decided = decide_chunks(frame, expectations, F.lit(0), 1, samples)
    return rows[0], decided[0]


def decide_chunks(
    frame: DataFrame, expectations: Mapping[int, Expectation], chunk: Column, chunks: int, samples: int,
    statistics: Sequence[Known] | None = None, observed: Mapping[str, Any] | None = None,
) -> tuple[list[int], list[dict[int, Result]]]:
    """:func:`decide` for each of ``chunks`` chunks of ``frame`` at once (a backfill's chunks).

    Args:
        frame: the rows of every chunk (written files, or cached by the caller).
        chunk: each row's chunk, ``0 .. chunks - 1`` (null for a row of no chunk, which is left out).
        statistics: what the statistics of each chunk's files say
            (:func:`~featurekiln.quality.proofs_from_statistics.known`), when there are any: the
            checks they decide are left out of the scan.
        observed: the values of :func:`~featurekiln.quality.proofs_observed.observable` over the
            rows of every chunk as they were written (with ``statistics`` only): the checks they
            decide are left out of the scan too, and when nothing is left there is no scan.

    Returns:
        The rows of each chunk, and the results of each chunk as :func:`decide`
        gives them. One scan of ``frame`` for all the chunks, where a pass per chunk
        costs a scan and a shuffle per chunk. When ``frame`` is cached and the cache
        is not filled yet, that scan is what fills it: no job of its own computes
        the chunk first.
    """
    from pyspark.errors import PySparkException
    from pyspark.sql import functions as F

    marked = frame.withColumn(CHUNK, chunk).where(F.col(CHUNK).isNotNull())
    checks = translate(frame, expectations)
    counted, grouped = checks.counted, checks.grouped
    settled: dict[int, list[dict[str | int, int]]] = {}
    if statistics is not None:
        settled = _proven(expectations, counted, grouped, column_types(frame), statistics, observed)
    dropped = {f"{prefix}{index}" for index in settled for prefix in (COUNT_PREFIX, NONNULL_PREFIX)}
    scanned = {name: column for name, column in checks.aggregates.items() if name not in dropped}
    unsettled = {index: columns for index, columns in grouped.items() if index not in settled}
    try:
        if statistics is not None and not scanned and not unsettled:  # every chunk's rows are known
            counts: list[dict[str | int, int]] = [{ROWS: k.rows} for k in statistics]
        else:
            counts = _counts(marked, scanned if counted or grouped else {}, unsettled, chunks)
    except PySparkException as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        log.info("the gate's scan failed (%s): Great Expectations decides %d check(s) its own way",
                 reason, len(counted) + len(grouped))
        counts = _counts(marked, {}, {}, chunks)
        counted, grouped, settled = {}, {}, {}
    for decided in settled.values():
        for each, given in zip(counts, decided, strict=True):
            each.update(given)
    out = []
    for position, each in enumerate(counts):
        part = marked.where(F.col(CHUNK) == position)
        out.append({**checks.from_schema, **results(part, expectations, counted, grouped, each, samples)})
    return [each[ROWS] for each in counts], out


def _proven(
    expectations: Mapping[int, Expectation], counted: Mapping[int, Column], grouped: Mapping[int, list[str]],
    types: Mapping[str, str], statistics: Sequence[Known], observed: Mapping[str, Any] | None,
) -> dict[int, list[dict[str | int, int]]]:
    """The checks that the ``statistics`` and ``observed`` values decide; each check left to the scan
    is logged with the reason its proof failed."""
    by_statistics = proofs_from_statistics.settle(expectations, counted, types, statistics)
    settled = dict(by_statistics.decided)
    unproven = {i: "no values were observed during the write" for i in [*counted, *grouped]}
    if observed is not None:
        by_observation = proofs_observed.settle(expectations, counted, grouped, statistics, observed)
        settled.update(by_observation.decided)
        unproven.update(by_observation.unproven)
    unproven.update(by_statistics.unproven)  # what the statistics could decide is not observed
    left = {i: why for i, why in unproven.items() if i not in settled}
    if left:
        log.info("the gate scans the written rows for %d check(s) that no proof decided: %s", len(left),
                 "; ".join(f"{label(expectations[i])}: {why}" for i, why in sorted(left.items())))
    return settled


def _counts(
    frame: DataFrame, aggregates: Mapping[str, Column], grouped: Mapping[int, list[str]], chunks: int
) -> list[dict[str | int, int]]:
    """For each chunk of ``frame`` (its :data:`CHUNK` column): its rows (``ROWS``), the ``aggregates`` by
    name, and the rows that repeat a combination of each ``grouped`` uniqueness check, by index.

    One query when there is a uniqueness check: the other counts ride in its
    groups (:func:`~featurekiln.quality.repeated_rows.repeated_rows`); without one,
    a plain aggregation by chunk. Each further uniqueness check is a query of its own.
    """
    from pyspark.sql import functions as F

    checks = list(grouped.items())
    counts: list[dict[str | int, int]] = [{ROWS: 0, **dict.fromkeys(aggregates, 0), **dict.fromkeys(grouped, 0)}
                                          for _ in range(chunks)]
    if checks:
        index, columns = checks[0]
        for row in repeated_rows.repeated_rows(frame, columns, CHUNK, aggregates).collect():
            counts[row[CHUNK]].update({ROWS: int(row[repeated_rows.ROWS] or 0),
                                       index: int(row[repeated_rows.REPEATED] or 0),
                                       **{name: int(row[name] or 0) for name in aggregates}})
    else:
        totals = frame.groupBy(CHUNK).agg(F.count(F.lit(1)).alias(ROWS), *[c.alias(n) for n, c in aggregates.items()])
        for row in totals.collect():
            counts[row[CHUNK]].update({name: int(value or 0) for name, value in row.asDict().items() if name != CHUNK})
    for index, columns in checks[1:]:
        for row in repeated_rows.repeated_rows(frame, columns, CHUNK).collect():
            counts[row[CHUNK]][index] = int(row[repeated_rows.REPEATED] or 0)
    return counts
