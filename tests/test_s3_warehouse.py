"""A warehouse in an object store, end to end through the installed ``kiln`` (real Spark + s3a, moto's S3 server).

Each ``kiln`` runs in its own process, as on a user's machine: its JVM loads
hadoop-aws for the ``s3a://`` warehouse (the test session's Spark has no s3a),
and it finds the store through the standard AWS variables only. The working
directory is empty and stays so: sources, feature table, quarantine, run history
and reports all live in the bucket, and ``kiln report --run`` reads a report
from there without Spark.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import yaml

from featurekiln.samples import purchases_frame
from tests.online.servers import AWS_ENV
from tests.oracle import assert_frames_match, expected_snapshots

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
VIEW = "user_purchases"
SAMPLE = {"start": date(2025, 1, 1), "days": 20, "users": 60, "seed": 11}
GOOD = (date(2025, 1, 10), date(2025, 1, 15))
BAD = (date(2025, 1, 16), date(2025, 1, 17))
KILN = Path(sys.executable).with_name("kiln")
FAILING_SUITE = {
    "name": VIEW,
    "expectations": [{"type": "expect_column_values_to_be_between", "kwargs": {"column": "purchases_7d", "max_value": 0}}],
}


def kiln(env: dict[str, str], cwd: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess:
    done = subprocess.run([str(KILN), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    assert done.returncode == code, f"kiln {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr[-4000:]}"
    return done


def download(s3, bucket: str, prefix: str, target: Path) -> Path:  # noqa: ANN001
    """Copy every object below ``prefix`` to ``target`` (a Delta table is relocatable), without s3a's
    directory markers (keys that other keys extend)."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    assert keys, f"nothing below s3://{bucket}/{prefix}"
    for key in keys:
        if key.endswith("/") or any(other.startswith(key + "/") for other in keys):
            continue
        local = target / key[len(prefix) :].lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(local))
    return target


def test_an_s3a_warehouse_end_to_end(moto_server, s3_bucket: str, spark, collect_frame, tmp_path: Path) -> None:
    import boto3

    defs, good, bad, cwd = (tmp_path / name for name in ("defs", "expectations", "failing", "cwd"))
    for folder in (defs, good, bad, cwd):
        folder.mkdir()
    (defs / f"{VIEW}.yaml").write_bytes((ROOT / "feature_defs" / f"{VIEW}.yaml").read_bytes())
    (good / f"{VIEW}.json").write_bytes((ROOT / "expectations" / f"{VIEW}.json").read_bytes())
    (bad / f"{VIEW}.json").write_text(json.dumps(FAILING_SUITE), encoding="utf-8")
    warehouse = f"s3a://{s3_bucket}/lake"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KILN_", "AWS_"))}
    env.update(
        AWS_ACCESS_KEY_ID=AWS_ENV["AWS_ACCESS_KEY_ID"],
        AWS_SECRET_ACCESS_KEY=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        AWS_REGION=AWS_ENV["AWS_DEFAULT_REGION"],
        AWS_ENDPOINT_URL=moto_server.endpoint_url,
        KILN_WAREHOUSE=warehouse,
        KILN_DEFS=str(defs),
        KILN_EXPECTATIONS=str(good),
        KILN_SPARK_MASTER="local[2]",
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
    )
    sample = [f"--{k}={v}" for k, v in SAMPLE.items()]
    kiln(env, cwd, "sample-data", *sample)
    kiln(env, cwd, "backfill", VIEW, "--start", GOOD[0].isoformat(), "--end", GOOD[1].isoformat(), "--chunk-days", "3")
    failed = kiln(env, cwd, "--expectations", str(bad), "backfill", VIEW, "--start", BAD[0].isoformat(),
                  "--end", BAD[1].isoformat(), code=1).stderr
    runs = json.loads(kiln(env, cwd, "report", VIEW, "--json").stdout)
    assert [r["status"] for r in runs] == ["failed", "success"], runs
    assert all(r["report"].startswith(f"{warehouse}/_reports/{VIEW}/") for r in runs)
    assert runs[0]["quarantine"] == f"{warehouse}/_quarantine/{VIEW}/{runs[0]['run_id']}"
    assert runs[0]["quarantine"] in failed, failed

    # The reports, read back from the bucket by `kiln report --run` (no Spark, no local file).
    detail = json.loads(kiln(env, cwd, "report", VIEW, "--run", runs[0]["run_id"], "--json").stdout)
    failures = [(o["expectation"], o["column"]) for c in detail["chunks"] for o in c["outcomes"] if not o["success"]]
    assert detail["status"] == "failed" and failures == [("expect_column_values_to_be_between", "purchases_7d")]
    success = json.loads(kiln(env, cwd, "report", VIEW, "--run", runs[1]["run_id"], "--json").stdout)
    assert success["status"] == "success" and [c["start"] for c in success["chunks"]] == ["2025-01-10", "2025-01-13"]
    assert list(cwd.iterdir()) == [], "kiln wrote below the working directory"

    # The bucket holds everything, and the feature table is right (against the oracle).
    s3 = boto3.client("s3", endpoint_url=moto_server.endpoint_url)
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=s3_bucket) for o in page["Contents"]]
    assert {key.split("/")[1] for key in keys} == {"raw", "features", "_tiles", "_quarantine", "_kiln", "_reports"}
    table = download(s3, s3_bucket, f"lake/features/{VIEW}/", tmp_path / "table")
    actual = collect_frame(spark.read.format("delta").load(str(table)))
    events = purchases_frame(SAMPLE["start"], SAMPLE["days"], SAMPLE["users"], SAMPLE["seed"])
    definition = yaml.safe_load((defs / f"{VIEW}.yaml").read_text(encoding="utf-8"))
    expected = expected_snapshots(events[events["status"] == "completed"], definition, *GOOD)
    assert len(expected) > 0
    assert_frames_match(actual, expected, ["user_id"])  # the failing run published nothing

    quarantine = runs[0]["quarantine"].split(f"{s3_bucket}/", 1)[1]
    chunk = download(s3, s3_bucket, f"{quarantine}/{BAD[0]}_{BAD[1]}/", tmp_path / "quarantine")
    held = collect_frame(spark.read.format("delta").load(str(chunk)))
    assert sorted(set(held["ds"])) == list(BAD) and held["purchases_7d"].max() > 0
