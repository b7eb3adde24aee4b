"""A real ``airflow standalone`` on loopback (scheduler, dag-processor, api-server), as ``make airflow`` runs it.

One per test session (the ``airflow_server`` fixture in conftest.py): the REST
tests and the browser tests share it. It serves the sample view
``user_purchases`` over a warehouse of sample sources; each task runs in its
own process with its own local Spark, as in production.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.online.servers import free_port
from tests.orchestration.conftest import DAGS_FOLDER, PLUGINS_FOLDER, REPO_ROOT, SAMPLE_DEFS, VIEW

DAG_ID = f"kiln_{VIEW}"
USER = "admin"
PASSWORD = "kiln-test-password"
STARTUP_SECONDS = 240
RUN_SECONDS = 900  # each run has tasks that start their own JVM (tiles, publish, push_online)


class Airflow:
    """A running ``airflow standalone`` and a small REST client for it."""

    def __init__(self, env: dict[str, str], port: int, process: subprocess.Popen, log: Path) -> None:
        self.env, self.port, self.process, self.log = env, port, process, log
        self.base = f"http://127.0.0.1:{port}"
        self.token: str | None = None

    def request(self, method: str, path: str, body: object | None = None) -> tuple[int, Any]:
        import httpx

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = httpx.request(method, self.base + path, json=body, headers=headers, timeout=30)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text

    def log_in(self) -> bool:
        """Get a token for the REST API (False while the api-server does not accept the login yet)."""
        status, body = self.request("POST", "/auth/token", {"username": USER, "password": PASSWORD})
        if status in (200, 201):
            self.token = body["access_token"]
            return True
        return False

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

    def run_state(self, run_id: str) -> dict[str, Any] | None:
        """The DAG run ``run_id`` of ``DAG_ID`` once it finished (success or failed), else None."""
        _, run = self.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")
        return run if run["state"] in ("success", "failed") else None

    def alive(self) -> None:
        """Raise when the server exited."""
        if self.process.poll() is not None:
            raise RuntimeError(f"airflow exited with {self.process.returncode}:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


def wait_for(what: str, check: Callable[[], Any], seconds: float, server: Airflow, every: float = 3.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail with the server's log after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        server.alive()
        try:
            found = check()
        except Exception:  # noqa: BLE001 - the server is still starting
            found = None
        if found:
            return found
        time.sleep(every)
    raise TimeoutError(f"timed out waiting for {what}:\n{server.tail()}")


def run_standalone(home: Path, warehouse: Path) -> Iterator[Airflow]:
    """Start ``airflow standalone`` in ``home`` over ``warehouse``, yield it once the DAG is served, stop it."""
    defs = home / "defs"
    defs.mkdir()
    shutil.copy(SAMPLE_DEFS / f"{VIEW}.yaml", defs)
    (home / "passwords.json").write_text(json.dumps({USER: PASSWORD}))
    port = free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS_FOLDER),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
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
        "KILN_EXPECTATIONS": str(REPO_ROOT / "expectations"),
        "KILN_WAREHOUSE": str(warehouse),
        "KILN_SPARK_MASTER": "local[2]",
        # No scheduled runs: the latest one would be a `kiln run` from the view's start (2025-01-01) to
        # yesterday, two years of days that no test here looks at (dag.test() covers nightly runs) and that
        # would compete for the two cores. Native backfills and triggered runs are created as usual.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
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
        wait_for("the api-server", airflow.log_in, STARTUP_SECONDS, airflow)
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
