"""Cluster mode for real: a Spark standalone master and worker on loopback, spark-submit through the DAG.

The master and the worker come from the pyspark distribution (``spark-class``).
With ``KILN_SPARK_CONN_ID`` set, ``tiles`` and ``publish`` are ``SparkSubmitOperator``
tasks that submit ``jobs/materialize.py`` with the run's plan; the table must equal ``kiln backfill``.
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
import urllib.request
from collections.abc import Iterator
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from tests.orchestration.conftest import SAMPLE_DEFS, VIEW

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("airflow_db")]

DAYS = ("2025-01-06", "2025-01-09")
CONN_ID = "kiln_test_spark"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spark_class() -> str:
    found = shutil.which("spark-class", path=str(Path(sys.executable).parent)) or shutil.which("spark-class")
    if not found:
        pytest.fail("spark-class (from the pyspark distribution) is not on PATH")
    return found


def alive_workers(ui_port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=5) as response:
        return int(json.load(response).get("aliveworkers", 0))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[str]:
    """A Spark standalone master and one worker (1 core, 1 GiB) on 127.0.0.1; yields the master URL."""
    logs = tmp_path_factory.mktemp("spark_cluster")
    port, ui, worker_ui = free_port(), free_port(), free_port()
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOG_DIR": str(logs), "SPARK_WORKER_DIR": str(logs)}
    master_url = f"spark://127.0.0.1:{port}"
    commands = {
        "master": [spark_class(), "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                   "--port", str(port), "--webui-port", str(ui)],
        "worker": [spark_class(), "org.apache.spark.deploy.worker.Worker", master_url, "--host", "127.0.0.1",
                   "--cores", "1", "--memory", "1g", "--webui-port", str(worker_ui)],
    }
    processes = []
    try:
        for name, command in commands.items():
            out = (logs / f"{name}.log").open("wb")
            processes.append(subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                              start_new_session=True))
            if name == "master":
                time.sleep(2)
        deadline = time.monotonic() + 120
        while True:
            try:
                if alive_workers(ui) >= 1:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                text = "\n".join((logs / f"{n}.log").read_text(errors="replace")[-2000:] for n in commands)
                pytest.fail(f"the Spark cluster did not start:\n{text}")
            time.sleep(2)
        yield master_url
    finally:
        for process in reversed(processes):
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def test_spark_submit_through_the_dag_equals_the_cli(cluster, sample_warehouse, cli_reference, table_rows, monkeypatch):
    from featurekiln.orchestration import build_dags
    from featurekiln.settings import Settings

    warehouse = sample_warehouse("cluster")
    env = {
        "KILN_DEFS": str(SAMPLE_DEFS),
        "KILN_WAREHOUSE": str(warehouse),
        "KILN_SPARK_CONN_ID": CONN_ID,
        f"AIRFLOW_CONN_{CONN_ID.upper()}": cluster,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    dag = build_dags(settings=Settings.from_env(), only=f"kiln_{VIEW}").dags[f"kiln_{VIEW}"]
    assert {dag.get_task(t).operator_class.__name__ for t in ("tiles", "publish")} == {"SparkSubmitOperator"}

    run = dag.test(
        logical_date=datetime(2025, 1, 20, tzinfo=timezone.utc),
        run_conf={"start": DAYS[0], "end": DAYS[1], "chunk_days": 2},
    )
    states = {(ti.task_id, ti.map_index): str(ti.state) for ti in run.get_task_instances()}
    assert run.state == "success", states
    assert {ti.task_id for ti in run.get_task_instances()} == {"plan", "tiles", "publish", "push_online"}
    ours = table_rows(str(warehouse / "features" / VIEW))
    assert sorted(set(ours["ds"])) == [date(2025, 1, d) for d in range(6, 10)]
    assert ours.equals(table_rows(cli_reference, DAYS))
