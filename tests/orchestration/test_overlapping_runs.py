"""Runs of one view that overlap (docs/orchestration.md, "Overlapping runs").

A run is held before its ``publish`` step (validation and commit; the functions the
DAG's tasks call, :mod:`featurekiln.orchestration.steps`) while a whole other
run goes through ``dag.test()``; then the held run publishes. Whatever the order:
no hole, every run recorded once, no run reports a day that it did not commit,
and the table equals ``kiln backfill``. A commit that loses a race says so in the
run's log and commits again.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import pytest

from tests.orchestration.conftest import REFERENCE_DAYS, SAMPLE_DEFS, VIEW, days_between, days_committed_by_run

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("airflow_db")]

NOW = datetime(2025, 2, 1, tzinfo=UTC)


def utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@pytest.fixture
def overlap(sample_warehouse, monkeypatch):
    """A fresh warehouse of the sample sources: its settings, the view and a DAG over it."""
    from featurekiln.definitions import load_catalog
    from featurekiln.orchestration import build_dags
    from featurekiln.settings import Settings

    def make(name: str):
        root = sample_warehouse(name)
        env = {"KILN_DEFS": str(SAMPLE_DEFS), "KILN_WAREHOUSE": str(root), "KILN_SPARK_MASTER": "local[2]"}
        for key, value in env.items():  # dag.test() re-parses dags/ and must see the same definitions
            monkeypatch.setenv(key, value)
        for key in ("KILN_SPARK_CONN_ID", "KILN_ONLINE_STORE", "KILN_VERIFY_ONLINE"):
            monkeypatch.delenv(key, raising=False)
        settings = Settings.from_env()
        dag = build_dags(settings=settings, only=f"kiln_{VIEW}").dags[f"kiln_{VIEW}"]
        return settings, load_catalog(SAMPLE_DEFS)[VIEW], dag

    return make


class HeldRun:
    """One DAG run driven step by step: planned and tiled; its publish step (validate and commit) on demand."""

    def __init__(self, view, settings, run_id: str, params: dict, day: date, run_type: str) -> None:
        from featurekiln.orchestration import steps

        self.view, self.settings, self.run_id = view, settings, run_id
        self.trigger = steps.trigger_of(run_type)
        self.plan = steps.plan_dag_run(
            view, params, settings, interval_start=utc(day), interval_end=utc(day + timedelta(days=1)),
            reference=utc(day), now=NOW, run_type=run_type,
        ).to_json()
        steps.run_step(view, self.plan, settings, step="tiles", run_id=run_id, trigger=self.trigger)

    @property
    def chunks(self) -> list[str]:
        """The plan's validation chunks, ``first..last``."""
        from featurekiln.pipeline.publishing import show
        from featurekiln.planning.plan import RunPlan

        return [show(chunk) for chunk in RunPlan.from_json(self.plan).chunks]

    def publish(self) -> dict:
        from featurekiln.orchestration import steps

        published = steps.run_step(self.view, self.plan, self.settings, step="publish", run_id=self.run_id,
                                   trigger=self.trigger)
        assert published.get("end") is not None, published
        return published


def assert_consistent(spark, settings, run_ids: list[str], first: date, last: date) -> None:
    """No hole from the view's start to ``last``; each run recorded once; each record's days committed by it."""
    from featurekiln.layout import table_path
    from featurekiln.offline.delta_table import held_days
    from featurekiln.quality.history import read_runs

    path = table_path(settings, VIEW)
    assert held_days(settings, path) == [(first, last + timedelta(days=1))]
    records = read_runs(settings, VIEW)
    assert sorted(r["run_id"] for r in records) == sorted(run_ids), "every run is recorded once"
    committed = days_committed_by_run(settings, path)
    for record in records:
        assert record["status"] in ("success", "warned"), record
        reported = days_between(record["start"], record["end"])
        assert reported <= committed.get(record["run_id"], set()), f"{record['run_id']} reports days it did not commit"


def test_two_nightly_runs_of_catch_up_overlap(overlap, spark, cli_reference, table_rows) -> None:
    """The run of 01-06 is held before publishing while the run of 01-07 runs whole (both compute 01-01..01-06)."""
    settings, view, dag = overlap("overlap_nightly")
    held = HeldRun(view, settings, "scheduled__2025-01-06", {}, date(2025, 1, 6), "scheduled")
    assert held.chunks, "the held run computes its days"
    later = dag.test(logical_date=utc(date(2025, 1, 8)))  # a run of ds 2025-01-07, as `kiln run --until`
    assert later.state == "success"
    published = held.publish()
    assert published["end"] == "2025-01-06"
    assert_consistent(spark, settings, [held.run_id, later.run_id], date(2025, 1, 1), date(2025, 1, 7))
    days = (REFERENCE_DAYS[0], "2025-01-07")
    assert table_rows(f"{settings.warehouse}/features/{VIEW}", days).equals(table_rows(cli_reference, days))


def test_a_nightly_run_beside_a_trigger_form_backfill(overlap, spark, cli_reference, table_rows) -> None:
    """A trigger-form backfill of 01-08..01-10 is held while a nightly run publishes 01-01..01-11."""
    settings, view, dag = overlap("overlap_trigger")
    held = HeldRun(view, settings, "manual__trigger_form", {"start": "2025-01-08", "end": "2025-01-10",
                                                            "chunk_days": 2}, date(2025, 1, 20), "manual")
    assert held.chunks == ["2025-01-08..2025-01-09", "2025-01-10..2025-01-10"]
    nightly = dag.test(logical_date=utc(date(2025, 1, 12)))
    assert nightly.state == "success"
    held.publish()
    assert_consistent(spark, settings, [held.run_id, nightly.run_id], date(2025, 1, 1), date(2025, 1, 11))
    days = (REFERENCE_DAYS[0], "2025-01-11")
    assert table_rows(f"{settings.warehouse}/features/{VIEW}", days).equals(table_rows(cli_reference, days))


def test_a_lost_commit_race_is_logged_and_committed_again(overlap, spark, caplog) -> None:
    """Another run commits the same days between this run's write and its commit: Delta refuses the
    commit, the run says so in its log, writes again on top and reports its own commit."""
    from featurekiln.layout import table_path
    from featurekiln.offline.delta_log import DeltaLog
    from featurekiln.offline.delta_table import replace_days

    settings, _, _ = overlap("overlap_race")
    path = table_path(settings, "race")
    day = (date(2025, 1, 5), date(2025, 1, 6))
    frame = spark.createDataFrame([(1, date(2025, 1, 5))], "user_id long, ds date")
    replace_days(spark, settings, path, frame, day, {"run_id": "first"}, "race")
    audits: list[int] = []

    def rival_commits_first(written, statistics, observed) -> None:
        audits.append(1)
        replace_days(spark, settings, path, frame, day, {"run_id": "rival"}, "race")

    with caplog.at_level(logging.INFO, logger="featurekiln.offline.delta_table"):
        ours = replace_days(spark, settings, path, frame, day, {"run_id": "ours"}, "race", audit=rival_commits_first)
    assert audits == [1], "the retry commits the audited rows without a second audit"
    assert "another run committed days of" in caplog.text and "writing again (attempt 2)" in caplog.text
    commits = DeltaLog.of(path, settings).commits()
    assert [c.metadata.get("run_id") for c in commits] == ["first", "rival", "ours"]
    assert ours.version == commits[-1].version
    assert spark.read.format("delta").load(path).count() == 1


def test_a_run_that_finds_its_days_published_by_another_run_is_recorded(overlap, spark) -> None:
    """Overlapping runs make this common: the trigger-form run published the nightly run's day first."""
    from featurekiln.quality.history import read_runs

    settings, _, dag = overlap("overlap_nothing_left")
    first = dag.test(logical_date=utc(date(2025, 1, 3)))  # ds 2025-01-01..2025-01-02 (the table was empty)
    assert first.state == "success"
    again = dag.test(logical_date=utc(date(2025, 1, 2)))  # ds 2025-01-01: published already, nothing to compute
    assert again.state == "success"
    recorded = {r["run_id"]: r for r in read_runs(settings, VIEW)}
    assert again.run_id in recorded, "every run is recorded"
    nothing = recorded[again.run_id]
    assert (nothing["status"], nothing["rows"], str(nothing["start"]), str(nothing["end"])) == (
        "success", 0, "2025-01-01", "2025-01-01"), nothing
    assert nothing["published"] in ([], "[]"), nothing
