"""Fixtures of the online-store tests: a real redis-server on loopback (moto's server is in tests/conftest.py)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from featurekiln.online import close_stores
from tests.online.servers import RedisServer, free_port, serve

BACKENDS = ("sqlite", "redis", "dynamodb")
_names = itertools.count()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """``/usr/bin/redis-server`` on a free loopback port, no persistence; killed at the end."""
    yield from serve(RedisServer(free_port(), tmp_path_factory.mktemp("redis")))


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
