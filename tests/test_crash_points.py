"""A ``kiln run`` killed with SIGKILL (the process and its JVM) at each boundary of the executor, then one
``kiln run``: the table equals the oracle, ``kiln check-online`` passes, and the run history shows the killed
run and the run that finished its work. Also a push that fails because the online store is down.

The kill comes from outside, on what the run leaves in the warehouse: a new commit of the tile table, of the
feature table, of the run history, or the online store's file being written. No hook in the code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from featurekiln.samples import write_sample_sources
from featurekiln.settings import Settings
from tests.test_runner import SAMPLE, VIEW, expected, raw_definition

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.slow, pytest.mark.spark, pytest.mark.server]  # `kiln` runs start JVMs; a redis-server

REPO_ROOT = Path(__file__).resolve().parents[1]
KILN = str(Path(sys.executable).parent / "kiln")
RUN_SECONDS = 900


def day(n: int) -> date:
    return SAMPLE["start"] + timedelta(days=n - 1)


def commits(folder: Path) -> int:
    """How many Delta commits the table at ``folder`` has."""
    return len(list((folder / "_delta_log").glob("*.json"))) if (folder / "_delta_log").is_dir() else 0


def env_of(warehouse: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KILN_")}
    return {**env, "PYTHONPATH": str(REPO_ROOT), "KILN_DEFS": str(REPO_ROOT / "feature_defs"),
            "KILN_WAREHOUSE": str(warehouse), "KILN_SPARK_MASTER": "local[2]", **extra}


def kiln(warehouse: Path, *args: str, code: int | None = 0, **extra: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([KILN, *args], cwd=REPO_ROOT, env=env_of(warehouse, **extra), capture_output=True,
                          text=True, timeout=RUN_SECONDS, check=False)
    if code is not None:
        assert done.returncode == code, f"kiln {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr[-3000:]}"
    return done


def kill_when(warehouse: Path, until: date, reached: Callable[[], bool], **extra: str) -> None:
    """Start ``kiln run`` and SIGKILL its process group (the CLI and its JVM) as soon as ``reached()``."""
    process = subprocess.Popen([KILN, "run", VIEW, "--until", until.isoformat()], cwd=REPO_ROOT,
                               env=env_of(warehouse, **extra), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + RUN_SECONDS
    try:
        while not reached():
            assert process.poll() is None, "the run ended before the boundary: it was not killed"
            assert time.monotonic() < deadline, "the boundary was never reached"
            time.sleep(0.02)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    """The sample sources, and the view run (and pushed) up to day 6."""
    root = tmp_path_factory.mktemp("crash") / "wh"
    write_sample_sources(root, seed=5, **SAMPLE)
    kiln(root, "run", VIEW, "--until", day(6).isoformat())
    return root


def online_written(root: Path) -> Callable[[], bool]:
    """Whether the embedded online store (SQLite under ``_online``, in WAL mode) was written to since now: its
    write-ahead log grew (reading it does not). A connection held open here keeps the log from being removed
    when the run closes its own, so a push shorter than one poll is still seen."""
    import sqlite3

    folder = root / "_online"
    held = sqlite3.connect(folder / "online.db")
    held.execute("SELECT count(*) FROM sqlite_master").fetchall()

    def sizes() -> dict[Path, int]:
        found = {}
        for path in folder.rglob("*-wal"):
            try:
                found[path] = path.stat().st_size
            except FileNotFoundError:  # checkpointed and removed meanwhile
                continue
        return found

    before = sizes()

    def grew() -> bool:
        return any(size > before.get(path, 0) for path, size in sizes().items())

    grew.connection = held  # type: ignore[attr-defined] - open as long as the check lives
    return grew


def new_commit(folder: Path) -> Callable[[], bool]:
    """Whether the Delta table at ``folder`` has a commit it did not have now."""
    before = commits(folder)
    return lambda: commits(folder) > before


BOUNDARIES: dict[str, Callable[[Path], Callable[[], bool]]] = {
    "after the tiles' commit": lambda root: new_commit(root / "_tiles" / VIEW),
    "after the feature table's commit": lambda root: new_commit(root / "features" / VIEW),
    "after the history record": lambda root: new_commit(root / "_kiln" / "runs"),
    "during the push": online_written,
}


@pytest.mark.parametrize("boundary", list(BOUNDARIES))
def test_a_run_killed_at_a_boundary_is_finished_by_the_next_run(
    boundary: str, warehouse: Path, spark: SparkSession, collect_frame
) -> None:
    from featurekiln.offline.delta_table import read_table
    from featurekiln.quality.history import read_runs
    from tests.oracle import assert_frames_match

    settings = Settings(defs_dir=REPO_ROOT / "feature_defs", warehouse=str(warehouse))
    until = day(7 + list(BOUNDARIES).index(boundary))
    runs_before = {r["run_id"] for r in read_runs(settings, VIEW)}

    # During the push, the killed run writes the store one row per transaction: the kill lands mid-push.
    one_row = {"KILN_ONLINE_STORE": f"sqlite:///{warehouse}/_online/online.db?batch_size=1"}
    kill_when(warehouse, until, BOUNDARIES[boundary](warehouse), **(one_row if boundary == "during the push" else {}))
    kiln(warehouse, "run", VIEW, "--until", until.isoformat())

    assert_frames_match(collect_frame(read_table(spark, settings, VIEW)), expected(raw_definition(), day(1), until),
                        ["user_id"])
    checked = kiln(warehouse, "check-online", VIEW, "--sample", "0")
    assert f"ds={until}" in checked.stdout or str(until) in checked.stdout, checked.stdout
    runs = [r for r in read_runs(settings, VIEW) if r["run_id"] not in runs_before]
    assert len(runs) == 2, runs
    finisher, killed = runs
    assert finisher["status"] in ("success", "warned"), finisher
    if boundary in ("after the history record", "during the push"):
        assert killed["status"] in ("success", "warned"), "its history row was written before the kill"
    else:
        assert killed["status"] == "interrupted", killed
    if boundary == "after the feature table's commit":
        assert killed["published"], "the interrupted run shows what it had committed"
        assert finisher["published"] == [], "the next run only pushed: the days were committed and validated"
    report = kiln(warehouse, "report", VIEW, "--json")
    assert killed["run_id"] in report.stdout and finisher["run_id"] in report.stdout


def test_a_push_that_fails_is_done_by_the_next_run(warehouse: Path, tmp_path: Path) -> None:
    """The online store (a real redis-server) is down during a run: the run fails at its push, after
    publishing; the next run, with the store up, pushes the latest validated snapshot."""
    from tests.online.servers import RedisServer, free_port, serve

    server = RedisServer(free_port(), tmp_path)
    store = {"KILN_ONLINE_STORE": server.url}
    failed = kiln(warehouse, "run", VIEW, "--until", day(12).isoformat(), code=1, **store)
    assert "error" in failed.stderr.lower(), failed.stderr
    plan = kiln(warehouse, "plan", VIEW, "--until", day(12).isoformat(), code=None, **store)
    assert plan.returncode == 0 and "refused" in plan.stdout, plan.stdout  # the plan says the store is unreadable
    for _ in serve(server):
        pending = kiln(warehouse, "plan", VIEW, "--until", day(12).isoformat(), **store)
        assert "push pending" in pending.stdout and str(day(12)) in pending.stdout, pending.stdout
        done = kiln(warehouse, "run", VIEW, "--until", day(12).isoformat(), **store)
        assert f"ds={day(12)}" in done.stdout, done.stdout
        kiln(warehouse, "check-online", VIEW, "--sample", "0", **store)
        again = kiln(warehouse, "plan", VIEW, "--until", day(12).isoformat(), **store)
        assert "up to date" in again.stdout, again.stdout
