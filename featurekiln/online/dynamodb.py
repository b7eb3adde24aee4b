"""DynamoDB online store through boto3 (imported on first use; the standard credential chain).

Layout: one table ``<prefix><view>`` (on-demand billing) with the string
partition key ``pk`` (the entity key's JSON array). A row item holds ``ds`` (N,
day number), ``v`` (S, the packed ``[ds, feature_ts, *features]``) and ``exp``
(N, epoch seconds: the table's TTL attribute). The item ``#meta`` holds the
view's schema and newest completed push.

Newer wins through conditional writes: ``BatchWriteItem`` cannot carry
conditions, so each row is a ``PutItem`` with the condition
``attribute_not_exists(pk) OR ds < :ds OR (ds = :ds AND v <> :v)``, many in
flight at once from a thread pool; a failed condition counts the row as
skipped, throttled calls are retried with exponential backoff by botocore's
retry mode. (``TransactWriteItems`` would take 100 conditional puts per call
but costs twice the write units, and moto copies the whole table per
transaction.) The sweep scans for ``ds < newest`` and deletes with the same
condition; ``delete_keys`` uses ``BatchWriteItem`` and retries its unprocessed
items with exponential backoff; reads are ``BatchGetItem`` calls of 100 keys.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Literal, TypeVar

from pydantic import Field

from featurekiln.errors import OnlineStoreError
from featurekiln.online.codec import encode_key, pack, split_row, unpack
from featurekiln.online.errors import MissingClientError, StoreUnavailableError
from featurekiln.online.protocol import OnlineTable, ReadResult, StoreConfig, WireKey, WireRow

META = "#meta"
_PUT_CONDITION = "attribute_not_exists(pk) OR #ds < :ds OR (#ds = :ds AND #v <> :v)"
_NAMES = {"#ds": "ds", "#v": "v"}
_T = TypeVar("_T")


class DynamoDBConfig(StoreConfig):
    """``dynamodb://?region=eu-west-1&endpoint_url=http://127.0.0.1:5000&prefix=kiln_``."""

    type: Literal["dynamodb"] = "dynamodb"
    region: str | None = Field(default=None, description="AWS region; None: the standard chain (AWS_REGION, profile)")
    endpoint_url: str | None = Field(default=None, description="a DynamoDB-compatible endpoint, e.g. moto server")
    prefix: str = Field(default="kiln_", description="table name prefix")
    max_workers: int = Field(default=8, ge=1, le=64, description="concurrent write calls per process")
    max_attempts: int = Field(default=8, ge=1, description="attempts per call, exponential backoff between")
    timeout: float = Field(default=10.0, gt=0, description="connect and read timeout, seconds")

    def describe(self) -> str:
        where = self.endpoint_url or f"region {self.region or '(default)'}"
        return f"dynamodb ({where}, prefix {self.prefix!r})"


class DynamoDBStore:
    """The DynamoDB backend; one boto3 client (thread-safe, pooled) per store."""

    def __init__(self, config: DynamoDBConfig) -> None:
        try:
            import boto3
            import botocore.config
            import botocore.exceptions
        except ImportError as error:
            raise MissingClientError(
                f"the dynamodb online store ({config.origin}) needs boto3: pip install 'boto3==1.44.8'"
            ) from error
        self.config = config
        self._botocore = botocore.exceptions
        retry = botocore.config.Config(
            retries={"max_attempts": config.max_attempts, "mode": "standard"},
            max_pool_connections=max(10, 2 * config.max_workers),
            connect_timeout=config.timeout,
            read_timeout=config.timeout,
        )
        with self._calls():
            self.client = boto3.session.Session().client(
                "dynamodb", region_name=config.region, endpoint_url=config.endpoint_url, config=retry
            )
        self._pool: ThreadPoolExecutor | None = None

    @contextmanager
    def _calls(self) -> Iterator[None]:
        errors = self._botocore
        unreachable = (errors.EndpointConnectionError, errors.ConnectionClosedError, errors.ReadTimeoutError)
        try:
            yield
        except unreachable as error:
            raise StoreUnavailableError(
                f"cannot reach {self.config.describe()} ({self.config.origin}): {error}"
            ) from error
        except (errors.NoCredentialsError, errors.NoRegionError, errors.PartialCredentialsError) as error:
            raise OnlineStoreError(
                f"{self.config.describe()} ({self.config.origin}): {error}; set AWS credentials and a region "
                "(AWS_REGION or region=... in the setting)"
            ) from error
        except errors.ClientError as error:
            info = error.response.get("Error", {})
            raise OnlineStoreError(
                f"{self.config.describe()} refused {error.operation_name}: {info.get('Code')}: {info.get('Message')}"
            ) from error

    def _table(self, name: str) -> str:
        return f"{self.config.prefix}{name}"

    def _map(self, fn: Callable[[Any], _T], items: list[Any]) -> list[_T]:
        if len(items) <= 1 or self.config.max_workers == 1:
            return [fn(item) for item in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.config.max_workers, thread_name_prefix="kiln-dynamodb")
        return list(self._pool.map(fn, items))

    def _code(self, error: Exception) -> str:
        return getattr(error, "response", {}).get("Error", {}).get("Code", "")

    def ensure_table(self, table: OnlineTable) -> None:
        name = self._table(table.name)
        with self._calls():
            if self._exists(name):
                meta = self.client.get_item(TableName=name, Key={"pk": {"S": META}}, ConsistentRead=True).get("Item")
                if meta is not None and meta.get("schema", {}).get("S") != table.to_json():
                    self.drop(table.name)
            if not self._exists(name):
                self._create(name)
            self.client.update_item(
                TableName=name,
                Key={"pk": {"S": META}},
                UpdateExpression="SET #s = :s",
                ExpressionAttributeNames={"#s": "schema"},
                ExpressionAttributeValues={":s": {"S": table.to_json()}},
            )

    def _exists(self, name: str) -> bool:
        try:
            self.client.describe_table(TableName=name)
        except self._botocore.ClientError as error:
            if self._code(error) == "ResourceNotFoundException":
                return False
            raise
        return True

    def _create(self, name: str) -> None:
        try:
            self.client.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        except self._botocore.ClientError as error:
            if self._code(error) != "ResourceInUseException":  # created meanwhile by another process
                raise
        self.client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        self.client.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"}
        )

    def write_rows(self, table: OnlineTable, rows: Sequence[WireRow], expire_seconds: int = 0) -> int:
        name = self._table(table.name)
        expires = {"exp": {"N": str(int(time.time()) + expire_seconds)}} if expire_seconds > 0 else {}
        puts = []
        for row in rows:
            key, values = split_row(table, row)
            packed = pack(values)
            puts.append(
                {
                    "TableName": name,
                    "Item": {"pk": {"S": encode_key(key)}, "ds": {"N": str(values[0])}, "v": {"S": packed}, **expires},
                    "ConditionExpression": _PUT_CONDITION,
                    "ExpressionAttributeNames": _NAMES,
                    "ExpressionAttributeValues": {":ds": {"N": str(values[0])}, ":v": {"S": packed}},
                }
            )
        with self._calls():
            return sum(self._map(lambda put: self._conditional(self.client.put_item, put), puts))

    def _conditional(self, call: Callable[..., Any], request: dict[str, Any]) -> int:
        """1 if the conditional write was applied, 0 if its condition failed (botocore retries throttling)."""
        try:
            call(**request)
        except self._botocore.ClientError as error:
            if self._code(error) == "ConditionalCheckFailedException":
                return 0
            raise
        return 1

    def read_rows(self, name: str, keys: Sequence[WireKey]) -> ReadResult:
        table = self._table(name)
        names = [encode_key(k) for k in keys]
        wanted = list(dict.fromkeys([META, *names]))
        found: dict[str, dict[str, Any]] = {}
        with self._calls():
            try:
                for chunk in [wanted[i : i + 100] for i in range(0, len(wanted), 100)]:
                    request = {table: {"Keys": [{"pk": {"S": n}} for n in chunk]}}
                    attempt = 0
                    while request:
                        response = self.client.batch_get_item(RequestItems=request)
                        for item in response.get("Responses", {}).get(table, []):
                            found[item["pk"]["S"]] = item
                        request = response.get("UnprocessedKeys") or {}
                        if request:
                            attempt += 1
                            time.sleep(_backoff(attempt))
            except self._botocore.ClientError as error:
                if self._code(error) != "ResourceNotFoundException":
                    raise
        meta = found.get(META)
        if meta is None or "schema" not in meta:
            return ReadResult(None, None, [None] * len(keys))
        newest = int(meta["newest"]["N"]) if "newest" in meta else None
        rows = [unpack(found[n]["v"]["S"]) if n in found else None for n in names]
        return ReadResult(meta["schema"]["S"], newest, rows)

    def advance_newest(self, table: OnlineTable, ds: int) -> int:
        name = self._table(table.name)
        with self._calls():
            try:
                self.client.update_item(
                    TableName=name,
                    Key={"pk": {"S": META}},
                    UpdateExpression="SET #n = :n",
                    ConditionExpression="attribute_not_exists(#n) OR #n < :n",
                    ExpressionAttributeNames={"#n": "newest"},
                    ExpressionAttributeValues={":n": {"N": str(ds)}},
                )
            except self._botocore.ClientError as error:
                if self._code(error) != "ConditionalCheckFailedException":
                    raise
            item = self.client.get_item(TableName=name, Key={"pk": {"S": META}}, ConsistentRead=True)["Item"]
        return int(item["newest"]["N"])

    def delete_older(self, table: OnlineTable, ds: int) -> int:
        name = self._table(table.name)
        values = {":n": {"N": str(ds)}}
        deleted = 0
        with self._calls():
            for page in self.client.get_paginator("scan").paginate(
                TableName=name,
                FilterExpression="#ds < :n",
                ProjectionExpression="pk",
                ExpressionAttributeNames={"#ds": "ds"},
                ExpressionAttributeValues=values,
            ):
                deletes = [
                    {"TableName": name, "Key": {"pk": item["pk"]}, "ConditionExpression": "#ds < :n",
                     "ExpressionAttributeNames": {"#ds": "ds"}, "ExpressionAttributeValues": values}
                    for item in page.get("Items", [])
                ]
                deleted += sum(self._map(lambda d: self._conditional(self.client.delete_item, d), deletes))
        return deleted

    def delete_keys(self, name: str, keys: Sequence[WireKey]) -> None:
        table = self._table(name)
        requests = [{"DeleteRequest": {"Key": {"pk": {"S": n}}}} for n in dict.fromkeys(encode_key(k) for k in keys)]
        with self._calls():
            for start in range(0, len(requests), 25):
                pending: dict[str, Any] = {table: requests[start : start + 25]}
                attempt = 0
                while pending:
                    pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                    if pending:
                        attempt += 1
                        time.sleep(_backoff(attempt))

    def scan_keys(self, name: str, limit: int | None = None) -> list[WireKey]:
        keys: list[WireKey] = []
        with self._calls():
            try:
                for page in self.client.get_paginator("scan").paginate(TableName=self._table(name), ProjectionExpression="pk"):
                    keys += [tuple(unpack(item["pk"]["S"])) for item in page.get("Items", []) if item["pk"]["S"] != META]
                    if limit is not None and len(keys) >= limit:
                        return keys[:limit]
            except self._botocore.ClientError as error:
                if self._code(error) != "ResourceNotFoundException":
                    raise
        return keys

    def drop(self, name: str) -> None:
        table = self._table(name)
        with self._calls():
            try:
                self.client.delete_table(TableName=table)
            except self._botocore.ClientError as error:
                if self._code(error) != "ResourceNotFoundException":
                    raise
                return
            self.client.get_waiter("table_not_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 120})

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.client.close()


def _backoff(attempt: int, base: float = 0.05, cap: float = 5.0) -> float:
    """Exponential backoff with full jitter: up to ``base * 2**attempt`` seconds, at most ``cap``."""
    return random.uniform(0, min(cap, base * 2**attempt))
