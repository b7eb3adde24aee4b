"""Read-only ``kiln`` commands answer without Spark: run as users run them, with pyspark made unimportable.

Each command runs in its own process whose ``pyspark`` is a package that
refuses to be imported and whose ``JAVA_HOME`` leads nowhere, so a command that
starts (or merely imports) Spark fails. What they print is compared with what
Spark reads of the same warehouse, built by a real run and push in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from featurekiln.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

REPO_ROOT = Path(__file__).resolve().parents[1]
KILN = str(Path(sys.executable).parent / "kiln")
VIEW = "user_purchases"
START = date(2025, 1, 1)
LAST = START + timedelta(days=9)
NO_SPARK = 'raise ImportError("a read-only kiln command imported pyspark")\n'


@pytest.fixture(scope="module")
def built(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A warehouse with the sample view run for ten days and its latest snapshot pushed online."""
    from featurekiln import runner
    from featurekiln.definitions.loader import load_catalog
    from featurekiln.samples import write_sample_sources

    root = tmp_path_factory.mktemp("readonly")
    write_sample_sources(root / "warehouse", seed=7, start=START, days=12, users=30)
    settings = Settings(defs_dir=REPO_ROOT / "feature_defs", expectations_dir=REPO_ROOT / "expectations",
                        warehouse=str(root / "warehouse"), spark_master="local[2]")
    view = load_catalog(settings.defs_dir)[VIEW]
    runner.run(view.model_copy(update={"start": START}), LAST, settings=settings, spark=spark)
    runner.push(view, None, settings=settings, spark=spark)
    blocker = root / "no_spark" / "pyspark"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(NO_SPARK)
    return settings


def kiln(settings: Settings, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    """``kiln ARGS`` with no Spark to be had: pyspark refuses to be imported, and there is no Java."""
    blocker = Path(settings.warehouse).parent / "no_spark"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KILN_", "JAVA_HOME", "SPARK_HOME"))}
    env.update(PYTHONPATH=os.pathsep.join([str(blocker), str(REPO_ROOT)]), JAVA_HOME=str(blocker / "no-java"),
               KILN_WAREHOUSE=settings.warehouse, KILN_DEFS=str(settings.defs_dir),
               KILN_EXPECTATIONS=str(settings.expectations_dir))
    done = subprocess.run([KILN, *args], cwd=Path(settings.warehouse).parent, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == code, f"kiln {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def test_a_command_that_computes_fails_in_the_same_setting(built: Settings) -> None:
    """The setting is able to fail: a backfill, which needs Spark, cannot run in it."""
    done = kiln(built, "backfill", VIEW, "--start", "2025-01-02", "--end", "2025-01-02", code=1)
    assert "imported pyspark" in done.stderr


def test_status_counts_the_rows_and_days_spark_reads(spark: SparkSession, built: Settings) -> None:
    frame = spark.read.format("delta").load(f"{built.warehouse}/features/{VIEW}")
    rows, latest = frame.selectExpr("count(*)", "max(ds)").first()
    done = kiln(built, "status", "--rows", "3")
    line = next(text for text in done.stdout.splitlines() if text.startswith(f"│ {VIEW} "))
    assert f" {rows} " in line and f"{START}..{LAST}" in line and " none " in line
    assert "(not built)" in done.stdout  # the other sample views
    shown = frame.where(frame.ds == latest).count()
    assert f"{VIEW} ds={latest} ({shown} rows)" in done.stdout


def test_show_prints_the_rows_spark_reads_in_key_order(spark: SparkSession, built: Settings) -> None:
    from featurekiln.cli.app import cell

    frame = spark.read.format("delta").load(f"{built.warehouse}/features/{VIEW}")
    day = START + timedelta(days=4)
    expected = frame.where(frame.ds == day).orderBy("user_id").limit(4).collect()
    done = kiln(built, "show", VIEW, "--ds", day.isoformat(), "--limit", "4")
    header = next(text for text in done.stdout.splitlines() if text.startswith("┃"))
    assert [c.strip() for c in header.strip("┃").split("┃")] == frame.columns
    lines = [text for text in done.stdout.splitlines() if text.startswith("│")]
    assert [[c.strip() for c in text.strip("│").split("│")] for text in lines] == [
        [cell(v).replace("[dim]null[/dim]", "null") for v in row] for row in expected
    ]
    assert f"ds={day} ({frame.where(frame.ds == day).count()} rows)" in done.stdout
    latest = kiln(built, "show", VIEW)
    assert f"ds={LAST} " in latest.stdout


def _spark_runs(spark: SparkSession, settings: Settings) -> list[dict[str, Any]]:
    frame = spark.read.format("delta").load(f"{settings.warehouse}/_kiln/runs")
    rows = [row.asDict() for row in frame.orderBy(frame.finished_at.desc(), frame.run_id.desc()).collect()]
    for row in rows:
        row["published"] = [tuple(p) for p in json.loads(row["published"] or "[]")]
    return rows


def test_report_prints_the_history_spark_reads(spark: SparkSession, built: Settings) -> None:
    done = kiln(built, "report", VIEW, "--json")
    assert json.loads(done.stdout) == json.loads(json.dumps(_spark_runs(spark, built), default=str))
    table = kiln(built, "report")
    assert VIEW in table.stdout and "report " in table.stdout


def test_stats_prints_an_independent_recomputation_of_the_published_rows(spark: SparkSession, built: Settings) -> None:
    """``kiln stats --json`` equals the statistics pandas computes from the rows Spark reads of the table."""
    import math
    import statistics

    frame = spark.read.format("delta").load(f"{built.warehouse}/features/{VIEW}").toPandas()
    features = [c for c in frame.columns if c not in ("user_id", "ds", "feature_ts")]
    printed = json.loads(kiln(built, "stats", VIEW, "--json").stdout)
    assert [(p["ds"], p["feature"]) for p in printed] == sorted(
        (d.isoformat(), f) for d in (START + timedelta(days=n) for n in range((LAST - START).days + 1)) for f in features)
    for item in printed:
        rows = frame[frame["ds"] == date.fromisoformat(item["ds"])]
        values = sorted(float(v) for v in rows[item["feature"]] if not math.isnan(v))
        n = len(values)
        assert set(item) == {"view", "ds", "feature", "rows", "nulls", "min", "max", "mean", "stddev", "p50", "p95",
                             "distinct"}
        assert (item["view"], item["rows"], item["nulls"]) == (VIEW, len(rows), len(rows) - n)
        assert (item["min"], item["max"]) == ((values[0], values[-1]) if n else (None, None))
        assert item["mean"] == (pytest.approx(math.fsum(values) / n, rel=1e-12) if n else None)
        assert item["stddev"] == (pytest.approx(statistics.stdev(values), rel=1e-9) if n > 1 else None)
        for p, q in ((0.5, item["p50"]), (0.95, item["p95"])):  # a value of rank within 1% of p * n
            assert sum(v < q for v in values) - 0.01 * n <= p * n <= sum(v <= q for v in values) + 0.01 * n
        assert abs(item["distinct"] - len(set(values))) <= 0.05 * len(set(values))
    some = json.loads(kiln(built, "stats", VIEW, "--feature", "spend_30d", "--start", LAST.isoformat(), "--json").stdout)
    assert [(p["ds"], p["feature"]) for p in some] == [(LAST.isoformat(), "spend_30d")]
    table = kiln(built, "stats", VIEW, "--feature", "purchases_7d")
    assert f"│ {LAST} │ purchases_7d │" in table.stdout
    assert "no feature 'nope'" in kiln(built, "stats", VIEW, "--feature", "nope", code=1).stderr


def test_plan_and_get_start_no_spark_either(spark: SparkSession, built: Settings) -> None:
    planned = json.loads(kiln(built, "plan", VIEW, "--until", LAST.isoformat(), "--json").stdout)
    assert planned[0]["view"] == VIEW and not planned[0]["missing"]
    frame = spark.read.format("delta").load(f"{built.warehouse}/features/{VIEW}")
    row = frame.where(frame.ds == LAST).orderBy("user_id").first()
    [online] = json.loads(kiln(built, "get", VIEW, f"user_id={row['user_id']}", "--json").stdout)
    assert online["purchases_7d"] == row["purchases_7d"]


def test_an_unbuilt_table_is_a_one_line_error_without_spark(built: Settings) -> None:
    done = kiln(built, "show", "user_clicks", code=1)
    assert "user_clicks: no feature table at" in done.stderr and "Traceback" not in done.stderr
