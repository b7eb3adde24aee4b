"""dag.test() runs on sample data produce the same tables as ``kiln backfill`` over the same days.

Airflow runs the tasks in this process, so they share the session's Spark
(local[2]). The reference table comes from ``kiln backfill`` (conftest).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.orchestration.conftest import REFERENCE_DAYS, SAMPLE_DEFS, VIEW

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("airflow_db")]

BACKFILL = ("2025-01-05", "2025-01-12")
NIGHTLY_LOGICAL_DATE = datetime(2025, 1, 14, tzinfo=timezone.utc)  # a manual run here computes ds 2025-01-13


@pytest.fixture(scope="module")
def warehouse(sample_warehouse) -> Path:
    return sample_warehouse("dag_test")


@pytest.fixture
def dag(warehouse, monkeypatch):
    """A fresh DAG per test: dag.test() runs tasks in-process and leaves the run's conf in task.params."""
    from featurekiln.orchestration import build_dags
    from featurekiln.settings import Settings

    env = {"KILN_DEFS": str(SAMPLE_DEFS), "KILN_WAREHOUSE": str(warehouse), "KILN_SPARK_MASTER": "local[2]"}
    for key, value in env.items():  # dag.test() re-parses dags/ and must see the same definitions
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("KILN_SPARK_CONN_ID", raising=False)
    monkeypatch.delenv("KILN_ONLINE_STORE", raising=False)  # the embedded default: SQLite under the warehouse
    return build_dags(settings=Settings.from_env(), only=f"kiln_{VIEW}").dags[f"kiln_{VIEW}"]


def commits(warehouse: Path) -> list[dict[str, object]]:
    """The metadata of every commit of the view's feature table, oldest first (the ledger)."""
    from featurekiln.offline.delta_log import DeltaLog
    from featurekiln.settings import Settings

    path = str(warehouse / "features" / VIEW)
    return [c.metadata for c in DeltaLog.of(path, Settings(warehouse=str(warehouse))).commits()]


def states(run) -> dict[str, str]:
    found: dict[str, set[str]] = {}
    for ti in run.get_task_instances():
        found.setdefault(ti.task_id, set()).add(str(ti.state))
    return {task: ",".join(sorted(s)) for task, s in found.items()}


def test_trigger_form_backfill_equals_the_cli(dag, warehouse, cli_reference, table_rows) -> None:
    run = dag.test(
        logical_date=datetime(2025, 1, 20, tzinfo=timezone.utc),
        run_conf={"start": BACKFILL[0], "end": BACKFILL[1], "chunk_days": 5},
    )
    assert run.state == "success", states(run)
    newest = commits(warehouse)[-1]
    assert (newest["start"], newest["end"], newest["verdict"]) == (*BACKFILL, "success"), "one commit, validated"
    ours = table_rows(str(warehouse / "features" / VIEW))
    assert sorted(set(ours["ds"])) == [date(2025, 1, d) for d in range(5, 13)]
    assert len(ours) > 0
    assert ours.equals(table_rows(cli_reference, BACKFILL))


def test_rerun_skips_materialized_days_unless_forced(dag, warehouse, table_rows) -> None:
    table = str(warehouse / "features" / VIEW)
    before = table_rows(table)
    run = dag.test(
        logical_date=datetime(2025, 1, 21, tzinfo=timezone.utc),
        run_conf={"start": BACKFILL[0], "end": BACKFILL[1], "chunk_days": 30},
    )
    assert run.state == "success", states(run)
    ledger = commits(warehouse)
    assert table_rows(table).equals(before)
    forced = dag.test(
        logical_date=datetime(2025, 1, 22, tzinfo=timezone.utc),
        run_conf={"start": BACKFILL[0], "end": BACKFILL[1], "chunk_days": 30, "force": True},
    )
    assert forced.state == "success", states(forced)
    assert commits(warehouse)[:-1] == ledger, "the first run committed nothing; the forced run one commit"
    assert table_rows(table).equals(before)


def test_nightly_run_computes_the_latest_complete_day(dag, warehouse, cli_reference, table_rows) -> None:
    run = dag.test(logical_date=NIGHTLY_LOGICAL_DATE)
    assert run.state == "success", states(run)
    assert (run.data_interval_start, run.data_interval_end) == (
        datetime(2025, 1, 13, tzinfo=timezone.utc),
        NIGHTLY_LOGICAL_DATE,
    )
    day = ("2025-01-13", "2025-01-13")
    ours = table_rows(str(warehouse / "features" / VIEW), day)
    assert len(ours) > 0
    assert ours.equals(table_rows(cli_reference, day))
    assert states(run) == {t: "success" for t in ("plan", "tiles", "publish", "push_online")}
    healed = table_rows(str(warehouse / "features" / VIEW))
    assert sorted(set(healed["ds"])) == [date(2025, 1, d) for d in range(1, 14)], \
        "the nightly run computes what `kiln run --until 2025-01-13` would: the days a missed night left out too"


def test_nightly_run_serves_the_latest_snapshot_online(dag, warehouse, table_rows, monkeypatch) -> None:
    """After the nightly run (verified online), get_features over SQLite equals the latest snapshot row for row."""
    from featurekiln.online import get_features
    from featurekiln.orchestration import build_dags
    from featurekiln.settings import Settings

    monkeypatch.setenv("KILN_VERIFY_ONLINE", "true")  # the fixture's environment, plus the verify_online task
    dag = build_dags(settings=Settings.from_env(), only=dag.dag_id).dags[dag.dag_id]
    run = dag.test(logical_date=NIGHTLY_LOGICAL_DATE + timedelta(days=1))  # snapshot 2025-01-14
    assert run.state == "success", states(run)
    assert states(run)["verify_online"] == "success"
    settings = Settings.from_env()
    assert settings.online_store is None and (warehouse / "_online").is_dir()
    everything = table_rows(str(warehouse / "features" / VIEW))
    latest = everything[everything["ds"] == date(2025, 1, 14)].reset_index(drop=True)
    older_only = sorted(set(everything["user_id"]) - set(latest["user_id"]))
    assert len(latest) > 0
    keys = [{"user_id": k} for k in latest["user_id"]] + [{"user_id": k} for k in older_only] + [{"user_id": -1}]
    served = get_features(VIEW, keys, settings=settings)

    assert served[len(latest):] == [None] * (len(older_only) + 1), "a key absent from the latest snapshot is served"
    for row, online in zip(latest.to_dict("records"), served, strict=False):
        assert online is not None, row
        assert online["ds"] == row["ds"] and online["feature_ts"] == row["feature_ts"].to_pydatetime()
        for column, value in row.items():
            if column not in ("ds", "feature_ts"):
                assert online[column] == value, (column, row, online)


def test_nightly_run_during_a_cli_backfill_of_the_same_days(
    spark, sample_warehouse, monkeypatch, cli_reference, table_rows
) -> None:
    """The nightly DAG run and a CLI backfill write the same day at once: both succeed, no hole."""
    import threading

    from featurekiln.definitions import load_catalog
    from featurekiln.offline.delta_table import held_days
    from featurekiln.orchestration import build_dags
    from featurekiln.runner import backfill
    from featurekiln.settings import Settings

    root = sample_warehouse("concurrent")
    env = {"KILN_DEFS": str(SAMPLE_DEFS), "KILN_WAREHOUSE": str(root), "KILN_SPARK_MASTER": "local[2]"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("KILN_SPARK_CONN_ID", raising=False)
    settings = Settings.from_env()
    dag = build_dags(settings=settings, only=f"kiln_{VIEW}").dags[f"kiln_{VIEW}"]
    errors: list[BaseException] = []

    def cli_backfill() -> None:
        try:
            view = load_catalog(SAMPLE_DEFS)[VIEW]
            backfill(view, date(2025, 1, 5), date(2025, 1, 13), settings=settings, spark=spark, chunk_days=1)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    thread = threading.Thread(target=cli_backfill)
    thread.start()
    run = dag.test(logical_date=NIGHTLY_LOGICAL_DATE)  # `kiln run --until 2025-01-13`: the empty table from its start
    thread.join()
    assert run.state == "success", states(run)
    assert not errors, errors
    table = str(root / "features" / VIEW)
    assert held_days(settings, table) == [(date(2025, 1, 1), date(2025, 1, 14))]
    assert table_rows(table, REFERENCE_DAYS).equals(table_rows(cli_reference))


def test_a_feature_added_with_on_change_rebuild_is_rebuilt_by_the_nightly_run(
    spark, sample_warehouse, monkeypatch, tmp_path, table_rows
) -> None:
    """A schema change: the nightly run rebuilds every day aside and `publish` swaps the table in one commit."""
    import yaml

    from featurekiln.definitions import load_catalog
    from featurekiln.offline.delta_table import held_days
    from featurekiln.orchestration import build_dags
    from featurekiln.runner import plan_run
    from featurekiln.settings import Settings

    root, defs = sample_warehouse("schema_change"), tmp_path / "defs"
    defs.mkdir()
    raw = yaml.safe_load((SAMPLE_DEFS / f"{VIEW}.yaml").read_text())
    raw.pop("expectations", None)
    (defs / f"{VIEW}.yaml").write_text(yaml.safe_dump(raw))
    env = {"KILN_DEFS": str(defs), "KILN_WAREHOUSE": str(root), "KILN_SPARK_MASTER": "local[2]",
           "KILN_EXPECTATIONS": str(tmp_path / "no_suites")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("KILN_SPARK_CONN_ID", raising=False)

    def dag():  # noqa: ANN202
        return build_dags(settings=Settings.from_env(), only=f"kiln_{VIEW}").dags[f"kiln_{VIEW}"]

    first = dag().test(logical_date=datetime(2025, 1, 20, tzinfo=timezone.utc),
                       run_conf={"start": "2025-01-05", "end": "2025-01-06"})
    assert first.state == "success", states(first)

    raw["features"].append({"name": "min_amount_7d", "agg": "min", "expr": "amount", "window": "7d"})
    raw["on_change"] = "rebuild"
    (defs / f"{VIEW}.yaml").write_text(yaml.safe_dump(raw))
    nightly = dag().test(logical_date=datetime(2025, 1, 7, tzinfo=timezone.utc))  # until 2025-01-06
    assert nightly.state == "success", states(nightly)

    table = str(root / "features" / VIEW)
    rows = table_rows(table)
    assert list(rows.columns)[-1] == "min_amount_7d" and rows["min_amount_7d"].notna().any()
    assert held_days(Settings.from_env(), table) == [(date(2025, 1, 1), date(2025, 1, 7))]
    assert not (root / "_rebuild" / VIEW).exists() or not any((root / "_rebuild" / VIEW).iterdir())
    view = load_catalog(defs)[VIEW]
    assert plan_run(view, date(2025, 1, 6), settings=Settings.from_env()).nothing_to_do


def test_a_nightly_run_whose_push_failed_is_finished_by_the_next_run(spark, sample_warehouse, monkeypatch,
                                                                    tmp_path) -> None:
    """The online store (a real redis-server) is down during a nightly run: `publish` commits, `push_online`
    fails. The next DAG run, with the store up and nothing left to compute, pushes the latest validated
    snapshot, and the store then serves it."""
    from featurekiln.definitions import load_catalog
    from featurekiln.online.consistency import check_online
    from featurekiln.orchestration import build_dags
    from featurekiln.settings import Settings
    from tests.online.servers import RedisServer, free_port, serve

    root = sample_warehouse("push_failed")
    server = RedisServer(free_port(), tmp_path)
    env = {"KILN_DEFS": str(SAMPLE_DEFS), "KILN_WAREHOUSE": str(root), "KILN_SPARK_MASTER": "local[2]",
           "KILN_ONLINE_STORE": server.url, "KILN_RETRIES": "0"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("KILN_SPARK_CONN_ID", raising=False)

    def dag():
        return build_dags(settings=Settings.from_env(), only=f"kiln_{VIEW}").dags[f"kiln_{VIEW}"]

    failed = dag().test(logical_date=NIGHTLY_LOGICAL_DATE)
    found = states(failed)
    assert failed.state == "failed" and found["publish"] == "success" and found["push_online"] == "failed", found
    for _ in serve(server):
        again = dag().test(logical_date=NIGHTLY_LOGICAL_DATE + timedelta(hours=1))
        assert again.state == "success", states(again)
        report = check_online(spark, load_catalog(SAMPLE_DEFS)[VIEW], Settings.from_env(), None)
        assert report.ok and report.ds == date(2025, 1, 13) == report.online_ds, report.summary()
