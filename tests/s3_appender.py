"""One writer of the concurrent-commit tests: ``python -m tests.s3_appender TABLE TAG COUNT GATE WRITERS``.

Builds its session with :func:`featurekiln.spark_session` (settings from the
environment, as a user's job would), waits at the gate directory until
``WRITERS`` writers are ready (writer ``a`` first creates the table), then appends
``COUNT`` one-row commits ``(TAG, i)`` to the Delta table at ``TABLE``, each its own
transaction. Prints ``committed N`` when done.

Writer ``a`` first writes one commit file three times straight through the log
store Delta was configured with, as a commit that loses a race would, and prints
what each write did (``store: ...``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import featurekiln

GATE_SECONDS = 300


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + GATE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(0.05)


def check_store(spark, table: str) -> None:
    """Write version 0 of ``<table>-store`` with overwrite=false: once, with other content, with the same."""
    from py4j.protocol import Py4JJavaError

    jvm = spark._jvm
    conf = spark._jsc.hadoopConfiguration()
    path = jvm.org.apache.hadoop.fs.Path(f"{table}-store/_delta_log/00000000000000000000.json")
    name = spark.sparkContext.getConf().get("spark.delta.logStore.s3a.impl")
    store = jvm
    for part in name.split("."):
        store = getattr(store, part)
    store = store(conf)
    for content in ("first", "second", "first"):
        lines = jvm.java.util.ArrayList()
        lines.add(content)
        try:
            store.write(path, lines.iterator(), False, conf)
            print(f"store: {content} written", flush=True)
        except Py4JJavaError as error:
            print(f"store: {content} refused {error.java_exception.getClass().getName()}", flush=True)
    text = store.read(path, conf).next()
    print(f"store: holds {text}", flush=True)


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
    for i in range(count):
        spark.createDataFrame([(tag, i)], schema).coalesce(1).write.format("delta").mode("append").save(table)
    print(f"committed {count}", flush=True)
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5]))
