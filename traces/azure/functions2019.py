"""Azure Functions 2019 trace (Shahrad et al., ATC'20): per-minute invocation counts, placed in
the minute; optional duration percentiles (of 30-second averages, without cold starts)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from sim.dists import Empirical
from sim.errors import ConfigError

from ..base import (
    DEFAULT_CHUNK,
    ArrivalSource,
    child_seed,
    rechunk,
)
from .common import (
    _BLOCK,
    _DURATION_COLUMNS,
    _DURATION_NAME,
    _GRID,
    _IDS,
    _INVOCATION_COLUMNS,
    _INVOCATION_NAME,
    _MINUTE_COLUMNS,
    _PERCENTILE_COLUMNS,
    _PERCENTILES,
    _READ_ROWS,
    _ROWS_2019,
    DAY_S,
    MINUTES_PER_DAY,
    TRIGGERS,
    _counts,
    _day_files,
    _frames,
    _header,
    _id_param,
    _k,
    _match,
    _numbers,
    _raw,
    _require_columns,
    _short,
    _texts,
    _window_params,
)


@dataclass
class _Scan2019:
    """What one reading of the 2019 day files found for the selection."""

    counts: np.ndarray                                  # (days, 1440) int64, the selection summed
    functions: dict[tuple[str, str, str], int]          # selected (owner, app, function) -> invocations
    rows_read: int = 0
    rows_selected: int = 0
    rows_other_trigger: int = 0
    invocations_other_trigger: int = 0
    rows_other_functions: int = 0
    invocations_other_functions: int = 0
    blank_lines: int = 0
    functions_ranked: int = 0                           # top_k: how many functions the first pass ranked
    tie_at_cut: bool = False                            # top_k: the k-th and (k+1)-th have equal totals


@dataclass
class _Durations2019:
    distribution: Empirical
    rows_used: int
    count: int
    rows_other_functions: int
    rows_missing: int
    rows_zero_count: int
    average_ms: float | None
    blank_lines: int = 0


class Azure2019(ArrivalSource):
    """Arrivals from the Azure Functions 2019 trace's per-minute invocation counts.

    Files (`paths`): ``invocations_per_function_md.anon.dNN.csv`` — columns HashOwner, HashApp,
    HashFunction, Trigger, then ``1`` … ``1440`` (invocations per minute of the day). `paths` is
    one day file, a list of day files (in day order), or a folder with `days` (``[1, 2, 3]``,
    default: every day file in it). Day files are concatenated in day order: the k-th file covers
    ``[(k-1) * 86400, k * 86400)`` s. When the names carry day numbers (``.d03.``) they must be
    consecutive; each day draws its placements from its own child seed (by day number), so a day
    gets the same arrivals whatever other days are loaded.

    Selection (rows of the same function on several days, or with several triggers, are summed):

    - `function`: one HashFunction, or a unique prefix of at least 8 characters; with `app` too,
      the function of that name within that app (to tell apart two apps with the same function id);
    - `app`: every function of one HashApp (or a unique prefix), summed;
    - `top_k`: the k functions with most invocations over the files' days, summed. This needs a
      first pass over the files to rank the functions, then a second for their counts.

    `trigger` keeps only rows with that Trigger (one of `TRIGGERS`); the others are counted.

    Placement of a minute's n invocations (counts are recorded when invocations end; they are
    placed in the minute where they were counted):

    - ``uniform``: n independent uniform times in the minute, sorted — the exact conditional law
      of a Poisson process given its count in the minute;
    - ``equal``: ``minute_start + (i + 0.5) * 60 / n`` for i = 0 … n-1.

    Window: ``[start_s, start_s + duration_s)`` in seconds from the start of the first day file
    (default: all the days), re-based to 0. It must lie inside the files' days.

    Reading is lazy and done once: the first call that needs the counts (`chunks`, `notes`,
    `describe`, `duration_distribution`) reads every day file (in blocks of rows) and keeps only
    the selection's per-minute counts (1,440 integers a day); construction reads only headers.
    Every count in the files is checked (an integer >= 0) as it is read. Arrivals are then
    generated a few minutes at a time (blocks of about 65,536 arrivals), never a day at once.

    `durations_paths`: the ``function_durations_percentiles.anon.dNN.csv`` files (a file, a
    list, or a folder, which takes the same days), for `duration_distribution`.
    """

    def __init__(self, paths: Any, *, days: Sequence[int] | None = None, function: str | None = None,
                 app: str | None = None, top_k: int | None = None, trigger: str | None = None,
                 placement: str = "uniform", durations_paths: Any = None, duration_s: float | None = None,
                 start_s: float | None = None, source: str | None = None, key: str = ""):
        self._source, self._key = source, key
        self.function = _id_param(function, source, _k(key, "function"))
        self.app = _id_param(app, source, _k(key, "app"))
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1):
            raise ConfigError(source, _k(key, "top_k"), "a number of functions (an integer >= 1)", top_k)
        self.top_k = None if top_k is None else int(top_k)
        if self.top_k is not None and (self.function or self.app):
            raise ConfigError(source, _k(key, "top_k"), "one selection: function, app or top_k (function may "
                              "be given with app to name a function within an app)")
        if self.top_k is None and not (self.function or self.app):
            raise ConfigError(source, key or "selection", "a selection: function (a HashFunction or a unique "
                              "prefix of >= 8 characters), app (a HashApp) or top_k (a number of functions)")
        if trigger is not None and trigger not in TRIGGERS:
            raise ConfigError(source, _k(key, "trigger"), f"one of {', '.join(TRIGGERS)}", trigger)
        self.trigger = trigger
        if placement not in ("uniform", "equal"):
            raise ConfigError(source, _k(key, "placement"), "uniform or equal", placement)
        self.placement = placement
        self.paths, self.days = _day_files(paths, days, _INVOCATION_NAME, source, key, "path")
        for p in self.paths:
            _require_columns(p, _header(p), _INVOCATION_COLUMNS, "an Azure Functions 2019 invocation file "
                             "(HashOwner, HashApp, HashFunction, Trigger, 1 ... 1440)")
        self.durations_paths: list[Path] | None = None
        if durations_paths is not None:
            if isinstance(durations_paths, (str, Path)) and Path(durations_paths).is_dir():
                if self.days is None:
                    raise ConfigError(source, _k(key, "durations"), "a list of duration files (the invocation "
                                      "files' names carry no day numbers to match a folder's files by)",
                                      str(durations_paths))
                self.durations_paths, _ = _day_files(durations_paths, self.days, _DURATION_NAME, source, key,
                                                     "durations")
            else:
                self.durations_paths, _ = _day_files(durations_paths, None, _DURATION_NAME, source, key,
                                                     "durations")
            for p in self.durations_paths:
                _require_columns(p, _header(p), _DURATION_COLUMNS, "an Azure Functions 2019 duration file "
                                 "(HashOwner, HashApp, HashFunction, Average, Count, Minimum, Maximum, "
                                 "percentile_Average_0 ... _100)")
        self.total_s = len(self.paths) * DAY_S
        start, duration = _window_params(start_s, duration_s, source, key)
        self.start_s = 0.0 if start is None else start
        if self.start_s >= self.total_s:
            raise ConfigError(source, _k(key, "start"), f"a start before the end of the files' "
                              f"{len(self.paths)} day(s) (< {self.total_s:g} s)", start_s)
        self.duration_s = self.total_s - self.start_s if duration is None else duration
        if self.start_s + self.duration_s > self.total_s:
            raise ConfigError(source, _k(key, "duration"), f"a window inside the files' {len(self.paths)} "
                              f"day(s): start + duration <= {self.total_s:g} s", duration_s)
        self._scanned: _Scan2019 | None = None
        self._durations: _Durations2019 | None = None

    # -- reading ---------------------------------------------------------------------------------

    def _rows(self, tally: dict[str, int]) -> Iterator[tuple[int, Any, np.ndarray, np.ndarray]]:
        """(day index, frame of ids and trigger, counts (rows, 1440) int64, lines) per block, checked."""
        for day, path in enumerate(self.paths):
            for frame, lines in _frames(path, _INVOCATION_COLUMNS, _IDS + ("Trigger",), _ROWS_2019, tally):
                _texts(frame, _IDS + ("Trigger",), lines, path)
                counts = _counts(frame, _MINUTE_COLUMNS, lines, path, "a count of invocations (an integer >= 0)")
                yield day, frame[list(_IDS) + ["Trigger"]], counts, lines

    def _trigger_mask(self, frame) -> np.ndarray:
        if self.trigger is None:
            return np.ones(len(frame), dtype=bool)
        return (frame["Trigger"] == self.trigger).to_numpy(dtype=bool, na_value=False)

    def _rank(self) -> tuple[list[tuple[str, str, str]], int, bool]:
        """First pass for top_k: every function's invocations over the days; the k largest."""
        import pandas as pd

        parts: list = []
        tally: dict[str, int] = {}
        for _, frame, counts, _ in self._rows(tally):
            keep = self._trigger_mask(frame)
            if not keep.any():
                continue
            ids = frame.loc[keep, list(_IDS)]
            s = pd.Series(counts[keep].sum(axis=1), index=pd.MultiIndex.from_frame(ids))
            parts.append(s.groupby(level=[0, 1, 2]).sum())
            if len(parts) > 32:
                parts = [pd.concat(parts).groupby(level=[0, 1, 2]).sum()]
        if not parts:
            raise ConfigError(self._source, _k(self._key, "top_k"), "files with at least one function"
                              + (f" with trigger {self.trigger!r}" if self.trigger else ""), self.top_k)
        totals = pd.concat(parts).groupby(level=[0, 1, 2]).sum()
        ranked = totals.rename("n").reset_index().sort_values(
            ["n", *_IDS], ascending=[False, True, True, True], kind="stable")
        k = self.top_k
        assert k is not None
        if k > len(ranked):
            raise ConfigError(self._source, _k(self._key, "top_k"), f"at most {len(ranked)} (the number of "
                              "functions in the files" + (f" with trigger {self.trigger!r}" if self.trigger else "")
                              + ")", k)
        n = ranked["n"].to_numpy()
        tie = k < len(ranked) and n[k - 1] == n[k]
        keys = [tuple(r) for r in ranked[list(_IDS)].iloc[:k].itertuples(index=False, name=None)]
        return keys, len(ranked), bool(tie)

    def _scan(self) -> _Scan2019:
        """Read the day files once: the selection's per-minute counts and what was left out."""
        if self._scanned is not None:
            return self._scanned
        import pandas as pd

        chosen = None
        ranked, tie = 0, False
        if self.top_k is not None:
            keys, ranked, tie = self._rank()
            chosen = pd.MultiIndex.from_tuples(keys, names=list(_IDS))
        scan = _Scan2019(counts=np.zeros((len(self.paths), MINUTES_PER_DAY), dtype=np.int64), functions={},
                         functions_ranked=ranked, tie_at_cut=tie)
        tally: dict[str, int] = {}
        for day, frame, counts, _ in self._rows(tally):
            totals = counts.sum(axis=1)
            scan.rows_read += len(frame)
            keep = self._trigger_mask(frame)
            scan.rows_other_trigger += int((~keep).sum())
            scan.invocations_other_trigger += int(totals[~keep].sum())
            if chosen is not None:
                sel = pd.MultiIndex.from_frame(frame[list(_IDS)]).isin(chosen)
            else:
                sel = np.ones(len(frame), dtype=bool)
                if self.app:
                    sel &= _match(frame["HashApp"], self.app)
                if self.function:
                    sel &= _match(frame["HashFunction"], self.function)
            sel &= keep
            other = keep & ~sel
            scan.rows_other_functions += int(other.sum())
            scan.invocations_other_functions += int(totals[other].sum())
            if sel.any():
                scan.rows_selected += int(sel.sum())
                scan.counts[day] += counts[sel].sum(axis=0)
                per = pd.Series(totals[sel], index=pd.MultiIndex.from_frame(frame.loc[sel, list(_IDS)]))
                for ident, n in per.groupby(level=[0, 1, 2]).sum().items():
                    scan.functions[ident] = scan.functions.get(ident, 0) + int(n)
        scan.blank_lines = tally.get("blank_lines", 0)
        self._check_selection(scan)
        self._scanned = scan
        return scan

    def _check_selection(self, scan: _Scan2019) -> None:
        trig = f" with trigger {self.trigger!r}" if self.trigger else ""
        if self.top_k is not None:
            return
        if not scan.functions:
            if self.function:
                what = "a HashFunction (or a unique prefix of >= 8 characters)" + (
                    f" of app {self.app!r}" if self.app else "")
                raise ConfigError(self._source, _k(self._key, "function"), f"{what} found in the files{trig}",
                                  self.function)
            raise ConfigError(self._source, _k(self._key, "app"), "a HashApp (or a unique prefix of >= 8 "
                              f"characters) found in the files{trig}", self.app)
        apps = sorted({a for _, a, _ in scan.functions})
        if self.app and len(apps) > 1:
            raise ConfigError(self._source, _k(self._key, "app"), f"an app id that names one app; it matches "
                              f"{len(apps)}: {', '.join(_short(a) for a in apps[:4])} (give more characters)",
                              self.app)
        if self.function and len(scan.functions) > 1:
            shown = ", ".join(f"app {_short(a)} function {_short(f)}" for _, a, f in sorted(scan.functions)[:4])
            raise ConfigError(self._source, _k(self._key, "function"), f"a function id that names one function; "
                              f"it matches {len(scan.functions)}: {shown} (give more characters, or app: too)",
                              self.function)

    # -- arrivals --------------------------------------------------------------------------------

    def _seed_index(self, day: int) -> int:
        return self.days[day] if self.days is not None else day + 1

    def _blocks(self, seed: np.random.SeedSequence) -> Iterator[np.ndarray]:
        counts = self._scan().counts
        lo, hi = self.start_s, self.start_s + self.duration_s
        minute_s = np.arange(MINUTES_PER_DAY, dtype=np.float64) * 60.0
        for day in range(int(lo // DAY_S), len(self.paths)):
            day_start = day * DAY_S
            if day_start >= hi:
                return
            c = counts[day]
            cum = np.cumsum(c)
            if cum[-1] == 0:
                continue
            # groups of whole minutes holding >= _BLOCK arrivals (the last one fewer): a function
            # of the day's counts only, so the draws do not depend on the window or chunk size
            cuts = np.searchsorted(cum, np.arange(_BLOCK, cum[-1], _BLOCK), side="left") + 1
            edges = np.unique(np.concatenate([[0], cuts, [MINUTES_PER_DAY]]))
            rng = np.random.default_rng(child_seed(seed, self._seed_index(day))) \
                if self.placement == "uniform" else None
            for m0, m1 in zip(edges[:-1], edges[1:]):
                n_m = c[m0:m1]
                n = int(n_m.sum())
                if n == 0:
                    continue
                if day_start + minute_s[m0] >= hi:
                    return
                u = rng.random(n) if rng is not None else None
                if day_start + minute_s[m1 - 1] + 60.0 <= lo:
                    continue  # before the window (its draws are made all the same)
                starts = np.repeat(day_start + minute_s[m0:m1], n_m)
                if u is not None:
                    t = starts + 60.0 * u
                else:
                    first = np.repeat(np.cumsum(n_m) - n_m, n_m)
                    t = starts + (np.arange(n) - first + 0.5) * 60.0 / np.repeat(n_m, n_m)
                np.minimum(t, np.nextafter(starts + 60.0, -np.inf), out=t)  # never in the next minute
                if u is not None:
                    t.sort()
                if lo:
                    t -= lo
                i0 = int(np.searchsorted(t, 0.0, side="left"))
                i1 = int(np.searchsorted(t, self.duration_s, side="left"))
                if i1 > i0:
                    yield t[i0:i1]

    def chunks(self, seed: np.random.SeedSequence, chunk_size: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
        return rechunk(self._blocks(seed), chunk_size)

    def minute_counts(self) -> np.ndarray:
        """The selection's invocations per minute, one row of 1,440 per day file (int64)."""
        counts = self._scan().counts.copy()
        counts.setflags(write=False)
        return counts

    # -- durations -------------------------------------------------------------------------------

    def duration_distribution(self) -> Empirical:
        """Execution time (ms) of the selected function(s), from the duration percentile files.

        Each (function, day) row publishes percentiles 0, 1, 25, 50, 75, 99 and 100; its quantile
        function is taken as linear between them, and the rows are mixed with weights
        proportional to their Count. The result is an `Empirical` of the mixture's quantiles at
        ranks i / 10,000 (the last sample is the 100th percentile), so its quantiles at the
        published ranks are the published percentiles (for a single row, exactly).

        Caveats (the dataset's own): these are percentiles of **30-second-window averages** of
        execution time, not of single invocations — averaging hides the spread, so the tail is
        understated — and they **exclude cold-start time**. Count may differ from the invocation
        counts. Rows with a missing percentile or a Count of 0 are skipped and counted (`notes`);
        rows of other functions are not checked.
        """
        return self._read_durations().distribution

    def _read_durations(self) -> _Durations2019:
        if self._durations is not None:
            return self._durations
        if self.durations_paths is None:
            raise ConfigError(self._source, _k(self._key, "durations"), "the duration percentile files "
                              "(function_durations_percentiles.anon.dNN.csv) to build a duration distribution")
        import pandas as pd

        chosen = pd.MultiIndex.from_tuples(list(self._scan().functions), names=list(_IDS))
        values, weights, averages = [], [], []
        other = missing = zero = 0
        tally: dict[str, int] = {}
        cols = list(_IDS) + ["Average", "Count"] + list(_PERCENTILE_COLUMNS)
        for path in self.durations_paths:
            for frame, lines in _frames(path, cols, _IDS, _READ_ROWS, tally):
                sel = pd.MultiIndex.from_frame(frame[list(_IDS)]).isin(chosen)
                other += int((~sel).sum())
                if not sel.any():
                    continue
                sub, sub_lines = frame[sel], lines[sel]
                count = _counts(sub, ["Count"], sub_lines, path, "a Count (an integer >= 0)")[:, 0]
                pct = _numbers(sub, _PERCENTILE_COLUMNS, sub_lines, path, "a duration in ms (a number >= 0)",
                               missing_ok=True, minimum=0)
                avg = _numbers(sub, ["Average"], sub_lines, path, "an average duration in ms (a number >= 0)",
                               missing_ok=True, minimum=0)[:, 0]
                gap = np.isnan(pct).any(axis=1)
                with np.errstate(invalid="ignore"):
                    down = np.diff(pct, axis=1) < 0
                down[gap] = False
                if down.any():
                    r, c = divmod(int(np.flatnonzero(down.ravel())[0]), down.shape[1])
                    raise ConfigError(str(path), f"line {sub_lines[r]}, column {_PERCENTILE_COLUMNS[c + 1]!r}",
                                      f"percentiles in non-decreasing order (>= {_PERCENTILE_COLUMNS[c]} = "
                                      f"{pct[r, c]:g})", _raw(sub[_PERCENTILE_COLUMNS[c + 1]].iat[r]))
                missing += int(gap.sum())
                empty = ~gap & (count == 0)
                zero += int(empty.sum())
                use = ~gap & ~empty
                values.append(pct[use])
                weights.append(count[use])
                averages.append(avg[use])
        if not values or sum(v.shape[0] for v in values) == 0:
            raise ConfigError(self._source, _k(self._key, "durations"), "duration rows for the selected "
                              f"function(s) ({other} rows of other functions, {missing} with a missing "
                              f"percentile, {zero} with Count 0)", [str(p) for p in self.durations_paths])
        v = np.concatenate(values)
        w = np.concatenate(weights).astype(np.float64)
        a = np.concatenate(averages)
        known = ~np.isnan(a)
        average = float(np.average(a[known], weights=w[known])) if known.any() and w[known].sum() > 0 else None
        samples = _mixture_quantiles(v, np.array(_PERCENTILES) / 100.0, w, np.arange(_GRID) / _GRID)
        samples[-1] = v.max()  # the 100th percentile: the largest published value
        self._durations = _Durations2019(Empirical(samples), rows_used=int(v.shape[0]), count=int(w.sum()),
                                         rows_other_functions=other, rows_missing=missing, rows_zero_count=zero,
                                         average_ms=average, blank_lines=tally.get("blank_lines", 0))
        return self._durations

    # -- reporting -------------------------------------------------------------------------------

    def _window_split(self) -> tuple[int, int, int]:
        """Invocations in minutes inside the window, in minutes it cuts, and outside it."""
        c = self._scan().counts.ravel()
        starts = np.arange(c.size, dtype=np.float64) * 60.0
        lo, hi = self.start_s, self.start_s + self.duration_s
        inside = (starts >= lo) & (starts + 60.0 <= hi)
        outside = (starts + 60.0 <= lo) | (starts >= hi)
        return int(c[inside].sum()), int(c[~inside & ~outside].sum()), int(c[outside].sum())

    def _selection(self) -> dict:
        if self.top_k is not None:
            return {"top_k": self.top_k}
        out = {}
        if self.function:
            out["function"] = self.function
        if self.app:
            out["app"] = self.app
        return out

    def notes(self) -> list[str]:
        s = self._scan()
        total = int(s.counts.sum())
        names = ", ".join(p.name for p in self.paths) if len(self.paths) <= 3 else \
            f"{self.paths[0].name} … {self.paths[-1].name}"
        out = [f"Azure Functions 2019 trace: {len(self.paths)} day file(s) ({names}), {s.rows_read} rows read; "
               f"day k of the files covers [(k-1)*86400, k*86400) s."]
        trig = f" (trigger {self.trigger})" if self.trigger else ""
        if self.top_k is not None:
            out.append(f"Selected the top {self.top_k} of {s.functions_ranked} functions{trig} by invocations over "
                       f"the {len(self.paths)} day(s) (a first pass over the files ranked them): {total} "
                       f"invocations, summed.")
            if s.tie_at_cut:
                out.append(f"Functions ranked {self.top_k} and {self.top_k + 1} have equal totals; the tie was "
                           "broken by the order of their ids.")
        elif self.function:
            (owner, app, fn), = s.functions
            out.append(f"Selected function {fn} (app {app}, owner {owner}){trig}: {total} invocations.")
        else:
            app = next(iter(s.functions))[1]
            out.append(f"Selected app {app}{trig}: {len(s.functions)} function(s), {total} invocations, summed.")
        if s.rows_other_trigger:
            out.append(f"Skipped {s.rows_other_trigger} rows ({s.invocations_other_trigger} invocations) with a "
                       f"trigger other than {self.trigger!r}.")
        out.append(f"Skipped {s.rows_other_functions} rows ({s.invocations_other_functions} invocations) of other "
                   f"functions.")
        absent = [self._seed_index(d) for d in range(len(self.paths)) if not s.counts[d].any()]
        if absent:
            out.append(f"The selection has no invocation on day(s) {', '.join(map(str, absent))}.")
        if s.blank_lines:
            out.append(f"Skipped {s.blank_lines} blank lines.")
        if self.start_s > 0 or self.duration_s < self.total_s:
            inside, cut, outside = self._window_split()
            out.append(f"The window [{self.start_s:g}, {self.start_s + self.duration_s:g}) s keeps the {inside} "
                       f"invocations of the minutes inside it; {cut} lie in the minutes it cuts (kept where their "
                       f"placement falls inside it); {outside} are outside it.")
        if self.placement == "uniform":
            out.append("Within each minute, its invocations are placed uniformly at random and sorted (the law of "
                       "a Poisson process given its count in the minute).")
        else:
            out.append("Within each minute, its n invocations are equally spaced: start + (i + 0.5) * 60 / n s.")
        out.append("The trace counts an invocation in the minute it ended (counts are recorded after execution); "
                   "it is placed in that minute.")
        if self.durations_paths is not None:
            try:
                d = self._read_durations()
            except ConfigError as exc:  # duration_distribution() raises it; the arrivals are still fine
                out.append(f"Durations: unusable ({exc}).")
                return out
            avg = f"; their Count-weighted Average is {d.average_ms:g} ms" if d.average_ms is not None else ""
            out.append(f"Durations: {d.rows_used} (function, day) rows, Count {d.count}{avg}. They are percentiles "
                       "of 30-second-window averages of execution time, not of single invocations (averaging hides "
                       "the spread, so the tail is understated), and exclude cold-start time; the quantile function "
                       "is linear between the published percentiles 0, 1, 25, 50, 75, 99, 100.")
            if d.rows_missing or d.rows_zero_count:
                out.append(f"Durations: skipped {d.rows_missing} rows with a missing percentile and "
                           f"{d.rows_zero_count} with Count 0.")
            out.append(f"Durations: skipped {d.rows_other_functions} rows of other functions"
                       + (f" and {d.blank_lines} blank lines." if d.blank_lines else "."))
        return out

    def describe(self) -> dict:
        s = self._scan()
        inside, cut, outside = self._window_split()
        functions = [{"owner": o, "app": a, "function": f, "invocations": n}
                     for (o, a, f), n in sorted(s.functions.items(), key=lambda kv: (-kv[1], kv[0]))]
        out = {"kind": "azure2019", "paths": [str(p) for p in self.paths], "days": self.days,
               **self._selection(), "trigger": self.trigger, "placement": self.placement,
               "start_s": self.start_s, "duration_s": self.duration_s,
               "durations_paths": None if self.durations_paths is None else [str(p) for p in self.durations_paths],
               "functions": functions[:100],
               "counts": {"rows_read": s.rows_read, "rows_selected": s.rows_selected,
                          "functions_selected": len(s.functions), "invocations_selected": int(s.counts.sum()),
                          "invocations_in_window_minutes": inside, "invocations_in_cut_minutes": cut,
                          "invocations_outside_window": outside,
                          "rows_other_trigger": s.rows_other_trigger,
                          "invocations_other_trigger": s.invocations_other_trigger,
                          "rows_other_functions": s.rows_other_functions,
                          "invocations_other_functions": s.invocations_other_functions,
                          "blank_lines": s.blank_lines}}
        if self._durations is not None:
            d = self._durations
            out["durations"] = {"rows_used": d.rows_used, "count": d.count, "average_ms": d.average_ms,
                                "rows_missing_percentile": d.rows_missing, "rows_zero_count": d.rows_zero_count,
                                "rows_other_functions": d.rows_other_functions}
        return out

    def __repr__(self) -> str:
        sel = ", ".join(f"{k}={v!r}" for k, v in self._selection().items())
        return (f"Azure2019({len(self.paths)} day(s), {sel}, placement={self.placement!r}, "
                f"start_s={self.start_s:g}, duration_s={self.duration_s:g})")


def _mixture_quantiles(values: np.ndarray, probs: np.ndarray, weights: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Quantiles at ranks `u` of a mixture of distributions whose quantile functions are linear
    between knots (probs[j], values[i, j]), row i weighted by weights[i].

    Exact: each row's CDF is piecewise linear in x (with an atom where two knots share a value),
    so the mixture's CDF is piecewise linear between the union of all knot values; it is built
    by a sweep over the knots and inverted (left-continuous inverse) at `u`.
    """
    w = weights / weights.sum()
    mass = w[:, None] * np.diff(probs)[None, :]              # (rows, segments)
    v0, v1 = values[:, :-1], values[:, 1:]
    xs = np.unique(values)
    i0 = np.searchsorted(xs, v0)
    i1 = np.searchsorted(xs, v1)
    atom = np.zeros(xs.size)
    slope_delta = np.zeros(xs.size)
    flat = v1 <= v0
    np.add.at(atom, i0[flat], mass[flat])
    slope = mass[~flat] / (v1[~flat] - v0[~flat])
    np.add.at(slope_delta, i0[~flat], slope)
    np.add.at(slope_delta, i1[~flat], -slope)
    gain = np.maximum(np.cumsum(slope_delta)[:-1], 0.0) * np.diff(xs)   # mass strictly between knots
    steps = np.empty(2 * xs.size - 1)
    steps[0::2] = atom
    steps[1::2] = gain
    cdf = np.concatenate([[0.0], np.cumsum(steps)])        # F(x-) and F(x) at each knot, in turn
    cdf /= cdf[-1]
    xp = np.repeat(xs, 2)
    k = np.searchsorted(cdf, u, side="left")
    k = np.clip(k, 0, cdf.size - 1)
    exact = cdf[k] == u
    prev = np.maximum(k - 1, 0)
    span = cdf[k] - cdf[prev]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(span > 0, (u - cdf[prev]) / span, 0.0)
    out = xp[prev] + frac * (xp[k] - xp[prev])
    return np.where(exact | (k == 0), xp[k], out)


# -- the 2021 trace ------------------------------------------------------------------------------
