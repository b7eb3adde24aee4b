"""Which log store an s3a:// session gets, and the stores and installations where featurekiln refuses to start.

The stores are moto's S3 server (it honours ``If-None-Match: *``), and the same
server behind a front that drops that header, as a store without conditional
writes does. No Spark here: the concurrent commits themselves are in
``tests/test_s3_commits.py``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import boto3
import pytest

from featurekiln.compute import session
from featurekiln.internals.jars import CONDITIONAL_PUT_LOG_STORE_CLASS
from featurekiln.s3 import CommitSafetyError, check_conditional_writes
from featurekiln.settings import Settings
from tests.online.servers import AWS_ENV


def settings_for(endpoint_url: str, bucket: str, **more: str) -> Settings:
    return Settings(warehouse=f"s3a://{bucket}/lake", s3_endpoint=endpoint_url,
                    aws_region=AWS_ENV["AWS_DEFAULT_REGION"], **more)


@pytest.fixture
def store_ignoring_conditions() -> Iterator[str]:
    """moto's S3 app on a loopback port, with ``If-None-Match`` dropped from every request; its endpoint."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    app = DomainDispatcherApplication(create_backend_app)

    def ignoring(environ, start_response):  # noqa: ANN001, ANN202 - a WSGI app
        environ.pop("HTTP_IF_NONE_MATCH", None)
        return app(environ, start_response)

    server = make_server("127.0.0.1", 0, ignoring, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_the_default_is_conditional_commits(moto_server, s3_bucket: str) -> None:
    conf = session.commit_conf(settings_for(moto_server.endpoint_url, s3_bucket))
    assert conf == dict.fromkeys(session.S3_LOG_STORE_KEYS, CONDITIONAL_PUT_LOG_STORE_CLASS)
    assert set(session.S3_LOG_STORE_KEYS) == {"spark.delta.logStore.s3a.impl", "spark.delta.logStore.s3.impl"}
    s3 = boto3.client("s3", endpoint_url=moto_server.endpoint_url)
    assert s3.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0, "the probe leaves nothing behind"


def test_a_store_that_ignores_conditional_writes_is_refused(store_ignoring_conditions: str) -> None:
    boto3.client("s3", endpoint_url=store_ignoring_conditions).create_bucket(Bucket="no-conditions")
    settings = settings_for(store_ignoring_conditions, "no-conditions")
    with pytest.raises(CommitSafetyError, match="KILN_OBJECT_STORE_COMMITS=single-driver"):
        check_conditional_writes(settings)
    with pytest.raises(CommitSafetyError):
        session.commit_conf(settings)


def test_single_driver_commits_say_so(store_ignoring_conditions: str, caplog: pytest.LogCaptureFixture) -> None:
    boto3.client("s3", endpoint_url=store_ignoring_conditions).create_bucket(Bucket="one-writer")
    settings = settings_for(store_ignoring_conditions, "one-writer", s3_commits="single-driver")
    with caplog.at_level(logging.WARNING, logger="featurekiln.compute.session"):
        conf = session.commit_conf(settings)
    assert conf == dict.fromkeys(session.S3_LOG_STORE_KEYS, "io.delta.storage.S3SingleDriverLogStore")
    assert "one process at a time" in caplog.text


def test_without_featurekiln_jar_an_s3_warehouse_is_refused(moto_server, s3_bucket: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """No JDK's javac, so no jar: the log store class does not exist, and commits would not be safe."""
    monkeypatch.setattr(session, "own_jar", lambda: None)
    with pytest.raises(CommitSafetyError, match="javac"):
        session.commit_conf(settings_for(moto_server.endpoint_url, s3_bucket))


def test_the_setting_is_read_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env().s3_commits == "conditional"
    monkeypatch.setenv("KILN_OBJECT_STORE_COMMITS", "Single-Driver")
    assert Settings.from_env().s3_commits == "single-driver"
    monkeypatch.setenv("KILN_OBJECT_STORE_COMMITS", "dynamodb")
    with pytest.raises(ValueError, match="KILN_OBJECT_STORE_COMMITS"):
        Settings.from_env()


def test_a_running_session_without_the_log_store_is_refused(spark, moto_server, s3_bucket: str) -> None:
    """Delta reads the log store settings when the session starts: one started without them cannot get them."""
    from featurekiln.compute.session import get_spark

    assert spark.sparkContext.getConf().get("spark.delta.logStore.s3a.impl") is None
    with pytest.raises(CommitSafetyError, match=r"spark\.delta\.logStore\.s3a\.impl"):
        get_spark(settings_for(moto_server.endpoint_url, s3_bucket, spark_master="local[2]"))
