"""Composition of arrival sources: superpose, thin, scale, shift, window.

Each wrapper works for any `ArrivalSource` (generators and file-based traces alike), streams in
flat memory, keeps the base contract (sorted times in ``[0, duration_s)``, no hidden state,
arrivals independent of `chunk_size`: children are always read in chunks of `DEFAULT_CHUNK`
and the result re-cut) and carries per-request attributes through `batches`.

Seeds: a wrapper that only moves or slices arrivals (`Shifted`, `Window`, `Scaled` when the
source scales itself) hands its seed to its child unchanged, so it sees the child's own
arrivals. A wrapper with randomness of its own gives its children independent children of its
seed (`child_seed`), never the seed itself, so its streams cannot coincide with a child's.

`expected_count(start_s=0, end_s=None)` and `rate_at(t)` are passed through and combined where
every child has them, and are None otherwise (a replayed file has neither).
"""
from __future__ import annotations

import math
from typing import Any, Iterator, Sequence

import numpy as np

from .base import DEFAULT_CHUNK, ArrivalSource, Batch, child_seed, concat_batches, rechunk_batches, slice_batch

__all__ = ["Superpose", "Thinned", "Scaled", "Shifted", "Window"]


# -- helpers ---------------------------------------------------------------------------------------

def _read(source: ArrivalSource, seed: np.random.SeedSequence, attrs: bool) -> Iterator[Batch]:
    """A child's arrivals as batches (with attributes only when asked), in DEFAULT_CHUNK pieces."""
    if attrs and source.attribute_names:
        return source.batches(seed, DEFAULT_CHUNK)
    return (Batch(t) for t in source.chunks(seed, DEFAULT_CHUNK))


def _expected(source: ArrivalSource, start_s: float, end_s: float | None) -> float | None:
    f = getattr(source, "expected_count", None)
    if f is None:
        return None
    return f() if start_s == 0 and end_s is None else f(start_s, end_s)


def _rate(source: ArrivalSource, t: np.ndarray) -> np.ndarray | None:
    f = getattr(source, "rate_at", None)
    return None if f is None else np.asarray(f(t), dtype=float)


def _check(name: str, value: Any, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


class _Wrapper(ArrivalSource):
    """A source computed batch by batch from its children; subclasses give `_stream`."""

    def _stream(self, seed: np.random.SeedSequence, attrs: bool) -> Iterator[Batch]:
        raise NotImplementedError

    def chunks(self, seed: np.random.SeedSequence, chunk_size: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
        return (b.times for b in rechunk_batches(self._stream(seed, False), chunk_size, ()))

    def batches(self, seed: np.random.SeedSequence, chunk_size: int = DEFAULT_CHUNK) -> Iterator[Batch]:
        return rechunk_batches(self._stream(seed, True), chunk_size, self.attribute_names)


# -- superposition ---------------------------------------------------------------------------------

class Superpose(_Wrapper):
    """The merge of independent sources: child i runs with ``child_seed(seed, i)``.

    A streaming k-way merge in exact time order; ties go to the lower source index first.
    Memory holds at most one DEFAULT_CHUNK of each child. `duration_s` is the largest of the
    children's (None if any is None). Attributes: the union of the children's names; where a
    child lacks one its requests get NaN, and that attribute is float64 throughout.
    """

    def __init__(self, sources: Sequence[ArrivalSource]):
        sources = tuple(sources)
        if not sources or not all(isinstance(s, ArrivalSource) for s in sources):
            raise ValueError("Superpose needs a non-empty list of ArrivalSource")
        self.sources = sources
        ends = [s.duration_s for s in sources]
        self.duration_s = None if any(d is None for d in ends) else max(ends)
        names: list[str] = []
        for s in sources:
            names.extend(n for n in s.attribute_names if n not in names)
        self.attribute_names = tuple(names)
        self._partial = {n for n in names if any(n not in s.attribute_names for s in sources)}

    def _normalised(self, b: Batch, attrs: bool) -> Batch:
        if not attrs or not self.attribute_names:
            return Batch(b.times)
        out = {}
        for n in self.attribute_names:
            if n in b.attrs:
                v = b.attrs[n]
                out[n] = v.astype(np.float64, copy=False) if n in self._partial else v
            else:
                out[n] = np.full(b.times.size, np.nan)
        return Batch(b.times, out)

    def _stream(self, seed: np.random.SeedSequence, attrs: bool) -> Iterator[Batch]:
        names = self.attribute_names if attrs else ()
        iters = {i: _read(s, child_seed(seed, i), attrs) for i, s in enumerate(self.sources)}
        bufs: dict[int, Batch] = {}
        pos: dict[int, int] = {}
        while True:
            for i in list(iters):  # refill every used-up buffer (children are in index order)
                if i not in bufs or pos[i] == bufs[i].times.size:
                    b = next(iters[i], None)
                    while b is not None and b.times.size == 0:
                        b = next(iters[i], None)
                    if b is None:
                        del iters[i]
                        bufs.pop(i, None)
                        continue
                    bufs[i], pos[i] = self._normalised(b, attrs), 0
            if not iters:
                return
            if len(iters) == 1:  # one child left: pass it through
                (i,) = iters
                yield slice_batch(bufs[i], pos[i], bufs[i].times.size)
                for b in iters[i]:
                    yield self._normalised(b, attrs)
                return
            # everything up to the smallest buffered end h is final; at h itself, only children
            # up to the first one ending at h (a later child's h must wait for its future h's)
            h = min(float(bufs[i].times[-1]) for i in iters)
            first_at_h = min(i for i in iters if bufs[i].times[-1] == h)
            parts = []
            for i in iters:
                b = bufs[i]
                side = "right" if i <= first_at_h else "left"
                stop = pos[i] + int(np.searchsorted(b.times[pos[i]:], h, side=side))
                if stop > pos[i]:
                    parts.append(slice_batch(b, pos[i], stop))
                    pos[i] = stop
            if len(parts) == 1:
                yield parts[0]
                continue
            joined = concat_batches(parts, names)
            order = np.argsort(joined.times, kind="stable")  # parts are in index order: ties stay so
            yield Batch(joined.times[order], {n: v[order] for n, v in joined.attrs.items()})

    def scaled(self, factor: float) -> "Superpose":
        """Each source scaled (ValueError if one cannot be: see `Scaled`)."""
        return Superpose([Scaled(s, factor) for s in self.sources])

    def rate_at(self, t: np.ndarray) -> np.ndarray | None:
        rates = [_rate(s, t) for s in self.sources]
        return None if any(r is None for r in rates) else sum(rates)

    def expected_count(self, start_s: float = 0.0, end_s: float | None = None) -> float | None:
        counts = [_expected(s, start_s, end_s) for s in self.sources]
        return None if any(c is None for c in counts) else float(sum(counts))

    def notes(self) -> list[str]:
        return [f"superpose[{i}]: {n}" for i, s in enumerate(self.sources) for n in s.notes()]

    def describe(self) -> dict:
        return {"kind": "superpose", "sources": [s.describe() for s in self.sources],
                "duration_s": self.duration_s}

    def __repr__(self) -> str:
        return f"Superpose([{', '.join(map(repr, self.sources))}])"


# -- thinning and scaling --------------------------------------------------------------------------

class Thinned(_Wrapper):
    """Each arrival of `source` kept independently with probability `keep` (0 < keep <= 1).

    The child runs with ``child_seed(seed, 0)``, the coin flips use ``child_seed(seed, 1)``.
    Thinning a Poisson process of rate λ gives a Poisson process of rate keep·λ (exactly); on a
    replayed trace it is the way to lower the load without inventing arrivals.
    """

    def __init__(self, source: ArrivalSource, keep: float):
        self.source = source
        self.keep = _check("keep", keep, positive=True)
        if self.keep > 1:
            raise ValueError(f"keep must be <= 1, got {keep!r}")
        self.duration_s = source.duration_s
        self.attribute_names = source.attribute_names

    def _stream(self, seed: np.random.SeedSequence, attrs: bool) -> Iterator[Batch]:
        children = _read(self.source, child_seed(seed, 0), attrs)
        if self.keep == 1.0:
            yield from children
            return
        rng = np.random.default_rng(child_seed(seed, 1))
        for b in children:
            mask = rng.random(b.times.size) < self.keep
            yield Batch(b.times[mask], {n: v[mask] for n, v in b.attrs.items()})

    def scaled(self, factor: float) -> ArrivalSource:
        f = _check("factor", factor, positive=True)
        if self.keep * f <= 1:
            return Thinned(self.source, self.keep * f)
        return Thinned(Scaled(self.source, f), self.keep)

    def rate_at(self, t: np.ndarray) -> np.ndarray | None:
        r = _rate(self.source, t)
        return None if r is None else self.keep * r

    def expected_count(self, start_s: float = 0.0, end_s: float | None = None) -> float | None:
        c = _expected(self.source, start_s, end_s)
        return None if c is None else self.keep * c

    def notes(self) -> list[str]:
        return self.source.notes()

    def describe(self) -> dict:
        return {"kind": "thinned", "keep": self.keep, "source": self.source.describe(),
                "duration_s": self.duration_s}

    def __repr__(self) -> str:
        return f"Thinned({self.source!r}, keep={self.keep:g})"


class Scaled(ArrivalSource):
    """`source` at `factor` times its rate.

    If the source has ``scaled(factor)`` (the generators: their rate function is multiplied
    exactly) that is used, with this wrapper's seed. Otherwise a factor <= 1 thins the source
    (`Thinned`), and a factor > 1 is a ValueError: a replayed trace cannot be scaled up without
    inventing arrivals.
    """

    def __init__(self, source: ArrivalSource, factor: float):
        self.source = source
        self.factor = _check("factor", factor, positive=True)
        if self.factor == 1.0:
            inner = source
        elif callable(getattr(source, "scaled", None)):
            inner = source.scaled(self.factor)
        elif self.factor < 1.0:
            inner = Thinned(source, self.factor)
        else:
            raise ValueError(
                f"cannot scale {source!r} by {self.factor:g}: a replayed trace cannot be scaled up "
                "without inventing arrivals. Superpose shifted copies of it (superpose: [...] with "
                "shift_s), or use a generator (poisson, diurnal, mmpp, ...) with the rate you want.")
        self.inner = inner
        self.duration_s = inner.duration_s
        self.attribute_names = inner.attribute_names

    def chunks(self, seed: np.random.SeedSequence, chunk_size: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
        return self.inner.chunks(seed, chunk_size)

    def batches(self, seed: np.random.SeedSequence, chunk_size: int = DEFAULT_CHUNK) -> Iterator[Batch]:
        return self.inner.batches(seed, chunk_size)

    def scaled(self, factor: float) -> "Scaled":
        return Scaled(self.source, self.factor * _check("factor", factor, positive=True))

    def rate_at(self, t: np.ndarray) -> np.ndarray | None:
        return _rate(self.inner, t)

    def expected_count(self, start_s: float = 0.0, end_s: float | None = None) -> float | None:
        return _expected(self.inner, start_s, end_s)

    def notes(self) -> list[str]:
        return self.inner.notes()

    def describe(self) -> dict:
        how = "same source" if self.inner is self.source else (
            "thinned" if isinstance(self.inner, Thinned) else "rate function scaled")
        return {"kind": "scaled", "factor": self.factor, "method": how, "source": self.source.describe(),
                "duration_s": self.duration_s}

    def __repr__(self) -> str:
        return f"Scaled({self.source!r}, factor={self.factor:g})"


# -- moving and slicing in time --------------------------------------------------------------------

class Shifted(_Wrapper):
    """Every arrival `shift_s` later (>= 0); `duration_s` grows by `shift_s`.

    Where rounding would put a shifted time at the shifted end (``t + shift`` rounding up to
    ``duration + shift``), it is set to the float just below it: no arrival is lost.
    """

    def __init__(self, source: ArrivalSource, shift_s: float):
        self.source = source
        self.shift_s = _check("shift_s", shift_s, positive=False)
        self.duration_s = None if source.duration_s is None else source.duration_s + self.shift_s
        self.attribute_names = source.attribute_names

    def _stream(self, seed: np.random.SeedSequence, attrs: bool) -> Iterator[Batch]:
        last = None if self.duration_s is None else float(np.nextafter(self.duration_s, -np.inf))
        for b in _read(self.source, seed, attrs):
            t = b.times + self.shift_s
            if last is not None and t[-1] > last:
                np.minimum(t, last, out=t)
            yield Batch(t, b.attrs)

    def scaled(self, factor: float) -> "Shifted":
        return Shifted(Scaled(self.source, factor), self.shift_s)

    def rate_at(self, t: np.ndarray) -> np.ndarray | None:
        t = np.asarray(t, dtype=float)
        r = _rate(self.source, t - self.shift_s)
        return None if r is None else np.where(t >= self.shift_s, r, 0.0)

    def expected_count(self, start_s: float = 0.0, end_s: float | None = None) -> float | None:
        a = max(float(start_s) - self.shift_s, 0.0)
        if end_s is None:
            return _expected(self.source, a, None)
        b = float(end_s) - self.shift_s
        return 0.0 if b <= a else _expected(self.source, a, b)

    def notes(self) -> list[str]:
        return self.source.notes()

    def describe(self) -> dict:
        return {"kind": "shifted", "shift_s": self.shift_s, "source": self.source.describe(),
                "duration_s": self.duration_s}

    def __repr__(self) -> str:
        return f"Shifted({self.source!r}, shift_s={self.shift_s:g})"


class Window(_Wrapper):
    """The arrivals of `source` in ``[start_s, start_s + duration_s)``, re-based to 0.

    Times become ``t − start_s`` (kept where that is < duration_s, so the contract holds under
    rounding). The child is read with this wrapper's seed, so a window of a generator shows
    exactly that generator's arrivals; reading stops at the first arrival past the window.
    """

    def __init__(self, source: ArrivalSource, start_s: float, duration_s: float):
        self.source = source
        self.start_s = _check("start_s", start_s, positive=False)
        self.duration_s = _check("duration_s", duration_s, positive=True)
        self.attribute_names = source.attribute_names

    def _stream(self, seed: np.random.SeedSequence, attrs: bool) -> Iterator[Batch]:
        if self.source.duration_s is not None and self.source.duration_s <= self.start_s:
            return
        for b in _read(self.source, seed, attrs):
            t = b.times
            if t[-1] < self.start_s:
                continue
            lo = int(np.searchsorted(t, self.start_s, side="left"))
            r = t[lo:] - self.start_s
            hi = int(np.searchsorted(r, self.duration_s, side="left"))
            if hi:
                yield Batch(r[:hi], {n: v[lo:lo + hi] for n, v in b.attrs.items()})
            if hi < r.size:
                return

    def scaled(self, factor: float) -> "Window":
        return Window(Scaled(self.source, factor), self.start_s, self.duration_s)

    def rate_at(self, t: np.ndarray) -> np.ndarray | None:
        t = np.asarray(t, dtype=float)
        r = _rate(self.source, t + self.start_s)
        return None if r is None else np.where((t >= 0) & (t < self.duration_s), r, 0.0)

    def expected_count(self, start_s: float = 0.0, end_s: float | None = None) -> float | None:
        a = min(max(float(start_s), 0.0), self.duration_s)
        b = self.duration_s if end_s is None else min(max(float(end_s), 0.0), self.duration_s)
        return 0.0 if b <= a else _expected(self.source, self.start_s + a, self.start_s + b)

    def notes(self) -> list[str]:
        return self.source.notes()

    def describe(self) -> dict:
        return {"kind": "window", "start_s": self.start_s, "duration_s": self.duration_s,
                "source": self.source.describe()}

    def __repr__(self) -> str:
        return f"Window({self.source!r}, start_s={self.start_s:g}, duration_s={self.duration_s:g})"
