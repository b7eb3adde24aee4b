"""Fixtures of the online-store tests: a real redis-server and a real moto server on loopback.

Dummy AWS credentials are set at import (if unset), before the session's Spark
starts, so that the Spark executors' boto3 finds them too.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from featurekiln.online import close_stores
from tests.online.servers import AWS_ENV, MotoServer, RedisServer, Server, free_port

for _name, _value in AWS_ENV.items():
    os.environ.setdefault(_name, _value)

BACKENDS = ("sqlite", "redis", "dynamodb")
_names = itertools.count()


def _serve(server: Server) -> Iterator[Server]:
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """``/usr/bin/redis-server`` on a free loopback port, no persistence; killed at the end."""
    yield from _serve(RedisServer(free_port(), tmp_path_factory.mktemp("redis")))


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto's server (DynamoDB over HTTP) on a free loopback port; killed at the end."""
    yield from _serve(MotoServer(free_port(), tmp_path_factory.mktemp("moto")))


def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store of ``backend`` for one test (own file, key prefix or table prefix)."""
    unique = f"t{next(_names)}_{os.getpid()}"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'online.db'}"
    if backend == "redis":
        server = request.getfixturevalue("redis_server")
        return f"{server.url}?key_prefix={unique}"
    server = request.getfixturevalue("moto_server")
    return f"dynamodb://?region=us-east-1&endpoint_url={server.endpoint_url}&prefix={unique}_"


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty online store, once per backend."""
    yield store_url(request.param, request, tmp_path)
    close_stores()
