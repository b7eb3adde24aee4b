"""One writer of the concurrent-commit tests: ``python -m tests.s3_appender TABLE TAG COUNT GATE WRITERS``.

Builds its session with :func:`featurekiln.spark_session` (settings from the
environment, as a user's job would), waits at the gate directory until
``WRITERS`` writers are ready (writer ``a`` first creates the table), then appends
``COUNT`` one-row commits ``(TAG, i)`` to the Delta table at ``TABLE``, each its own
transaction. Prints ``committed N`` when done.

Writer ``a`` first writes one commit file three times straight through the log
store Delta was configured with, as a commit that loses a race would, and prints
what each write did (``store: ...``).

Before appending, every writer races the others for ``ROUNDS`` commit files of
``<TABLE>-race``, one per round, straight through the log store: it reads a
round number from stdin (the test sends it to every writer at once), writes that
version with its tag and prints ``race N written`` or ``race N refused``. Two
writers told ``written`` for one version is a lost commit.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import featurekiln

GATE_SECONDS = 300
ROUNDS = 20


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + GATE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(0.05)


def log_store(spark):
    """The log store Delta was configured with for ``s3a://``, and the Hadoop configuration."""
    jvm = spark._jvm
    conf = spark._jsc.hadoopConfiguration()
    name = spark.sparkContext.getConf().get("spark.delta.logStore.s3a.impl")
    store = jvm
    for part in name.split("."):
        store = getattr(store, part)
    return store(conf), conf


def write_commit(spark, store, conf, path: str, content: str) -> str:
    """Write the commit file at ``path`` with overwrite=false: ``written`` or ``refused <exception class>``."""
    from py4j.protocol import Py4JJavaError

    lines = spark._jvm.java.util.ArrayList()
    lines.add(content)
    try:
        store.write(spark._jvm.org.apache.hadoop.fs.Path(path), lines.iterator(), False, conf)
        return "written"
    except Py4JJavaError as error:
        return f"refused {error.java_exception.getClass().getName()}"


def check_store(spark, table: str) -> None:
    """Write version 0 of ``<table>-store`` with overwrite=false: once, with other content, with the same."""
    store, conf = log_store(spark)
    path = f"{table}-store/_delta_log/00000000000000000000.json"
    for content in ("first", "second", "first"):
        print(f"store: {content} {write_commit(spark, store, conf, path, content)}", flush=True)
    text = store.read(spark._jvm.org.apache.hadoop.fs.Path(path), conf).next()
    print(f"store: holds {text}", flush=True)


def race(spark, table: str, tag: str) -> None:
    """Write version N of ``<table>-race`` as soon as round N is read from stdin, for ``ROUNDS`` rounds."""
    store, conf = log_store(spark)
    print("race ready", flush=True)
    for _ in range(ROUNDS):
        version = int(sys.stdin.readline())
        done = write_commit(spark, store, conf, f"{table}-race/_delta_log/{version:020d}.json", tag)
        print(f"race {version} {done.split()[0]}", flush=True)


def main(table: str, tag: str, count: int, gate: Path, writers: int) -> None:
    spark = featurekiln.spark_session(app_name=f"appender-{tag}", spark_master="local[1]")
    spark.conf.set("spark.sql.shuffle.partitions", "1")
    schema = "writer STRING, i INT"
    if tag == "a":
        check_store(spark, table)
        spark.createDataFrame([], schema).write.format("delta").save(table)
        (gate / "created").touch()
    wait_for((gate / "created").exists, "the table")
    (gate / f"ready-{tag}").touch()
    wait_for(lambda: len(list(gate.glob("ready-*"))) >= writers, "the other writers")
    race(spark, table, tag)
    started = time.monotonic()
    for i in range(count):
        spark.createDataFrame([(tag, i)], schema).coalesce(1).write.format("delta").mode("append").save(table)
    print(f"{count} commits in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    print(f"committed {count}", flush=True)
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5]))
