"""The production stack rehearsed: a real scheduler on PostgreSQL drives overlapping runs of two views
into an S3 warehouse (moto), with the online store on Redis.

Two views start 7 days ago with catch-up on and ``KILN_MAX_ACTIVE_RUNS=2``: the
scheduler makes 7 nightly runs of each, two at a time. While they run, a
trigger-form backfill (params ``start``/``end`` over the REST API) of one view
computes days that its nightly runs compute too. Afterwards:

* every run succeeded, and the runs did overlap (two nightly runs of a DAG at
  once; the trigger-form run beside a nightly run);
* each feature table equals one ``kiln backfill`` of the same days (every row);
* ``kiln status`` shows no holes; ``kiln report`` holds one record per DAG run;
* ``kiln check-online`` finds the online view's latest snapshot in Redis.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.online.servers import AWS_ENV, PostgresServer, RedisServer, free_port
from tests.orchestration.conftest import days_between, days_committed_by_run
from tests.orchestration.production import run_stack
from tests.orchestration.standalone import Airflow, wait_for

pytestmark = pytest.mark.slow

KILN = Path(sys.executable).with_name("kiln")
NIGHTS = 7
TODAY = datetime.now(UTC).date()
START = TODAY - timedelta(days=NIGHTS)  # catch-up: the nights START .. TODAY - 1
SAMPLE = {"start": START - timedelta(days=10), "days": NIGHTS + 11, "users": 30, "seed": 5}
RUNS_SECONDS = 4800  # a generous bound: on a machine busy with other work a task takes minutes
VIEWS = {
    "rehearsal_purchases": {
        "source": {"path": "raw/purchases", "format": "parquet", "timestamp": "event_ts",
                   "filter": "status = 'completed'"},
        "features": [
            {"name": "purchases_3d", "agg": "count", "window": "3d"},
            {"name": "spend_7d", "agg": "sum", "expr": "amount", "window": "7d"},
            {"name": "last_amount", "agg": "last", "expr": "amount"},
        ],
    },
    "rehearsal_clicks": {
        "source": {"path": "raw/clicks", "format": "csv", "timestamp": "event_ts"},
        "ttl": "3d",
        "online": False,  # one online view is enough to check the store, and push_online then starts no JVM
        "features": [
            {"name": "clicks_1d", "agg": "count", "window": "1d"},
            {"name": "pages_3d", "agg": "count_distinct", "expr": "page", "window": "3d"},
        ],
    },
}
BACKFILLED = "rehearsal_purchases"
TRIGGERED = (START + timedelta(days=1), START + timedelta(days=3))


def write_defs(folder: Path) -> Path:
    folder.mkdir()
    for name, spec in VIEWS.items():
        definition = {"name": name, "description": f"Rehearsal view {name}.", "owner": "tests",
                      "entity": {"name": "user", "keys": ["user_id"]}, "start": START.isoformat(),
                      "schedule": "@daily", "online": True}
        definition.update(spec)
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(definition, sort_keys=False))
    return folder


def dag_id(view: str) -> str:
    return f"kiln_{view}"


def runs_of(stack: Airflow, view: str) -> list[dict]:
    status, body = stack.request("GET", f"/api/v2/dags/{dag_id(view)}/dagRuns?limit=100")
    assert status == 200, body
    return body["dag_runs"]


def all_finished(stack: Airflow, triggered: str) -> dict[str, list[dict]] | None:
    runs = {view: runs_of(stack, view) for view in VIEWS}
    scheduled = {v: [r for r in rs if r["run_type"] == "scheduled"] for v, rs in runs.items()}
    if any(len(s) < NIGHTS for s in scheduled.values()) or triggered not in {r["dag_run_id"] for r in runs[BACKFILLED]}:
        return None
    done = all(r["state"] in ("success", "failed") for rs in runs.values() for r in rs)
    return runs if done else None


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def most_at_once(runs: list[dict]) -> int:
    """The largest number of ``runs`` that were running at the same moment (from their start and end)."""
    edges = sorted([(at(r["start_date"]), 1) for r in runs] + [(at(r["end_date"]), -1) for r in runs],
                   key=lambda e: (e[0], e[1]))
    active = best = 0
    for _, step in edges:
        active += step
        best = max(best, active)
    return best


def overlaps(one: dict, others: list[dict]) -> bool:
    return any(at(one["start_date"]) < at(o["end_date"]) and at(o["start_date"]) < at(one["end_date"]) for o in others)


def kiln(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(KILN), *args], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"kiln {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr[-4000:]}"
    return done.stdout


def task_times(stack: Airflow, view: str, run_id: str) -> dict[str, float]:
    """Each task's wall time (seconds) in one DAG run, mapped tasks summed."""
    _, body = stack.request("GET", f"/api/v2/dags/{dag_id(view)}/dagRuns/{run_id}/taskInstances")
    times: dict[str, float] = {}
    for ti in body["task_instances"]:
        times[ti["task_id"]] = times.get(ti["task_id"], 0.0) + float(ti["duration"] or 0.0)
    return times


@pytest.fixture
def production(tmp_path_factory, moto_server, s3_bucket, monkeypatch):
    """The stack running over an S3 warehouse of sample sources; yields (stack, kiln env, defs)."""
    from featurekiln.samples import write_sample_sources
    from featurekiln.settings import Settings

    home = tmp_path_factory.mktemp("rehearsal")
    defs = write_defs(home / "defs")
    (home / "expectations").mkdir()
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    warehouse = f"s3a://{s3_bucket}/lake"
    write_sample_sources(Settings(warehouse=warehouse, s3_endpoint=moto_server.endpoint_url), **SAMPLE)
    redis_server = RedisServer(free_port(), home / "redis")
    database = PostgresServer(free_port(), home / "postgres")
    try:
        redis_server.start()
        database.start()
        kiln_env = {
            **AWS_ENV,
            "AWS_ENDPOINT_URL": moto_server.endpoint_url,
            "KILN_DEFS": str(defs),
            "KILN_EXPECTATIONS": str(home / "expectations"),
            "KILN_WAREHOUSE": warehouse,
            "KILN_ONLINE_STORE": redis_server.url,
            "KILN_SPARK_MASTER": "local[2]",
            "KILN_CATCHUP": "true",
            "KILN_MAX_ACTIVE_RUNS": "2",
            "KILN_MAINTENANCE_SCHEDULE": "none",  # its first run would find no table yet (it has tests of its own)
        }
        stack_home = home / "airflow"
        stack_home.mkdir()
        stack = run_stack(stack_home, database, kiln_env, [dag_id(v) for v in VIEWS])
        try:
            yield next(stack), kiln_env, defs
        finally:
            stack.close()
    finally:
        database.remove()
        redis_server.kill()


def test_overlapping_runs_under_a_real_scheduler_equal_one_cli_backfill(
    production, spark, tmp_path, collect_frame
) -> None:
    from typer.testing import CliRunner

    from featurekiln.cli import app
    from featurekiln.samples import write_sample_sources
    from featurekiln.settings import Settings
    from tests.test_s3_warehouse import download

    stack, kiln_env, defs = production
    status, body = stack.request(
        "POST", f"/api/v2/dags/{dag_id(BACKFILLED)}/dagRuns",
        {"logical_date": None, "conf": {"start": TRIGGERED[0].isoformat(), "end": TRIGGERED[1].isoformat(),
                                        "chunk_days": 2}},
    )
    assert status == 200, body
    triggered = body["dag_run_id"]
    runs = wait_for("every run", lambda: all_finished(stack, triggered), RUNS_SECONDS, stack, every=5)

    for view, view_runs in runs.items():
        assert {r["state"] for r in view_runs} == {"success"}, [(r["dag_run_id"], r["state"]) for r in view_runs]
        nightly = [r for r in view_runs if r["run_type"] == "scheduled"]
        assert sorted(r["data_interval_start"][:10] for r in nightly) == [
            (START + timedelta(days=i)).isoformat() for i in range(NIGHTS)
        ]
        assert most_at_once(nightly) >= 2, f"{view}: the nightly runs never ran two at a time"
    by_id = {r["dag_run_id"]: r for r in runs[BACKFILLED]}
    assert overlaps(by_id[triggered], [r for r in runs[BACKFILLED] if r["run_type"] == "scheduled"]), (
        "the trigger-form backfill ran beside no nightly run"
    )

    # One CLI backfill of the same days over the same sources, in a local warehouse.
    reference = tmp_path / "reference"
    write_sample_sources(reference, **SAMPLE)
    last = (TODAY - timedelta(days=1)).isoformat()
    import boto3

    s3 = boto3.client("s3", endpoint_url=kiln_env["AWS_ENDPOINT_URL"], region_name=AWS_ENV["AWS_DEFAULT_REGION"])
    bucket = kiln_env["KILN_WAREHOUSE"].split("/")[2]
    for view in VIEWS:
        args = ["--defs", str(defs), "--warehouse", str(reference), "backfill", view, "--start", START.isoformat(),
                "--end", last]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        ours = download(s3, bucket, f"lake/features/{view}", tmp_path / "downloaded" / view)

        def rows(path: Path):
            frame = spark.read.format("delta").load(str(path))
            return collect_frame(frame.orderBy("ds", "user_id")).reset_index(drop=True)

        expected = rows(reference / "features" / view)
        got = rows(ours)
        assert len(expected) > 0
        assert sorted(set(got["ds"])) == [START + timedelta(days=i) for i in range(NIGHTS)]
        assert got.equals(expected), f"{view}: the table differs from `kiln backfill`"

    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("KILN_", "AWS_"))}, **kiln_env,
           "COLUMNS": "300"}
    status_out = kiln(env, "status")
    for view in VIEWS:
        line = next(row for row in status_out.splitlines() if view in row)
        assert f"{START.isoformat()}..{last}" in line and " none " in line, status_out

    report = json.loads(kiln(env, "report", "--json", "--last", "100"))
    settings = Settings(warehouse=kiln_env["KILN_WAREHOUSE"], s3_endpoint=kiln_env["AWS_ENDPOINT_URL"])
    for view, view_runs in runs.items():
        records = [r for r in report if r["view"] == view]
        assert sorted(r["run_id"] for r in records) == sorted(r["dag_run_id"] for r in view_runs), (
            f"{view}: one record per DAG run"
        )
        committed = days_committed_by_run(settings, settings.warehouse_path("features", view))
        published = set().union(*committed.values())
        for record in records:
            assert record["status"] == "success", record
            days, mine = days_between(record["start"], record["end"]), committed.get(record["run_id"], set())
            if record["rows"] == 0 and not mine:  # other runs published its days before it planned
                assert days <= published, f"{view}: run {record['run_id']} recorded days nobody published"
            else:
                assert days <= mine, f"{view}: run {record['run_id']} reports days it did not commit"
    assert "OK" in kiln(env, "check-online", BACKFILLED, "--sample", "0")

    nightly = sorted((r for r in runs[BACKFILLED] if r["run_type"] == "scheduled"), key=lambda r: r["logical_date"])
    times = task_times(stack, BACKFILLED, nightly[-1]["dag_run_id"])
    (tmp_path / "task_times.json").write_text(json.dumps(times, indent=2))
    sys.stderr.write(f"\nrehearsal: the last nightly run of {BACKFILLED}: {times}\n")
