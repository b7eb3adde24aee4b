"""Record the driver JVM's class-data-sharing archive once (``make setup``): later Spark starts are faster.

Usage: ``python scripts/class_archive.py``

A new process that starts Spark and runs a backfill loads about 28,000 classes,
and loading them is a large share of its Java threads' time. This
script runs a small backfill of the sample views (sample data, every view's
gate, a push to SQLite) in a child process whose JVM writes the classes it
loaded to an archive when it exits (``-XX:ArchiveClassesAtExit``, JDK 13+). The
archive is moved into place (``featurekiln.compute.session.class_archive_path``)
only once the JVM has exited, so no session maps a partial file. Local sessions
start their JVM with it when it exists; the JVM ignores an archive that does not
match it. Nothing to do (and nothing printed) when the archive exists.
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


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_for_exit(pid: int, seconds: float) -> bool:
    """Whether the process ``pid`` ended within ``seconds`` (the JVM writes its archive as it exits)."""
    deadline = time.monotonic() + seconds
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not _running(pid)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.record:
        record(args.record)
        return 0
    from featurekiln.compute.session import class_archive_path

    target = class_archive_path()
    if target.is_file():
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
    if not _wait_for_exit(pid, 300) or not partial.is_file() or partial.stat().st_size == 0:
        sys.stderr.write("class archive not recorded (the JVM wrote none): Spark starts as before\n")
        partial.unlink(missing_ok=True)
        return 0
    partial.replace(target)
    print(f"class archive: {target} ({target.stat().st_size / 1e6:.0f} MB, recorded in {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
