"""A run's record: every run is recorded when it starts (a start record), and ends with its status, an HTML +
JSON report (and the warehouse's index page of reports rewritten) and a row in the run history, whatever its
outcome; a Spark failure is shown as one line
(featurekiln's own message when a job raised one). A run killed before its end keeps its start record, so
``kiln report`` shows it as interrupted (:mod:`featurekiln.quality.history`)."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from featurekiln.compute.spark_errors import spark_error_line, spark_error_types
from featurekiln.errors import KilnError, QualityError
from featurekiln.quality.results import RunReport
from featurekiln.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


class SparkFailure(KilnError):
    """Spark failed while computing or writing a view."""


_USER_RAISED = re.compile(r"\[USER_RAISED_EXCEPTION\] (.*?)(?: SQLSTATE: \w+)?$", re.MULTILINE)


def spark_failure(view: str, error: Exception) -> SparkFailure:
    """The error to show for a Spark exception (a ``PySparkException`` or a ``Py4JJavaError``), as one line:
    featurekiln's own message when the job raised one on purpose, else what Spark said
    (:func:`featurekiln.compute.spark_errors.spark_error_line`)."""
    text = str(error)
    own = _USER_RAISED.search(text)
    if own:
        return SparkFailure(own.group(1).strip())
    return SparkFailure(spark_error_line(view, error))


def new_run_id() -> str:
    """A fresh run id for runs started outside Airflow."""
    return uuid.uuid4().hex[:12]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@contextmanager
def recorded(spark: SparkSession, settings: Settings, report: RunReport, *, success: bool = True) -> Iterator[RunReport]:
    """Record the start of ``report``'s run, then finish it whatever happens inside: status, HTML report,
    history row (and the start record removed).

    With ``success=False`` a run that gets through is not finished here (a later
    step, such as Airflow's ``publish``, finishes it).
    """
    from featurekiln.quality.history import record_run, record_start
    from featurekiln.quality.report import write_report

    record_start(settings, report)
    try:
        yield report
    except QualityError as error:
        report.status = "failed"
        _finish(spark, settings, report, record_run, write_report)
        error.report = report.report
        raise
    except spark_error_types() as error:  # a Py4JJavaError (a failed Spark job) is no PySparkException
        failure = spark_failure(report.view, error)
        report.status, report.error = "error", str(failure)
        _finish(spark, settings, report, record_run, write_report)
        raise failure from error
    except Exception as error:
        report.status, report.error = "error", str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        _finish(spark, settings, report, record_run, write_report)
        raise
    if not success:
        return
    if report.status == "running":
        report.status = "warned" if report.warnings else "success"
    _finish(spark, settings, report, record_run, write_report)


def _finish(spark: SparkSession, settings: Settings, report: RunReport, record_run: Callable, write_report: Callable) -> None:
    from featurekiln.quality.history import clear_start

    report.finished_at = utc_now()
    path = write_report(report, settings)
    _write_index(settings, report)
    record_run(spark, settings, report)
    clear_start(settings, report)
    log.info("%s: run %s %s: %d rows published; report %s", report.view, report.run_id, report.status, report.rows, path)


def _write_index(settings: Settings, report: RunReport) -> None:
    """Rewrite ``<warehouse>/_reports/index.html`` with the run's report in it. The run's data is published
    whatever happens here: an index that cannot be written is logged, and the next run's report rewrites it."""
    from featurekiln.quality.index_page import write_index

    try:
        write_index(settings)
    except (KilnError, OSError) as error:
        log.warning("%s: run %s: the index of the reports was not rewritten: %s", report.view, report.run_id, error)
