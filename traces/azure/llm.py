"""Azure LLM inference traces (2023, 2024, 2025): one row per request, token counts kept as
per-request attributes."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from sim.errors import ConfigError

from ..base import (
    DEFAULT_CHUNK,
    ArrivalSource,
    Batch,
    rechunk,
    rechunk_batches,
)
from ..files import _DATETIME, datetimes_to_ns, last_csv_line
from .common import (
    _READ_ROWS,
    _counts,
    _existing,
    _fail_first,
    _frames,
    _header,
    _iso_naive,
    _k,
    _raw,
    _require_columns,
    _window_params,
)

_LLM_ATTRIBUTES = (("ContextTokens", "context_tokens"), ("GeneratedTokens", "generated_tokens"),
                   ("NumImages", "num_images"))


@dataclass
class _LLMTally:
    rows_read: int = 0
    rows_before: int = 0
    rows_after: int = 0
    blank_lines: int = 0
    last_ns: int | None = None


class AzureLLM(ArrivalSource):
    """Requests of an Azure LLM inference trace (2023 Splitwise, 2024 DynamoLLM, 2025 ModServe).

    Columns ``TIMESTAMP`` (``2023-11-16 18:17:03.9799600``: 7 fractional digits, read to the
    nanosecond; no offset in the file, so taken as UTC — only differences matter),
    ``ContextTokens``, ``GeneratedTokens`` and, in the 2025 multimodal trace, ``NumImages``.
    Compressed files (``.csv.gz``) are read as they are.

    Arrivals are seconds since the first TIMESTAMP; the window ``[start_s, start_s + duration_s)``
    in those seconds (default: from 0 to just after the last timestamp) is re-based to 0.
    `batches` yields each request's token counts as int64 attributes named `attribute_names`
    (``context_tokens``, ``generated_tokens`` and, when the file has them, ``num_images``).

    The trace is in time order; a row earlier than the one above it is an error naming its line.
    Streaming stops at the first row past the window; `notes` and `describe` read the whole file
    once (and check every row) to count what the window leaves out. Construction reads the
    header, the first row, and the last line (a compressed file is read through instead).
    """

    def __init__(self, path: Any, *, duration_s: float | None = None, start_s: float | None = None,
                 source: str | None = None, key: str = ""):
        self._source, self._key = source, key
        start, duration = _window_params(start_s, duration_s, source, key)
        self.path = _existing(path, source, _k(key, "path"))
        columns = _header(self.path)
        _require_columns(self.path, columns, ("TIMESTAMP", "ContextTokens", "GeneratedTokens"),
                         "an Azure LLM inference trace (TIMESTAMP, ContextTokens, GeneratedTokens[, NumImages])")
        self._columns = [c for c, _ in _LLM_ATTRIBUTES if c in columns]
        self.attribute_names = tuple(name for c, name in _LLM_ATTRIBUTES if c in columns)
        self.origin_ns = self._first_ns()
        self.start_s = 0.0 if start is None else start
        self._tally: _LLMTally | None = None
        if duration is None:
            last_ns = self._last_ns()
            end = float(np.nextafter((last_ns - self.origin_ns) / 1e9, np.inf))
            if self.start_s >= end:
                raise ConfigError(source, _k(key, "start"), f"a start before the last request "
                                  f"({end:g} s after the first)", start_s)
            duration = end - self.start_s
        self.duration_s = duration

    def _first_ns(self) -> int:
        for frame, lines in _frames(self.path, ["TIMESTAMP"], ["TIMESTAMP"], 1, {}):
            return int(self._timestamps(frame, lines)[0])
        raise ConfigError(str(self.path), "", "at least one request row")

    def _last_ns(self) -> int:
        tail = last_csv_line(self.path)
        if tail is not None:
            import io

            import pandas as pd

            try:
                frame = pd.read_csv(io.BytesIO(tail[0] + b"\n" + tail[1] + b"\n"), usecols=["TIMESTAMP"],
                                    dtype={"TIMESTAMP": str}, keep_default_na=False, na_values=[""])
                ns, empty, unparsed = datetimes_to_ns(frame["TIMESTAMP"])
                if len(frame) == 1 and not (empty[0] or unparsed[0]):
                    return int(ns[0])
            except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError):
                pass
        tally = _LLMTally()  # no cheap tail: read it all (and report a bad row precisely)
        for _ in self._blocks(tally, whole_file=True, window=(0.0, math.inf)):
            pass
        if tally.last_ns is None:
            raise ConfigError(str(self.path), "", "at least one request row")
        return tally.last_ns

    def _timestamps(self, frame, lines: np.ndarray) -> np.ndarray:
        ns, empty, unparsed = datetimes_to_ns(frame["TIMESTAMP"])
        _fail_first(empty | unparsed, frame[["TIMESTAMP"]], ["TIMESTAMP"], lines, self.path, _DATETIME)
        return ns

    def _blocks(self, tally: _LLMTally, whole_file: bool, window: tuple[float, float] | None = None
                ) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """(times, attributes) of the requests in the window, per block of rows, checked; counts
        go to `tally`. Stops at the first row past the window unless `whole_file`."""
        lo, dur = window if window is not None else (self.start_s, self.duration_s)
        prev: int | None = None
        cols = ["TIMESTAMP"] + self._columns
        counts: dict[str, int] = {}
        for frame, lines in _frames(self.path, cols, ["TIMESTAMP"], _READ_ROWS, counts):
            ns = self._timestamps(frame, lines)
            down = np.empty(ns.size, dtype=bool)
            down[0] = prev is not None and ns[0] < prev
            np.less(ns[1:], ns[:-1], out=down[1:])
            if down.any():
                i = int(np.argmax(down))
                before = prev if i == 0 else int(ns[i - 1])
                raise ConfigError(str(self.path), f"line {lines[i]}, column 'TIMESTAMP'",
                                  f"timestamps in time order (the trace is sorted; the row above is at "
                                  f"{_iso_naive(before)})", _raw(frame["TIMESTAMP"].iat[i]))
            prev = int(ns[-1])
            tokens = _counts(frame, self._columns, lines, self.path, "a count (an integer >= 0)")
            t = (ns - self.origin_ns).astype(np.float64) / 1e9
            if lo:
                t -= lo
            i0 = int(np.searchsorted(t, 0.0, side="left"))
            i1 = int(np.searchsorted(t, dur, side="left"))
            tally.rows_read += ns.size
            tally.rows_before += i0
            tally.rows_after += ns.size - i1
            tally.last_ns = prev
            if i1 > i0:
                yield t[i0:i1], {name: tokens[i0:i1, j].copy() for j, name in enumerate(self.attribute_names)}
            if i1 < ns.size and not whole_file:
                return
        tally.blank_lines = counts.get("blank_lines", 0)

    def _scan(self) -> _LLMTally:
        if self._tally is None:
            tally = _LLMTally()
            for _ in self._blocks(tally, whole_file=True):
                pass
            if tally.rows_read == 0:
                raise ConfigError(str(self.path), "", "at least one request row")
            self._tally = tally
        return self._tally

    def chunks(self, seed: np.random.SeedSequence | None = None,
               chunk_size: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
        return rechunk((t for t, _ in self._blocks(_LLMTally(), whole_file=False)), chunk_size)

    def batches(self, seed: np.random.SeedSequence | None = None,
                chunk_size: int = DEFAULT_CHUNK) -> Iterator[Batch]:
        blocks = (Batch(t, a) for t, a in self._blocks(_LLMTally(), whole_file=False))
        return rechunk_batches(blocks, chunk_size, self.attribute_names)

    def notes(self) -> list[str]:
        t = self._scan()
        assert t.last_ns is not None
        attrs = ", ".join(f"{name} (from {c})" for c, name in _LLM_ATTRIBUTES if c in self._columns)
        out = [f"Azure LLM inference trace {self.path.name}: {t.rows_read} requests from {_iso_naive(self.origin_ns)} "
               f"to {_iso_naive(t.last_ns)} (no offset in the file: taken as UTC; only differences matter).",
               f"Arrivals are seconds since the first TIMESTAMP; the window [{self.start_s:g}, "
               f"{self.start_s + self.duration_s:g}) s keeps {t.rows_read - t.rows_before - t.rows_after} requests; "
               f"skipped {t.rows_before} before it and {t.rows_after} at or after its end.",
               f"Each request carries {attrs}."]
        if t.blank_lines:
            out.append(f"Skipped {t.blank_lines} blank lines.")
        return out

    def describe(self) -> dict:
        t = self._scan()
        return {"kind": "azure_llm", "path": str(self.path), "start_s": self.start_s, "duration_s": self.duration_s,
                "origin": _iso_naive(self.origin_ns), "attributes": list(self.attribute_names),
                "counts": {"rows_read": t.rows_read, "rows_before_window": t.rows_before,
                           "rows_after_window": t.rows_after,
                           "requests": t.rows_read - t.rows_before - t.rows_after, "blank_lines": t.blank_lines}}

    def __repr__(self) -> str:
        return f"AzureLLM({self.path.name!r}, start_s={self.start_s:g}, duration_s={self.duration_s:g})"
