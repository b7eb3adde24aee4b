"""Deterministic sample event sources: purchases (parquet) and clicks (CSV).

The generators are pure numpy/pandas (no Spark) and depend only on their
arguments: the same ``seed`` always gives identical frames. The data is shaped
like real event logs and deliberately contains the cases that feature
pipelines get wrong:

- skewed keys (Zipf-like users and merchants, a few dominant countries);
- keys that go quiet for weeks and then come back;
- same-timestamp ties for one key (equal ``event_ts``, different values);
- events exactly at midnight ``00:00:00.000000`` UTC and at ``23:59:59.999999``;
- nulls in value columns (``amount``, ``dwell_ms``).

Every ``event_ts`` is a tz-aware UTC timestamp with microsecond precision.
"""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from featurekiln.settings import Settings
from featurekiln.warehouse_files import files_for

MICROS_PER_DAY = 86_400_000_000
MICROS_PER_HOUR = 3_600_000_000
PURCHASES_PER_USER_DAY = 0.58
CLICKS_PER_USER_DAY = 0.58
MIN_ROWS = 64

MERCHANTS = 50
FIRST_MERCHANT_ID = 101
COUNTRIES = ("US", "GB", "DE", "FR", "BR", "IN", "JP")
COUNTRY_WEIGHTS = (0.45, 0.15, 0.12, 0.10, 0.08, 0.06, 0.04)
CATEGORIES = ("grocery", "electronics", "fashion", "home", "books", "toys", "beauty", "sports")
CATEGORY_WEIGHTS = (0.30, 0.12, 0.15, 0.12, 0.10, 0.07, 0.08, 0.06)
STATUSES = ("completed", "refunded", "pending")
STATUS_WEIGHTS = (0.90, 0.06, 0.04)
FIXED_PAGES = ("/", "/search", "/cart", "/checkout", "/account", "/help")
PRODUCT_PAGES = 40

# Hour-of-day activity (UTC): quiet at night, peaks in the evening.
_HOUR_WEIGHTS = np.array(
    [2, 1, 1, 1, 1, 2, 3, 5, 6, 6, 6, 7, 8, 7, 6, 6, 7, 8, 9, 10, 10, 9, 6, 4], dtype=float
)

PURCHASES_SCHEMA = pa.schema(
    [
        ("purchase_id", pa.string()),
        ("user_id", pa.int64()),
        ("merchant_id", pa.int64()),
        ("country", pa.string()),
        ("category", pa.string()),
        ("amount", pa.float64()),
        ("status", pa.string()),
        ("event_ts", pa.timestamp("us", tz="UTC")),
    ]
)
CSV_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _zipf_weights(size: int, exponent: float) -> np.ndarray:
    """Normalised weights ``1 / rank**exponent`` for ranks 1..size."""
    weights = 1.0 / np.arange(1, size + 1, dtype=float) ** exponent
    return weights / weights.sum()


def _row_count(users: int, days: int, rate: float) -> int:
    return max(MIN_ROWS, int(round(users * days * rate)))


def _check_args(days: int, users: int) -> None:
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if users < 1:
        raise ValueError(f"users must be at least 1, got {users}")


def _time_of_day(rng: np.random.Generator, n: int) -> np.ndarray:
    """Microseconds since midnight, following the diurnal activity curve."""
    hours = rng.choice(24, size=n, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())
    return hours * MICROS_PER_HOUR + rng.integers(0, MICROS_PER_HOUR, size=n)


def _pin_day_edges(rng: np.random.Generator, micros: np.ndarray, days: int) -> None:
    """Move some events to exactly 00:00:00.000000 and to 23:59:59.999999 (in place)."""
    n = len(micros)
    picks = rng.choice(n, size=min(n, 2 * max(days, n // 200)), replace=False)
    half = len(picks) // 2
    micros[picks[:half]] = 0
    micros[picks[half:]] = MICROS_PER_DAY - 1


def _utc(start: date, day: np.ndarray, micros: np.ndarray) -> pd.Series:
    """UTC microsecond timestamps ``start + day days + micros``."""
    base = pd.Timestamp(start, tz="UTC").as_unit("us").value // 1_000
    values = base + day.astype(np.int64) * MICROS_PER_DAY + micros.astype(np.int64)
    return pd.Series(pd.to_datetime(values, unit="us", utc=True)).astype("datetime64[us, UTC]")


def _quiet_mask(
    rng: np.random.Generator, user: np.ndarray, day: np.ndarray, ranked: np.ndarray, days: int
) -> np.ndarray:
    """True for the events that fall into a multi-week quiet spell of an active user.

    One in forty users, chosen among the most active tenth, gets one gap of
    15-35 days (at most half the period), after which it comes back.
    """
    quiet = np.zeros(len(user), dtype=bool)
    if days < 4:
        return quiet
    active = ranked[: max(1, len(ranked) // 10)]
    chosen = rng.choice(active, size=max(1, len(ranked) // 40), replace=False)
    for uid in chosen:
        length = int(min(rng.integers(15, 36), days // 2))
        begin = int(rng.integers(1, max(2, days - length)))
        quiet |= (user == uid) & (day >= begin) & (day < begin + length)
    return quiet


def purchases_frame(start: date, days: int, users: int, seed: int) -> pd.DataFrame:
    """Generate purchase events for ``days`` days from ``start`` (UTC).

    Args:
        start: first day of events (UTC).
        days: number of days covered; every event falls in ``[start, start + days)``.
        users: number of distinct users (ids ``1..users``), Zipf-like activity.
        seed: random seed; the same arguments always give an identical frame.

    Returns:
        Columns ``purchase_id`` (str), ``user_id`` (int64), ``merchant_id``
        (int64, ~50 merchants, skewed), ``country`` (str), ``category`` (str),
        ``amount`` (float64, ~3% null), ``status`` (str, mostly ``completed``)
        and ``event_ts`` (UTC, microseconds), sorted by ``event_ts``. The most
        active user has groups of events with identical ``event_ts``.

    Raises:
        ValueError: ``days`` or ``users`` is below 1.
    """
    _check_args(days, users)
    rng = np.random.default_rng(seed)
    n = _row_count(users, days, PURCHASES_PER_USER_DAY)
    ranked = rng.permutation(users).astype(np.int64) + 1  # ranked[0] is the most active user
    user = ranked[rng.choice(users, size=n, p=_zipf_weights(users, 0.7))]
    day = rng.integers(0, days, size=n)
    micros = _time_of_day(rng, n)
    _pin_day_edges(rng, micros, days)

    home = rng.choice(len(COUNTRIES), size=users + 1, p=COUNTRY_WEIGHTS)
    abroad = rng.random(n) < 0.05
    country_idx = np.where(abroad, rng.choice(len(COUNTRIES), size=n, p=COUNTRY_WEIGHTS), home[user])
    merchants = rng.permutation(MERCHANTS) + FIRST_MERCHANT_ID
    merchant = merchants[rng.choice(MERCHANTS, size=n, p=_zipf_weights(MERCHANTS, 1.0))]
    category_idx = rng.choice(len(CATEGORIES), size=n, p=CATEGORY_WEIGHTS)
    amount = np.round(rng.lognormal(mean=3.2, sigma=0.9, size=n), 2)
    amount[rng.random(n) < 0.03] = np.nan
    status_idx = rng.choice(len(STATUSES), size=n, p=STATUS_WEIGHTS)

    keep = ~_quiet_mask(rng, user, day, ranked, days)
    frame = pd.DataFrame(
        {
            "user_id": user[keep],
            "merchant_id": merchant[keep].astype(np.int64),
            "country": np.asarray(COUNTRIES, dtype=object)[country_idx[keep]],
            "category": np.asarray(CATEGORIES, dtype=object)[category_idx[keep]],
            "amount": amount[keep],
            "status": np.asarray(STATUSES, dtype=object)[status_idx[keep]],
            "event_ts": _utc(start, day[keep], micros[keep]),
        }
    )
    frame = pd.concat([frame, _purchase_ties(rng, start, days, int(ranked[0]), home)], ignore_index=True)
    frame = frame.sort_values("event_ts", kind="mergesort", ignore_index=True)
    frame.insert(0, "purchase_id", [f"P{i:08d}" for i in range(len(frame))])
    return _typed_purchases(frame)


def _purchase_ties(rng: np.random.Generator, start: date, days: int, user: int, home: np.ndarray) -> pd.DataFrame:
    """Groups of three completed purchases of ``user`` sharing one ``event_ts``.

    One group every 7 days; within a group the amounts and categories differ.
    """
    group_days = np.arange(0, days, 7)
    reps = 3
    day = np.repeat(group_days, reps)
    micros = np.repeat(_time_of_day(rng, len(group_days)), reps)
    n = len(day)
    categories = np.asarray(CATEGORIES, dtype=object)
    category = np.concatenate([rng.choice(categories, size=reps, replace=False) for _ in group_days]) if n else []
    amount = np.round(rng.uniform(5, 200, size=n), 2) + np.tile(np.arange(reps) * 0.01, len(group_days))
    merchant = np.repeat(rng.integers(FIRST_MERCHANT_ID, FIRST_MERCHANT_ID + MERCHANTS, size=len(group_days)), reps)
    return pd.DataFrame(
        {
            "user_id": np.full(n, user, dtype=np.int64),
            "merchant_id": merchant.astype(np.int64),
            "country": np.full(n, COUNTRIES[home[user]], dtype=object),
            "category": category,
            "amount": amount,
            "status": np.full(n, "completed", dtype=object),
            "event_ts": _utc(start, day, micros),
        }
    )


def _typed_purchases(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(
        {
            "purchase_id": str,
            "user_id": "int64",
            "merchant_id": "int64",
            "country": str,
            "category": str,
            "amount": "float64",
            "status": str,
            "event_ts": "datetime64[us, UTC]",
        }
    ).reset_index(drop=True)


def clicks_frame(start: date, days: int, users: int, seed: int) -> pd.DataFrame:
    """Generate click events for ``days`` days from ``start`` (UTC).

    Args:
        start: first day of events (UTC).
        days: number of days covered; every event falls in ``[start, start + days)``.
        users: number of distinct users (ids ``1..users``), Zipf-like activity.
        seed: random seed; the same arguments always give an identical frame.

    Returns:
        Columns ``user_id`` (int64), ``page`` (str), ``dwell_ms`` (nullable
        ``Int64``, ~10% null) and ``event_ts`` (UTC, microseconds), sorted by
        ``event_ts``.

    Raises:
        ValueError: ``days`` or ``users`` is below 1.
    """
    _check_args(days, users)
    rng = np.random.default_rng(seed + 1_000_003)
    n = _row_count(users, days, CLICKS_PER_USER_DAY)
    ranked = rng.permutation(users).astype(np.int64) + 1
    user = ranked[rng.choice(users, size=n, p=_zipf_weights(users, 0.7))]
    day = rng.integers(0, days, size=n)
    micros = _time_of_day(rng, n)
    _pin_day_edges(rng, micros, days)

    pages = np.asarray([*FIXED_PAGES, *(f"/product/{k}" for k in range(1, PRODUCT_PAGES + 1))], dtype=object)
    page = pages[rng.choice(len(pages), size=n, p=_zipf_weights(len(pages), 0.9))]
    dwell = np.maximum(50, rng.lognormal(mean=8.5, sigma=1.0, size=n)).astype(np.int64)
    dwell_null = rng.random(n) < 0.10

    keep = ~_quiet_mask(rng, user, day, ranked, days)
    frame = pd.DataFrame(
        {
            "user_id": user[keep],
            "page": page[keep],
            "dwell_ms": pd.array(dwell[keep], dtype="Int64"),
            "event_ts": _utc(start, day[keep], micros[keep]),
        }
    )
    frame.loc[dwell_null[keep], "dwell_ms"] = pd.NA
    frame = frame.sort_values("event_ts", kind="mergesort", ignore_index=True)
    return frame.astype({"user_id": "int64", "page": str, "dwell_ms": "Int64", "event_ts": "datetime64[us, UTC]"})


def write_sample_sources(
    warehouse: str | Path | Settings,
    *,
    start: date = date(2025, 1, 1),
    days: int = 90,
    users: int = 2000,
    seed: int = 7,
) -> dict[str, int]:
    """Write the sample sources below a warehouse, replacing earlier output.

    Writes ``<warehouse>/raw/purchases/part-00000.parquet`` (timestamps as UTC
    microseconds) and ``<warehouse>/raw/clicks/part-00000.csv`` (with a header,
    ``event_ts`` like ``2025-01-03T00:00:00.000000Z``, an empty field for a null
    ``dwell_ms``).

    Args:
        warehouse: a local warehouse root (created if missing), or Settings whose
            warehouse may also be in an object store (``s3a://bucket/prefix``).
        start: first day of events (UTC).
        days: number of days of events.
        users: number of distinct users.
        seed: random seed.

    Returns:
        Rows written per source: ``{"purchases": n, "clicks": m}``.
    """
    settings = warehouse if isinstance(warehouse, Settings) else Settings(warehouse=str(warehouse))
    files = files_for(settings.warehouse, settings)
    purchases = purchases_frame(start, days, users, seed)
    clicks = clicks_frame(start, days, users, seed)

    purchases_dir = settings.warehouse_path("raw", "purchases")
    table = pa.Table.from_pandas(purchases, schema=PURCHASES_SCHEMA, preserve_index=False)
    buffer = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(None), buffer)
    files.remove_tree(purchases_dir)
    files.write(f"{purchases_dir}/part-00000.parquet", buffer.getvalue())

    clicks_dir = settings.warehouse_path("raw", "clicks")
    text = clicks.assign(event_ts=clicks["event_ts"].dt.strftime(CSV_TIMESTAMP_FORMAT))
    files.remove_tree(clicks_dir)
    files.write(f"{clicks_dir}/part-00000.csv", text.to_csv(index=False, na_rep="").encode("utf-8"), "text/csv")
    return {"purchases": len(purchases), "clicks": len(clicks)}
