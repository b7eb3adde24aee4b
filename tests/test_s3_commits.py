"""Concurrent Delta commits to one table on moto's S3 server, from separate processes: none is lost.

Each writer is its own process with its own JVM (``tests/s3_appender.py``), built
with :func:`featurekiln.spark_session` from the environment alone, as a user's
job would be. The table is then read back from the bucket without Spark: every
commit file of the log, and every row of the files they add.

The mechanism under test is the log store that :func:`featurekiln.compute.session.commit_conf`
configures. ``KILN_OBJECT_STORE_COMMITS=single-driver`` in the environment of the test run
selects Delta's default S3 log store instead, and these tests then show the loss.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.online.servers import AWS_ENV
from tests.test_s3_warehouse import download

pytestmark = [pytest.mark.slow, pytest.mark.spark]  # the writers and `kiln` start JVMs

ROOT = Path(__file__).resolve().parents[1]
WRITERS = ("a", "b")
COMMITS = 25
# A generous bound for a writer's process (its JVM's start and its commits) on a busy machine.
WRITER_SECONDS = 1800


def writer_env(endpoint_url: str, **extra: str) -> dict[str, str]:
    """Only the standard AWS variables point at the store (and ``KILN_OBJECT_STORE_COMMITS`` if the run sets it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KILN_", "AWS_"))}
    env.update(
        AWS_ACCESS_KEY_ID=AWS_ENV["AWS_ACCESS_KEY_ID"],
        AWS_SECRET_ACCESS_KEY=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        AWS_REGION=AWS_ENV["AWS_DEFAULT_REGION"],
        AWS_ENDPOINT_URL=endpoint_url,
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
        **extra,
    )
    if "KILN_OBJECT_STORE_COMMITS" in os.environ:
        env["KILN_OBJECT_STORE_COMMITS"] = os.environ["KILN_OBJECT_STORE_COMMITS"]
    return env


def delta_log(s3, bucket: str, prefix: str) -> dict[int, list[dict]]:
    """The table's commits, read from the bucket: version -> actions."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/_delta_log/")
    keys = [o["Key"] for page in pages for o in page.get("Contents", []) if re.search(r"/\d{20}\.json$", o["Key"])]
    commits = {}
    for key in keys:
        text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        commits[int(key.rsplit("/", 1)[1].split(".")[0])] = [json.loads(line) for line in text.splitlines() if line]
    return commits


def live_files(commits: dict[int, list[dict]]) -> dict[str, dict]:
    """The ``add`` actions of the files the log adds and does not remove, by path."""
    live: dict[str, dict] = {}
    for version in sorted(commits):
        for action in commits[version]:
            if "add" in action:
                live[action["add"]["path"]] = action["add"]
            elif "remove" in action:
                live.pop(action["remove"]["path"], None)
    return live


def table_rows(s3, bucket: str, prefix: str, commits: dict[int, list[dict]]) -> list[tuple[str, int]]:
    """Every row of the files the log adds (and does not remove), read with pyarrow."""
    import pyarrow.parquet as pq

    rows = []
    for path in live_files(commits):
        body = s3.get_object(Bucket=bucket, Key=f"{prefix}/{path}")["Body"].read()
        table = pq.read_table(io.BytesIO(body))
        rows += list(zip(table.column("writer").to_pylist(), table.column("i").to_pylist(), strict=True))
    return rows


def race_rounds(processes: dict[str, subprocess.Popen]) -> tuple[dict[int, dict[str, str]], dict[str, list[str]]]:
    """Once every writer is ready to race, release them for each round at once (one line on each stdin, written
    back to back), and collect what each said: round -> writer -> ``written`` or ``refused``; also the lines
    each printed before it was ready."""
    from tests.s3_appender import ROUNDS

    before: dict[str, list[str]] = {tag: [] for tag in processes}
    for tag, process in processes.items():
        while (line := process.stdout.readline()) != "race ready\n":
            assert line, f"writer {tag} ended before its race:\n{process.stderr.read()[-4000:]}"
            before[tag].append(line)
    races: dict[int, dict[str, str]] = {}
    for version in range(ROUNDS):
        for process in processes.values():
            process.stdin.write(f"{version}\n")
        for process in processes.values():
            process.stdin.flush()
        for tag, process in processes.items():
            line = process.stdout.readline().split()
            assert line[:2] == ["race", str(version)], f"writer {tag} said {line}"
            races.setdefault(version, {})[tag] = line[2]
    return races, before


def test_concurrent_writers_lose_no_commit(moto_server, s3_bucket: str, tmp_path: Path) -> None:
    import boto3

    table = f"s3a://{s3_bucket}/lake/shared"
    gate = tmp_path / "gate"
    gate.mkdir()
    env = writer_env(moto_server.endpoint_url, KILN_WAREHOUSE=f"s3a://{s3_bucket}/lake")
    command = [sys.executable, "-m", "tests.s3_appender", table]
    processes = {
        tag: subprocess.Popen([*command, tag, str(COMMITS), str(gate), str(len(WRITERS))], env=env, cwd=tmp_path,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for tag in WRITERS
    }
    # First the writers race for one commit file per round, released at the same moment: one wins each.
    races, before = race_rounds(processes)
    outputs = {tag: process.communicate(timeout=WRITER_SECONDS) for tag, process in processes.items()}
    for tag, process in processes.items():
        assert process.returncode == 0, f"writer {tag} exited {process.returncode}:\n{outputs[tag][1][-4000:]}"
        assert outputs[tag][0].splitlines()[-1] == f"committed {COMMITS}"
        print(f"writer {tag}:", *(line for line in outputs[tag][1].splitlines() if " commits in " in line))

    s3 = boto3.client("s3", endpoint_url=moto_server.endpoint_url)
    won = {version: [tag for tag, result in results.items() if result == "written"] for version, results in races.items()}
    assert all(len(tags) == 1 for tags in won.values()), f"a commit file written by two writers: {won}"
    for version, (tag,) in won.items():
        body = s3.get_object(Bucket=s3_bucket, Key=f"lake/shared-race/_delta_log/{version:020d}.json")["Body"]
        assert body.read().decode().strip() == tag, f"version {version} holds another write than its winner's"
    commits = delta_log(s3, s3_bucket, "lake/shared")
    rows = table_rows(s3, s3_bucket, "lake/shared", commits)
    expected = sorted((tag, i) for tag in WRITERS for i in range(COMMITS))
    assert sorted(rows) == expected, f"{len(expected) - len(set(rows) & set(expected))} commits lost"
    assert sorted(commits) == list(range(1 + len(expected))), "one version per commit, after the table's creation"
    appends = [v for v, actions in commits.items() if any("add" in a for a in actions)]
    assert len(appends) == len(expected)
    # A commit file that exists is refused (Delta then retries at the next version), unless it holds this very
    # write's bytes (a retried request whose first try landed).
    store = [line.strip() for line in before["a"] if line.startswith("store: ")]
    assert store == ["store: first written", "store: second refused java.nio.file.FileAlreadyExistsException",
                     "store: first written", "store: holds first"]


KILN = Path(sys.executable).with_name("kiln")
SAMPLE = {"start": date(2025, 1, 1), "days": 8, "users": 30, "seed": 5}
# Two views over one source; two runs of each, whose days overlap, so that they race for the same days of
# one feature table (a conflict that featurekiln's retry resolves) besides the shared run history.
VIEWS = ("user_purchases", "merchant_country_sales")
RUNS = ((date(2025, 1, 2), date(2025, 1, 5)), (date(2025, 1, 4), date(2025, 1, 7)))


def test_concurrent_backfills_record_every_run_and_day(moto_server, s3_bucket: str, spark, collect_frame,
                                                       tmp_path: Path) -> None:
    import boto3
    import yaml

    from featurekiln.samples import purchases_frame
    from tests.oracle import assert_frames_match, expected_snapshots

    defs, suites, cwd = (tmp_path / name for name in ("defs", "expectations", "cwd"))
    for folder in (defs, suites, cwd):
        folder.mkdir()
    for view in VIEWS:
        (defs / f"{view}.yaml").write_bytes((ROOT / "feature_defs" / f"{view}.yaml").read_bytes())
        (suites / f"{view}.json").write_bytes((ROOT / "expectations" / f"{view}.json").read_bytes())
    warehouse = f"s3a://{s3_bucket}/lake"
    env = writer_env(moto_server.endpoint_url, KILN_WAREHOUSE=warehouse, KILN_DEFS=str(defs),
                     KILN_EXPECTATIONS=str(suites), KILN_SPARK_MASTER="local[1]")
    sample = [f"--{k}={v}" for k, v in SAMPLE.items()]
    done = subprocess.run([str(KILN), "sample-data", *sample], check=False, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]

    runs = [(view, start, end) for view in VIEWS for start, end in RUNS]
    processes = [
        subprocess.Popen([str(KILN), "backfill", view, "--start", start.isoformat(), "--end", end.isoformat(),
                          "--chunk-days", "4"], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        for view, start, end in runs
    ]
    outputs = [process.communicate(timeout=WRITER_SECONDS) for process in processes]
    for run, process, (_, stderr) in zip(runs, processes, outputs, strict=True):
        assert process.returncode == 0, f"kiln backfill {run} exited {process.returncode}:\n{stderr[-4000:]}"

    s3 = boto3.client("s3", endpoint_url=moto_server.endpoint_url)
    history = collect_frame(spark.read.format("delta").load(str(download(s3, s3_bucket, "lake/_kiln/runs/",
                                                                             tmp_path / "runs"))))
    recorded = sorted(zip(history["view"], history["start"], history["end"], history["status"], strict=True))
    assert recorded == sorted((view, start, end, "success") for view, start, end in runs)

    days = {RUNS[0][0] + timedelta(days=n) for n in range((RUNS[-1][1] - RUNS[0][0]).days + 1)}
    tables = {}
    for view in VIEWS:
        commits = delta_log(s3, s3_bucket, f"lake/features/{view}")
        live = live_files(commits)
        held = sorted(date.fromisoformat(add["partitionValues"]["ds"]) for add in live.values())
        assert held == sorted(days), f"{view}: one file per day of every run"
        tables[view] = collect_frame(spark.read.format("delta").load(
            str(download(s3, s3_bucket, f"lake/features/{view}/", tmp_path / view))))
        assert sorted(set(tables[view]["ds"])) == sorted(days)

    events = purchases_frame(SAMPLE["start"], SAMPLE["days"], SAMPLE["users"], SAMPLE["seed"])
    definition = yaml.safe_load((defs / "user_purchases.yaml").read_text(encoding="utf-8"))
    expected = expected_snapshots(events[events["status"] == "completed"], definition, min(days), max(days))
    assert len(expected) > 0
    assert_frames_match(tables["user_purchases"], expected, ["user_id"])
