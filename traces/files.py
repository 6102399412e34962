"""Arrival times given as data: an inline list, or a column of a CSV or Parquet file.

Values are seconds from the start of the trace (floats), kept as given: they must be >= 0,
finite and sorted (non-decreasing). A bad value is a `ConfigError` naming the file and the line
(CSV: line 1 is the header, one record per line) or the row (Parquet, counted from 0) and the
column. ISO datetimes are not read yet.

Files stream: a CSV is read with ``pandas.read_csv(chunksize=...)`` and a Parquet file batch by
batch, so a large file needs flat memory. Construction reads only the header (and, when no
`duration_s` is given, the last timestamp from the file's tail); the values are checked as they
stream, so a bad row far down a big file is reported when the simulation reaches it.

The window is ``[0, duration_s)``. With an explicit `duration_s` the trace is sliced to it; by
default it ends just after the last timestamp (``numpy.nextafter(last, inf)``), so the last
arrival is inside the window.
"""
from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from sim.errors import ConfigError

from .base import DEFAULT_CHUNK, ArrivalSource, rechunk

__all__ = ["TimestampList", "TimestampFile"]

_READ_ROWS = 1 << 18  # rows per read; only a memory/speed trade-off, never changes the arrivals
_PARQUET_SUFFIXES = (".parquet", ".pq")
_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst", ".tar")  # read by pandas; no cheap tail
_TIMESTAMP = "a timestamp in seconds (a finite number >= 0)"


def _end_after(last: float) -> float:
    """The default window end: the smallest float above the last timestamp."""
    return float(np.nextafter(last, np.inf))


def _check_duration(duration_s: Any, source: str | None, key: str) -> float | None:
    if duration_s is None:
        return None
    if isinstance(duration_s, bool) or not isinstance(duration_s, (int, float)) \
            or not math.isfinite(duration_s) or duration_s <= 0:
        raise ConfigError(source, key, "a duration > 0 (seconds)", duration_s)
    return float(duration_s)


def _first_problem(vals: np.ndarray, prev: float | None) -> tuple[int, str] | None:
    """Index and expectation of the first value that is not finite, negative or out of order."""
    if vals.size == 0:
        return None
    bad_value = ~np.isfinite(vals) | (vals < 0)
    decreasing = np.empty(vals.size, dtype=bool)
    decreasing[0] = prev is not None and vals[0] < prev
    np.less(vals[1:], vals[:-1], out=decreasing[1:])
    bad = bad_value | decreasing
    if not bad.any():
        return None
    i = int(np.argmax(bad))
    if bad_value[i]:
        return i, _TIMESTAMP
    before = prev if i == 0 else vals[i - 1]
    return i, f"timestamps sorted in non-decreasing order (the one before is {before:g})"


class TimestampList(ArrivalSource):
    """Arrivals given inline, e.g. ``{kind: list, times: [0.5, 1.2, 1.2, 7]}`` in a scenario."""

    def __init__(self, times: Sequence[float], duration_s: float | None = None, *,
                 source: str | None = None, key: str = "times"):
        if isinstance(times, (str, bytes)) or not isinstance(times, (Sequence, np.ndarray)):
            raise ConfigError(source, key, "a list of timestamps in seconds", times)
        for i, v in enumerate(times):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise ConfigError(source, f"{key}[{i}]", _TIMESTAMP, v)
        vals = np.array(times, dtype=np.float64)
        if vals.size == 0:
            raise ConfigError(source, key, "at least one timestamp", [])
        problem = _first_problem(vals, None)
        if problem is not None:
            i, expected = problem
            raise ConfigError(source, f"{key}[{i}]", expected, times[i])
        end = _check_duration(duration_s, source, "duration")
        if end is None:
            end = _end_after(float(vals[-1]))
        vals = vals[:np.searchsorted(vals, end, side="left")]
        vals.setflags(write=False)
        self.times = vals
        self.duration_s = end

    def chunks(self, seed: np.random.SeedSequence | None = None,
               chunk_size: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
        return rechunk([self.times], chunk_size)

    def __repr__(self) -> str:
        return f"TimestampList(n={self.times.size}, duration_s={self.duration_s:g})"


class TimestampFile(ArrivalSource):
    """Arrival times from one column of a CSV (with a header row) or Parquet file.

    `column` names the column (default: the first). `duration_s` slices the trace to
    ``[0, duration_s)``; by default the window ends just after the last timestamp.
    """

    def __init__(self, path: str | Path, column: str | None = None, duration_s: float | None = None):
        self.path = Path(path)
        self.source = str(path)
        if not self.path.is_file():
            raise ConfigError(self.source, "", "an existing CSV or Parquet file of timestamps")
        self.format = "parquet" if self.path.suffix.lower() in _PARQUET_SUFFIXES else "csv"
        if column is not None and not isinstance(column, str):
            raise ConfigError(self.source, "column", "a column name (a string)", column)
        self._columns = self._read_columns()
        if column is None:
            column = self._columns[0]
            if self.format == "csv" and _is_number(column):
                raise ConfigError(self.source, "line 1", "a header row naming the columns (the first line "
                                  "looks like a timestamp)", column)
        elif column not in self._columns:
            raise ConfigError(self.source, "column", f"one of the file's columns: {', '.join(map(str, self._columns))}",
                              column)
        self.column = column
        self._explicit_end = _check_duration(duration_s, self.source, "duration")
        if self._explicit_end is not None:
            self.duration_s = self._explicit_end
        else:
            last = self._tail_value()
            if last is None:  # the cheap look failed: stream the column (raises on a bad value)
                for block in self._validated():
                    last = float(block[-1])
            if last is None:
                raise ConfigError(self.source, self.column, "at least one timestamp")
            self.duration_s = _end_after(last)

    # -- reading ---------------------------------------------------------------------------------

    def _read_columns(self) -> list:
        if self.format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            try:
                schema = pq.ParquetFile(self.path).schema_arrow
            except (OSError, pa.ArrowException) as exc:
                raise ConfigError(self.source, "", f"a readable Parquet file ({exc})") from None
            if not schema.names:
                raise ConfigError(self.source, "", "a Parquet file with at least one column")
            self._types = {f.name: f.type for f in schema}
            return list(schema.names)
        import pandas as pd

        try:
            header = pd.read_csv(self.path, nrows=0)
        except pd.errors.EmptyDataError:
            raise ConfigError(self.source, "line 1", "a CSV file with a header row") from None
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
            raise ConfigError(self.source, "", f"a readable CSV file ({exc})") from None
        return list(header.columns)

    def _check_parquet_type(self) -> None:
        import pyarrow as pa

        t = self._types[self.column]
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) \
                or pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t):
            return
        hint = " (datetime columns are not read yet: convert them to seconds)" \
            if pa.types.is_timestamp(t) or pa.types.is_date(t) else ""
        raise ConfigError(self.source, f"column {self.column!r}", f"a numeric column of seconds{hint}", str(t))

    def _raw_blocks(self) -> Iterator[tuple[int, Any]]:
        """(row offset, pandas Series) per block of the column, rows counted from 0."""
        import pandas as pd

        row = 0
        if self.format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            self._check_parquet_type()
            try:
                for batch in pq.ParquetFile(self.path).iter_batches(batch_size=_READ_ROWS, columns=[self.column]):
                    series = batch.column(0).to_pandas()
                    yield row, series
                    row += len(series)
            except (OSError, pa.ArrowException) as exc:
                raise ConfigError(self.source, "", f"a readable Parquet file ({exc})") from None
            return
        try:
            reader = pd.read_csv(self.path, usecols=[self.column], chunksize=_READ_ROWS,
                                 skip_blank_lines=False, keep_default_na=False, na_values=[""])
            with reader:
                for frame in reader:
                    series = frame[self.column]
                    yield row, series
                    row += len(series)
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
            raise ConfigError(self.source, "", f"a readable CSV file ({exc})") from None

    def _where(self, row: int) -> str:
        if self.format == "csv":
            return f"line {row + 2}, column {self.column!r}"
        return f"row {row} (counting from 0), column {self.column!r}"

    def _validated(self) -> Iterator[np.ndarray]:
        """The column's values as float64 blocks, checked, and cut at an explicit duration."""
        end = self._explicit_end
        prev: float | None = None
        blank_row: int | None = None  # a blank CSV line: fine at the end of the file, not before a value
        for start, raw in self._raw_blocks():
            vals, empty, unparsed = _to_seconds(raw)
            if blank_row is not None:
                if not empty.all():
                    raise ConfigError(self.source, self._where(blank_row), _TIMESTAMP, "")
                continue
            if self.format == "csv" and vals.size and empty[-1]:
                filled = np.flatnonzero(~empty)
                n_filled = int(filled[-1]) + 1 if filled.size else 0
                if not empty[:n_filled].any():
                    blank_row = start + n_filled
                    vals, empty, unparsed = vals[:n_filled], empty[:n_filled], unparsed[:n_filled]
            n = vals.size
            first_bad, expected = n, ""
            unreadable = empty | unparsed
            if unreadable.any():
                first_bad, expected = int(np.argmax(unreadable)), _TIMESTAMP
            problem = _first_problem(vals[:first_bad], prev)
            if problem is not None:
                first_bad, expected = problem
            good = vals[:first_bad]
            if end is not None:
                cut = int(np.searchsorted(good, end, side="left"))
                if cut < good.size:  # the window ends inside this block
                    if cut:
                        yield good[:cut]
                    return
            if first_bad < n:
                got = raw.iloc[first_bad]
                if empty[first_bad]:
                    got = "" if self.format == "csv" else None
                elif hasattr(got, "item"):
                    got = got.item()
                raise ConfigError(self.source, self._where(start + first_bad), expected, got)
            if n:
                yield vals
                prev = float(vals[-1])

    def _tail_value(self) -> float | None:
        """The last timestamp, cheaply (the end of a CSV, the last row group of a Parquet file).

        None when it cannot be read that way (quoting, compression, a bad value): the caller then
        streams the whole column, which reports a bad value precisely.
        """
        if self.format == "parquet":
            import pyarrow.parquet as pq

            self._check_parquet_type()
            pf = pq.ParquetFile(self.path)
            for group in range(pf.metadata.num_row_groups - 1, -1, -1):
                if pf.metadata.row_group(group).num_rows:
                    vals, empty, unparsed = _to_seconds(
                        pf.read_row_group(group, columns=[self.column]).column(0).to_pandas())
                    last = float(vals[-1])
                    ok = not (empty[-1] or unparsed[-1]) and math.isfinite(last) and last >= 0
                    return last if ok else None
            return None
        if self.path.suffix.lower() in _COMPRESSED:
            return None
        with open(self.path, "rb") as f:
            header = f.readline()
            size = f.seek(0, 2)
            window = min(size, 1 << 16)
            while True:
                f.seek(size - window)
                lines = f.read(window).rstrip().splitlines()
                if len(lines) >= 2 or window == size:
                    break
                window = min(size, window * 8)
        if len(lines) < 2 or b'"' in lines[-1]:
            return None
        import pandas as pd

        # parse it as the stream will (same parser, same options), so the value is the same float
        try:
            frame = pd.read_csv(io.BytesIO(header.rstrip(b"\r\n") + b"\n" + lines[-1] + b"\n"),
                                usecols=[self.column], keep_default_na=False, na_values=[""])
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError):
            return None
        if len(frame) != 1:
            return None
        vals, empty, unparsed = _to_seconds(frame[self.column])
        last = float(vals[0])
        ok = not (empty[0] or unparsed[0]) and math.isfinite(last) and last >= 0
        return last if ok else None

    # -- the interface ---------------------------------------------------------------------------

    def chunks(self, seed: np.random.SeedSequence | None = None,
               chunk_size: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
        return rechunk(self._validated(), chunk_size)

    def __repr__(self) -> str:
        return f"TimestampFile({self.source!r}, column={self.column!r}, duration_s={self.duration_s:g})"


def _is_number(text: Any) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def _to_seconds(raw) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float64 values, empty mask, unparseable mask) of a pandas Series of a timestamp column."""
    import pandas as pd

    empty = raw.isna().to_numpy()
    if raw.dtype.kind in "iuf":
        vals = raw.to_numpy(dtype=np.float64, na_value=np.nan)
        return vals, empty, np.zeros(vals.size, dtype=bool)
    if raw.dtype.kind == "b":
        return np.full(len(raw), np.nan), empty, ~empty
    vals = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return vals, empty, np.isnan(vals) & ~empty
