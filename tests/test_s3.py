"""The object store of an s3a:// warehouse: settings from the standard AWS variables, files on a real S3 endpoint.

The S3 endpoint is moto in server mode on loopback (one per test session).
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from featurekiln.s3 import ObjectStoreError, is_s3, s3a_conf, split
from featurekiln.samples import purchases_frame, write_sample_sources
from featurekiln.settings import Settings
from featurekiln.warehouse_files import LocalFiles, files_for
from tests.online.servers import AWS_ENV

S3A = "spark.hadoop.fs.s3a."
AWS_VARIABLES = (
    "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """No AWS variable set, no config or credentials file, no instance metadata: each test sets its own."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


def test_settings_read_the_standard_aws_variables(aws_env) -> None:
    assert Settings.from_env().s3_endpoint is None and Settings.from_env().aws_region is None
    aws_env.setenv("AWS_ENDPOINT_URL", "http://any:1")
    aws_env.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert (Settings.from_env().s3_endpoint, Settings.from_env().aws_region) == ("http://any:1", "eu-west-1")
    aws_env.setenv("AWS_ENDPOINT_URL_S3", "http://minio:9000")  # boto3's service-specific endpoint wins
    aws_env.setenv("AWS_REGION", "eu-central-1")
    assert (Settings.from_env().s3_endpoint, Settings.from_env().aws_region) == ("http://minio:9000", "eu-central-1")


def test_s3a_gets_what_boto3_resolves_from_the_environment(aws_env) -> None:
    aws_env.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000")
    aws_env.setenv("AWS_REGION", "eu-central-1")
    aws_env.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", "secret/example")
    conf = s3a_conf(Settings.from_env(warehouse="s3a://bucket/wh"))
    assert conf[f"{S3A}endpoint"] == "http://127.0.0.1:9000"
    assert conf[f"{S3A}endpoint.region"] == "eu-central-1"
    assert conf[f"{S3A}path.style.access"] == "true"  # an S3-compatible endpoint: path style
    assert (conf[f"{S3A}access.key"], conf[f"{S3A}secret.key"]) == ("AKIDEXAMPLE", "secret/example")
    assert conf[f"{S3A}aws.credentials.provider"] == "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
    assert f"{S3A}session.token" not in conf
    aws_env.setenv("AWS_SESSION_TOKEN", "session-token")
    conf = s3a_conf(Settings.from_env())
    assert conf[f"{S3A}session.token"] == "session-token"
    assert conf[f"{S3A}aws.credentials.provider"] == "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider"


def test_s3a_gets_the_profile_of_the_shared_files(aws_env, tmp_path: Path) -> None:
    (tmp_path / "config").write_text(
        "[profile kiln]\nregion = ap-southeast-2\ns3 =\n    addressing_style = virtual\n", encoding="utf-8"
    )
    (tmp_path / "credentials").write_text(
        "[kiln]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile-secret\n", encoding="utf-8"
    )
    aws_env.setenv("AWS_PROFILE", "kiln")
    aws_env.setenv("AWS_ENDPOINT_URL", "http://ceph.internal:7480")
    conf = s3a_conf(Settings.from_env())
    assert conf[f"{S3A}endpoint.region"] == "ap-southeast-2"
    assert conf[f"{S3A}path.style.access"] == "false"  # the profile's addressing style wins
    assert (conf[f"{S3A}access.key"], conf[f"{S3A}secret.key"]) == ("AKIDPROFILE", "profile-secret")


def test_aws_itself_uses_virtual_host_style_and_its_own_endpoint(aws_env) -> None:
    aws_env.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    conf = s3a_conf(Settings.from_env())
    assert conf[f"{S3A}path.style.access"] == "false" and f"{S3A}endpoint" not in conf


def test_no_credentials_is_a_clear_error(aws_env) -> None:
    with pytest.raises(ObjectStoreError, match="no AWS credentials for the s3a:// warehouse: set AWS_ACCESS_KEY_ID"):
        s3a_conf(Settings.from_env(warehouse="s3a://bucket/wh"))


def test_uris() -> None:
    assert is_s3("s3a://b/k") and is_s3("s3://b/k") and not is_s3("/tmp/s3a://") and not is_s3("file:///x")
    assert split("s3a://bucket/wh/_reports/x.html") == ("bucket", "wh/_reports/x.html")
    assert split("s3://bucket") == ("bucket", "")
    with pytest.raises(ObjectStoreError, match="no bucket"):
        split("s3a:///key")


def s3_settings(moto_server, bucket: str, prefix: str = "wh") -> Settings:
    return Settings(warehouse=f"s3a://{bucket}/{prefix}", s3_endpoint=moto_server.endpoint_url,
                    aws_region=AWS_ENV["AWS_DEFAULT_REGION"])


def test_files_on_s3(moto_server, s3_bucket: str) -> None:
    settings = s3_settings(moto_server, s3_bucket)
    files = files_for(settings.warehouse, settings)
    folder = settings.warehouse_path("a")
    files.write(f"{folder}/x.json", b'{"x": 1}', "application/json")
    files.write(f"{folder}/b/y.html", "<p>é</p>".encode(), "text/html; charset=utf-8")
    files.write(f"{folder}/x.json", b'{"x": 2}')
    assert files.read(f"{folder}/x.json") == b'{"x": 2}'
    assert files.read(f"{folder}/b/y.html").decode() == "<p>é</p>"
    assert [e.name for e in files.listing(folder)] == ["x.json"]  # direct children only
    assert files.listing(settings.warehouse_path("nothing")) == []
    with pytest.raises(FileNotFoundError):
        files.read(f"{folder}/missing.json")
    files.write(settings.warehouse_path("ab", "keep.txt"), b"not below a/")
    files.remove_tree(folder)
    assert files.listing(folder) == [] and files.listing(f"{folder}/b") == []
    assert files.read(settings.warehouse_path("ab", "keep.txt")) == b"not below a/"
    files.remove_tree(folder)  # a missing folder is fine


def test_an_unreachable_store_is_a_clear_error(moto_server) -> None:
    settings = s3_settings(moto_server, "no-such-bucket")
    with pytest.raises(ObjectStoreError, match=r"cannot write s3a://no-such-bucket/wh/x: .*NoSuchBucket"):
        files_for(settings.warehouse, settings).write(settings.warehouse_path("x"), b"")


def test_local_files_accept_file_uris(tmp_path: Path) -> None:
    files = LocalFiles()
    files.write(f"file://{tmp_path}/d/x.txt", b"one")
    assert (tmp_path / "d" / "x.txt").read_bytes() == b"one" and (tmp_path / "d" / "x.txt").stat().st_mode & 0o777 == 0o644
    assert [e.name for e in files.listing(str(tmp_path / "d"))] == ["x.txt"]
    files.remove_tree(f"file://{tmp_path}/d")
    assert not (tmp_path / "d").exists()


def test_sample_sources_on_s3(moto_server, s3_bucket: str) -> None:
    import boto3

    settings = s3_settings(moto_server, s3_bucket)
    s3 = boto3.client("s3", endpoint_url=moto_server.endpoint_url)
    s3.put_object(Bucket=s3_bucket, Key="wh/raw/purchases/part-99999.parquet", Body=b"stale")
    counts = write_sample_sources(settings, days=5, users=30, seed=4)
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"])
    assert keys == ["wh/raw/clicks/part-00000.csv", "wh/raw/purchases/part-00000.parquet"]
    body = s3.get_object(Bucket=s3_bucket, Key="wh/raw/purchases/part-00000.parquet")["Body"].read()
    written = pq.read_table(io.BytesIO(body)).to_pandas()
    expected = purchases_frame(pd.Timestamp("2025-01-01").date(), 5, 30, 4)
    assert counts["purchases"] == len(written) == len(expected)
    assert written["purchase_id"].tolist() == expected["purchase_id"].tolist()
