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
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from tests.orchestration.conftest import DAGS_FOLDER, REPO_ROOT, SAMPLE_DEFS, VIEW

pytestmark = pytest.mark.slow

DAG_ID = f"kiln_{VIEW}"
NATIVE = ("2025-01-05", "2025-01-06")
TRIGGERED = ("2025-01-08", "2025-01-10")
PASSWORD = "kiln-test-password"
STARTUP_SECONDS = 240
RUN_SECONDS = 900  # each run has four tasks that start their own JVM (materialize, validate, publish, push_online)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Airflow:
    """A running ``airflow standalone`` and a small REST client for it."""

    def __init__(self, env: dict[str, str], port: int, process: subprocess.Popen, log: Path) -> None:
        self.env, self.port, self.process, self.log = env, port, process, log
        self.base = f"http://127.0.0.1:{port}"
        self.token: str | None = None

    def request(self, method: str, path: str, body: object | None = None) -> tuple[int, object]:
        import httpx

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = httpx.request(method, self.base + path, json=body, headers=headers, timeout=30)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text

    def cli(self, *args: str, attempts: int = 6) -> subprocess.CompletedProcess:
        """Run an ``airflow`` command against this server's database (retried while SQLite is locked)."""
        for _ in range(attempts):
            done = subprocess.run(
                [sys.executable, "-m", "airflow", *args], env=self.env, capture_output=True, text=True, timeout=300
            )
            if done.returncode == 0 or "database is locked" not in done.stderr:
                return done
            time.sleep(5)
        return done

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


def wait_for(what: str, check, seconds: float, server: Airflow, every: float = 3.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"airflow standalone exited while waiting for {what}:\n{server.tail()}")
        try:
            found = check()
        except Exception:  # noqa: BLE001 - the server is still starting
            found = None
        if found:
            return found
        time.sleep(every)
    raise TimeoutError(f"timed out waiting for {what}:\n{server.tail()}")


@pytest.fixture(scope="module")
def warehouse(sample_warehouse) -> Path:
    return sample_warehouse("standalone")


@pytest.fixture(scope="module")
def server(tmp_path_factory, warehouse) -> Iterator[Airflow]:
    home = tmp_path_factory.mktemp("airflow_standalone")
    defs = home / "defs"
    defs.mkdir()
    shutil.copy(SAMPLE_DEFS / f"{VIEW}.yaml", defs)
    (home / "passwords.json").write_text(json.dumps({"admin": PASSWORD}))
    port = free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "KILN_DEFS": str(defs),
        "KILN_WAREHOUSE": str(warehouse),
        "KILN_SPARK_MASTER": "local[2]",
        "KILN_MAX_PARALLEL_CHUNKS": "1",
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "PYTHONPATH": str(REPO_ROOT),
    }
    log = home / "standalone.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "airflow", "standalone"], env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    airflow = Airflow(env, port, process, log)
    try:
        def logged_in() -> bool:
            status, body = airflow.request("POST", "/auth/token", {"username": "admin", "password": PASSWORD})
            if status in (200, 201):
                airflow.token = body["access_token"]
                return True
            return False

        wait_for("the api-server", logged_in, STARTUP_SECONDS, airflow)
        wait_for(
            f"DAG {DAG_ID}", lambda: airflow.request("GET", f"/api/v2/dags/{DAG_ID}")[0] == 200, STARTUP_SECONDS, airflow
        )
        yield airflow
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def finished_runs(server: Airflow, run_type: str, count: int) -> list[dict] | None:
    status, body = server.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns?run_type={run_type}&limit=100")
    assert status == 200, body
    runs = body["dag_runs"]
    done = [r for r in runs if r["state"] in ("success", "failed")]
    return runs if len(runs) >= count and len(done) == len(runs) else None


def test_native_backfill_makes_one_run_per_day_equal_to_the_cli(server, warehouse, cli_reference, table_rows):
    created = server.cli("backfill", "create", "--dag-id", DAG_ID, "--from-date", NATIVE[0], "--to-date", NATIVE[1])
    assert created.returncode == 0, created.stderr[-3000:]
    runs = wait_for("the backfill runs", lambda: finished_runs(server, "backfill", 2), RUN_SECONDS, server, every=5)
    assert sorted(r["logical_date"][:10] for r in runs) == ["2025-01-05", "2025-01-06"]
    assert {r["state"] for r in runs} == {"success"}, runs
    for run in runs:
        assert run["data_interval_start"][:10] == run["logical_date"][:10]
    ours = table_rows(str(warehouse / "features" / VIEW), NATIVE)
    assert sorted(set(ours["ds"])) == [date(2025, 1, d) for d in (5, 6)]
    assert ours.equals(table_rows(cli_reference, NATIVE))


def test_rest_trigger_with_params_equals_the_cli(server, warehouse, cli_reference, table_rows):
    status, body = server.request(
        "POST",
        f"/api/v2/dags/{DAG_ID}/dagRuns",
        {"logical_date": None, "conf": {"start": TRIGGERED[0], "end": TRIGGERED[1], "chunk_days": 2}},
    )
    assert status == 200, body
    run_id = body["dag_run_id"]

    def finished():
        _, run = server.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")
        return run if run["state"] in ("success", "failed") else None

    run = wait_for("the triggered run", finished, RUN_SECONDS, server, every=5)
    assert run["state"] == "success", run
    _, tis = server.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")
    labels = sorted(t["rendered_map_index"] for t in tis["task_instances"] if t["task_id"] == "materialize")
    assert labels == ["2025-01-08..2025-01-09", "2025-01-10..2025-01-10"]
    ours = table_rows(str(warehouse / "features" / VIEW), TRIGGERED)
    assert len(ours) > 0
    assert ours.equals(table_rows(cli_reference, TRIGGERED))


def test_rest_refuses_malformed_params_readably(server):
    status, body = server.request(
        "POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": {"start": "2025-13-01"}}
    )
    assert status == 400, body
    assert "Invalid input for param start: '2025-13-01' is not a 'date'" in json.dumps(body)
