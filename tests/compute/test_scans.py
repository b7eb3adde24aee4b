"""The window kernels against a brute-force loop over every window (no Spark)."""

from __future__ import annotations

import numpy as np
import pytest

from featurekiln.compute import scans

WIDTHS = [1, 2, 3, 7, 16, 40]


def windows(size: int, width: int) -> list[slice]:
    return [slice(max(0, t - width + 1), t + 1) for t in range(size)]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("size", [0, 1, 5, 33])
def test_kernels_match_brute_force(size: int, width: int) -> None:
    rng = np.random.default_rng(size * 100 + width)
    ints = rng.integers(-(2**62), 2**62, size)
    floats = rng.normal(0, 1e6, size)
    present = rng.random(size) < 0.3
    span = windows(size, width)

    small = ints // width  # every window total fits in int64, the running total does not
    assert scans.running_total(small, width).tolist() == [sum(int(v) for v in small[w]) for w in span]
    np.testing.assert_allclose(scans.block_scan(floats, width, np.add, 0.0), [floats[w].sum() for w in span], rtol=1e-12)
    assert scans.block_scan(ints, width, np.minimum, np.iinfo(np.int64).max).tolist() == [ints[w].min() for w in span]
    assert scans.block_scan(ints, width, np.maximum, np.iinfo(np.int64).min).tolist() == [ints[w].max() for w in span]
    marked = [np.flatnonzero(present[w]) + w.start for w in span]
    assert scans.latest_present(present, width).tolist() == [int(m[-1]) if len(m) else -1 for m in marked]
    assert scans.earliest_present(present, width).tolist() == [int(m[0]) if len(m) else -1 for m in marked]


@pytest.mark.parametrize("width", WIDTHS)
def test_distinct_counts_match_brute_force(width: int) -> None:
    rng = np.random.default_rng(width)
    size = 50
    positions = np.sort(rng.integers(0, size, 120))
    codes = rng.integers(0, 6, 120)
    got = scans.distinct_counts(positions, codes, width, size)
    want = [len({int(c) for p, c in zip(positions, codes, strict=True) if w.start <= p < w.stop}) for w in windows(size, width)]
    assert got.tolist() == want


def test_float_window_sums_do_not_cancel_against_values_outside_the_window() -> None:
    """A prefix sum minus a shifted prefix sum would lose the small values next to 1e17."""
    values = np.array([1e17, -1e17, 0.25, 0.5, 0.125, 1.0])
    assert scans.block_scan(values, 2, np.add, 0.0).tolist()[3:] == [0.75, 0.625, 1.125]


def test_ordered_sum_is_the_same_bit_for_bit_whatever_the_layout() -> None:
    """Zeros between values (empty rows) and where the array starts never change a float window sum."""
    rng = np.random.default_rng(3)
    values = rng.uniform(-1e6, 1e6, 40) * rng.choice([1e-9, 1.0, 1e9], 40)
    width = 7
    plain = scans.ordered_sum(values, width)
    spaced = np.zeros(len(values) * 2)
    spaced[1::2] = values  # every value followed by an empty row: windows of 2 * width rows hold the same values
    assert np.array_equal(scans.ordered_sum(spaced, 2 * width)[1::2], plain)
    shifted = np.concatenate([np.zeros(5), values])
    assert np.array_equal(scans.ordered_sum(shifted, width)[5:], plain)
    brute = [sum(values[max(0, t - width + 1): t + 1], 0.0) for t in range(len(values))]
    assert np.array_equal(plain, np.array(brute))


def test_ordered_sum_of_some_windows_is_the_same_bit_for_bit() -> None:
    """Summing only the windows asked for (a nightly run's few published rows) gives the bits of the whole scan,
    windows that start before the array included."""
    rng = np.random.default_rng(4)
    values = rng.uniform(-1e6, 1e6, 400) * rng.choice([1e-9, 1.0, 1e9], 400)
    values[rng.random(400) < 0.5] = 0.0  # empty rows
    for width in (1, 7, 30, 500):
        whole = scans.ordered_sum(values, width)
        at = np.sort(rng.choice(400, 12, replace=False))
        at[0] = 2  # a window that starts before index 0
        assert len(at) * scans.SPARSE_WINDOWS < len(values)  # the windows are summed one by one
        assert np.array_equal(scans.ordered_sum(values, width, at), whole[at])
        brute = [sum(values[max(0, t - width + 1): t + 1], 0.0) for t in at]
        assert np.array_equal(scans.ordered_sum(values, width, at), np.array(brute))
        dense = np.arange(0, 400, 2)  # most windows: the whole scan, indexed
        assert np.array_equal(scans.ordered_sum(values, width, dense), whole[dense])
