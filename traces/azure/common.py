"""What the Azure loaders share: reading CSV files in chunks with line-numbered errors, ids,
windows, the published schemas."""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from sim.errors import ConfigError

DAY_S = 86400.0
MINUTES_PER_DAY = 1440
TRIGGERS = ("http", "timer", "event", "queue", "storage", "orchestration", "others")
"""The values of the 2019 trace's Trigger column."""

_IDS = ("HashOwner", "HashApp", "HashFunction")
_MINUTE_COLUMNS = tuple(str(m) for m in range(1, MINUTES_PER_DAY + 1))
_INVOCATION_COLUMNS = _IDS + ("Trigger",) + _MINUTE_COLUMNS
_PERCENTILES = (0, 1, 25, 50, 75, 99, 100)
_PERCENTILE_COLUMNS = tuple(f"percentile_Average_{p}" for p in _PERCENTILES)
_DURATION_COLUMNS = _IDS + ("Average", "Count", "Minimum", "Maximum") + _PERCENTILE_COLUMNS
_INVOCATION_NAME = "invocations_per_function_md.anon.d{:02d}.csv"
_DURATION_NAME = "function_durations_percentiles.anon.d{:02d}.csv"
_DAY_IN_NAME = re.compile(r"\.d(\d+)\.csv(?:\.[a-z0-9]+)?$", re.IGNORECASE)

_MIN_PREFIX = 8          # an id may be given by a unique prefix of at least this many characters
_BLOCK = 65536           # arrivals per generation step (2019); fixed: part of the stream's definition
_GRID = 10_000           # samples of the 2019 duration distribution: quantiles at ranks i / _GRID
_ROWS_2019 = 4096        # rows per read of a 1,444-column day file (~50 MB of counts)
_READ_ROWS = 1 << 18     # rows per read of the narrow files; memory/speed only, never the arrivals


# -- reading CSV files ---------------------------------------------------------------------------

def _header(path: Path) -> list[str]:
    import pandas as pd

    try:
        return [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except pd.errors.EmptyDataError:
        raise ConfigError(str(path), "line 1", "a CSV file with a header row") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise ConfigError(str(path), "", f"a readable CSV file ({exc})") from None


def _require_columns(path: Path, columns: Sequence[str], required: Sequence[str], what: str) -> None:
    have = set(columns)
    missing = [c for c in required if c not in have]
    if missing:
        shown = ", ".join(repr(c) for c in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise ConfigError(str(path), "line 1", f"the columns of {what} (missing column {shown})")


def _frames(path: Path, columns: Sequence[str], text_columns: Sequence[str], rows: int,
            tally: dict[str, int]) -> Iterator[tuple[Any, np.ndarray]]:
    """(DataFrame, 1-based file line of each row) per block; blank lines are dropped and counted
    in ``tally['blank_lines']``. Text columns are read as strings (hashes stay text)."""
    import pandas as pd

    errors = (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError)
    try:
        reader = pd.read_csv(path, usecols=list(columns), dtype={c: str for c in text_columns}, chunksize=rows,
                             skip_blank_lines=False, keep_default_na=False, na_values=[""])
    except errors as exc:
        raise ConfigError(str(path), "", f"a readable CSV file ({exc})") from None
    row = 0
    with reader:
        while True:
            try:
                frame = next(reader)
            except StopIteration:
                return
            except errors as exc:
                raise ConfigError(str(path), "", f"a readable CSV file ({exc})") from None
            lines = np.arange(row + 2, row + 2 + len(frame), dtype=np.int64)
            row += len(frame)
            blank = frame.iloc[:, 0].isna().to_numpy().copy()
            if blank.any():  # a candidate: blank if every value is missing
                blank[blank] = frame[blank].isna().all(axis=1).to_numpy()
            if blank.any():
                tally["blank_lines"] = tally.get("blank_lines", 0) + int(blank.sum())
                frame, lines = frame[~blank], lines[~blank]
            if len(frame):
                yield frame, lines


def _raw(value: Any) -> Any:
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return value.item() if hasattr(value, "item") else value


def _fail_first(bad: np.ndarray, sub, columns: Sequence[str], lines: np.ndarray, path: Path, expected: str) -> None:
    """Raise for the first True of `bad` (rows x columns) in file order: first line, then column."""
    if bad.ndim == 1:
        bad = bad[:, None]
    flat = np.flatnonzero(bad.ravel())
    if flat.size:
        r, c = divmod(int(flat[0]), bad.shape[1])
        raise ConfigError(str(path), f"line {lines[r]}, column {columns[c]!r}", expected, _raw(sub.iat[r, c]))


def _texts(frame, columns: Sequence[str], lines: np.ndarray, path: Path) -> None:
    """Every value of the text columns is present."""
    sub = frame[list(columns)]
    _fail_first(sub.isna().to_numpy(), sub, columns, lines, path, "a value (an id or a name)")


def _numbers(frame, columns: Sequence[str], lines: np.ndarray, path: Path, expected: str, *,
             missing_ok: bool = False, minimum: float | None = None) -> np.ndarray:
    """The columns as a float64 matrix (NaN where empty, if `missing_ok`); a value that is
    unparseable, infinite, missing (unless allowed) or below `minimum` raises, naming its line."""
    import pandas as pd

    sub = frame[list(columns)]
    if all(dt.kind in "iuf" for dt in sub.dtypes):
        num = sub.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        num = np.column_stack([pd.to_numeric(sub[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
                               for c in columns])
    empty = sub.isna().to_numpy()
    bad = ~np.isfinite(num)
    if missing_ok:
        bad &= ~empty
    if minimum is not None:
        with np.errstate(invalid="ignore"):
            bad |= num < minimum
    _fail_first(bad, sub, columns, lines, path, expected)
    return num


def _counts(frame, columns: Sequence[str], lines: np.ndarray, path: Path, expected: str) -> np.ndarray:
    """The columns as an int64 matrix of integers >= 0 (fast when pandas already read integers)."""
    sub = frame[list(columns)]
    if all(dt.kind in "iu" for dt in sub.dtypes):
        vals = sub.to_numpy(dtype=np.int64)
        _fail_first(vals < 0, sub, columns, lines, path, expected)
        return vals
    num = _numbers(frame, columns, lines, path, expected, minimum=0)
    _fail_first(num != np.floor(num), sub, columns, lines, path, expected)
    return num.astype(np.int64)


def _match(series, wanted: str) -> np.ndarray:
    """Rows whose id equals `wanted`, or starts with it when it is at least _MIN_PREFIX long."""
    if len(wanted) >= _MIN_PREFIX:
        hit = series.str.startswith(wanted)
    else:
        hit = series == wanted
    return hit.to_numpy(dtype=bool, na_value=False)


def _short(ident: str) -> str:
    return ident if len(ident) <= 12 else ident[:12] + "…"


# -- parameters ----------------------------------------------------------------------------------

def _k(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _id_param(value: Any, source: str | None, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(source, key, "an id (a string; quote it in YAML, e.g. '0a1b2c3d')", value)
    return value.strip()


def _window_params(start_s: Any, duration_s: Any, source: str | None, key: str,
                   negative_start: bool = False) -> tuple[float | None, float | None]:
    if start_s is not None:
        if isinstance(start_s, bool) or not isinstance(start_s, (int, float)) or not math.isfinite(start_s) \
                or (start_s < 0 and not negative_start):
            raise ConfigError(source, _k(key, "start"), "a start time in seconds (a finite number"
                              + ("" if negative_start else " >= 0") + ")", start_s)
        start_s = float(start_s)
    if duration_s is not None:
        if isinstance(duration_s, bool) or not isinstance(duration_s, (int, float)) \
                or not math.isfinite(duration_s) or duration_s <= 0:
            raise ConfigError(source, _k(key, "duration"), "a duration > 0 (seconds)", duration_s)
        duration_s = float(duration_s)
    return start_s, duration_s


def _existing(path: Any, source: str | None, key: str, *, folder_ok: bool = False) -> Path:
    if not isinstance(path, (str, Path)) or not str(path):
        raise ConfigError(source, key, "a path (a string)", path)
    p = Path(path)
    if not (p.is_file() or (folder_ok and p.is_dir())):
        raise ConfigError(source, key, "an existing file" + (" or folder" if folder_ok else ""), str(p))
    return p


def _day_files(paths: Any, days: Any, name: str, source: str | None, key: str,
               path_key: str) -> tuple[list[Path], list[int] | None]:
    """The day files, in day order, and their day numbers (None when the names do not say).

    A folder takes `days` (default: every day file in it); a file or a list of files is taken in
    the order given, one day per file. Days must be consecutive and increasing.
    """
    if isinstance(paths, (str, Path)) and Path(paths).is_dir():
        folder = Path(paths)
        if days is None:
            pattern = re.compile(re.escape(name.split("{")[0]) + r"(\d+)\.csv$")
            days = sorted(int(m.group(1)) for p in folder.iterdir() if (m := pattern.fullmatch(p.name)))
            if not days:
                raise ConfigError(source, _k(key, path_key), f"a folder holding day files named like "
                                  f"{name.format(1)}", str(folder))
        elif not isinstance(days, (list, tuple)) or not days or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in days):
            raise ConfigError(source, _k(key, "days"), "a list of day numbers >= 1, e.g. [1, 2, 3]", days)
        _consecutive(list(days), source, _k(key, "days"))
        files = [folder / name.format(d) for d in days]
        for d, f in zip(days, files):
            if not f.is_file():
                raise ConfigError(source, _k(key, "days"), f"days whose files are in {folder} "
                                  f"(no {f.name} for day {d})", list(days))
        return files, list(days)
    if days is not None:
        raise ConfigError(source, _k(key, "days"), f"no days here: days go with a folder of day files "
                          f"({path_key}: a folder)", days)
    if isinstance(paths, (str, Path)):
        files = [_existing(paths, source, _k(key, path_key), folder_ok=True)]
    elif isinstance(paths, (list, tuple)) and paths:
        files = [_existing(p, source, f"{_k(key, path_key)}[{i}]") for i, p in enumerate(paths)]
    else:
        raise ConfigError(source, _k(key, path_key), "a file, a list of files or a folder of day files", paths)
    numbers = [int(m.group(1)) if (m := _DAY_IN_NAME.search(f.name)) else None for f in files]
    if all(n is not None for n in numbers):
        _consecutive(numbers, source, _k(key, path_key), [f.name for f in files])
        return files, numbers  # type: ignore[return-value]
    return files, None


def _consecutive(days: list[int], source: str | None, key: str, shown: Any = None) -> None:
    if any(b != a + 1 for a, b in zip(days, days[1:])):
        raise ConfigError(source, key, "consecutive days in increasing order (day k covers "
                          "[(k - first) * 86400, ...) s; a gap would be a silent day)",
                          shown if shown is not None else days)


# -- the 2019 trace ------------------------------------------------------------------------------

def _iso_naive(ns: int) -> str:
    import pandas as pd

    return pd.Timestamp(ns, unit="ns").isoformat()
