"""Concurrent Delta commits to one table on moto's S3 server, from separate processes: none is lost.

Each writer is its own process with its own JVM (``tests/s3_appender.py``), built
with :func:`featurekiln.spark_session` from the environment alone, as a user's
job would be. The table is then read back from the bucket without Spark: every
commit file of the log, and every row of the files they add.

The mechanism under test is the log store that :func:`featurekiln.compute.session.commit_conf`
configures. ``KILN_S3_COMMITS=single-driver`` in the environment of the test run
selects Delta's default S3 log store instead, and these tests then show the loss.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.online.servers import AWS_ENV

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
WRITERS = ("a", "b")
COMMITS = 25


def writer_env(endpoint_url: str, **extra: str) -> dict[str, str]:
    """Only the standard AWS variables point at the store (and ``KILN_S3_COMMITS`` if the run sets it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KILN_", "AWS_"))}
    env.update(
        AWS_ACCESS_KEY_ID=AWS_ENV["AWS_ACCESS_KEY_ID"],
        AWS_SECRET_ACCESS_KEY=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        AWS_REGION=AWS_ENV["AWS_DEFAULT_REGION"],
        AWS_ENDPOINT_URL=endpoint_url,
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
        **extra,
    )
    if "KILN_S3_COMMITS" in os.environ:
        env["KILN_S3_COMMITS"] = os.environ["KILN_S3_COMMITS"]
    return env


def delta_log(s3, bucket: str, prefix: str) -> dict[int, list[dict]]:  # noqa: ANN001
    """The table's commits, read from the bucket: version -> actions."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/_delta_log/")
    keys = [o["Key"] for page in pages for o in page.get("Contents", []) if o["Key"].endswith(".json")]
    commits = {}
    for key in keys:
        text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        commits[int(key.rsplit("/", 1)[1].split(".")[0])] = [json.loads(line) for line in text.splitlines() if line]
    return commits


def table_rows(s3, bucket: str, prefix: str, commits: dict[int, list[dict]]) -> list[tuple[str, int]]:  # noqa: ANN001
    """Every row of the files the log adds (and does not remove), read with pyarrow."""
    import pyarrow.parquet as pq

    live: set[str] = set()
    for version in sorted(commits):
        for action in commits[version]:
            if "add" in action:
                live.add(action["add"]["path"])
            elif "remove" in action:
                live.discard(action["remove"]["path"])
    rows = []
    for path in live:
        body = s3.get_object(Bucket=bucket, Key=f"{prefix}/{path}")["Body"].read()
        table = pq.read_table(io.BytesIO(body))
        rows += list(zip(table.column("writer").to_pylist(), table.column("i").to_pylist(), strict=True))
    return rows


def test_concurrent_writers_lose_no_commit(moto_server, s3_bucket: str, tmp_path: Path) -> None:
    import boto3

    table = f"s3a://{s3_bucket}/lake/shared"
    gate = tmp_path / "gate"
    gate.mkdir()
    env = writer_env(moto_server.endpoint_url)
    command = [sys.executable, "-m", "tests.s3_appender", table]
    processes = {
        tag: subprocess.Popen([*command, tag, str(COMMITS), str(gate), str(len(WRITERS))], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for tag in WRITERS
    }
    outputs = {tag: process.communicate(timeout=600) for tag, process in processes.items()}
    for tag, process in processes.items():
        assert process.returncode == 0, f"writer {tag} exited {process.returncode}:\n{outputs[tag][1][-4000:]}"
        assert outputs[tag][0].strip() == f"committed {COMMITS}"

    s3 = boto3.client("s3", endpoint_url=moto_server.endpoint_url)
    commits = delta_log(s3, s3_bucket, "lake/shared")
    rows = table_rows(s3, s3_bucket, "lake/shared", commits)
    expected = sorted((tag, i) for tag in WRITERS for i in range(COMMITS))
    assert sorted(rows) == expected, f"{len(expected) - len(set(rows) & set(expected))} commits lost"
    assert sorted(commits) == list(range(1 + len(expected))), "one version per commit, after the table's creation"
    appends = [v for v, actions in commits.items() if any("add" in a for a in actions)]
    assert len(appends) == len(expected)
