"""Run Great Expectations on computed snapshots (a Spark DataFrame) and summarise the outcomes.

One ephemeral GE context per process, with a Spark data source whose batches
are the DataFrames we hand it: the written files of a run not committed yet
(:mod:`featurekiln.internals.delta_transaction`), or a staged chunk the caller caches.

Three passes at most. First, :mod:`featurekiln.quality.scan` decides the common
expectations (:mod:`featurekiln.quality.expectation_sql`) in one scan of the
chunk, or with no scan where the schema, Delta's statistics of the written files
(:mod:`featurekiln.quality.proofs_from_statistics`) and the values observed as
they were written (:mod:`featurekiln.quality.proofs_observed`) suffice, and takes
a handful of sample values for its failed single-column checks itself. Second,
GE evaluates the others (``SUMMARY`` result format: observed value and unexpected
count, one Spark job per metric). Third, only the failed expectations that have
no samples yet are evaluated again by GE for a handful of sample values.
Validation never collects a chunk to the driver, and a chunk whose expectations
all fit the first pass costs one Spark job, plus one small job per failed check.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from featurekiln.quality import proofs_from_statistics, proofs_observed, scan, statistics as day_stats
from featurekiln.quality.results import ChunkValidation, Outcome
from featurekiln.quality.suites import Expectation, Suite
from featurekiln.settings import prepare_process_environment

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from featurekiln.internals.delta_transaction import FileStatistics

log = logging.getLogger(__name__)

SAMPLE_SIZE = 5
# First pass: observed values and unexpected counts, no unexpected values (one
# Spark job less per row-level expectation). Second pass, only for the failures:
# a few unexpected values for the report.
_COUNTS = {"result_format": "SUMMARY", "partial_unexpected_count": 0}
_SAMPLES = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE}
_INDEX = "kiln_index"
_HIDDEN_KWARGS = frozenset({"batch_id", "column", "column_A", "column_B", "column_list", "result_format", "catch_exceptions"})


@lru_cache(maxsize=1)
def _context() -> Any:  # noqa: ANN401 - a GE data context
    prepare_process_environment()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GE forces INFO on this module's logger ("Created temporary directory ..." at every start).
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.data_sources.add_spark("featurekiln")
    return context


def _batch_definition(view: str) -> Any:  # noqa: ANN401 - a GE batch definition
    source = _context().data_sources.get("featurekiln")
    try:
        asset = source.get_asset(view)
    except LookupError:
        asset = source.add_dataframe_asset(view)
    try:
        return asset.get_batch_definition("snapshots")
    except (KeyError, LookupError):
        return asset.add_batch_definition_whole_dataframe("snapshots")


def validate_chunk(frame: DataFrame, view: str, suites: Sequence[Suite], first: date, last: date) -> ChunkValidation:
    """Validate the snapshots ``first`` .. ``last`` (both included) in ``frame`` against ``suites``.

    Args:
        frame: the chunk's rows: files written and not committed yet, or a frame the caller caches.
        view: the view's name (the GE asset).
        suites: the baseline suite and, when the view has one, its own suite.

    Returns:
        One outcome per expectation, in suite order. An expectation that GE cannot
        evaluate counts as failed, with its error as the observed value. Its
        ``seconds`` include computing the chunk into the caller's cache, when it
        caches one: the first pass's job is the one that fills it (:func:`scan.decide_chunks`).
    """
    started = time.monotonic()
    expectations = [e for suite in suites for e in suite.expectations]
    rows, decided = scan.decide(frame, dict(enumerate(expectations)), SAMPLE_SIZE)
    return _completed(frame, view, suites, decided, rows, first, last, started)


def observed_checks(frame: DataFrame, suites: Sequence[Suite], features: Sequence[str] = ()) -> dict[str, Column]:
    """What a write of ``frame`` (partitioned by ``ds``, each task's rows sorted by ``ds``) should observe
    of its rows for :func:`validate_chunks` (:func:`proofs_observed.observable`), and for the statistics of
    ``features`` (:func:`featurekiln.quality.statistics.observable`)."""
    checks = proofs_observed.observable(frame, dict(enumerate(e for suite in suites for e in suite.expectations)), "ds")
    return {**checks, **day_stats.observable(frame, features)}


def validate_chunks(
    frame: DataFrame, view: str, suites: Sequence[Suite], chunks: Sequence[tuple[date, date]],
    statistics: Sequence[FileStatistics] | None = None, observed: Mapping[str, Any] | None = None,
    features: Sequence[str] = (), fingerprint: str = "",
) -> list[ChunkValidation]:
    """:func:`validate_chunk` for each of ``chunks`` (first and last day, in order) of ``frame`` (a backfill's).

    The first pass decides every chunk at once (:func:`scan.decide_chunks`),
    with what Delta's ``statistics`` of the written files (partitioned by ``ds``)
    and the values ``observed`` as the write went (:func:`observed_checks`, taken only
    when they counted the files' rows) decide without reading them; Great
    Expectations then runs on a chunk's rows only for what that pass left to it.
    Files without statistics, and observed values of other rows, are logged at
    INFO: their checks go to the scan.
    Each chunk's seconds include its share of the first pass, by rows.

    With ``features``, each chunk also carries the statistics of every feature on each of its days
    (:func:`featurekiln.quality.statistics.day_statistics`, from the same observed values and file
    statistics; ``fingerprint`` is the definition's).
    """
    from pyspark.sql import functions as F

    started = time.monotonic()
    expectations = [e for suite in suites for e in suite.expectations]
    chunk = F
    for position, (first, last) in enumerate(chunks):
        chunk = chunk.when(F.col("ds").between(F.lit(first), F.lit(last)), F.lit(position))
    known = None
    if statistics is None:
        log.info("%s: the written files carry no statistics: the gate scans their rows for every check", view)
    else:
        days = [(f, date.fromisoformat(f.partition) if f.partition else None) for f in statistics]
        known = [proofs_from_statistics.known([f for f, day in days if day and first <= day <= last], "ds")
                 for first, last in chunks]
        observed = proofs_observed.of_these_files(observed, statistics)
    rows, decided = scan.decide_chunks(frame, dict(enumerate(expectations)), chunk, len(chunks), SAMPLE_SIZE, known,
                                       observed)
    shared, total = time.monotonic() - started, sum(rows) or 1
    every_day = [first + timedelta(days=n) for first, last in chunks for n in range((last - first).days + 1)]
    stats = day_stats.day_statistics(frame, view, fingerprint, features, every_day, observed, statistics) if features else []
    out = []
    for (first, last), count, results in zip(chunks, rows, decided, strict=True):
        part = frame.where((F.col("ds") >= F.lit(first)) & (F.col("ds") <= F.lit(last)))
        checked = _completed(part, view, suites, results, count, first, last, time.monotonic() - shared * count / total)
        out.append(replace(checked, stats=[s for s in stats if first <= s.ds <= last]))
    return out


def _completed(
    frame: DataFrame, view: str, suites: Sequence[Suite], decided: dict[int, dict[str, Any]], rows: int, first: date,
    last: date, started: float,
) -> ChunkValidation:
    """The validation of a chunk once the first pass ``decided`` what it could: GE for the rest and for
    the samples of failures that have none; ``started`` is when its clock started."""
    expectations = [e for suite in suites for e in suite.expectations]
    named = next((s.name for s in suites if s.file), None)
    sampled = {i for i, item in decided.items() if "partial_unexpected_list" in item["result"]}  # failures, samples taken
    results = {i: item for i, item in decided.items() if item["success"] or i in sampled}
    rest = {i: e for i, e in enumerate(expectations) if i not in decided}
    if rest:
        results.update(_run(_batch(view, frame), f"{view}.{named or 'baseline'}", rest, _COUNTS))
    failed = {i: expectations[i] for i, item in results.items()
              if i not in sampled and not item.get("success") and item.get("result", {}).get("unexpected_count")}
    failed.update({i: expectations[i] for i, item in decided.items() if not item["success"] and i not in sampled})
    if failed:
        results.update(_run(_batch(view, frame), f"{view}.samples", failed, _SAMPLES))
    return ChunkValidation(
        start=first,
        end=last,
        rows=rows,
        suite=named,
        outcomes=tuple(_outcome(expectations[i], results[i]) for i in sorted(results)),
        seconds=time.monotonic() - started,
    )


def _batch(view: str, frame: DataFrame) -> Any:  # noqa: ANN401 - a GE batch
    return _batch_definition(view).get_batch(batch_parameters={"dataframe": frame})


def _run(batch: Any, name: str, expectations: dict[int, Expectation], result_format: dict[str, Any]) -> dict[int, dict[str, Any]]:  # noqa: ANN401
    """Validate ``batch`` against ``expectations`` (by index); the GE results by index."""
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    # Built in one go: adding one by one would replace an expectation of the same
    # type and column (say the baseline's and the suite's bound on one count).
    configs = [
        ExpectationConfiguration(type=e.type, kwargs=e.kwargs, meta={**e.meta, _INDEX: index})
        for index, e in expectations.items()
    ]
    suite = gx.ExpectationSuite(name=name, expectations=[c.to_domain_obj() for c in configs])
    result = batch.validate(suite, result_format=result_format).to_json_dict()
    return {int(item["expectation_config"]["meta"][_INDEX]): item for item in result["results"]}


def _outcome(expectation: Expectation, item: dict[str, Any]) -> Outcome:
    result = item.get("result") or {}
    info = item.get("exception_info") or {}
    exception = info.get("exception_message") if info.get("raised_exception") else None
    unexpected = result.get("unexpected_count")
    return Outcome(
        expectation=expectation.type,
        column=expectation.column,
        severity=expectation.severity,
        success=bool(item.get("success")) and exception is None,
        observed=_observed(result, exception),
        expected=_expected(expectation.type, expectation.kwargs),
        unexpected_count=int(unexpected) if unexpected is not None else None,
        sample=_jsonable(result.get("partial_unexpected_list") or _sample_rows(result))[:SAMPLE_SIZE],
        source=expectation.source,
        exception=exception,
    )


def _observed(result: dict[str, Any], exception: str | None) -> str:
    if exception:
        return f"error: {exception.strip().splitlines()[0]}"
    if "observed_value" in result:
        return _text(result["observed_value"])
    if result.get("unexpected_count") is not None:
        total = result.get("element_count")
        share = result.get("unexpected_percent")
        of = f" of {total}" if total is not None else ""
        percent = f" ({share:.3g}%)" if isinstance(share, int | float) else ""
        return f"{result['unexpected_count']}{of} rows unexpected{percent}"
    return "-"


def _expected(kind: str, kwargs: dict[str, Any]) -> str:
    hidden = _HIDDEN_KWARGS - {"column_list"} if kind.startswith("expect_table_") else _HIDDEN_KWARGS
    shown = {k: v for k, v in kwargs.items() if k not in hidden and v is not None}
    if "min_value" in shown or "max_value" in shown:
        low, high = shown.pop("min_value", None), shown.pop("max_value", None)
        bound = f"between {_text(low) if low is not None else '-inf'} and {_text(high) if high is not None else '+inf'}"
        rest = ", ".join(f"{k}={_text(v)}" for k, v in shown.items())
        return f"{bound}, {rest}" if rest else bound
    return ", ".join(f"{k}={_text(v)}" for k, v in shown.items()) or "-"


def _sample_rows(result: dict[str, Any]) -> list[Any]:
    details = result.get("details") or {}
    rows = details.get("unexpected_rows")
    return rows if isinstance(rows, list) else []


def _jsonable(values: list[Any]) -> list[Any]:
    return json.loads(json.dumps(values, default=str))


def _text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return str(value)
