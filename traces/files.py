"""Arrival times given as data: an inline list, or a column of a CSV or Parquet file.

A file column holds either seconds or datetimes, decided by its type (Parquet) or by its first
value (CSV: a number means seconds, anything else is read as an ISO-8601 datetime):

- seconds from the start of the trace (floats) are kept as given;
- ISO-8601 datetimes (``2023-11-16 18:17:03.9799600``, ``2023-11-16T18:17:03+02:00``; up to
  nanoseconds) become seconds since the first timestamp, or since `origin` when one is given.
  A datetime with an offset or a time zone is converted to UTC; a naive one (no offset) is taken
  to be UTC already. Differences are taken in integer nanoseconds, then converted to float64
  seconds, so 100-ns timestamps stay exact to well under a microsecond over years.

Either way the values must be finite, >= 0 (a datetime not before the origin) and sorted
(non-decreasing). A bad value is a `ConfigError` naming the file and the line (CSV: line 1 is the
header, one record per line) or the row (Parquet, counted from 0) and the column.

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

__all__ = ["TimestampList", "TimestampFile", "datetimes_to_ns", "parse_origin_ns"]

_READ_ROWS = 1 << 18  # rows per read; only a memory/speed trade-off, never changes the arrivals
_PARQUET_SUFFIXES = (".parquet", ".pq")
_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst", ".tar")  # read by pandas; no cheap tail
_TIMESTAMP = "a timestamp in seconds (a finite number >= 0)"
_DATETIME = "an ISO-8601 datetime such as 2023-11-16 18:17:03.9799600"


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


def _first_problem(vals: np.ndarray, prev: float | None, bad_value_text: str = _TIMESTAMP,
                   order_first: bool = False) -> tuple[int, str] | None:
    """Index and expectation of the first value that is not finite, negative or out of order
    (with `order_first`, a value both negative and out of order is reported as out of order)."""
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
    if bad_value[i] and not (order_first and decreasing[i] and np.isfinite(vals[i])):
        return i, bad_value_text
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

    A column of datetimes (see the module docstring) is measured from `origin` (an ISO-8601
    string, a `datetime` or a `date`; naive means UTC), by default from the first timestamp in
    the file. `origin` is refused for a column of seconds, which is used as given.
    """

    def __init__(self, path: str | Path, column: str | None = None, duration_s: float | None = None,
                 origin: Any = None):
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
            if self.format == "csv" and (_is_number(column) or _is_datetime_text(column)):
                raise ConfigError(self.source, "line 1", "a header row naming the columns (the first line "
                                  "looks like a timestamp)", column)
        elif column not in self._columns:
            raise ConfigError(self.source, "column", f"one of the file's columns: {', '.join(map(str, self._columns))}",
                              column)
        self.column = column
        self.unit = self._detect_unit()
        """'seconds' (values used as given) or 'datetime' (seconds since `origin_ns`)."""
        self.origin_ns: int | None = None
        """The origin of a datetime column, in nanoseconds since 1970-01-01 UTC."""
        if self.unit == "datetime":
            self.origin_ns = parse_origin_ns(origin, None, "origin") if origin is not None else self._first_ns()
        elif origin is not None:
            raise ConfigError(self.source, "origin", f"no origin: column {self.column!r} holds seconds, used as "
                              "given (origin applies to a column of datetimes)", origin)
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
                or pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t) \
                or pa.types.is_timestamp(t) or pa.types.is_date(t):
            return
        raise ConfigError(self.source, f"column {self.column!r}", "a column of seconds (numbers) or of datetimes",
                          str(t))

    def _detect_unit(self) -> str:
        """'datetime' for a Parquet timestamp/date column or a CSV/string column whose first value
        is not a number; 'seconds' otherwise (an empty first value is left to the stream to report)."""
        if self.format == "parquet":
            import pyarrow as pa

            self._check_parquet_type()
            t = self._types[self.column]
            if pa.types.is_timestamp(t) or pa.types.is_date(t):
                return "datetime"
            if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
                return "seconds"
        first = self._first_raw()
        if first is None or _is_number(first):
            return "seconds"
        if not _is_datetime_text(first):
            raise ConfigError(self.source, self._where(0), f"{_TIMESTAMP} or {_DATETIME}", first)
        return "datetime"

    def _first_raw(self) -> Any:
        """The first value of the column (None when it is empty or there is none)."""
        for _, series in self._raw_blocks(rows=1):
            if len(series) and not series.isna().iloc[0]:
                value = series.iloc[0]
                return value.item() if hasattr(value, "item") else value
            return None
        return None

    def _first_ns(self) -> int:
        """The first timestamp of a datetime column (the default origin), in UTC nanoseconds."""
        for _, series in self._raw_blocks(rows=1):
            if len(series):
                ns, empty, unparsed = datetimes_to_ns(series)
                if not (empty[0] or unparsed[0]):
                    return int(ns[0])
                got = "" if empty[0] and self.format == "csv" else _shown(series.iloc[0])
                raise ConfigError(self.source, self._where(0), _DATETIME + " (the first one is the origin)", got)
        raise ConfigError(self.source, self.column, "at least one timestamp")

    def _raw_blocks(self, rows: int | None = None) -> Iterator[tuple[int, Any]]:
        """(row offset, pandas Series) per block of the column, rows counted from 0."""
        import pandas as pd

        size = rows or _READ_ROWS
        row = 0
        if self.format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            self._check_parquet_type()
            try:
                for batch in pq.ParquetFile(self.path).iter_batches(batch_size=size, columns=[self.column]):
                    series = batch.column(0).to_pandas(date_as_object=False)
                    yield row, series
                    row += len(series)
            except (OSError, pa.ArrowException) as exc:
                raise ConfigError(self.source, "", f"a readable Parquet file ({exc})") from None
            return
        try:
            reader = pd.read_csv(self.path, usecols=[self.column], chunksize=size,
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

    def _to_seconds(self, raw) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(float64 seconds, empty mask, unparseable mask) of a block of the column."""
        if self.unit == "seconds":
            return _to_seconds(raw)
        ns, empty, unparsed = datetimes_to_ns(raw)
        vals = (ns - self.origin_ns).astype(np.float64) / 1e9
        vals[empty | unparsed] = np.nan
        return vals, empty, unparsed

    def _validated(self) -> Iterator[np.ndarray]:
        """The column's values as float64 blocks, checked, and cut at an explicit duration."""
        end = self._explicit_end
        if self.unit == "datetime":
            bad_text = f"{_DATETIME}, not before the origin {_iso(self.origin_ns)}"
        else:
            bad_text = _TIMESTAMP
        prev: float | None = None
        blank_row: int | None = None  # a blank CSV line: fine at the end of the file, not before a value
        for start, raw in self._raw_blocks():
            vals, empty, unparsed = self._to_seconds(raw)
            if blank_row is not None:
                if not empty.all():
                    raise ConfigError(self.source, self._where(blank_row), bad_text, "")
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
                first_bad, expected = int(np.argmax(unreadable)), bad_text
            problem = _first_problem(vals[:first_bad], prev, bad_text, order_first=self.unit == "datetime")
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
                else:
                    got = _shown(got)
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
                    vals, empty, unparsed = self._to_seconds(
                        pf.read_row_group(group, columns=[self.column]).column(0).to_pandas(date_as_object=False))
                    last = float(vals[-1])
                    ok = not (empty[-1] or unparsed[-1]) and math.isfinite(last) and last >= 0
                    return last if ok else None
            return None
        tail = last_csv_line(self.path)
        if tail is None:
            return None
        import pandas as pd

        # parse it as the stream will (same parser, same options), so the value is the same float
        header, line = tail
        try:
            frame = pd.read_csv(io.BytesIO(header + b"\n" + line + b"\n"),
                                usecols=[self.column], keep_default_na=False, na_values=[""])
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError):
            return None
        if len(frame) != 1:
            return None
        vals, empty, unparsed = self._to_seconds(frame[self.column])
        last = float(vals[0])
        ok = not (empty[0] or unparsed[0]) and math.isfinite(last) and last >= 0
        return last if ok else None

    # -- the interface ---------------------------------------------------------------------------

    def chunks(self, seed: np.random.SeedSequence | None = None,
               chunk_size: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
        return rechunk(self._validated(), chunk_size)

    def describe(self) -> dict:
        out = {"kind": "file", "path": self.source, "column": self.column, "unit": self.unit,
               "duration_s": self.duration_s}
        if self.origin_ns is not None:
            out["origin"] = _iso(self.origin_ns)
        return out

    def __repr__(self) -> str:
        origin = f", origin={_iso(self.origin_ns)!r}" if self.origin_ns is not None else ""
        return f"TimestampFile({self.source!r}, column={self.column!r}{origin}, duration_s={self.duration_s:g})"


def last_csv_line(path: Path) -> tuple[bytes, bytes] | None:
    """(header line, last non-blank line) of a plain CSV file, read from its two ends.

    None for a compressed file (no cheap tail), a file with fewer than two lines, or a last line
    with quotes (it may be the end of a multi-line record).
    """
    if path.suffix.lower() in _COMPRESSED:
        return None
    with open(path, "rb") as f:
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
    return header.rstrip(b"\r\n"), lines[-1]


def _is_number(text: Any) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def _is_datetime_text(text: Any) -> bool:
    if not isinstance(text, str):
        return False
    _, _, unparsed = datetimes_to_ns(_series([text]))
    return not unparsed[0]


def _series(values):
    import pandas as pd

    return pd.Series(values, dtype=object)


def _shown(value: Any) -> Any:
    """A raw value as an error message shows it (numpy scalars unwrapped, datetimes as ISO text)."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value.item() if hasattr(value, "item") else value


def _iso(ns: int) -> str:
    import pandas as pd

    return pd.Timestamp(ns, unit="ns", tz="UTC").isoformat()


def datetimes_to_ns(raw) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(int64 nanoseconds since 1970-01-01 UTC, empty mask, unparseable mask) of a pandas Series
    of ISO-8601 strings or of datetimes.

    Values with an offset or a time zone are converted to UTC; naive ones are taken as UTC. A
    number is not a datetime (it is unparseable here); so is a datetime outside the years
    1677-2262 (nanoseconds in int64). Unusable entries hold 0 in the first array.
    """
    import pandas as pd

    empty = raw.isna().to_numpy()
    n = len(raw)
    if raw.dtype.kind in "iufb":
        return np.zeros(n, dtype=np.int64), empty, ~empty
    if isinstance(raw.dtype, pd.DatetimeTZDtype) or raw.dtype.kind == "M":
        parsed = raw if getattr(raw.dt, "tz", None) is not None else raw.dt.tz_localize("UTC")
    else:
        parsed = pd.to_datetime(raw, format="ISO8601", utc=True, errors="coerce")
    try:
        parsed = parsed.dt.tz_convert("UTC").dt.as_unit("ns")
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):  # a year outside 1677-2262
        parsed = pd.Series([_one_datetime(v) for v in raw], index=raw.index, dtype="datetime64[ns, UTC]")
    missing = parsed.isna().to_numpy()
    ns = parsed.to_numpy(dtype="datetime64[ns]", na_value=np.datetime64(0, "ns")).view(np.int64)
    return ns, empty, missing & ~empty


def _one_datetime(value: Any):
    """One value as a UTC nanosecond Timestamp, or NaT."""
    import pandas as pd

    if value is None or (isinstance(value, float) and math.isnan(value)) or isinstance(value, (int, float, bool)):
        return pd.NaT
    try:
        ts = pd.Timestamp(value) if not isinstance(value, str) else pd.to_datetime(value, format="ISO8601")
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        return ts.as_unit("ns")
    except (ValueError, TypeError, OverflowError, pd.errors.OutOfBoundsDatetime):
        return pd.NaT


def parse_origin_ns(origin: Any, source: str | None, key: str) -> int:
    """An origin given as an ISO-8601 string, a `datetime` or a `date` (naive means UTC), in
    nanoseconds since 1970-01-01 UTC (what YAML gives for an unquoted date is accepted too)."""
    import datetime as dt

    import pandas as pd

    if isinstance(origin, (str, dt.date, pd.Timestamp)) and not isinstance(origin, bool):
        ts = _one_datetime(origin)
        if ts is not pd.NaT:
            return int(ts.value)
    raise ConfigError(source, key, "an ISO-8601 datetime such as '2023-11-16 18:00:00' or "
                      "'2023-11-16T18:00:00+00:00' (no offset means UTC)", origin)


def _to_seconds(raw) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float64 values, empty mask, unparseable mask) of a pandas Series of a column of seconds."""
    import pandas as pd

    empty = raw.isna().to_numpy()
    if raw.dtype.kind in "iuf":
        vals = raw.to_numpy(dtype=np.float64, na_value=np.nan)
        return vals, empty, np.zeros(vals.size, dtype=bool)
    if raw.dtype.kind == "b":
        return np.full(len(raw), np.nan), empty, ~empty
    vals = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return vals, empty, np.isnan(vals) & ~empty
