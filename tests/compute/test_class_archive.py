"""The driver JVM's class archive: recorded once by scripts/class_archive.py, mapped by every later local session."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from featurekiln.compute import session
from featurekiln.compute.session import JAVA_OPTIONS, class_archive_path, local_java_options

ROOT = Path(__file__).resolve().parents[2]

# A new process starts a local session with extra Java options, logs what CDS maps, and runs a query.
SESSION = textwrap.dedent("""
    import sys, tempfile
    from featurekiln.compute.session import get_spark
    from featurekiln.settings import Settings
    root = tempfile.mkdtemp()
    settings = Settings(defs_dir=root, expectations_dir=root, warehouse=root, spark_master="local[1]")
    spark = get_spark(settings, conf={"spark.driver.extraJavaOptions": sys.argv[1]})
    print("ROWS", spark.range(7).count())
""")


def _start_session(java_options: str) -> str:
    done = subprocess.run([sys.executable, "-c", SESSION, java_options], capture_output=True, text=True, timeout=300,
                          check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_sessions_start_with_the_archive_only_when_it_was_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "driver-classes.jsa"
    monkeypatch.setattr(session, "class_archive_path", lambda: archive)
    assert local_java_options() == JAVA_OPTIONS
    archive.write_bytes(b"recorded")
    assert local_java_options() == f"{JAVA_OPTIONS} -XX:SharedArchiveFile={archive}"


@pytest.mark.spark  # JVMs in subprocesses
def test_the_recorded_archive_is_mapped_by_a_new_session(tmp_path: Path) -> None:
    """What `make setup` records (recorded here if it was not) is what the next JVM maps, dynamic layer included."""
    archive = class_archive_path()
    if not archive.is_file():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "class_archive.py")], check=True, timeout=900, cwd=ROOT)
    assert archive.is_file() and archive.stat().st_size > 10_000_000
    log = tmp_path / "cds.log"
    out = _start_session(f"{local_java_options()} -Xlog:cds=info:file={log}")
    assert "ROWS 7" in out
    mapped = log.read_text(encoding="utf-8")
    assert f"Opened archive {archive}." in mapped
    assert "Mapped dynamic region" in mapped


@pytest.mark.spark  # JVMs in subprocesses
def test_an_archive_that_does_not_match_is_ignored(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsa"
    broken.write_bytes(b"\0" * 4096)
    log = tmp_path / "cds.log"
    out = _start_session(f"{JAVA_OPTIONS} -XX:SharedArchiveFile={broken} -Xlog:cds=info:file={log}")
    assert "ROWS 7" in out
    assert "Mapped dynamic region" not in log.read_text(encoding="utf-8")
