"""``kiln get``: one key or a keys file, a table or JSON (SQLite store; no Spark)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from featurekiln.cli import app
from featurekiln.online import close_stores, parse_store_url
from featurekiln.online.push import push_rows
from tests.online.test_contract import PAIR, wire

D1 = date(2025, 3, 1)


@pytest.fixture
def online(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'online.db'}"
    rows = [wire(PAIR, [m, c], D1, [m, m / 4]) for m in range(3) for c in ("DE", "FR")]
    push_rows(parse_store_url(url), PAIR, D1, rows)
    monkeypatch.setenv("KILN_ONLINE_STORE", url)
    yield url
    close_stores()


def kiln(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_get_one_key_as_json(online: str) -> None:
    code, output = kiln("get", "merchant_country", "merchant_id=2", "country=FR", "--json")
    assert code == 0
    assert json.loads(output) == [
        {"merchant_id": 2, "country": "FR", "ds": "2025-03-01", "feature_ts": "2025-03-02T00:00:00+00:00",
         "orders_1d": 2, "spend_7d": 0.5}
    ]


def test_get_many_keys_from_a_file_with_nulls_for_missing(online: str, tmp_path: Path) -> None:
    csv_file = tmp_path / "keys.csv"
    csv_file.write_text("merchant_id,country\n1,DE\n9,DE\n")
    code, output = kiln("get", "merchant_country", "--keys-file", str(csv_file), "--json", "-f", "orders_1d")
    assert code == 0
    assert json.loads(output) == [
        {"merchant_id": 1, "country": "DE", "ds": "2025-03-01", "feature_ts": "2025-03-02T00:00:00+00:00", "orders_1d": 1},
        None,
    ]
    jsonl = tmp_path / "keys.jsonl"
    jsonl.write_text('{"merchant_id": 0, "country": "FR"}\n')
    code, output = kiln("get", "merchant_country", "--keys-file", str(jsonl))
    assert code == 0 and "1 of 1 key(s) online" in output


def test_get_reports_a_missing_key_column(online: str) -> None:
    code, output = kiln("get", "merchant_country", "merchant_id=1")
    assert code != 0
    assert "missing country" in str(CliRunner().invoke(app, ["get", "merchant_country", "merchant_id=1"]).exception)
