"""The quality gate in Airflow (dag.test(), real tasks): a failing suite fails ``publish``; nothing is published."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.orchestration.conftest import SAMPLE_DEFS, VIEW

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("airflow_db")]


def states(run) -> dict[str, str]:
    found: dict[str, set[str]] = {}
    for ti in run.get_task_instances():
        found.setdefault(ti.task_id, set()).add(str(ti.state))
    return {task: ",".join(sorted(s)) for task, s in found.items()}


def test_failing_suite_fails_publish_and_publishes_nothing(sample_warehouse, tmp_path, monkeypatch, spark, caplog) -> None:
    from featurekiln.offline.delta_table import table_exists
    from featurekiln.orchestration import build_dags
    from featurekiln.quality.history import read_runs
    from featurekiln.settings import Settings

    warehouse = sample_warehouse("gate")
    suites = tmp_path / "suites"
    suites.mkdir()
    failing = {"type": "expect_column_max_to_be_between", "kwargs": {"column": "purchases_7d", "max_value": 0}}
    (suites / f"{VIEW}.json").write_text(json.dumps({"name": VIEW, "expectations": [failing]}))
    env = {"KILN_DEFS": str(SAMPLE_DEFS), "KILN_WAREHOUSE": str(warehouse), "KILN_SPARK_MASTER": "local[2]",
           "KILN_EXPECTATIONS": str(suites)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("KILN_SPARK_CONN_ID", raising=False)
    settings = Settings.from_env()
    dag = build_dags(settings=settings, only=f"kiln_{VIEW}").dags[f"kiln_{VIEW}"]

    caplog.set_level(logging.INFO, logger="featurekiln")
    run = dag.test(
        logical_date=datetime(2025, 1, 20, tzinfo=timezone.utc),
        run_conf={"start": "2025-01-05", "end": "2025-01-08", "chunk_days": 2},
    )

    assert run.state == "failed"
    found = states(run)
    assert (found["plan"], found["tiles"], found["publish"]) == ("success", "success", "failed"), found
    assert found["push_online"] in {"upstream_failed", "skipped", "None"}
    assert not table_exists(spark, str(Path(settings.warehouse) / "features" / VIEW)), "something was published"
    assert not any((Path(settings.warehouse) / "features").rglob("*.parquet")), "the written files were deleted"
    [history] = read_runs(settings, VIEW)
    assert (history["status"], history["trigger"], history["run_id"]) == ("failed", "backfill", run.run_id)
    assert history["failed"][0].startswith("expect_column_max_to_be_between(purchases_7d): observed ")
    quarantined = sorted(p.name for p in Path(history["quarantine"]).iterdir())
    assert quarantined == ["2025-01-05_2025-01-06", "2025-01-07_2025-01-08"]
    assert Path(history["report"]).is_file()
    logged = caplog.text  # the publish task's log: a summary table per chunk, then the failure and the report
    assert "expect_column_max_to_be_between" in logged and "FAIL" in logged and "observed" in logged
    assert f"report: {history['report']}" in logged


def test_a_failing_later_chunk_ends_the_same_through_the_cli_and_airflow(
    sample_warehouse, tmp_path, monkeypatch, spark
) -> None:
    """One failure policy: the first chunk passes, the second fails; neither entry point publishes anything."""
    from typer.testing import CliRunner

    from featurekiln.cli import app
    from featurekiln.offline.delta_table import table_exists
    from featurekiln.orchestration import build_dags
    from featurekiln.quality.history import read_runs
    from featurekiln.settings import Settings

    suites = tmp_path / "suites"
    suites.mkdir()
    late = {"type": "unexpected_rows_expectation",
            "kwargs": {"unexpected_rows_query": "SELECT * FROM {batch} WHERE ds > DATE '2025-01-06'"}}
    (suites / f"{VIEW}.json").write_text(json.dumps({"name": VIEW, "expectations": [late]}))
    days = {"start": "2025-01-05", "end": "2025-01-08", "chunk_days": 2}

    def outcome(warehouse: Path) -> tuple[bool, list[str], str]:
        settings = Settings(defs_dir=SAMPLE_DEFS, warehouse=str(warehouse))
        [history] = read_runs(settings, VIEW)
        published = table_exists(spark, str(warehouse / "features" / VIEW))
        return published, sorted(p.name for p in Path(history["quarantine"]).iterdir()), history["status"]

    cli_warehouse = sample_warehouse("policy_cli")
    result = CliRunner().invoke(app, ["--defs", str(SAMPLE_DEFS), "--warehouse", str(cli_warehouse), "--expectations",
                                      str(suites), "backfill", VIEW, "--start", days["start"], "--end", days["end"],
                                      "--chunk-days", "2"])
    assert result.exit_code == 1, result.output

    airflow_warehouse = sample_warehouse("policy_airflow")
    env = {"KILN_DEFS": str(SAMPLE_DEFS), "KILN_WAREHOUSE": str(airflow_warehouse), "KILN_SPARK_MASTER": "local[2]",
           "KILN_EXPECTATIONS": str(suites)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("KILN_SPARK_CONN_ID", raising=False)
    dag = build_dags(settings=Settings.from_env(), only=f"kiln_{VIEW}").dags[f"kiln_{VIEW}"]
    run = dag.test(logical_date=datetime(2025, 1, 20, tzinfo=timezone.utc), run_conf=days)
    assert run.state == "failed"

    expected = (False, ["2025-01-07_2025-01-08"], "failed")
    assert outcome(cli_warehouse) == expected, "CLI"
    assert outcome(airflow_warehouse) == expected, "Airflow"
