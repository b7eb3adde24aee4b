"""Airflow test state, isolated: AIRFLOW_HOME in a temporary directory, SQLite, migrated once.

The environment is set when this module is imported, before any test imports
Airflow (Airflow reads its configuration on first import).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO_ROOT / "dags"
PLUGINS_FOLDER = REPO_ROOT / "plugins"
SAMPLE_DEFS = REPO_ROOT / "feature_defs"

AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="kiln-airflow-"))
AIRFLOW_ENV = {
    "AIRFLOW_HOME": str(AIRFLOW_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME}/airflow.db",
    "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p),
}
os.environ.update(AIRFLOW_ENV)
os.environ.setdefault("KILN_DEFS", str(SAMPLE_DEFS))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """The migrated SQLite metadata database of this test session (``airflow db migrate`` once)."""
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, env=os.environ.copy()
    )
    if out.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{out.stderr[-3000:]}")
    # Importing Airflow configures logging (dictConfig), which drops the root logger's handlers.
    # Do it here, before any test's caplog adds its handler, so that no test depends on
    # whether an earlier test imported Airflow.
    import airflow  # noqa: F401

    return AIRFLOW_HOME / "airflow.db"


@pytest.fixture
def kiln_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Point KILN_DEFS at the samples and KILN_WAREHOUSE at an empty temporary warehouse."""
    env = {"KILN_DEFS": str(SAMPLE_DEFS), "KILN_WAREHOUSE": str(tmp_path / "warehouse")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("KILN_SPARK_CONN_ID", "KILN_CATCHUP", "KILN_STRICT"):
        monkeypatch.delenv(key, raising=False)
    yield env


def dag_bag(defs_dir: Path | str):
    """Parse ``dags/`` with Airflow's own DagBag, with ``KILN_DEFS=defs_dir``."""
    from airflow.dag_processing.dagbag import DagBag

    previous = os.environ.get("KILN_DEFS")
    os.environ["KILN_DEFS"] = str(defs_dir)
    try:
        return DagBag(dag_folder=str(DAGS_FOLDER))
    finally:
        if previous is None:
            os.environ.pop("KILN_DEFS", None)
        else:
            os.environ["KILN_DEFS"] = previous


VIEW = "user_purchases"
SAMPLE = {"start": date(2024, 12, 1), "days": 45, "users": 40}
REFERENCE_DAYS = ("2025-01-05", "2025-01-13")


@pytest.fixture(scope="session")
def sample_warehouse(tmp_path_factory) -> Callable[[str], Path]:
    """Make a warehouse holding the sample sources (the same data every time)."""
    from featurekiln.samples import write_sample_sources

    def make(name: str) -> Path:
        root = tmp_path_factory.mktemp(f"wh_{name}")
        write_sample_sources(root, **SAMPLE)
        return root

    return make


@pytest.fixture(scope="session")
def cli_reference(spark, sample_warehouse) -> str:
    """The table ``kiln backfill user_purchases --start 2025-01-05 --end 2025-01-13`` writes.

    Run once per session through the CLI's own Typer app (in-process, same Spark);
    every Airflow test compares its days with this table.
    """
    from typer.testing import CliRunner

    from featurekiln.cli import app

    root = sample_warehouse("cli")
    args = ["--defs", str(SAMPLE_DEFS), "--warehouse", str(root), "backfill", VIEW]
    result = CliRunner().invoke(app, [*args, "--start", REFERENCE_DAYS[0], "--end", REFERENCE_DAYS[1]])
    assert result.exit_code == 0, result.output
    return str(root / "features" / VIEW)


@pytest.fixture(scope="session")
def table_rows(spark, collect_frame) -> Callable[..., object]:
    """Rows of a feature table (optionally only days ``first``..``last``), sorted, as pandas."""

    def rows(path: str, days: tuple[str, str] | None = None):
        frame = spark.read.format("delta").load(path)
        if days:
            frame = frame.where(f"ds BETWEEN '{days[0]}' AND '{days[1]}'")
        return collect_frame(frame.orderBy("ds", "user_id")).reset_index(drop=True)

    return rows


@pytest.fixture(scope="session")
def airflow_warehouse(sample_warehouse) -> Path:
    """The warehouse of the session's ``airflow standalone``: the sample sources."""
    return sample_warehouse("standalone")


@pytest.fixture(scope="session")
def airflow_server(tmp_path_factory, airflow_warehouse):
    """The one ``airflow standalone`` of the test session (tests/orchestration/standalone.py)."""
    from tests.orchestration.standalone import run_standalone

    yield from run_standalone(tmp_path_factory.mktemp("airflow_standalone"), airflow_warehouse)


def days_committed_by_run(settings, path: str) -> dict[str, set[date]]:
    """The snapshot days each run committed to the table at ``path`` (from its commits' metadata)."""
    from featurekiln.offline.delta_log import DeltaLog

    committed: dict[str, set[date]] = {}
    for commit in DeltaLog.of(path, settings).commits():
        meta = commit.metadata
        if meta.get("run_id"):
            committed.setdefault(meta["run_id"], set()).update(days_between(meta["start"], meta["end"]))
    return committed


def days_between(first: object, last: object) -> set[date]:
    """The days ``first``..``last`` (both included; dates or ISO strings)."""
    start, end = (date.fromisoformat(str(d)[:10]) for d in (first, last))
    return {date.fromordinal(n) for n in range(start.toordinal(), end.toordinal() + 1)}


@pytest.fixture(scope="session")
def failed_run(airflow_server, airflow_warehouse) -> str:
    """A run of the session's Airflow that failed its expectations (one per session: each run starts four JVMs)."""
    from tests.orchestration.test_airflow_ui import run_failing_day

    return run_failing_day(airflow_server, airflow_warehouse)
