"""Failures mid-push: the server killed and restarted, or the pushing process killed with SIGKILL.

After the failure every key holds either its old or its new row (never a mix,
never a newer one overwritten); running the push again converges to the snapshot.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from featurekiln.errors import OnlineStoreError
from featurekiln.online import open_store, parse_store_url
from featurekiln.online.errors import StoreUnavailableError
from featurekiln.online.push import write_batches
from featurekiln.online.read import decode_rows
from tests.online.servers import MotoServer, RedisServer, free_port
from tests.online.test_contract import TABLE, expected, push, snapshot

D1, D2 = date(2025, 3, 1), date(2025, 3, 2)
REPO = Path(__file__).resolve().parents[2]


def rows_online(url: str, count: int) -> list[dict | None]:
    """Every stored row of keys 0..count-1, as get_features would decode it, ignoring the newest-push filter."""
    store = open_store(parse_store_url(url))
    try:
        keys = [(u,) for u in range(count)]
        raw = store.read_rows(TABLE.name, keys)
        return decode_rows(TABLE, keys, type(raw)(raw.schema, None, raw.rows))
    finally:
        store.close()


def assert_each_key_old_or_new(url: str, old: range, new: range) -> tuple[int, int]:
    """Every key holds its D1 row or its D2 row; return how many of each."""
    counts = [0, 0]
    for user, row in enumerate(rows_online(url, max(old.stop, new.stop))):
        if row is not None and row == expected(user, D2) and user in new:
            counts[1] += 1
        else:
            assert row == (expected(user, D1) if user in old else None), f"key {user}: {row}"
            counts[0] += user in old
    return counts[0], counts[1]


def assert_converged(url: str, new: range, count: int) -> None:
    assert rows_online(url, count) == [expected(u, D2) if u in new else None for u in range(count)]


def push_until_killed(url: str, kill: callable, rows: list, batch: int) -> BaseException | None:  # noqa: ANN001
    """Write ``rows`` in batches from a thread; ``kill()`` runs once three batches went through."""
    started = threading.Event()

    def batches() -> Iterator[list]:
        for i in range(0, len(rows), batch):
            if i == 3 * batch:
                started.set()
            yield rows[i : i + batch]

    failure: list[BaseException] = []

    def run() -> None:
        try:
            write_batches(parse_store_url(url), TABLE, batches())
        except BaseException as error:  # noqa: BLE001 - returned to the test
            failure.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    started.wait(60)
    kill()
    thread.join(60)
    return failure[0] if failure else None


@pytest.mark.server
def test_redis_server_killed_mid_push_then_retry(tmp_path: Path) -> None:
    server = RedisServer(free_port(), tmp_path / "redis", durable=True)  # AOF, fsync always: survives SIGKILL
    server.start()
    try:
        url = f"{server.url}?batch_size=500"
        old, new = range(0, 10_000), range(2_500, 12_500)
        push(url, D1, snapshot(D1, old))
        failure = push_until_killed(url, server.kill, snapshot(D2, new), batch=500)
        assert isinstance(failure, StoreUnavailableError) and "KILN_ONLINE_STORE=redis://" in str(failure)
        server.start()
        kept, done = assert_each_key_old_or_new(url, old, new)
        assert done >= 3 * 500 and done < len(new)
        result = push(url, D2, snapshot(D2, new))
        assert result.written == len(new) - done and result.deleted == 2_500
        assert_converged(url, new, 12_500)
    finally:
        server.kill()


@pytest.mark.server
def test_moto_server_killed_mid_push_then_retry(tmp_path: Path) -> None:
    server = MotoServer(free_port(), tmp_path / "moto")
    server.start()
    try:
        url = f"dynamodb://?region=us-east-1&endpoint_url={server.endpoint_url}&max_attempts=2&timeout=5"
        new = range(0, 600)
        push(url, D1, snapshot(D1, new))
        failure = push_until_killed(url, server.kill, snapshot(D2, new), batch=50)
        assert isinstance(failure, OnlineStoreError) and "KILN_ONLINE_STORE=dynamodb://" in str(failure)
        server.start()  # moto keeps its tables in memory: the restarted endpoint is empty
        with pytest.raises(StoreUnavailableError, match="cannot reach"):
            server.kill()
            push(url, D2, snapshot(D2, new))
        server.start()
        assert push(url, D2, snapshot(D2, new)).written == len(new)
        assert_converged(url, new, len(new))
    finally:
        server.kill()


PUSHER = """
import sys, time
from datetime import date
from featurekiln.online import parse_store_url
from featurekiln.online.push import write_batches
from tests.online.test_contract import TABLE, snapshot

rows = snapshot(date(2025, 3, 2), range(int(sys.argv[2]), int(sys.argv[3])))
def batches():
    for i in range(0, len(rows), 20):
        yield rows[i : i + 20]
        print("batch", i // 20, flush=True)
        time.sleep(0.02)
write_batches(parse_store_url(sys.argv[1]), TABLE, batches())
print("done", flush=True)
"""


def test_pushing_process_killed_with_sigkill_then_retry(store: str) -> None:
    old, new = range(0, 400), range(100, 500)
    push(store, D1, snapshot(D1, old))
    process = subprocess.Popen(
        [sys.executable, "-c", PUSHER, store, str(new.start), str(new.stop)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("batch 4"):
            process.kill()
            break
    assert process.wait(30) == -9
    kept, done = assert_each_key_old_or_new(store, old, new)
    assert 100 <= done < len(new)
    result = push(store, D2, snapshot(D2, new))
    assert (result.written, result.deleted) == (len(new) - done, 100)
    assert_converged(store, new, 500)
