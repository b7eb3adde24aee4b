"""Static checks that docker-compose.yaml's stack commits to its S3 warehouse as featurekiln's tests do."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from featurekiln.settings import S3_COMMITS_CONDITIONAL, Settings

ROOT = Path(__file__).resolve().parents[1]


def services() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text(encoding="utf-8"))["services"]


def test_every_service_on_the_s3_warehouse_commits_conditionally() -> None:
    writers = {name: s["environment"] for name, s in services().items()
               if str((s.get("environment") or {}).get("KILN_WAREHOUSE", "")).startswith("s3a://")}
    assert {"airflow-scheduler", "airflow-apiserver", "airflow-dag-processor"} <= set(writers)
    for name, env in writers.items():
        mode = env.get("KILN_OBJECT_STORE_COMMITS", S3_COMMITS_CONDITIONAL)
        assert mode == S3_COMMITS_CONDITIONAL, name
        assert Settings(s3_commits=mode).s3_commits == mode
        assert env.get("AWS_ENDPOINT_URL_S3") == "http://minio:9000", name


def test_the_object_store_image_is_pinned_to_a_release() -> None:
    image = services()["minio"]["image"]
    assert re.fullmatch(r"minio/minio:RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ", image), image


def test_the_image_builds_the_log_store() -> None:
    """Conditional commits need featurekiln's jar, which javac compiles: the image has a JDK and builds it."""
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    assert "openjdk-17-jdk-headless" in dockerfile
    assert "python -m featurekiln.internals.jars --s3" in dockerfile
    assert "COPY --chown=airflow featurekiln " in dockerfile
