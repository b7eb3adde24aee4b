"""Airflow as it runs in production, on loopback: api-server, scheduler and dag-processor as separate
processes, the LocalExecutor, and the metadata database on PostgreSQL (tests/online/servers.py).

Used by tests/orchestration/test_rehearsal.py. Each task runs in its own process
with its own local Spark, as in a deployment without a Spark cluster.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.online.servers import PostgresServer, free_port
from tests.orchestration.conftest import DAGS_FOLDER, REPO_ROOT
from tests.orchestration.standalone import PASSWORD, STARTUP_SECONDS, USER, Airflow, wait_for

COMPONENTS = ("api-server", "scheduler", "dag-processor")


class Stack(Airflow):
    """The running components (their processes and logs) and a REST client for the api-server."""

    def __init__(self, env: dict[str, str], port: int, processes: dict[str, subprocess.Popen], home: Path) -> None:
        super().__init__(env, port, processes["api-server"], home / "api-server.log")
        self.processes, self.home = processes, home

    def tail(self) -> str:
        parts = []
        for name in COMPONENTS:
            log = self.home / f"{name}.log"
            if log.exists():
                parts.append(f"--- {name}:\n{log.read_text(errors='replace')[-2500:]}")
        return "\n".join(parts)

    def alive(self) -> None:
        """Raise when a component exited."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"airflow {name} exited with {process.returncode}:\n{self.tail()}")


def airflow_env(home: Path, database: PostgresServer, port: int, kiln: dict[str, str]) -> dict[str, str]:
    """The environment of every component: Airflow's settings, then ``kiln`` (KILN_* and AWS_* variables)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KILN_", "AWS_", "AIRFLOW"))}
    return {
        **base,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database.url,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        # One secret for every component: the scheduler signs the tokens the api-server checks.
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        # Tasks report to the api-server; on a busy machine (two cores, several JVMs) an answer can take
        # longer than the default 5 s, and a timed-out call fails the task before it starts.
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
        # The same on the scheduler's side: a task whose heartbeats are late for 5 minutes (Airflow's
        # default) is killed and retried, which a machine running other test sessions can cause.
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "1800",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "PYTHONPATH": str(REPO_ROOT),
        **kiln,
    }


def run_stack(home: Path, database: PostgresServer, kiln: dict[str, str], dag_ids: list[str]) -> Iterator[Stack]:
    """Migrate the database, start the three components, yield once every DAG of ``dag_ids`` is served, stop."""
    (home / "passwords.json").write_text(json.dumps({USER: PASSWORD}))
    port = free_port()
    env = airflow_env(home, database, port, kiln)
    migrated = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True, text=True, timeout=600
    )
    if migrated.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{migrated.stderr[-3000:]}")
    processes: dict[str, subprocess.Popen] = {}

    def start(name: str) -> None:
        with (home / f"{name}.log").open("wb") as out:
            processes[name] = subprocess.Popen(
                [sys.executable, "-m", "airflow", name], env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    try:
        # The api-server first: the scheduler's first tasks call it as soon as they start.
        start("api-server")
        stack = Stack(env, port, processes, home)
        wait_for("the api-server", stack.log_in, STARTUP_SECONDS, stack)
        for name in COMPONENTS[1:]:
            start(name)
        for dag_id in dag_ids:
            wait_for(f"DAG {dag_id}", lambda d=dag_id: stack.request("GET", f"/api/v2/dags/{d}")[0] == 200,
                     STARTUP_SECONDS, stack, every=1.0)
        yield stack
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        _kill_leftovers(home)


def _kill_leftovers(home: Path) -> None:
    """Kill what the components left running: each task's supervisor is a session of its own (with its
    Spark JVM), which outlives a scheduler killed in the middle of a run. Only processes whose
    environment has this stack's ``AIRFLOW_HOME``."""
    import psutil

    for process in psutil.process_iter():
        try:
            if process.environ().get("AIRFLOW_HOME") == str(home):
                process.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
