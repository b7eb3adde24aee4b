"""The assembler's grid against a brute force over the tiles themselves (no Spark): keys next to each other in
the flat grid never see each other's tiles, whatever day each key starts and however short the interval.

A nightly run assembles a few days from tiles that span the longest window, and
a key's grid ends as soon as the next key's windows cannot reach it
(:mod:`featurekiln.compute.windows`, step 2): keys whose first tile falls inside
the window before the interval, or inside the interval, are the cases where the
separating rows matter.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pytest

from featurekiln.compute.tiles import feature_columns
from featurekiln.compute.windows import assembler
from featurekiln.definitions.models import FeatureView

VIEW = FeatureView.model_validate({
    "name": "grid",
    "entity": {"name": "user", "keys": ["user_id"]},
    "source": {"path": "raw/grid", "format": "parquet", "timestamp": "ts"},
    "start": "2025-01-01",
    "ttl": "30d",
    "features": [
        {"name": "n_7d", "agg": "count", "window": "7d"},
        {"name": "total_7d", "agg": "sum", "expr": "amount", "window": "7d"},
        {"name": "top_30d", "agg": "max", "expr": "amount", "window": "30d"},
    ],
})
EPOCH = date(1970, 1, 1)
BASE = (date(2025, 3, 1) - EPOCH).days
WIDTHS = (7, 7, 30)


def tiles(seed: int) -> pa.RecordBatch:
    """200 keys, each with 1-12 tiles on distinct days of ``BASE - 40 .. BASE + 20`` (keys that start before,
    inside and after the intervals below); sums of amounts of mixed magnitudes, maxima that fall with the key
    (a key that saw its predecessor's last tile would show a larger one); nulls."""
    rng = np.random.default_rng(seed)
    keys, days = [], []
    for key in range(200):
        n = int(rng.integers(1, 13))
        keys += [key] * n
        days += sorted(rng.choice(np.arange(BASE - 40, BASE + 21), n, replace=False).tolist())
    size = len(days)
    amount = rng.uniform(-1e6, 1e6, size) * rng.choice([1e-6, 1.0, 1e6], size)
    missing = rng.random(size) < 0.15
    falling = (200 - np.array(keys)) * 1000.0 + rng.uniform(0, 1, size)
    columns = [feature_columns(VIEW, i)[0] for i in range(3)]
    return pa.RecordBatch.from_arrays(
        [pa.array(keys, pa.int64()), pa.array(days, pa.int32()), pa.array(rng.integers(1, 5, size), pa.int64()),
         pa.array(amount, mask=missing), pa.array(falling, mask=missing)],
        names=["user_id", "_day", *columns],
    )


def brute_force(batch: pa.RecordBatch, first: int, stop: int) -> dict[tuple[int, int], tuple]:
    """Per published (key, day): the features from the key's tiles in each window, floats added oldest first."""
    rows = batch.to_pylist()
    columns = [feature_columns(VIEW, i)[0] for i in range(3)]
    out = {}
    for key in sorted({r["user_id"] for r in rows}):
        mine = [r for r in rows if r["user_id"] == key]
        for ds in range(first, stop):
            seen = [r for r in mine if r["_day"] <= ds]
            if not seen or ds - seen[-1]["_day"] >= VIEW.ttl_days:
                continue
            window = [[r for r in seen if r["_day"] > ds - width] for width in WIDTHS]
            count = sum(r[columns[0]] for r in window[0])
            sums = [r[columns[1]] for r in window[1] if r[columns[1]] is not None]
            total = None
            if sums:
                total = 0.0
                for value in sums:
                    total += value
            tops = [r[columns[2]] for r in window[2] if r[columns[2]] is not None]
            out[(key, ds)] = (count, total, max(tops) if tops else None)
    return out


@pytest.mark.parametrize("first, days", [(BASE, 1), (BASE, 3), (BASE - 20, 3), (BASE + 5, 2), (BASE - 45, 80)])
@pytest.mark.parametrize("seed", [1, 2])
def test_the_grid_gives_each_key_its_own_windows(first: int, days: int, seed: int) -> None:
    stop = first + days
    every = tiles(seed)
    day = every.column("_day").to_numpy()
    batch = every.filter(pa.array((day > first - VIEW.horizon_days) & (day < stop)))  # as assembly_input reads them
    assemble = assembler(VIEW, (EPOCH + timedelta(days=first), EPOCH + timedelta(days=stop)))
    got = {}
    for out in assemble(iter([batch.slice(i, 50) for i in range(0, batch.num_rows, 50)])):
        for row in out.to_pylist():
            got[(row["user_id"], (row["ds"] - EPOCH).days)] = (row["n_7d"], row["total_7d"], row["top_30d"])
    want = brute_force(batch, first, stop)
    assert want  # the interval publishes rows
    assert got == want
