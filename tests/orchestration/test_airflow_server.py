"""End to end through a real ``airflow standalone`` on loopback (scheduler, dag-processor, api-server).

* Airflow's native backfill (``airflow backfill create``) makes one run per day;
  each computes its own day, and the table equals ``kiln backfill``.
* A backfill triggered over the REST API with params ``start``/``end`` equals
  ``kiln backfill`` over the same days; malformed params are refused with a
  readable message.

Each task runs in its own process with its own local Spark, as in production.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from tests.orchestration.conftest import VIEW
from tests.orchestration.standalone import DAG_ID, RUN_SECONDS, Airflow, wait_for

pytestmark = pytest.mark.slow

NATIVE = ("2025-01-05", "2025-01-06")
TRIGGERED = ("2025-01-08", "2025-01-10")


@pytest.fixture
def warehouse(airflow_warehouse) -> Path:
    return airflow_warehouse


@pytest.fixture
def server(airflow_server) -> Airflow:
    return airflow_server


def finished_runs(server: Airflow, run_type: str, count: int) -> list[dict] | None:
    status, body = server.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns?run_type={run_type}&limit=100")
    assert status == 200, body
    runs = body["dag_runs"]
    done = [r for r in runs if r["state"] in ("success", "failed")]
    return runs if len(runs) >= count and len(done) == len(runs) else None


def planned_chunks(server: Airflow, run_id: str) -> list[list[str]]:
    """The validation chunks of a run's plan (the ``plan`` task's XCom), as inclusive ISO days."""
    import ast
    import json

    from featurekiln.planning.materialization import inclusive
    from featurekiln.planning.plan import RunPlan

    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/plan/xcomEntries/return_value"
    status, body = server.request("GET", f"{path}?deserialize=true&stringify=false")
    assert status == 200, body
    value = body["value"]
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = ast.literal_eval(value)
    return inclusive(RunPlan.from_json(value).chunks)


def test_native_backfill_makes_one_run_per_day_equal_to_the_cli(server, warehouse, cli_reference, table_rows):
    created = server.cli("backfill", "create", "--dag-id", DAG_ID, "--from-date", NATIVE[0], "--to-date", NATIVE[1])
    assert created.returncode == 0, created.stderr[-3000:]
    runs = wait_for("the backfill runs", lambda: finished_runs(server, "backfill", 2), RUN_SECONDS, server, every=5)
    assert sorted(r["logical_date"][:10] for r in runs) == ["2025-01-05", "2025-01-06"]
    assert {r["state"] for r in runs} == {"success"}, runs
    for run in runs:
        assert run["data_interval_start"][:10] == run["logical_date"][:10]
        day = run["logical_date"][:10]
        assert planned_chunks(server, run["dag_run_id"]) == [[day, day]], \
            "a backfill run computes its own day, not every day before it"
    ours = table_rows(str(warehouse / "features" / VIEW), NATIVE)
    assert sorted(set(ours["ds"])) == [date(2025, 1, d) for d in (5, 6)]
    assert ours.equals(table_rows(cli_reference, NATIVE))


def test_rest_trigger_with_params_equals_the_cli(server, warehouse, cli_reference, table_rows):
    status, body = server.request(
        "POST",
        f"/api/v2/dags/{DAG_ID}/dagRuns",
        # force: another test's run may have materialized these days already
        {"logical_date": None, "conf": {"start": TRIGGERED[0], "end": TRIGGERED[1], "chunk_days": 2, "force": True}},
    )
    assert status == 200, body
    run_id = body["dag_run_id"]
    run = wait_for("the triggered run", lambda: server.run_state(run_id), RUN_SECONDS, server, every=5)
    assert run["state"] == "success", run
    assert planned_chunks(server, run_id) == [["2025-01-08", "2025-01-09"], ["2025-01-10", "2025-01-10"]]
    ours = table_rows(str(warehouse / "features" / VIEW), TRIGGERED)
    assert len(ours) > 0
    assert ours.equals(table_rows(cli_reference, TRIGGERED))


def test_rest_refuses_malformed_params_readably(server):
    status, body = server.request(
        "POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": {"start": "2025-13-01"}}
    )
    assert status == 400, body
    assert "Invalid input for param start: '2025-13-01' is not a 'date'" in json.dumps(body)
