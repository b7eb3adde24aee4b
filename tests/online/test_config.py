"""Choosing the online store: URLs, kiln.yaml, precedence and the errors (pure: no servers, no Spark)."""

from __future__ import annotations

import pickle
import re
import sys
from pathlib import Path

import pytest

from featurekiln.online.config import online_store_config, open_store, parse_store_url
from featurekiln.online.dynamodb import DynamoDBConfig
from featurekiln.online.errors import MissingClientError, OnlineConfigError
from featurekiln.online.redis import RedisConfig
from featurekiln.online.sqlite import SqliteConfig
from featurekiln.online.protocol import StoreConfig
from featurekiln.settings import Settings


def same(config: StoreConfig, expected: StoreConfig) -> bool:
    """Equal fields (model equality also compares where each config came from)."""
    return type(config) is type(expected) and config.model_dump() == expected.model_dump()


def test_sqlite_urls_relative_and_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert same(parse_store_url("sqlite:////data/online.db"), SqliteConfig(path="/data/online.db"))
    assert same(
        parse_store_url("sqlite:///online/x.db?batch_size=500"), SqliteConfig(path=str(tmp_path / "online/x.db"), batch_size=500)
    )


def test_redis_and_dynamodb_urls() -> None:
    assert same(
        parse_store_url("redis://:s3cret@cache.local:6380/2?key_prefix=fk"),
        RedisConfig(host="cache.local", port=6380, db=2, password="s3cret", key_prefix="fk"),
    )
    assert parse_store_url("rediss://user:pw@cache").ssl is True
    assert same(parse_store_url("redis://localhost"), RedisConfig(host="localhost"))
    assert same(
        parse_store_url("dynamodb://?region=eu-west-1&endpoint_url=http://127.0.0.1:5000&prefix=fk_"),
        DynamoDBConfig(region="eu-west-1", endpoint_url="http://127.0.0.1:5000", prefix="fk_"),
    )
    assert same(parse_store_url("dynamodb://"), DynamoDBConfig())


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://x/y", "unknown scheme 'mysql'; use sqlite:///, redis:// or dynamodb://"),
        ("sqlite://", "write sqlite:///relative/path.db or sqlite:////absolute/path.db"),
        ("redis://h:6379/zero", "db: Input should be a valid integer"),
        ("redis://h:99999/0", "Port out of range"),
        ("redis://h/0?batch_size=0", "batch_size: Input should be greater than or equal to 1"),
        ("redis://h/0?prefix=x&prefix=y", "option prefix is given twice"),
        ("dynamodb://eu-west-1", "give the options as query parameters"),
    ],
)
def test_url_errors_name_the_setting(url: str, message: str) -> None:
    with pytest.raises(OnlineConfigError) as caught:
        parse_store_url(url)
    assert caught.value.problems[0].startswith(f"KILN_ONLINE_STORE={url}: ")
    assert message in caught.value.problems[0]


def test_an_unknown_option_lists_the_allowed_ones_and_passwords_are_hidden() -> None:
    with pytest.raises(OnlineConfigError) as caught:
        parse_store_url("redis://:hunter2@h/0?timeout=3")
    assert caught.value.problems == [
        "KILN_ONLINE_STORE=redis://:***@h/0?timeout=3: timeout: unknown option",
        "KILN_ONLINE_STORE=redis://:***@h/0?timeout=3: options of redis: host, port, db, username, password, ssl, "
        "key_prefix, batch_size, socket_timeout",
    ]
    assert "hunter2" not in str(caught.value)


def project(tmp_path: Path, kiln_yaml: str | None) -> Settings:
    (tmp_path / "feature_defs").mkdir()
    if kiln_yaml is not None:
        (tmp_path / "kiln.yaml").write_text(kiln_yaml)
    return Settings(defs_dir=tmp_path / "feature_defs", warehouse=str(tmp_path / "wh"))


def test_precedence_env_url_then_kiln_yaml_then_the_default(tmp_path: Path) -> None:
    settings = project(tmp_path, "online_store:\n  type: redis\n  host: cache\n  port: 6390\n")
    assert same(online_store_config(settings), RedisConfig(host="cache", port=6390))
    assert online_store_config(settings).origin.endswith("kiln.yaml:1: online_store")
    env = Settings(defs_dir=settings.defs_dir, warehouse=settings.warehouse, online_store="sqlite:////x/o.db")
    assert same(online_store_config(env), SqliteConfig(path="/x/o.db"))
    (tmp_path / "kiln.yaml").write_text("other_setting: 1\n")
    assert same(online_store_config(settings), SqliteConfig(path=str(tmp_path / "wh" / "_online" / "online.db")))


def test_kiln_yaml_url_with_a_path_relative_to_the_file(tmp_path: Path) -> None:
    settings = project(tmp_path, "online_store: sqlite:///state/online.db\n")
    assert same(online_store_config(settings), SqliteConfig(path=str(tmp_path / "state/online.db")))


def test_kiln_yaml_errors_name_the_file_line_and_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = project(tmp_path, "# the project\nonline_store:\n  type: redis\n  port: not-a-port\n  hots: cache\n")
    with pytest.raises(OnlineConfigError) as caught:
        online_store_config(settings)
    assert caught.value.problems[:2] == [
        "kiln.yaml:4: online_store.port: Input should be a valid integer, unable to parse string as an integer",
        "kiln.yaml:5: online_store.hots: unknown option",
    ]
    (tmp_path / "kiln.yaml").write_text("online_store:\n  type: memcached\n")
    with pytest.raises(OnlineConfigError, match="kiln.yaml:2: online_store.type: unknown store type 'memcached'"):
        online_store_config(settings)
    (tmp_path / "kiln.yaml").write_text("online_store: [redis]\n")
    with pytest.raises(OnlineConfigError, match="kiln.yaml:1: online_store: must be a URL or a mapping with a type"):
        online_store_config(settings)
    (tmp_path / "kiln.yaml").write_text("online_store: {type: redis\n")
    with pytest.raises(OnlineConfigError, match=r"kiln.yaml:\d+: invalid YAML"):
        online_store_config(settings)
    (tmp_path / "kiln.yaml").write_text("- a list\n")
    with pytest.raises(OnlineConfigError, match="kiln.yaml:1: must be a YAML mapping of settings"):
        online_store_config(settings)


def test_the_default_needs_a_local_warehouse() -> None:
    with pytest.raises(OnlineConfigError, match="set KILN_ONLINE_STORE"):
        online_store_config(Settings(defs_dir=Path("/nonexistent/defs"), warehouse="s3a://bucket/wh"))


def test_configs_travel_to_spark_executors_with_their_origin() -> None:
    config = parse_store_url("redis://h:6379/0")
    copy = pickle.loads(pickle.dumps(config))
    assert copy == config and copy.origin == "KILN_ONLINE_STORE=redis://h:6379/0"


@pytest.mark.parametrize(("url", "package"), [("redis://h/0", "redis"), ("dynamodb://?region=x", "boto3")])
def test_a_missing_client_library_says_what_to_install(url: str, package: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, package, None)
    with pytest.raises(MissingClientError, match=rf"\(KILN_ONLINE_STORE={re.escape(url)}\) needs .*pip install '{package}=="):
        open_store(parse_store_url(url))
