"""A streaming, mergeable, log-bucketed histogram for latency percentiles.

`LogHistogram` keeps a count per geometric bucket (the DDSketch scheme) and answers quantile
queries with a bounded *relative* error, in memory that does not grow with the number of values.

Guarantees
----------
* **Relative error.** With ``gamma = (1 + rel_err) / (1 - rel_err)``, regular bucket ``i``
  (``i = 0 .. n-1``) holds the values in ``(min_value * gamma**(i-1), min_value * gamma**i]`` and
  reports them as ``min_value * 2 * gamma**i / (gamma + 1)``, which is within ``rel_err`` of
  every value in the bucket (the bound is reached at the two edges). A quantile of values that
  lie in ``[min_value, max_value]`` is therefore reported within ``rel_err`` relative error of
  the exact quantile defined below (up to floating-point rounding, a factor 1 + O(1e-12), for
  values that sit on a bucket edge).
* **Underflow / overflow.** Values below ``min_value`` (0 included) share one underflow bucket,
  reported as the exact minimum seen; values above ``max_value`` share one overflow bucket,
  reported as the exact maximum seen. Quantiles that fall in these buckets are exact only when
  the bucket holds a single distinct value.
* **Memory.** One fixed ``int64`` array of ``n + 2`` counts, ``n = ceil(log(max_value /
  min_value) / log(gamma)) + 1`` (1,383 regular buckets, about 11 kB, for the defaults), plus
  the exact count, sum, minimum and maximum. Adding values never allocates more state.
* **Mergeable.** Merging histograms with identical parameters adds their counts: the histogram
  of a union is bit-identical (counts, count, min, max) to the merge of the histograms of its
  parts, in any order. The sum is a float64 accumulation, so it agrees to rounding.

Quantile definition
-------------------
Nearest rank: for ``q`` in ``[0, 1]`` and ``count`` values, the ``q``-quantile is the smallest
value ``v`` such that at least ``ceil(q * count)`` values are ``<= v`` (the ``k``-th smallest
value, ``k = max(1, ceil(q * count))``); ``q = 0`` gives the minimum and ``q = 1`` the maximum.
``q * count`` within a few float64 ulps of an integer is taken as that integer, so that
``quantile(0.07)`` of 100 values is the 7th smallest, not the 8th. The histogram reports the
representative value of the bucket holding that value, clamped into ``[min, max]`` seen. An
empty histogram answers ``nan``.

Values are latencies in milliseconds by convention; nothing in the code depends on the unit.
NaN, negative and infinite values are rejected with `ValueError`.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import numpy as np

from . import fastmetrics

__all__ = ["LogHistogram", "nearest_rank"]

# |q*count - round(q*count)| below this many ulps of q*count counts as an integer rank.
_RANK_SNAP_ULPS = 8


def nearest_rank(q: float, count: int) -> int:
    """1-based rank ``k = max(1, ceil(q * count))`` of the nearest-rank ``q``-quantile.

    ``q * count`` within a few ulps of an integer is taken as that integer (float ``0.07 * 100``
    is ``7.000000000000001``; the rank is 7). Returns 0 when ``count`` is 0.
    """
    if count <= 0:
        return 0
    x = q * count
    r = round(x)
    if abs(x - r) <= _RANK_SNAP_ULPS * np.finfo(float).eps * max(x, 1.0):
        k = int(r)
    else:
        k = math.ceil(x)
    return min(max(k, 1), count)


class LogHistogram:
    """Log-bucketed histogram with ``rel_err`` relative error on quantiles (see module docs).

    ``LogHistogram(rel_err=0.01, min_value=1e-3, max_value=1e9)``; `add` values (an array or a
    scalar), `merge` histograms with the same parameters, ask for `quantile` / `quantiles`.
    """

    __slots__ = (
        "_rel_err", "_min_value", "_max_value", "_gamma", "_log_gamma", "_inv_log_gamma",
        "_log_min", "_n", "_counts", "_reps", "_count", "_sum", "_min", "_max",
    )

    def __init__(self, rel_err: float = 0.01, min_value: float = 1e-3, max_value: float = 1e9):
        rel_err = float(rel_err)
        min_value = float(min_value)
        max_value = float(max_value)
        if not 0.0 < rel_err < 1.0:
            raise ValueError(f"rel_err must be in (0, 1), got {rel_err!r}")
        finite = math.isfinite(min_value) and math.isfinite(max_value)
        if not (finite and 0.0 < min_value < max_value):
            raise ValueError(
                f"need finite 0 < min_value < max_value, got min_value={min_value!r}, "
                f"max_value={max_value!r}"
            )
        self._rel_err = rel_err
        self._min_value = min_value
        self._max_value = max_value
        self._gamma = (1.0 + rel_err) / (1.0 - rel_err)
        self._log_gamma = math.log(self._gamma)
        self._inv_log_gamma = 1.0 / self._log_gamma
        self._log_min = math.log(min_value)
        # Regular buckets 0..n-1; the last one covers max_value. Stored at positions 1..n of
        # _counts; position 0 is the underflow bucket, position n+1 the overflow bucket.
        self._n = self._raw_index(max_value) + 1
        self._counts = np.zeros(self._n + 2, dtype=np.int64)
        i = np.arange(self._n, dtype=np.float64)
        self._reps = min_value * 2.0 * np.exp(i * self._log_gamma) / (self._gamma + 1.0)
        self._count = 0
        self._sum = 0.0
        self._min = math.inf
        self._max = -math.inf

    def _raw_index(self, v: float) -> int:
        return max(0, math.ceil((math.log(v) - self._log_min) * self._inv_log_gamma))

    # ------------------------------------------------------------------ parameters, summaries
    @property
    def rel_err(self) -> float:
        return self._rel_err

    @property
    def min_value(self) -> float:
        return self._min_value

    @property
    def max_value(self) -> float:
        return self._max_value

    @property
    def gamma(self) -> float:
        return self._gamma

    @property
    def num_buckets(self) -> int:
        """Number of regular (geometric) buckets, excluding underflow and overflow."""
        return self._n

    @property
    def bucket_counts(self) -> np.ndarray:
        """Read-only view of all counts: ``[underflow, bucket 0 .. bucket n-1, overflow]``."""
        view = self._counts.view()
        view.flags.writeable = False
        return view

    @property
    def count(self) -> int:
        return self._count

    @property
    def sum(self) -> float:
        return self._sum

    @property
    def min(self) -> float:
        """Exact minimum added (nan when empty)."""
        return self._min if self._count else math.nan

    @property
    def max(self) -> float:
        """Exact maximum added (nan when empty)."""
        return self._max if self._count else math.nan

    @property
    def mean(self) -> float:
        """Exact mean, ``sum / count`` (nan when empty)."""
        return self._sum / self._count if self._count else math.nan

    def __len__(self) -> int:
        return self._count

    # ------------------------------------------------------------------ adding
    def add(self, values: Any) -> None:
        """Add one value or an array of values (any shape; flattened).

        Raises `ValueError` (and adds nothing) if any value is NaN, negative or infinite.
        """
        v = np.asarray(values, dtype=np.float64).ravel()
        if v.size == 0:
            return
        vmin = float(v.min())  # NaN propagates into min and max
        vmax = float(v.max())
        if not vmin >= 0.0:
            raise ValueError(f"values must be non-negative and not NaN, got {vmin!r}")
        if vmax == math.inf:
            raise ValueError("values must be finite, got inf")

        # numpy's log, not numba's: the two differ in the last bit for some values (fastmetrics).
        if vmin >= self._min_value:
            log_v = np.log(v)
        else:
            with np.errstate(divide="ignore"):
                log_v = np.log(v)
        fastmetrics.bucket_counts(self._counts, v, log_v, self._log_min, self._inv_log_gamma,
                                  self._min_value, self._max_value)
        self._count += int(v.size)
        self._sum += float(v.sum())
        self._min = min(self._min, vmin)
        self._max = max(self._max, vmax)

    # ------------------------------------------------------------------ merging
    def _params(self) -> tuple[float, float, float]:
        return (self._rel_err, self._min_value, self._max_value)

    def compatible(self, other: "LogHistogram") -> bool:
        """True if `other` has the same bucket parameters (and so can be merged)."""
        return isinstance(other, LogHistogram) and self._params() == other._params()

    def merge(self, other: "LogHistogram") -> "LogHistogram":
        """Add `other`'s counts into this histogram (in place); returns self."""
        if not isinstance(other, LogHistogram):
            raise TypeError(f"can only merge a LogHistogram, got {type(other).__name__}")
        if not self.compatible(other):
            raise ValueError(
                "cannot merge histograms with different parameters "
                f"(rel_err, min_value, max_value): {self._params()} vs {other._params()}"
            )
        self._counts += other._counts
        self._count += other._count
        self._sum += other._sum
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)
        return self

    def __iadd__(self, other: object) -> "LogHistogram":
        if not isinstance(other, LogHistogram):
            return NotImplemented
        return self.merge(other)

    def __add__(self, other: object) -> "LogHistogram":
        if not isinstance(other, LogHistogram):
            return NotImplemented
        return self.copy().merge(other)

    def copy(self) -> "LogHistogram":
        new = LogHistogram.__new__(LogHistogram)
        for name in self.__slots__:
            setattr(new, name, getattr(self, name))
        new._counts = self._counts.copy()
        return new  # _reps is never mutated, so it is shared

    # ------------------------------------------------------------------ queries
    def quantiles(self, qs: Iterable[float] | np.ndarray) -> np.ndarray:
        """Nearest-rank quantiles for each ``q`` in `qs` (see module docs); float64 array."""
        qarr = np.asarray(qs, dtype=np.float64)
        flat = qarr.ravel()
        if not np.all((flat >= 0.0) & (flat <= 1.0)):  # also rejects NaN
            raise ValueError(f"quantiles must be in [0, 1], got {qs!r}")
        if self._count == 0:
            return np.full(qarr.shape, math.nan)
        ranks = np.array([nearest_rank(float(q), self._count) for q in flat], dtype=np.int64)
        cum = np.cumsum(self._counts)
        pos = np.searchsorted(cum, ranks, side="left")
        reps = np.empty(self._n + 2)
        reps[0] = self._min
        reps[1:-1] = self._reps
        reps[-1] = self._max
        out = np.clip(reps[pos], self._min, self._max)
        out[flat == 0.0] = self._min
        out[flat == 1.0] = self._max
        return out.reshape(qarr.shape)

    def quantile(self, q: float) -> float:
        """Nearest-rank ``q``-quantile, ``q`` in [0, 1] (nan when empty)."""
        return float(self.quantiles([q])[0])

    # ------------------------------------------------------------------ saving
    def to_dict(self) -> dict[str, Any]:
        """Plain (JSON-able) dict: parameters, summaries, and the nonzero buckets as two lists.

        ``index`` are positions in `bucket_counts` (0 = underflow, ``num_buckets + 1`` =
        overflow). ``min`` and ``max`` are None when empty.
        """
        nz = np.flatnonzero(self._counts)
        return {
            "rel_err": self._rel_err,
            "min_value": self._min_value,
            "max_value": self._max_value,
            "count": self._count,
            "sum": self._sum,
            "min": self._min if self._count else None,
            "max": self._max if self._count else None,
            "index": nz.tolist(),
            "counts": self._counts[nz].tolist(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LogHistogram":
        """Inverse of `to_dict`; raises `ValueError` if the dict is inconsistent."""
        try:
            h = cls(d["rel_err"], d["min_value"], d["max_value"])
            index = np.asarray(d["index"], dtype=np.int64).ravel()
            counts = np.asarray(d["counts"], dtype=np.int64).ravel()
            count = int(d["count"])
            total = float(d["sum"])
            vmin, vmax = d["min"], d["max"]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a LogHistogram dict: {exc}") from exc
        if index.shape != counts.shape:
            raise ValueError("'index' and 'counts' differ in length")
        if index.size and (index.min() < 0 or index.max() > h._n + 1):
            raise ValueError("bucket index out of range")
        if np.unique(index).size != index.size:
            raise ValueError("duplicate bucket index")
        if np.any(counts < 0) or int(counts.sum()) != count:
            raise ValueError("bucket counts are negative or do not add up to 'count'")
        h._counts[index] = counts
        h._count = count
        h._sum = total
        if count:
            if vmin is None or vmax is None:
                raise ValueError("'min' and 'max' are required when count > 0")
            h._min, h._max = float(vmin), float(vmax)
        return h

    def __repr__(self) -> str:
        params = (
            f"rel_err={self._rel_err!r}, min_value={self._min_value!r}, "
            f"max_value={self._max_value!r}"
        )
        if not self._count:
            return f"LogHistogram({params}, count=0)"
        p50, p99 = self.quantiles([0.5, 0.99])
        return (
            f"LogHistogram({params}, count={self._count}, min={self._min:.6g}, "
            f"p50={p50:.6g}, p99={p99:.6g}, max={self._max:.6g})"
        )
