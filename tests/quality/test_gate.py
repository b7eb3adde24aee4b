"""The quality gate with real Great Expectations on real Spark and Delta: write-audit-publish.

Each test backfills a few days of the sample view ``user_purchases`` (small
sample data) with a suite written into a temporary expectations directory.
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from featurekiln.samples import purchases_frame, write_sample_sources
from tests.oracle import assert_frames_match, expected_snapshots
from tests.quality.browser import page_text

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DEFS = REPO_ROOT / "feature_defs"
VIEW = "user_purchases"
START = date(2025, 1, 1)
SAMPLE = {"start": START, "days": 20, "users": 60, "seed": 11}
MAX_SPEND = {"type": "expect_column_max_to_be_between", "kwargs": {"column": "spend_30d", "max_value": 0.5}}

pytestmark = pytest.mark.slow


def day(n: int) -> date:
    return START + timedelta(days=n - 1)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sample sources, written once; each test copies nothing and reads them by absolute path."""
    root = tmp_path_factory.mktemp("sources")
    write_sample_sources(root, **{k: v for k, v in SAMPLE.items()})
    return root


def write_suite(directory: Path, *expectations: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{VIEW}.json").write_text(json.dumps({"name": VIEW, "expectations": list(expectations)}, indent=2))
    return directory


def make_settings(tmp_path: Path, sources: Path, suites: Path):  # noqa: ANN201 - Settings
    """A warehouse whose raw/ links to the shared sample sources, and the given suite directory."""
    from featurekiln.settings import Settings

    warehouse = tmp_path / "warehouse"
    warehouse.mkdir()
    (warehouse / "raw").symlink_to(sources / "raw")
    return Settings(defs_dir=SAMPLE_DEFS, warehouse=str(warehouse), expectations_dir=suites, spark_master="local[2]")


def view():  # noqa: ANN201 - FeatureView
    from featurekiln.definitions import load_catalog

    return load_catalog(SAMPLE_DEFS)[VIEW]


def tree_digest(path: Path) -> dict[str, str]:
    """Every file below ``path`` and the SHA-256 of its bytes."""
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.rglob("*")) if p.is_file()
    }


def oracle(first: date, last: date):  # noqa: ANN201 - pandas frame
    events = purchases_frame(**SAMPLE)
    definition = yaml.safe_load((SAMPLE_DEFS / f"{VIEW}.yaml").read_text())
    return expected_snapshots(events[events["status"] == "completed"], definition, first, last)


def test_passing_suite_publishes_records_and_reports(spark, tmp_path, sources, collect_frame) -> None:
    from featurekiln.quality.history import read_runs, require_validated
    from featurekiln.runner import backfill

    between = {"type": "expect_column_values_to_be_between", "kwargs": {"column": "purchases_7d", "min_value": 0, "max_value": 1000}}
    settings = make_settings(tmp_path, sources, write_suite(tmp_path / "suites", between))
    result = backfill(view(), day(3), day(6), settings=settings, spark=spark, chunk_days=2)

    assert result.report.status == "success"
    assert [c.chunk[0] for c in result.chunks] == [day(3), day(5)]
    table = collect_frame(spark.read.format("delta").load(result.table))
    assert_frames_match(table, oracle(day(3), day(6)), ["user_id"])
    [run] = read_runs(settings, VIEW)
    assert (run["run_id"], run["status"], run["trigger"], run["rows"]) == (result.run_id, "success", "cli", len(table))
    assert (run["start"], run["end"], run["failed"], run["warnings"]) == (day(3), day(6), [], [])
    assert run["published"] == [(day(3).isoformat(), day(4).isoformat()), (day(5).isoformat(), day(6).isoformat())]
    report = json.loads(Path(run["report"]).with_suffix(".json").read_text())
    outcomes = {o["expectation"] for chunk in report["chunks"] for o in chunk["outcomes"]}
    assert {"expect_column_values_to_be_between", "expect_compound_columns_to_be_unique",
            "expect_table_columns_to_match_ordered_list", "unexpected_rows_expectation"} <= outcomes
    assert all(o["success"] for chunk in report["chunks"] for o in chunk["outcomes"])
    assert Path(run["report"]).is_file()
    # The run rewrote the warehouse's index of reports, which links to the run's report.
    index = Path(run["report"]).parents[1] / "index.html"
    assert f'href="{VIEW}/{Path(run["report"]).name}"' in index.read_text()
    assert require_validated(settings, VIEW, day(4))["run_id"] == result.run_id
    # The ledger: the commit that published the days says which run, the verdict and the suites.
    from featurekiln.layout import table_path
    from featurekiln.offline.materialized import day_records
    from featurekiln.pipeline.serving import latest_servable
    from featurekiln.runner import suites_fingerprint, view_suites

    records = day_records(settings, VIEW, table_path(settings, VIEW))
    assert {(r.run_id, r.verdict, r.suites) for r in records.values()} == {
        (result.run_id, "success", suites_fingerprint(view_suites(view(), settings)))}
    assert sorted(records) == [day(n) for n in range(3, 7)]
    assert latest_servable(view(), settings) == day(6)


def test_failing_suite_publishes_nothing_and_quarantines(spark, tmp_path, sources, collect_frame, monkeypatch, capsys) -> None:
    from delta.tables import DeltaTable

    from featurekiln import cli
    from featurekiln.quality.history import read_runs
    from featurekiln.runner import backfill

    settings = make_settings(tmp_path, sources, write_suite(tmp_path / "ok"))
    published = backfill(view(), day(1), day(4), settings=settings, spark=spark)
    table = Path(published.table)
    version = DeltaTable.forPath(spark, str(table)).history(1).first()["version"]
    before = tree_digest(table)

    failing = write_suite(tmp_path / "failing", MAX_SPEND)
    argv = ["kiln", "--defs", str(SAMPLE_DEFS), "--warehouse", settings.warehouse, "--expectations", str(failing),
            "backfill", VIEW, "--start", day(3).isoformat(), "--end", day(7).isoformat()]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 1
    stderr = capsys.readouterr().err
    assert "expect_column_max_to_be_between(spend_30d)" in stderr
    assert "nothing of them was published" in stderr

    assert DeltaTable.forPath(spark, str(table)).history(1).first()["version"] == version
    assert tree_digest(table) == before, "the published table changed"

    run = read_runs(settings, VIEW)[0]
    assert run["status"] == "failed" and run["rows"] == 0 and run["published"] == []
    assert run["failed"] and run["failed"][0].startswith("expect_column_max_to_be_between(spend_30d): observed ")
    quarantined = Path(run["quarantine"]) / f"{day(3)}_{day(7)}"
    kept = collect_frame(spark.read.format("delta").load(str(quarantined)))
    assert_frames_match(kept, oracle(day(3), day(7)), ["user_id"])

    observed = max(v for v in kept["spend_30d"] if v is not None)
    text = page_text(Path(run["report"]))
    assert "expect_column_max_to_be_between" in text
    assert f"{observed:.6g}" in text, f"observed max {observed} not on the page"


def test_warn_severity_publishes_and_reports_the_warning(spark, tmp_path, sources) -> None:
    from featurekiln.quality.history import read_runs
    from featurekiln.runner import backfill

    warn = {**MAX_SPEND, "meta": {"severity": "warn"}}
    settings = make_settings(tmp_path, sources, write_suite(tmp_path / "warn", warn))
    result = backfill(view(), day(2), day(3), settings=settings, spark=spark)

    assert result.report.status == "warned" and result.rows > 0
    run = read_runs(settings, VIEW)[0]
    assert run["status"] == "warned" and run["failed"] == []
    assert run["warnings"][0].startswith("expect_column_max_to_be_between(spend_30d): observed ")
    from featurekiln.layout import table_path
    from featurekiln.offline.materialized import day_records

    assert {r.verdict for r in day_records(settings, VIEW, table_path(settings, VIEW)).values()} == {"warned"}
    text = page_text(Path(run["report"]))
    assert "expect_column_max_to_be_between" in text and "WARN" in text.upper()

    from typer.testing import CliRunner

    from featurekiln.cli import app

    base = ["--defs", str(SAMPLE_DEFS), "--warehouse", settings.warehouse, "report"]
    listed = CliRunner().invoke(app, [*base, VIEW, "--json"])
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.output)
    assert (row["run_id"], row["status"], row["report"]) == (result.run_id, "warned", run["report"])
    shown = CliRunner().invoke(app, [*base, VIEW, "--run", result.run_id, "--json"])
    assert shown.exit_code == 0, shown.output
    detail = json.loads(shown.output)
    assert (detail["status"], detail["report"]) == ("warned", run["report"])
    warned = [o for chunk in detail["chunks"] for o in chunk["outcomes"] if not o["success"]]
    assert [(o["expectation"], o["severity"]) for o in warned] == [("expect_column_max_to_be_between", "warn")]


def test_without_validation_the_run_is_unvalidated_and_cannot_be_pushed(spark, tmp_path, sources) -> None:
    from featurekiln.quality.history import UnvalidatedError, read_runs, require_validated
    from featurekiln.runner import backfill

    settings = make_settings(tmp_path, sources, write_suite(tmp_path / "failing", MAX_SPEND))
    result = backfill(view(), day(2), day(2), settings=settings, spark=spark, validate=False)

    assert result.rows > 0 and result.report.chunks == []
    assert read_runs(settings, VIEW)[0]["status"] == "unvalidated"
    with pytest.raises(UnvalidatedError, match="without validation"):
        require_validated(settings, VIEW, day(2))
    with pytest.raises(UnvalidatedError, match="no run in the history"):
        require_validated(settings, VIEW, day(9))
    # The ledger says so too, and it alone decides: the push refuses the day.
    from featurekiln.layout import table_path
    from featurekiln.offline.materialized import day_records
    from featurekiln.pipeline.serving import latest_servable, require_servable

    assert day_records(settings, VIEW, table_path(settings, VIEW))[day(2)].verdict == "unvalidated"
    assert latest_servable(view(), settings) is None
    with pytest.raises(UnvalidatedError, match="without validation"):
        require_servable(view(), day(2), settings=settings, spark=spark)


def test_same_type_on_same_column_keeps_both_and_samples_only_failures(spark) -> None:
    from featurekiln.quality.gate import validate_chunk
    from featurekiln.quality.suites import Expectation, Suite

    frame = spark.createDataFrame([(1, 5), (2, -1), (3, 2)], "k long, c long").persist()
    low = Expectation("expect_column_values_to_be_between", {"column": "c", "min_value": 0}, {}, "error", "baseline")
    high = Expectation("expect_column_values_to_be_between", {"column": "c", "max_value": 3}, {"severity": "warn"}, "warn", "s.json")
    fine = Expectation("expect_column_values_to_not_be_null", {"column": "k"}, {}, "error", "s.json")
    checked = validate_chunk(frame, "v", [Suite("b", None, (low,)), Suite("s", "s.json", (high, fine))], day(1), day(1))

    assert [(o.expected, o.success, o.sample) for o in checked.outcomes] == [
        ("between 0 and +inf", False, [-1]),
        ("between -inf and 3", False, [5]),
        ("-", True, []),
    ]
    assert [o.label for o in checked.failed] == ["expect_column_values_to_be_between(c)"]
    assert [o.severity for o in checked.warnings] == ["warn"]
    assert checked.rows == 3 and checked.suite == "s"


SHIFTED_DAY = day(8)


def shifted_view():  # noqa: ANN201 - FeatureView
    """The sample view with a one-day feature whose amounts are multiplied by 10 on SHIFTED_DAY, and a ``fail``
    monitor of its mean against the 7 days before."""
    from featurekiln.definitions import FeatureView

    data = yaml.safe_load((SAMPLE_DEFS / f"{VIEW}.yaml").read_text())
    data["source"]["query"] = (f"SELECT user_id, event_ts, CASE WHEN to_date(event_ts) = DATE'{SHIFTED_DAY}' "
                               "THEN amount * 10 ELSE amount END AS amount FROM source")
    data["features"] = [{"name": "spend_1d", "agg": "sum", "expr": "amount", "window": "1d"},
                        {"name": "purchases_7d", "agg": "count", "window": "7d"}]
    data["monitors"] = [{"feature": "spend_1d", "stat": "mean", "max_change": 3, "baseline": "7d", "severity": "fail"}]
    return FeatureView.model_validate(data)


def test_a_fail_monitor_quarantines_the_shifted_day_and_the_report_flags_it(spark, tmp_path, sources) -> None:
    from featurekiln.errors import QualityError
    from featurekiln.quality.history import read_runs
    from featurekiln.runner import backfill

    (tmp_path / "suites").mkdir()  # the baseline suite only
    settings = make_settings(tmp_path, sources, tmp_path / "suites")
    with pytest.raises(QualityError) as raised:
        backfill(shifted_view(), day(1), day(10), settings=settings, spark=spark, chunk_days=5)
    assert f"monitor:mean(spend_1d) on {SHIFTED_DAY}: observed " in "\n".join(raised.value.lines)
    from featurekiln.layout import stats_path, table_path
    from featurekiln.offline.table_reader import open_table

    assert open_table(table_path(settings, VIEW), settings) is None, "a day of the range was published"
    assert open_table(stats_path(settings), settings) is None, "statistics of unpublished days were stored"
    [run] = read_runs(settings, VIEW)
    assert run["status"] == "failed" and run["published"] == []
    assert [line.split(":")[0:2] for line in run["failed"]] == [["monitor", f"mean(spend_1d) on {SHIFTED_DAY}"]]
    page = Path(run["report"]).read_text()
    assert f'<rect class="flag fail" data-day="{SHIFTED_DAY}"' in page
    assert 'data-feature="spend_1d"' in page and run["run_id"] in (Path(run["report"]).parents[1] / "index.html").read_text()
