"""Redis online store (a real ``redis-server``; the ``redis`` package is imported on first use).

Layout per view, all keys with the hash tag ``{view}`` (one cluster slot per view):

- ``<prefix>:{view}:<key>``: one packed value per entity key, the JSON array
  ``[ds, feature_ts, *features]`` (``<key>`` is the key's JSON array);
- ``<prefix>:{view}#index``: sorted set of row names scored by ``ds`` (for the sweep);
- ``<prefix>:{view}#schema`` and ``<prefix>:{view}#newest``: the meta record.

Newer wins through a Lua script that compares the stored ``ds`` (the first
number of the value) per key and writes, indexes and sets the expiry
atomically; one script call covers hundreds of rows and one pipeline thousands.
A read is one ``MGET`` of the meta record and every key.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from featurekiln.errors import OnlineStoreError
from featurekiln.online.codec import encode_key, pack, split_row, unpack
from featurekiln.online.errors import MissingClientError, StoreUnavailableError
from featurekiln.online.protocol import OnlineTable, ReadResult, StoreConfig, WireKey, WireRow

if TYPE_CHECKING:
    from redis import Redis

_STORED_DS = "tonumber(string.match(current, '^%[(%-?%d+)'))"
WRITE_SCRIPT = f"""
local written = 0
local expire = tonumber(ARGV[1])
local j = 1
for value in string.gmatch(ARGV[2], '[^\\n]+') do
  j = j + 1
  local ds = tonumber(string.match(value, '^%[(%-?%d+)'))
  local current = redis.call('GET', KEYS[j])
  local stored = current and {_STORED_DS}
  if (not stored) or stored < ds or (stored == ds and current ~= value) then
    if expire > 0 then
      redis.call('SET', KEYS[j], value, 'EX', expire)
    else
      redis.call('SET', KEYS[j], value)
    end
    redis.call('ZADD', KEYS[1], ds, KEYS[j])
    written = written + 1
  end
end
return written
"""
SWEEP_SCRIPT = f"""
local deleted = 0
local newest = tonumber(ARGV[1])
for j = 2, #KEYS do
  local current = redis.call('GET', KEYS[j])
  if not current then
    redis.call('ZREM', KEYS[1], KEYS[j])
  elseif {_STORED_DS} < newest then
    redis.call('DEL', KEYS[j])
    redis.call('ZREM', KEYS[1], KEYS[j])
    deleted = deleted + 1
  end
end
return deleted
"""
NEWEST_SCRIPT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '-1000000000')
local ds = tonumber(ARGV[1])
if current < ds then
  redis.call('SET', KEYS[1], ds)
  return ds
end
return current
"""
_SCRIPT_ROWS = 500


class RedisConfig(StoreConfig):
    """``redis://[user:password@]host:port/db`` (``rediss://`` for TLS)."""

    type: Literal["redis"] = "redis"
    host: str = "127.0.0.1"
    port: int = Field(default=6379, ge=1, le=65535)
    db: int = Field(default=0, ge=0)
    username: str | None = None
    password: str | None = None
    ssl: bool = False
    key_prefix: str = Field(default="kiln", min_length=1)
    batch_size: int = Field(default=10_000, ge=1, description="rows per pipelined round trip")
    socket_timeout: float = Field(default=10.0, gt=0)

    def describe(self) -> str:
        return f"{'rediss' if self.ssl else 'redis'}://{self.host}:{self.port}/{self.db}"


class RedisStore:
    """The Redis backend; the client's connection pool is shared by threads."""

    def __init__(self, config: RedisConfig) -> None:
        try:
            import redis
        except ImportError as error:
            raise MissingClientError(
                f"the redis online store ({config.origin}) needs the redis package: pip install 'redis==8.1.0'"
            ) from error
        self.config = config
        self._errors = redis.exceptions
        self.client: Redis = redis.Redis(
            host=config.host,
            port=config.port,
            db=config.db,
            username=config.username,
            password=config.password,
            ssl=config.ssl,
            socket_timeout=config.socket_timeout,
            socket_connect_timeout=config.socket_timeout,
        )
        self._sha: dict[str, str] = {}

    @contextmanager
    def _calls(self) -> Iterator[None]:
        try:
            yield
        except (self._errors.ConnectionError, self._errors.TimeoutError) as error:
            raise StoreUnavailableError(
                f"cannot reach Redis at {self.config.describe()} ({self.config.origin}): {error}"
            ) from error
        except self._errors.RedisError as error:
            raise OnlineStoreError(f"Redis at {self.config.describe()} refused: {error}") from error

    def _prefix(self, name: str) -> str:
        return f"{self.config.key_prefix}:{{{name}}}"

    def _evalsha(self, pipe: Any, script: str, keys: list[Any], args: list[Any]) -> None:
        if script not in self._sha:
            self._sha[script] = self.client.script_load(script)
        pipe.evalsha(self._sha[script], len(keys), *keys, *args)

    def _run(self, script: str, calls: list[tuple[list[Any], list[Any]]]) -> list[Any]:
        """Run ``script`` once per (keys, args) in one pipelined round trip; reload it after a server restart."""
        with self._calls():
            for attempt in (1, 2):
                pipe = self.client.pipeline(transaction=False)
                for keys, args in calls:
                    self._evalsha(pipe, script, keys, args)
                try:
                    return pipe.execute()
                except self._errors.NoScriptError:
                    if attempt == 2:
                        raise
                    self._sha.clear()
        return []

    def ensure_table(self, table: OnlineTable) -> None:
        prefix = self._prefix(table.name)
        with self._calls():
            current = self.client.get(f"{prefix}#schema")
        if current is not None and current.decode() != table.to_json():
            self.drop(table.name)
        with self._calls():
            self.client.set(f"{prefix}#schema", table.to_json())

    def write_rows(self, table: OnlineTable, rows: Sequence[WireRow], expire_seconds: int = 0) -> int:
        prefix = self._prefix(table.name) + ":"
        index = self._prefix(table.name) + "#index"
        written = 0
        for start in range(0, len(rows), self.config.batch_size):
            calls = []
            batch = rows[start : start + self.config.batch_size]
            for first in range(0, len(batch), _SCRIPT_ROWS):
                keys: list[Any] = [index]
                packed = []
                for row in batch[first : first + _SCRIPT_ROWS]:
                    key, values = split_row(table, row)
                    keys.append(prefix + encode_key(key))
                    packed.append(pack(values))
                # The values travel as one argument, a line each (packed JSON has no raw newline).
                calls.append((keys, [expire_seconds, "\n".join(packed)]))
            written += sum(self._run(WRITE_SCRIPT, calls))
        return written

    def read_rows(self, name: str, keys: Sequence[WireKey]) -> ReadResult:
        prefix = self._prefix(name)
        with self._calls():
            values = self.client.mget([f"{prefix}#schema", f"{prefix}#newest", *(f"{prefix}:{encode_key(k)}" for k in keys)])
        schema, newest = values[0], values[1]
        if schema is None:
            return ReadResult(None, None, [None] * len(keys))
        rows = [None if v is None else unpack(v) for v in values[2:]]
        return ReadResult(schema.decode(), None if newest is None else int(newest), rows)

    def advance_newest(self, table: OnlineTable, ds: int) -> int:
        return int(self._run(NEWEST_SCRIPT, [([self._prefix(table.name) + "#newest"], [ds])])[0])

    def delete_older(self, table: OnlineTable, ds: int) -> int:
        index = self._prefix(table.name) + "#index"
        deleted = 0
        while True:
            with self._calls():
                names = self.client.zrangebyscore(index, "-inf", f"({ds}", start=0, num=self.config.batch_size)
            if not names:
                return deleted
            calls = [([index, *names[i : i + _SCRIPT_ROWS]], [ds]) for i in range(0, len(names), _SCRIPT_ROWS)]
            deleted += sum(self._run(SWEEP_SCRIPT, calls))

    def delete_keys(self, name: str, keys: Sequence[WireKey]) -> None:
        if not keys:
            return
        names = [f"{self._prefix(name)}:{encode_key(k)}" for k in keys]
        with self._calls():
            pipe = self.client.pipeline(transaction=True)
            pipe.delete(*names)
            pipe.zrem(self._prefix(name) + "#index", *names)
            pipe.execute()

    def _pattern(self, name: str, suffix: str) -> str:
        return re.sub(r"([*?\[\]\\])", r"\\\1", self._prefix(name)) + suffix

    def scan_keys(self, name: str, limit: int | None = None) -> list[WireKey]:
        start = len(self._prefix(name)) + 1
        keys: list[WireKey] = []
        with self._calls():
            for found in self.client.scan_iter(match=self._pattern(name, ":*"), count=5000):
                if limit is not None and len(keys) >= limit:
                    break
                keys.append(tuple(unpack(found[start:])))
        return keys

    def drop(self, name: str) -> None:
        pattern = self._pattern(name, "*")
        with self._calls():
            batch = []
            for found in self.client.scan_iter(match=pattern, count=5000):
                batch.append(found)
                if len(batch) >= 5000:
                    self.client.unlink(*batch)
                    batch = []
            if batch:
                self.client.unlink(*batch)

    def close(self) -> None:
        self.client.close()
