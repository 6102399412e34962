"""The interface between traffic and the simulator: an `ArrivalSource`.

An arrival source yields the arrival times of requests, in seconds from the start of the trace,
as float64 arrays ("chunks"), so a month of traffic streams in flat memory. Its contract:

- times are >= 0, non-decreasing within a chunk and across chunks, and ``< duration_s`` when
  `duration_s` is set (the window is half-open: ``[0, duration_s)``);
- `chunks` has no hidden state: each call builds a fresh ``numpy.random.Generator`` from the
  seed it is given, so equal seeds give identical arrivals;
- chunking does not change the arrivals: any `chunk_size` gives the same concatenation (sources
  generate in internal blocks of a fixed size and re-cut them with `rechunk`).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

__all__ = ["ArrivalSource", "Batch", "rechunk", "rechunk_batches", "child_seed", "accumulate_gaps", "DEFAULT_CHUNK"]

DEFAULT_CHUNK = 65536


@dataclass
class Batch:
    """A chunk of arrivals with optional per-request attributes (e.g. token counts of an LLM trace).

    Every array in `attrs` has the length of `times`.
    """

    times: np.ndarray
    attrs: dict[str, np.ndarray] = field(default_factory=dict)


def child_seed(seed: np.random.SeedSequence, i: int) -> np.random.SeedSequence:
    """The i-th independent child of `seed`, without mutating it (unlike `SeedSequence.spawn`)."""
    return np.random.SeedSequence(entropy=seed.entropy, spawn_key=tuple(seed.spawn_key) + (i,))


class ArrivalSource(ABC):
    """A stream of arrival times (seconds, float64), cut into chunks."""

    duration_s: float | None = None
    """End of the trace's window (seconds); every arrival is < duration_s. None when unknown."""

    @abstractmethod
    def chunks(self, seed: np.random.SeedSequence, chunk_size: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
        """Yield float64 arrays of at most `chunk_size` arrival times (none empty), in order."""

    attribute_names: tuple[str, ...] = ()
    """Names of the per-request attributes `batches` yields (none for most sources)."""

    def batches(self, seed: np.random.SeedSequence, chunk_size: int = DEFAULT_CHUNK) -> Iterator[Batch]:
        """Like `chunks`, with per-request attributes; sources that have attributes override it."""
        for times in self.chunks(seed, chunk_size):
            yield Batch(times)

    def notes(self) -> list[str]:
        """Facts a user should know about this source: rows skipped on purpose (with counts),
        caveats of the data. Sources that read files fill this in as they read."""
        return []

    def describe(self) -> dict:
        """What this source is, as plain data (for `trace show` and saved results)."""
        return {"source": repr(self)}

    def arrivals(self, seed: np.random.SeedSequence) -> np.ndarray:
        """All arrival times in one array (for short traces and tests; long ones should stream)."""
        parts = list(self.chunks(seed))
        return np.concatenate(parts) if parts else np.empty(0)


def rechunk(blocks: Iterable[np.ndarray], chunk_size: int) -> Iterator[np.ndarray]:
    """Re-cut a stream of arrays into arrays of exactly `chunk_size` (the last one may be shorter).

    Empty input arrays are skipped and no empty array is yielded. The concatenation is unchanged.
    """
    check_chunk_size(chunk_size)
    buf: list[np.ndarray] = []
    held = 0
    for block in blocks:
        if block.size == 0:
            continue
        if not buf and block.size == chunk_size:
            yield block
            continue
        buf.append(block)
        held += block.size
        if held < chunk_size:
            continue
        joined = np.concatenate(buf) if len(buf) > 1 else buf[0]
        full = held - held % chunk_size
        for start in range(0, full, chunk_size):
            yield joined[start:start + chunk_size]
        rest = joined[full:]
        buf = [rest] if rest.size else []
        held = rest.size
    if held:
        yield np.concatenate(buf) if len(buf) > 1 else buf[0]


def check_chunk_size(chunk_size: Any) -> None:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an int >= 1, got {chunk_size!r}")


def concat_batches(parts: list[Batch], names: Sequence[str]) -> Batch:
    if len(parts) == 1:
        return parts[0]
    return Batch(np.concatenate([p.times for p in parts]),
                 {n: np.concatenate([p.attrs[n] for p in parts]) for n in names})


def slice_batch(b: Batch, start: int, stop: int) -> Batch:
    return Batch(b.times[start:stop], {n: v[start:stop] for n, v in b.attrs.items()})


def rechunk_batches(batches: Iterable[Batch], chunk_size: int, names: Sequence[str]) -> Iterator[Batch]:
    """`rechunk` for batches: exactly `chunk_size` arrivals each (the last may be fewer), none
    empty, attributes cut with their times. The concatenation is unchanged."""
    check_chunk_size(chunk_size)
    if not names:
        for times in rechunk((b.times for b in batches), chunk_size):
            yield Batch(times)
        return
    buf: list[Batch] = []
    held = 0
    for b in batches:
        n = b.times.size
        if n == 0:
            continue
        if not buf and n == chunk_size:
            yield b
            continue
        buf.append(b)
        held += n
        if held < chunk_size:
            continue
        joined = concat_batches(buf, names)
        full = held - held % chunk_size
        for start in range(0, full, chunk_size):
            yield slice_batch(joined, start, start + chunk_size)
        buf = [slice_batch(joined, full, held)] if held > full else []
        held -= full
    if held:
        yield concat_batches(buf, names)


def accumulate_gaps(draw_gaps: Callable[[], np.ndarray], duration_s: float) -> Iterator[np.ndarray]:
    """Arrival times from blocks of i.i.d. gaps (`draw_gaps()` returns the next block), the first
    arrival one gap after 0, up to (not including) `duration_s`. Gaps are used as drawn."""
    t = 0.0
    while True:
        times = t + np.cumsum(draw_gaps())
        if times[-1] >= duration_s:
            yield times[:np.searchsorted(times, duration_s, side="left")]
            return
        yield times
        t = float(times[-1])
