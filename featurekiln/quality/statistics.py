"""Per-day feature statistics: the interface the monitors and the report plots use (pure records).

This module holds the agreed interface only: the statistics of one feature on one
snapshot day, and ``read_stats``. The statistics are computed by the quality
gate's pass and stored in ``<warehouse>/_kiln/stats`` by the statistics work
(issue 39, points 1-2), which replaces this module with the full one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from featurekiln.settings import Settings


@dataclass(frozen=True)
class FeatureDayStats:
    """The statistics of one feature on one snapshot day (``min`` .. ``p95`` over its non-null values)."""

    view: str
    ds: date
    feature: str
    rows: int
    nulls: int
    min: float | None
    max: float | None
    mean: float | None
    stddev: float | None
    p50: float | None
    p95: float | None
    distinct: int | None
    fingerprint: str

    def value(self, stat: str) -> float | None:
        """The statistic ``stat``: ``rows``, ``null_fraction`` (None for a day without rows), ``mean``,
        ``stddev``, ``p50``, ``p95`` or ``distinct``.

        Raises:
            ValueError: ``stat`` is not one of these.
        """
        if stat == "rows":
            return float(self.rows)
        if stat == "null_fraction":
            return self.nulls / self.rows if self.rows else None
        if stat in ("mean", "stddev", "p50", "p95", "distinct"):
            found = getattr(self, stat)
            return None if found is None else float(found)
        raise ValueError(f"unknown statistic {stat!r}")


def read_stats(
    settings: Settings,
    view: str,
    *,
    features: Sequence[str] | None = None,
    start: date | None = None,
    end: date | None = None,
) -> list[FeatureDayStats]:
    """The stored statistics of ``view`` (of ``features``, days ``start`` .. ``end`` included), without Spark.

    Nothing is stored by this interface module: it returns no statistics.
    """
    return []
