"""featurekiln's local file system: the session uses it, it writes what Hadoop's writes, and no javac means Hadoop's."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from featurekiln.compute import session
from featurekiln.internals import jars
from featurekiln.internals.jars import LOCAL_FS_CLASS, own_jar


@pytest.fixture
def delta_jars_stay_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests below move ``jars_dir`` to an empty folder; the Delta jars the log store compiles against stay put."""
    delta, real = jars.resolved_jars([jars.DELTA_PACKAGE]), jars.resolved_jars
    monkeypatch.setattr(jars, "resolved_jars", lambda packages: delta if list(packages) == [jars.DELTA_PACKAGE]
                        else real(packages))


def _file_system(spark: SparkSession):
    jvm = spark._jvm  # noqa: SLF001
    return jvm.org.apache.hadoop.fs.FileSystem.get(jvm.java.net.URI("file:///"), spark._jsc.hadoopConfiguration())  # noqa: SLF001


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_session_writes_local_files_through_it(spark: SparkSession) -> None:
    fs = _file_system(spark)
    assert fs.getClass().getName() == LOCAL_FS_CLASS
    assert fs.getRawFileSystem().getClass().getName() == f"{LOCAL_FS_CLASS}$Raw"


def test_delta_files_get_hadoops_default_permission(spark: SparkSession, tmp_path: Path) -> None:
    """New files are 0666 and directories 0777, less Hadoop's umask (022 by default), as Hadoop's chmod gives."""
    umask = int(spark._jsc.hadoopConfiguration().get("fs.permissions.umask-mode", "022"), 8)  # noqa: SLF001
    spark.range(20).selectExpr("id", "id % 3 AS part").write.format("delta").partitionBy("part").save(str(tmp_path / "t"))
    written = list((tmp_path / "t").rglob("*"))
    data = [p for p in written if p.name.endswith(".parquet")]
    assert len(data) >= 3
    assert {_mode(p) for p in written if p.is_file()} == {0o666 & ~umask}
    assert {_mode(p) for p in written if p.is_dir()} == {0o777 & ~umask}


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o751, 0o444, 0o000, 0o1755])
def test_set_permission_gives_exactly_the_mode(spark: SparkSession, tmp_path: Path, mode: int) -> None:
    """Every bit of 0777 lands where chmod puts it; modes above 0777 (sticky bit) go to Hadoop's chmod."""
    jvm = spark._jvm  # noqa: SLF001
    fs = _file_system(spark)
    target = tmp_path / "f"
    if mode > 0o777:
        target.mkdir()  # the sticky bit is a directory's
    else:
        target.write_bytes(b"x")
    fs.setPermission(jvm.org.apache.hadoop.fs.Path(target.as_uri()), jvm.org.apache.hadoop.fs.permission.FsPermission(mode))
    assert stat.S_IMODE(os.stat(target).st_mode) == mode


@pytest.mark.spark  # javac is a JVM
@pytest.mark.usefixtures("delta_jars_stay_resolved")
def test_the_jar_is_compiled_once_per_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jars, "jars_dir", lambda: tmp_path)
    first = own_jar()
    assert first is not None and Path(first).parent == tmp_path
    built = Path(first).stat().st_mtime_ns
    assert own_jar() == first and Path(first).stat().st_mtime_ns == built
    source = tmp_path / "NioLocalFileSystem.java"
    source.write_text(jars.JAVA_SOURCES[0].read_text(encoding="utf-8") + "\n// changed\n", encoding="utf-8")
    monkeypatch.setattr(jars, "JAVA_SOURCES", (source, *jars.JAVA_SOURCES[1:]))
    second = own_jar()
    assert second is not None and second != first


def test_without_javac_sessions_keep_hadoops_file_system_and_say_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(jars, "jars_dir", lambda: tmp_path)
    monkeypatch.setattr(jars, "_told", set())
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "a-jre"))
    (tmp_path / "a-jre" / "bin").mkdir(parents=True)
    (tmp_path / "a-jre" / "bin" / "java").touch()
    caplog.set_level(logging.INFO, logger="featurekiln.internals.jars")
    assert own_jar() is None
    assert session.local_fs_conf() == {}
    assert list(tmp_path.glob("*.jar")) == []
    [told] = [r for r in caplog.records if r.name == "featurekiln.internals.jars"]
    assert told.levelno == logging.INFO and "no JDK's javac" in told.getMessage()
    assert "pure-Spark fallbacks run instead" in told.getMessage()


def test_switched_off_no_jar_is_looked_for_and_that_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from featurekiln.settings import Settings

    monkeypatch.setattr(jars, "jars_dir", lambda: tmp_path)
    monkeypatch.setattr(jars, "_told", set())
    monkeypatch.setenv("KILN_JAVA_CLASSES", "false")
    caplog.set_level(logging.INFO, logger="featurekiln.internals.jars")
    assert Settings.from_env().java_classes is False
    assert own_jar() is None and own_jar() is None
    assert session.local_fs_conf() == {} and session.cluster_jars("spark://cluster:7077") == []
    assert list(tmp_path.iterdir()) == []
    told = [r for r in caplog.records if r.name == "featurekiln.internals.jars"]
    assert len(told) == 1, "once per process"
    assert told[0].levelno == logging.INFO and "KILN_JAVA_CLASSES is off" in told[0].getMessage()


@pytest.mark.spark  # javac is a JVM
@pytest.mark.usefixtures("delta_jars_stay_resolved")
def test_a_source_that_does_not_compile_leaves_hadoops_file_system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jars, "jars_dir", lambda: tmp_path)
    broken = tmp_path / "NioLocalFileSystem.java"
    broken.write_text("package featurekiln; public class NioLocalFileSystem extends Nothing {}\n", encoding="utf-8")
    monkeypatch.setattr(jars, "JAVA_SOURCES", (broken, *jars.JAVA_SOURCES[1:]))
    assert own_jar() is None
    failed = list(tmp_path.glob("featurekiln-*.failed"))
    assert len(failed) == 1 and "Nothing" in failed[0].read_text(encoding="utf-8")
    failed[0].write_text("kept", encoding="utf-8")
    assert own_jar() is None
    assert failed[0].read_text(encoding="utf-8") == "kept", "a source that failed is not compiled again at every session"


def test_a_jar_that_cannot_be_written_leaves_hadoops_file_system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "a-file"
    blocked.touch()
    monkeypatch.setattr(jars, "jars_dir", lambda: blocked / "jars")
    assert own_jar() is None


def test_delta_commits_go_through_its_file_context(spark: SparkSession) -> None:
    jvm = spark._jvm  # noqa: SLF001
    context = jvm.org.apache.hadoop.fs.FileContext.getFileContext(jvm.java.net.URI("file:///"), spark._jsc.hadoopConfiguration())  # noqa: SLF001
    assert context.getDefaultFileSystem().getClass().getName() == f"{LOCAL_FS_CLASS}$Fs"


def test_link_status_is_hadoops(spark: SparkSession, tmp_path: Path) -> None:
    """A link is reported as Hadoop reports it (target included); anything else has its file status."""
    jvm = spark._jvm  # noqa: SLF001
    fs = _file_system(spark)
    target = tmp_path / "target.txt"
    target.write_bytes(b"12345")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    linked = fs.getFileLinkStatus(jvm.org.apache.hadoop.fs.Path(str(link)))
    assert linked.isSymlink() and linked.getSymlink().toUri().getPath() == str(target)
    plain = fs.getFileLinkStatus(jvm.org.apache.hadoop.fs.Path(str(target)))
    assert not plain.isSymlink() and plain.getLen() == 5 and not plain.isDirectory()
    assert fs.getFileLinkStatus(jvm.org.apache.hadoop.fs.Path(str(tmp_path))).isDirectory()
    with pytest.raises(Exception, match="FileNotFoundException"):
        fs.getFileLinkStatus(jvm.org.apache.hadoop.fs.Path(str(tmp_path / "missing")))
