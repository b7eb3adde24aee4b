"""Sliding-window kernels over a flat numpy array: every one O(1) per element whatever the window.

A window of ``width`` ending at index ``t`` covers ``max(0, t - width + 1) .. t``.
The callers (:mod:`featurekiln.compute.windows`) lay rows out so that this window
holds exactly the data a snapshot aggregates; the kernels know nothing of keys
or days.

- :func:`running_total` for integers: an inclusive cumulative sum minus itself
  shifted by ``width``. Exact: int64 arithmetic wraps modulo 2**64 on the way,
  and the difference is the true total whenever that total fits in int64.
- :func:`block_scan` (van Herk / Gil-Werman) for any associative ufunc with an
  identity: cut the array into blocks of ``width``; a window is the suffix scan
  of its first block from its start, merged with the prefix scan of the next
  block up to its end. Exact for min, max and exact number types.
- :func:`ordered_sum` for floats: the window's values added oldest first, so the
  rounding does not depend on the layout (O(width) per window, only for the
  windows asked for).
- :func:`latest_present` / :func:`earliest_present`: the index of the last (first)
  marked element inside the window, by a running max (min) of indices.
- :func:`distinct_counts`: exact distinct counts by a difference array.
"""

from __future__ import annotations

import numpy as np

# ordered_sum sums the windows asked for one by one when they are fewer than 1/SPARSE_WINDOWS of the array
# (a gather per value costs a few times an add of whole slices).
SPARSE_WINDOWS = 4


def running_total(values: np.ndarray, width: int) -> np.ndarray:
    """Window sums of an integer array, exact (see the module docstring)."""
    total = np.cumsum(values, dtype=np.int64)
    if width < len(total):
        total[width:] -= total[:-width].copy()
    return total


def block_scan(values: np.ndarray, width: int, op: np.ufunc, identity: object) -> np.ndarray:
    """Window ``op``-reductions of ``values`` (``op`` associative, ``identity`` its neutral element)."""
    size = len(values)
    if width <= 1 or size == 0:
        return values.copy()
    padded = np.full(-(-size // width) * width, identity, dtype=values.dtype)
    padded[:size] = values
    blocks = padded.reshape(-1, width)
    prefix = op.accumulate(blocks, axis=1).ravel()
    suffix = op.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
    out = prefix[:size].copy()  # windows that start at a block start (or before index 0)
    if size >= width:
        # A window ending at a block end is that whole block: merge with the identity.
        prefix[width - 1 :: width] = identity
        out[width - 1 :] = op(suffix[: size - width + 1], prefix[width - 1 : size])
    return out


def ordered_sum(values: np.ndarray, width: int, at: np.ndarray | None = None) -> np.ndarray:
    """Window sums of a float array, added oldest first: ``((0 + v[t-w+1]) + ...) + v[t]``; only those of the
    windows ending at the indices ``at`` when given (the same values, bit for bit).

    O(width) per window, unlike the other kernels, for one reason: the result
    depends only on the window's values in order, and the empty rows between
    tiles (zeros) change nothing, so a snapshot's float sum is the same bit for
    bit whatever range, chunking or grid layout computed it (a backfill, a
    nightly run and an Airflow chunk must give identical tables). A block scan
    is O(1) per element but rounds differently with every block alignment.
    Hence ``at``: a nightly run publishes a few days of a grid that spans the
    longest window, and sums only the windows it publishes.
    """
    size = len(values)
    if at is not None and len(at) * SPARSE_WINDOWS < size:
        sums = np.zeros(len(at), dtype=values.dtype)
        for lag in range(min(width, size) - 1, -1, -1):  # a window's start before index 0 adds zeros: no change
            start = at - lag
            sums += np.where(start >= 0, values[np.maximum(start, 0)], 0)
        return sums
    out = np.zeros(size, dtype=values.dtype)
    for lag in range(min(width, size) - 1, -1, -1):
        out[lag:] += values[: size - lag]
    return out if at is None else out[at]


def latest_present(present: np.ndarray, width: int) -> np.ndarray:
    """Per index, the last index ``<= t`` with ``present`` inside the window, else -1."""
    size = len(present)
    marks = np.where(present, np.arange(size), -1)
    latest = np.maximum.accumulate(marks) if size else marks
    start = np.arange(size) - (width - 1)
    return np.where(latest >= start, latest, -1)


def earliest_present(present: np.ndarray, width: int) -> np.ndarray:
    """Per index, the first index inside the window with ``present``, else -1."""
    size = len(present)
    marks = np.where(present, np.arange(size), size)
    following = np.minimum.accumulate(marks[::-1])[::-1] if size else marks
    index = np.arange(size)
    earliest = following[np.maximum(index - (width - 1), 0)]
    return np.where(earliest <= index, earliest, -1)


def distinct_counts(positions: np.ndarray, codes: np.ndarray, width: int, size: int) -> np.ndarray:
    """Distinct counts per window of ``size`` indices.

    Args:
        positions: the index of every (index, value) occurrence, non-decreasing.
        codes: an integer code per occurrence; equal values have equal codes.
        width: the window.
        size: the length of the output.

    An occurrence at ``p`` whose value occurs next at ``q`` (or never) is the
    value's latest occurrence in the windows ending at ``p .. min(q, p + width) - 1``:
    +1 at ``p`` and -1 at that end in a difference array, whose running sum is
    the count. Each value is counted once per window, from its latest occurrence.
    """
    if len(positions) == 0:
        return np.zeros(size, dtype=np.int64)
    order = np.argsort(codes, kind="stable")  # stable: positions stay ascending per code
    pos, code = positions[order], codes[order]
    following = np.full(len(pos), np.iinfo(np.int64).max, dtype=np.int64)
    same = code[1:] == code[:-1]
    following[:-1][same] = pos[1:][same]
    end = np.minimum(following, pos + width)
    diff = np.bincount(pos, minlength=size + 1) - np.bincount(np.minimum(end, size), minlength=size + 1)
    return np.cumsum(diff[:size]).astype(np.int64)
