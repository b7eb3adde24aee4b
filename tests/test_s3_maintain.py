"""``kiln maintain`` while ``kiln run`` runs on the same view, in an ``s3a://`` warehouse on moto's S3 server.

Each ``kiln`` is its own process with its own JVM (the test session's Spark has
no s3a). Maintenance passes start one after another while the run runs; they
compact the run history that the run appends to and commit to the tables the
run commits to, through the log store every writer uses there. Both must
finish without an error, and the table, read back from the bucket, equals the
oracle.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import boto3
import pytest
import yaml

from tests.offline.test_incremental import RAW, VIEW, day, land, landed_until, make_events
from tests.oracle import assert_frames_match, expected_snapshots
from tests.test_s3_commits import writer_env
from tests.test_s3_warehouse import KILN, download, kiln

pytestmark = [pytest.mark.slow, pytest.mark.spark]  # `kiln` starts JVMs


def upload(s3, bucket: str, folder: Path, prefix: str) -> None:  # noqa: ANN001
    for file in folder.rglob("*.parquet"):
        s3.upload_file(str(file), bucket, f"{prefix}/{file.relative_to(folder).as_posix()}")


def test_maintenance_while_a_nightly_run_runs_on_s3(moto_server, s3_bucket: str, spark, collect_frame,
                                                     tmp_path: Path) -> None:
    defs, cwd, local = tmp_path / "defs", tmp_path / "cwd", tmp_path / "local"
    for folder in (defs, cwd, local):
        folder.mkdir()
    (defs / f"{VIEW}.yaml").write_text(yaml.safe_dump(RAW))
    last = day(8)
    events = make_events()
    for landed in sorted(d for d in events["landed"].unique() if d <= last):
        land(local, events, landed)
    s3 = boto3.client("s3", endpoint_url=moto_server.endpoint_url)
    upload(s3, s3_bucket, local, "lake")
    env = writer_env(moto_server.endpoint_url, KILN_WAREHOUSE=f"s3a://{s3_bucket}/lake", KILN_DEFS=str(defs),
                     KILN_EXPECTATIONS=str(tmp_path / "no_suites"), KILN_SPARK_MASTER="local[2]")
    kiln(env, cwd, "run", VIEW, "--until", day(4).isoformat())

    nightly = subprocess.Popen([str(KILN), "run", VIEW, "--until", last.isoformat()], env=env, cwd=cwd,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    passes = 0
    while nightly.poll() is None:
        kiln(env, cwd, "maintain", VIEW, "--json")
        passes += 1
    _, stderr = nightly.communicate()
    assert nightly.returncode == 0, stderr
    assert passes >= 1, "maintenance ran while the nightly run did"
    kiln(env, cwd, "maintain", VIEW)

    table = download(s3, s3_bucket, f"lake/features/{VIEW}/", tmp_path / "table")
    actual = collect_frame(spark.read.format("delta").load(str(table)))
    arrived = landed_until(events, last).drop(columns=["landed"])
    assert_frames_match(actual, expected_snapshots(arrived, RAW, day(1), last), ["user_id"])
    runs = download(s3, s3_bucket, "lake/_kiln/runs/", tmp_path / "runs")
    assert spark.read.format("delta").load(str(runs)).count() == 2, "every run is in the history"
    print(f"maintenance passes during the nightly run: {passes}")  # noqa: T201
