"""Static checks of docker-compose.yaml and its image: it parses, every service can start, names agree with the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"
CODE_DIRS = ("featurekiln", "jobs", "dags")
REQUIRED_SERVICES = {
    "postgres",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "spark-master",
    "spark-worker",
    "redis",
    "dynamodb",
    "minio",
    "minio-init",
}
# Variables read by third-party software in the images, not by featurekiln (boto3 reads the AWS keys).
THIRD_PARTY = re.compile(r"^(POSTGRES_[A-Z_]+|MINIO_ROOT_(USER|PASSWORD)|MOTO_PORT|PYTHONPATH|AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY))$")
# Standard AWS variables that featurekiln's Settings read (and hand to Spark's s3a and boto3).
READ_BY_KILN = re.compile(r"^(KILN_[A-Z_]+|AWS_ENDPOINT_URL(_S3)?|AWS_REGION|AWS_DEFAULT_REGION)$")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict]:
    return compose["services"]


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def code_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for d in CODE_DIRS for p in (ROOT / d).rglob("*.py"))


def test_every_service_has_an_image_or_a_build(services) -> None:
    assert REQUIRED_SERVICES <= set(services)
    for name, service in services.items():
        assert service.get("image") or service.get("build"), name
        build = service.get("build")
        if build:
            context = ROOT / build.get("context", ".")
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name


def test_kiln_settings_are_ones_the_code_reads(services) -> None:
    code = code_text()
    names = {k for s in services.values() for k in environment(s) if READ_BY_KILN.match(k)}
    assert {"KILN_DEFS", "KILN_WAREHOUSE", "KILN_SPARK_CONN_ID"} <= names
    for name in names:
        assert f'"{name}"' in code, f"{name} is set in docker-compose.yaml but no code reads it"


def read_by_airflow(section: str, option: str) -> bool:
    """An option of Airflow's config reference, or one its code reads with a fallback."""
    import airflow
    from airflow.configuration import conf

    if conf.has_option(section, option):
        return True
    package = Path(airflow.__file__).parent
    return any(f'"{option}"' in p.read_text(encoding="utf-8") for p in package.rglob("*.py"))


def test_airflow_settings_exist_in_airflow(services) -> None:
    for name, service in services.items():
        for key in environment(service):
            if key.startswith("AIRFLOW__"):
                section, option = key[len("AIRFLOW__") :].lower().split("__", 1)
                assert read_by_airflow(section, option), f"{name}: {key} is not an Airflow option"


def test_other_variables_are_known(services) -> None:
    for name, service in services.items():
        for key in environment(service):
            if READ_BY_KILN.match(key) or key.startswith("AIRFLOW__"):
                continue
            if key.startswith("AIRFLOW_CONN_"):
                conn_id = key[len("AIRFLOW_CONN_") :].lower()
                kiln = environment(service).get("KILN_SPARK_CONN_ID")
                assert conn_id == kiln, f"{name}: connection {conn_id} is not the one KILN_SPARK_CONN_ID names"
                continue
            assert THIRD_PARTY.match(key), f"{name}: unexpected variable {key}"


def test_spark_connection_points_at_the_master(services) -> None:
    master = services["spark-master"]
    port = master["command"][master["command"].index("--port") + 1]
    conn = environment(services["airflow-scheduler"])["AIRFLOW_CONN_SPARK_CLUSTER"]
    assert conn == f"spark://spark-master:{port}"
    assert services["spark-worker"]["command"][0] == conn


def test_volumes_and_ports_are_consistent(compose, services) -> None:
    declared = set(compose.get("volumes") or {})
    used = set()
    host_ports: list[str] = []
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}: bind mount {source} does not exist"
            else:
                used.add(source)
        host_ports += [str(p).split(":")[0] for p in service.get("ports", [])]
        for dependency in service.get("depends_on", []):
            assert dependency in services, f"{name} depends on unknown service {dependency}"
    assert used == declared
    assert len(host_ports) == len(set(host_ports)), f"a host port is published twice: {sorted(host_ports)}"


def test_the_warehouse_lives_in_minio(services) -> None:
    minio, init = services["minio"], services["minio-init"]
    assert "9000:9000" in minio["ports"] and "--console-address" in minio["command"]  # S3 API on 9000, console apart
    root = environment(minio)
    bucket = environment(services["airflow-scheduler"])["KILN_WAREHOUSE"].removeprefix("s3a://").split("/")[0]
    assert f'create_bucket(Bucket="{bucket}")' in " ".join(init["command"])
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "minio-init"):
        env = environment(services[name])
        assert env.get("KILN_WAREHOUSE", f"s3a://{bucket}/").startswith(f"s3a://{bucket}/"), name
        assert env["AWS_ENDPOINT_URL_S3"] == "http://minio:9000", name
        assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (
            root["MINIO_ROOT_USER"], root["MINIO_ROOT_PASSWORD"]), name
        if name != "minio-init":
            assert services[name]["depends_on"]["minio-init"] == {"condition": "service_completed_successfully"}, name
    for name, service in services.items():
        assert not any(":/opt/warehouse" in v for v in service.get("volumes", [])), f"{name} mounts a local warehouse"


def test_airflow_components_use_postgres_and_the_project(services) -> None:
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
        env = environment(services[name])
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/featurekiln/dags"
        assert ".:/opt/featurekiln" in services[name]["volumes"]
        assert "airflow-init" in services[name]["depends_on"]


def test_the_image_copies_and_runs_files_that_exist(services) -> None:
    """The Dockerfile's COPY sources and the scripts it runs exist in its build context."""
    builds = {(s["build"].get("context", "."), s["build"].get("dockerfile", "Dockerfile")) for s in services.values() if s.get("build")}
    assert builds
    for context, dockerfile in builds:
        text = (ROOT / dockerfile).read_text(encoding="utf-8")
        copied = [line.split()[-2] for line in text.splitlines() if line.startswith("COPY ")]
        assert "featurekiln" in copied and "requirements.txt" in copied
        for source in copied:
            assert (ROOT / context / source).exists(), f"{dockerfile}: COPY {source}: not in the build context"
        for script in re.findall(r"/tmp/featurekiln-src/(scripts/\S+\.py)", text):
            assert (ROOT / context / script).is_file(), f"{dockerfile} runs {script}, which does not exist"
        # javac compiles featurekiln's local file system at build time: the image needs the JDK, not a JRE.
        assert "openjdk-17-jdk-headless" in text
