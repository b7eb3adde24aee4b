"""The pinned Spark packages, resolved once into jar files, so that no JVM start runs Ivy.

``spark.jars.packages`` resolves its Maven coordinates through Ivy at every JVM
start: slow without a warm cache, and about sixty lines of Ivy's
report on the terminal each time. Instead, a package set is resolved once (by
``make setup``, or on its first use), quietly, by Spark's own resolver in a
``spark-submit`` subprocess; the jar files it chose are recorded in a manifest
and every later session passes them as ``spark.jars``.

The same directory holds featurekiln's own jar, compiled once by the JDK's
``javac`` from :data:`JAVA_SOURCES` (:func:`own_jar`) against pyspark's and
Delta's jars: a faster local file system, a hash-aggregable ``first``/``last``
partial and the log store that makes Delta commits on S3 safe for many writers.

Layout (below the Python environment, so that every venv or image has its own;
``~/.cache/featurekiln/jars`` where that is read-only)::

    <sys.prefix>/share/featurekiln/jars/
        manifest.json     {"<package>,<package>": ["/abs/path.jar", ...]}
        ivy/jars/*.jar    the resolved jars (Spark's Ivy layout)
        resolve.log       what the last resolution printed
        featurekiln-<digest>.jar      featurekiln's classes, for these sources (digest)
        featurekiln-<digest>.failed   what javac printed when they did not compile
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from featurekiln.errors import KilnError
from featurekiln.settings import java_classes_enabled, java_home, prepare_process_environment

# Maven coordinates that match pyspark 4.2 / delta-spark 4.4 (pinned in requirements.txt).
DELTA_PACKAGE = "io.delta:delta-spark_4.2_2.13:4.4.0"
# The file name of Delta's storage API jar among DELTA_PACKAGE's (Ivy names it organisation_module-version).
DELTA_STORAGE_JAR = "io.delta_delta-storage-"
# hadoop-aws must match the Hadoop of pyspark's jars (3.5.0); it brings the AWS SDK v2 bundle (~690 MB).
HADOOP_AWS_PACKAGE = "org.apache.hadoop:hadoop-aws:3.5.0"
# featurekiln's Java classes, compiled against pyspark's jars into one jar.
JAVA_SOURCES = (
    Path(__file__).with_name("NioLocalFileSystem.java"),  # Hadoop's local file system without a `chmod` per file
    Path(__file__).with_name("MaxPair.java"),  # the first/last partial as a hash aggregation
    Path(__file__).with_name("RepeatedKeys.java"),  # the gate's uniqueness proof, observed as a run writes
    Path(__file__).with_name("DayStats.java"),  # per-day feature statistics, observed as a run writes
    Path(__file__).with_name("ConditionalPutLogStore.java"),  # Delta commits on S3 as put-if-absent
)
LOCAL_FS_CLASS = "featurekiln.NioLocalFileSystem"
# The same for Hadoop's FileContext API, through which Delta writes its commit log.
LOCAL_FS_CONTEXT_CLASS = "featurekiln.NioLocalFileSystem$Fs"
MAX_PAIR_CLASS = "featurekiln.MaxPair"
REPEATED_KEYS_CLASS = "featurekiln.RepeatedKeys"
DAY_STATS_CLASS = "featurekiln.DayStats"
# Delta's log store for object stores with conditional writes (see session.commit_conf).
CONDITIONAL_PUT_LOG_STORE_CLASS = "featurekiln.ConditionalPutLogStore"

log = logging.getLogger(__name__)

_PRINT_JARS = """
from pyspark import SparkConf, SparkContext
SparkContext._ensure_initialized()
print("KILN_JARS=" + SparkConf().get("spark.jars", ""))
"""


class JarResolutionError(KilnError):
    """Spark's packages could not be resolved from Maven Central."""


def jars_dir() -> Path:
    """Where the resolved jars and their manifest live: below the running Python environment.

    When that is not writable (a system Python, a container's image), below
    ``~/.cache/featurekiln`` instead.
    """
    own = Path(sys.prefix) / "share" / "featurekiln" / "jars"
    if own.is_dir() or os.access(Path(sys.prefix), os.W_OK):
        return own
    return Path.home() / ".cache" / "featurekiln" / "jars"


def _key(packages: Sequence[str]) -> str:
    return ",".join(sorted(set(packages)))


def _read_manifest(path: Path) -> dict[str, list[str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _spark_submit() -> str:
    import pyspark

    return str(Path(pyspark.__file__).parent / "bin" / "spark-submit")


def _resolve(packages: Sequence[str], root: Path) -> list[str]:
    """Run Spark's resolver once in a subprocess; its output goes to ``resolve.log``."""
    log = root / "resolve.log"
    with tempfile.TemporaryDirectory() as scratch:
        script = Path(scratch) / "print_jars.py"
        script.write_text(_PRINT_JARS, encoding="utf-8")
        command = [_spark_submit(), "--packages", _key(packages), "--conf", f"spark.jars.ivy={root / 'ivy'}", str(script)]
        prepare_process_environment()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    log.write_text(done.stdout + done.stderr, encoding="utf-8")
    line = next((x for x in done.stdout.splitlines() if x.startswith("KILN_JARS=")), None)
    if done.returncode != 0 or line is None:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise JarResolutionError(
            f"could not resolve the Spark packages {_key(packages)} from Maven Central (is it reachable?): "
            f"{tail or 'no output'}; full log: {log}"
        )
    jars = [entry.removeprefix("file://").removeprefix("file:") for entry in line[len("KILN_JARS="):].split(",") if entry]
    return [str(Path(j).resolve()) for j in jars]


def resolved_jars(packages: Sequence[str]) -> list[str]:
    """The jar files of ``packages`` (Maven coordinates), resolving them on first use.

    Resolution takes about half a minute with a cold cache and prints nothing; it
    happens once per Python environment and package set (``make setup`` does it
    for the Delta package). Concurrent callers wait for one resolution.

    Raises:
        JarResolutionError: Maven Central could not be reached or a package is unknown.
    """
    root = jars_dir()
    manifest = root / "manifest.json"
    key = _key(packages)
    jars = _read_manifest(manifest).get(key)
    if jars and all(Path(j).is_file() for j in jars):
        return jars
    with _locked(root):
        known = _read_manifest(manifest)
        jars = known.get(key)
        if not (jars and all(Path(j).is_file() for j in jars)):
            jars = _resolve(packages, root)
            known[key] = jars
            partial = manifest.with_suffix(".json.tmp")
            partial.write_text(json.dumps(known, indent=2, sort_keys=True), encoding="utf-8")
            partial.replace(manifest)
    return jars


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Hold ``root``'s lock: one process at a time resolves or compiles into it."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _javac() -> str | None:
    """The JDK's compiler next to the Java that Spark runs (``JAVA_HOME``, else the ``PATH``)."""
    home = java_home()
    if home:
        javac = Path(home) / "bin" / "javac"
        return str(javac) if javac.is_file() else None
    return shutil.which("javac")


def own_jar() -> str | None:
    """featurekiln's jar (:data:`JAVA_SOURCES`), compiled on first use; None where it cannot be.

    Compiling takes a few seconds, once per Python environment and version of
    the sources (``make setup`` does it). Without a JDK's ``javac`` (a JRE only),
    where the jar cannot be written, or if the compilation failed (what javac
    printed is kept in ``<jar>.failed``, and it is not tried again for these
    sources), there is no jar: sessions keep Hadoop's own local file system
    (slower writes, the same files), tiles take ``first``/``last`` as the
    ``max`` of a struct (a slower aggregation, the same tiles), the quality
    gate scans the written rows for their uniqueness (slower, the same outcome),
    and a session on an ``s3a://`` warehouse refuses to start unless it is told
    to run one writer at a time (:func:`featurekiln.compute.session.commit_conf`).
    ``KILN_JAVA_CLASSES=false`` asks for the same without looking for a jar
    (featurekiln/internals/README.md). Every reason for no jar is logged at INFO
    or above, once per process.
    """
    if not java_classes_enabled():
        _fallback(logging.INFO, "KILN_JAVA_CLASSES is off")
        return None
    root = jars_dir()
    digest = hashlib.sha256(b"".join(source.read_bytes() for source in JAVA_SOURCES)).hexdigest()[:12]
    jar = root / f"featurekiln-{digest}.jar"
    if jar.is_file():
        return str(jar)
    javac = _javac()
    if javac is None:
        _fallback(logging.INFO, "no JDK's javac next to the Java that Spark runs (JAVA_HOME, else the PATH)")
        return None
    if jar.with_suffix(".failed").is_file():
        _fallback(logging.INFO, f"compiling them failed before (see {jar.with_suffix('.failed')})")
        return None
    try:
        # The log store extends Delta's storage API (delta-storage, one of Delta's jars); resolved
        # before the lock, which resolution takes too.
        delta_jars = resolved_jars([DELTA_PACKAGE])
    except (JarResolutionError, OSError) as error:
        _fallback(logging.WARNING, f"could not resolve Delta's jars to compile them against ({error})")
        return None
    try:
        with _locked(root):
            return _compile(javac, jar, delta_jars)
    except OSError as error:
        _fallback(logging.WARNING, f"could not build {jar} ({error})")
        return None


_told: set[str] = set()


def _fallback(level: int, reason: str) -> None:
    """Say once per process why there are no Java classes, and what runs instead."""
    if reason in _told:
        return
    _told.add(reason)
    log.log(level, "featurekiln's Java classes are not used: %s; the pure-Spark fallbacks run instead "
            "(Hadoop's local file system, max of a struct for first/last tiles, a scan for the gate's "
            "uniqueness proof; see featurekiln/internals/README.md)", reason)


def _compile(javac: str, jar: Path, delta_jars: list[str]) -> str | None:
    """Compile :data:`JAVA_SOURCES` against pyspark's and Delta's jars into ``jar`` (under the lock)."""
    import pyspark

    failed = jar.with_suffix(".failed")
    if jar.is_file() or failed.is_file():
        return str(jar) if jar.is_file() else None
    class_path = [str(Path(pyspark.__file__).parent / "jars" / "*"), *delta_jars]
    with tempfile.TemporaryDirectory() as scratch:
        command = [javac, "--release", "17", "-nowarn", "-cp", os.pathsep.join(class_path), "-d", scratch,
                   *map(str, JAVA_SOURCES)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            failed.write_text(done.stdout + done.stderr, encoding="utf-8")
            _fallback(logging.WARNING, f"they did not compile (see {failed})")
            return None
        partial = jar.with_suffix(".jar.tmp")
        with zipfile.ZipFile(partial, "w") as archive:
            for item in sorted(Path(scratch).rglob("*.class")):
                archive.write(item, item.relative_to(scratch).as_posix())
        partial.replace(jar)
    return str(jar)


def main() -> int:
    """Resolve the default packages and compile featurekiln's jar (``python -m featurekiln.internals.jars [--s3]``)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # a fallback's reason reaches `make setup`
    packages = [DELTA_PACKAGE, *([HADOOP_AWS_PACKAGE] if "--s3" in sys.argv[1:] else [])]
    try:
        jars = resolved_jars(packages)
    except JarResolutionError as error:
        sys.stderr.write(f"error: {error}\n")
        return 1
    sys.stdout.write(f"{len(jars)} Spark jars for {_key(packages)} in {jars_dir()}\n")
    own = own_jar() or "not compiled (KILN_JAVA_CLASSES off, or no javac; logged above): Spark's own classes are used"
    sys.stdout.write(f"featurekiln's jar (local file system, first/last partials): {own}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
