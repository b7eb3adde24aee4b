"""Record the driver JVM's class-data-sharing archive once (``make setup``): later Spark starts are faster.

Usage: ``python scripts/class_archive.py [--out PATH]``

A new process that starts Spark and runs a backfill loads about 28,000 classes,
and loading them is a fifth of its Java threads' time (bench/README.md). This
script runs a small backfill of the sample views (sample data, every view's
gate, a push to SQLite) in a child process whose JVM writes the classes it
loaded to an archive when it exits (``-XX:ArchiveClassesAtExit``, JDK 13+). The
archive is moved into place (``featurekiln.compute.session.class_archive_path``)
only once the JVM has exited, so no session maps a partial file. Local sessions
start their JVM with it when it exists; the JVM ignores an archive that does not
match it. Nothing to do when the archive exists.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def record(archive: Path) -> None:
    """The child: the sample views' backfill in a JVM that archives its classes at exit; prints the JVM's pid."""
    from featurekiln import runner
    from featurekiln.compute.session import JAVA_OPTIONS, get_spark
    from featurekiln.definitions.loader import load_catalog
    from featurekiln.samples import write_sample_sources
    from featurekiln.settings import Settings

    with tempfile.TemporaryDirectory(prefix="kiln-class-archive-") as scratch:
        settings = Settings(defs_dir=ROOT / "feature_defs", expectations_dir=ROOT / "expectations",
                            warehouse=scratch, spark_master="local[2]",
                            online_store=f"sqlite:///{scratch}/online.db")
        write_sample_sources(settings, start=date(2025, 1, 1), days=20, users=100, seed=7)
        spark = get_spark(settings, conf={"spark.driver.extraJavaOptions": f"{JAVA_OPTIONS} -XX:ArchiveClassesAtExit={archive}"})
        for view in load_catalog(settings.defs_dir).values():
            runner.backfill(view, date(2025, 1, 10), date(2025, 1, 19), settings=settings, spark=spark)
            if view.online:
                runner.push(view, None, settings=settings, spark=spark)
        print(f"JVM_PID={spark._jvm.java.lang.ProcessHandle.current().pid()}", flush=True)  # noqa: SLF001


def _wait_for_exit(pid: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="where to put the archive (default: where sessions look for it)")
    parser.add_argument("--record", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.record:
        record(args.record)
        return 0
    from featurekiln.compute.session import class_archive_path

    target = args.out or class_archive_path()
    if target.is_file():
        print(f"class archive: {target} (exists)")
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    started = time.monotonic()
    child = subprocess.run([sys.executable, __file__, "--record", str(partial)], capture_output=True, text=True, check=False)
    pid = next((int(line.split("=", 1)[1]) for line in child.stdout.splitlines() if line.startswith("JVM_PID=")), None)
    if child.returncode != 0 or pid is None:
        sys.stderr.write(f"class archive not recorded (Spark starts as before): {child.stderr.strip()[-2000:]}\n")
        partial.unlink(missing_ok=True)
        return 0
    _wait_for_exit(pid, 300)
    if not partial.is_file() or partial.stat().st_size == 0 or Path(f"/proc/{pid}").exists():
        sys.stderr.write("class archive not recorded (the JVM wrote none): Spark starts as before\n")
        partial.unlink(missing_ok=True)
        return 0
    partial.replace(target)
    print(f"class archive: {target} ({target.stat().st_size / 1e6:.0f} MB, recorded in {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
