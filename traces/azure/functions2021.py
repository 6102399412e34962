"""Azure Functions invocation trace 2021 (Zhang et al., SOSP'21): one row per invocation,
arrival = end_timestamp - duration."""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from sim.dists import Empirical
from sim.errors import ConfigError

from ..base import (
    DEFAULT_CHUNK,
    ArrivalSource,
    rechunk,
)
from .common import (
    _READ_ROWS,
    _existing,
    _frames,
    _header,
    _id_param,
    _k,
    _match,
    _numbers,
    _require_columns,
    _short,
    _texts,
    _window_params,
)


class Azure2021(ArrivalSource):
    """Arrivals from the Azure Functions invocation trace 2021: one CSV row per invocation.

    Columns ``app, func, end_timestamp, duration`` (seconds; the dataset's timestamps were
    shifted from production). An arrival is ``end_timestamp - duration``. Select an `app` (a
    HashApp or a unique prefix of >= 8 characters) and within it a `func`; neither means the
    whole trace. The file is ordered by end time, not start time, so its arrivals are not in
    order, and no bounded look-back buffer sorts them exactly (one long invocation can start
    before any number of rows above it). So the loader is exact by reading, once at
    construction, the selected rows' arrivals and durations into two float64 arrays and sorting
    the arrivals once: memory is **16 bytes per selected invocation** (the full two-week trace,
    about 2 M invocations, takes about 32 MB) plus one block of rows being parsed. Files of a few
    GB are fine; for a larger selection, pre-sort the file by start time and use the ``file``
    kind.

    Times are seconds since the first selected arrival, or since `start_s` (on the file's clock,
    any finite number) when given; the window is ``[0, duration_s)`` after that re-basing, by
    default up to just after the last arrival.
    """

    COLUMNS = ("app", "func", "end_timestamp", "duration")

    def __init__(self, path: Any, *, app: str | None = None, func: str | None = None,
                 duration_s: float | None = None, start_s: float | None = None, source: str | None = None,
                 key: str = ""):
        self._source, self._key = source, key
        self.app = _id_param(app, source, _k(key, "app"))
        self.func = _id_param(func, source, _k(key, "func"))
        if self.func and not self.app:
            raise ConfigError(source, _k(key, "app"), "an app: func ids are unique only within an app")
        start, duration = _window_params(start_s, duration_s, source, key, negative_start=True)
        self.path = _existing(path, source, _k(key, "path"))
        _require_columns(self.path, _header(self.path), self.COLUMNS,
                         "an Azure Functions 2021 invocation file (app, func, end_timestamp, duration)")
        tally: dict[str, int] = {}
        starts, durations = [], []
        rows = other = backwards = 0
        last_start = -np.inf
        matched: set[tuple[str, str]] = set()
        for frame, lines in _frames(self.path, self.COLUMNS, ("app", "func"), _READ_ROWS, tally):
            rows += len(frame)
            _texts(frame, ("app", "func"), lines, self.path)
            end = _numbers(frame, ["end_timestamp"], lines, self.path, "a time in seconds (a finite number)")[:, 0]
            dur = _numbers(frame, ["duration"], lines, self.path, "a duration in seconds (a number >= 0)",
                           minimum=0)[:, 0]
            sel = np.ones(len(frame), dtype=bool)
            if self.app:
                sel &= _match(frame["app"], self.app)
            if self.func:
                sel &= _match(frame["func"], self.func)
            other += int((~sel).sum())
            if not sel.any():
                continue
            s = end[sel] - dur[sel]
            backwards += int((np.diff(np.concatenate([[last_start], s])) < 0).sum())
            last_start = float(s[-1])
            starts.append(s)
            durations.append(dur[sel])
            if self.app:
                matched.update(frame.loc[sel, ["app", "func"]].drop_duplicates().itertuples(index=False, name=None))
        self._check_selection(matched, rows)
        arrivals = np.concatenate(starts) if starts else np.empty(0)
        durs = np.concatenate(durations) if durations else np.empty(0)
        if arrivals.size == 0:
            raise ConfigError(str(self.path), "", "at least one invocation row")
        self.start_given = start is not None
        self.origin_s = float(arrivals.min()) if start is None else start
        rel = arrivals - self.origin_s
        del arrivals
        if duration is None:
            last = float(rel.max())
            if last < 0:
                raise ConfigError(source, _k(key, "start"), f"a start before the last arrival "
                                  f"({self.origin_s + last:g} s on the file's clock)", start_s)
            duration = float(np.nextafter(last, np.inf))
        self.duration_s = duration
        keep = (rel >= 0) & (rel < duration)
        self.rows_read, self.rows_other, self.rows_backwards = rows, other, backwards
        self.rows_selected = int(rel.size)
        self.rows_before = int((rel < 0).sum())
        self.rows_after = int((rel >= duration).sum())
        self.blank_lines = tally.get("blank_lines", 0)
        times = np.sort(rel[keep])
        times.setflags(write=False)
        self._times = times
        self._durations_s = durs[keep]
        self.matched = sorted(matched)

    def _check_selection(self, matched: set[tuple[str, str]], rows: int) -> None:
        if not self.app:
            return
        if not matched:
            name = "func" if self.func else "app"
            raise ConfigError(self._source, _k(self._key, name), f"an {name} id (or a unique prefix of >= 8 "
                              f"characters) found in {self.path} ({rows} rows)", self.func or self.app)
        apps = sorted({a for a, _ in matched})
        if len(apps) > 1:
            raise ConfigError(self._source, _k(self._key, "app"), f"an app id that names one app; it matches "
                              f"{len(apps)}: {', '.join(_short(a) for a in apps[:4])} (give more characters)",
                              self.app)
        if self.func and len(matched) > 1:
            shown = ", ".join(_short(f) for _, f in sorted(matched)[:4])
            raise ConfigError(self._source, _k(self._key, "func"), f"a func id that names one function; it "
                              f"matches {len(matched)}: {shown} (give more characters)", self.func)

    def chunks(self, seed: np.random.SeedSequence | None = None,
               chunk_size: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
        return rechunk([self._times], chunk_size)

    def duration_distribution(self) -> Empirical:
        """The recorded durations (ms) of the invocations in the window: true per-invocation
        durations (whether they include cold-start time is not documented by the dataset)."""
        if self._durations_s.size == 0:
            raise ConfigError(str(self.path), "", "at least one invocation in the window for a duration distribution")
        return Empirical(self._durations_s * 1000.0)

    def _selection(self) -> str:
        if self.func:
            return f"function {self.matched[0][1]} of app {self.matched[0][0]}"
        if self.app:
            return f"app {self.matched[0][0]} ({len(self.matched)} function(s))"
        return "every app"

    def notes(self) -> list[str]:
        origin = "the given start" if self.start_given else "the first arrival"
        out = [f"Azure Functions 2021 trace {self.path.name}: {self.rows_read} rows read; {self.rows_selected} "
               f"invocations of {self._selection()}; skipped {self.rows_other} rows of other apps or functions.",
               f"Arrivals are end_timestamp - duration. The file is ordered by end time: {self.rows_backwards} "
               f"selected rows start before the row above them. The selected arrivals and durations were read "
               f"into memory (16 bytes per invocation, {self.rows_selected * 16 / 1e6:.1f} MB) and the arrivals "
               f"sorted once, so the order is exact.",
               f"Times are seconds since {self.origin_s:g} s on the file's clock ({origin}); the window "
               f"[0, {self.duration_s:g}) s keeps {self._times.size} arrivals; skipped {self.rows_before} before it "
               f"and {self.rows_after} at or after its end.",
               "The dataset's timestamps were shifted from production; durations are per invocation "
               "(duration_distribution: those in the window, in ms)."]
        if self.blank_lines:
            out.append(f"Skipped {self.blank_lines} blank lines.")
        return out

    def describe(self) -> dict:
        return {"kind": "azure2021", "path": str(self.path), "app": self.app, "func": self.func,
                "origin_s": self.origin_s, "duration_s": self.duration_s,
                "counts": {"rows_read": self.rows_read, "rows_selected": self.rows_selected,
                           "rows_other_functions": self.rows_other, "rows_before_window": self.rows_before,
                           "rows_after_window": self.rows_after, "arrivals": int(self._times.size),
                           "rows_starting_before_the_row_above": self.rows_backwards,
                           "blank_lines": self.blank_lines}}

    def __repr__(self) -> str:
        return (f"Azure2021({self.path.name!r}, app={self.app!r}, func={self.func!r}, n={self._times.size}, "
                f"duration_s={self.duration_s:g})")


# -- the LLM inference traces --------------------------------------------------------------------
