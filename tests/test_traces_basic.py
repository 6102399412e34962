"""Arrival sources: the Poisson generator against theory, timestamp lists and files, trace specs."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
from tracehelp import check_contract, concat, seed

from sim.errors import ConfigError
from traces.base import rechunk
from traces.files import TimestampFile, TimestampList
from traces.poisson import Poisson
from traces.spec import parse_trace

# -- Poisson ---------------------------------------------------------------------------------------

def test_poisson_count_within_three_sigma():
    # N ~ Poisson(rate * T): mean 200,000, sd ~447; 3 sigma is a 0.27 % false-alarm rate per seed.
    rate, duration = 50.0, 4000.0
    times = Poisson(rate, duration).arrivals(seed())
    mean = rate * duration
    assert abs(times.size - mean) < 3 * math.sqrt(mean)
    check_contract(times, duration)


def test_poisson_gaps_are_exponential():
    rate = 20.0
    times = Poisson(rate, 2000.0).arrivals(seed(7))
    gaps = np.diff(np.concatenate([[0.0], times]))
    result = st.kstest(gaps, "expon", args=(0, 1 / rate))
    assert result.pvalue > 0.001
    assert gaps.max() > 5 / rate  # the tail is there: no capped gaps (P(max < 5/rate) ~ e^-270)


def test_poisson_same_seed_same_arrivals_and_no_hidden_state():
    source = Poisson(100.0, 300.0)
    a = source.arrivals(seed(1))
    b = source.arrivals(seed(1))
    c = source.arrivals(seed(2))
    assert np.array_equal(a, b)
    assert a.size != c.size or not np.array_equal(a, c)


def test_poisson_chunk_size_does_not_change_arrivals():
    source = Poisson(300.0, 500.0)  # ~150,000 arrivals: crosses internal block boundaries
    big = concat(source, seed(3), 65536)
    small = concat(source, seed(3), 7)
    odd = concat(source, seed(3), 100_003)
    assert np.array_equal(big, small) and np.array_equal(big, odd)


def test_poisson_stays_inside_the_window():
    for rate, duration in [(1000.0, 0.5), (0.01, 10.0), (5.0, 65536 / 5.0)]:
        times = Poisson(rate, duration).arrivals(seed(11))
        check_contract(times, duration)


def test_poisson_streams_in_chunks_without_materialising():
    # a month at 100 req/s: the first chunks come at once, in bounded size
    source = Poisson(100.0, 30 * 86400.0)
    it = source.chunks(seed(), 4096)
    first = [next(it) for _ in range(3)]
    assert all(c.size == 4096 for c in first)
    assert first[0][0] < first[2][-1] < 1000


@pytest.mark.parametrize("rate,duration", [(0, 10), (-1, 10), (float("nan"), 10), (1, 0), (1, -5)])
def test_poisson_rejects_bad_parameters(rate, duration):
    with pytest.raises(ValueError):
        Poisson(rate, duration)


def test_rechunk_preserves_concatenation():
    blocks = [np.arange(5.0), np.empty(0), np.arange(5.0, 6.0), np.arange(6.0, 20.0)]
    for size in (1, 3, 6, 20, 50):
        out = list(rechunk(iter(blocks), size))
        assert np.array_equal(np.concatenate(out), np.arange(20.0))
        assert all(o.size == size for o in out[:-1]) and 0 < out[-1].size <= size


# -- inline lists ----------------------------------------------------------------------------------

def test_timestamp_list_keeps_times_and_defaults_window_after_last():
    source = TimestampList([0.0, 0.5, 0.5, 2.0])
    times = concat(source, seed(), 3)
    assert times.tolist() == [0.0, 0.5, 0.5, 2.0]
    assert source.duration_s == pytest.approx(2.0) and source.duration_s > 2.0
    check_contract(times, source.duration_s)
    assert TimestampList([1.0, 2.0, 3.0], duration_s=2.0).arrivals(seed()).tolist() == [1.0]


@pytest.mark.parametrize("times,where,expected", [
    ([1.0, 0.5], "times[1]", "non-decreasing"),
    ([-1.0], "times[0]", ">= 0"),
    ([1.0, "x"], "times[1]", "seconds"),
    ([1.0, float("nan")], "times[1]", "finite"),
    ([], "times", "at least one"),
])
def test_timestamp_list_rejects_bad_values(times, where, expected):
    with pytest.raises(ConfigError) as err:
        TimestampList(times, source="s.yaml", key="times")
    assert "s.yaml" in str(err.value) and where in str(err.value) and expected in str(err.value)


# -- files -----------------------------------------------------------------------------------------

def write_csv(path: Path, rows: list[str], header: str = "t,other") -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def test_csv_round_trip_by_name_and_default_column(tmp_path, monkeypatch):
    times = np.sort(np.random.default_rng(0).uniform(0, 100, 1000))
    path = tmp_path / "arrivals.csv"
    pd.DataFrame({"other": np.arange(times.size), "t": times}).to_csv(path, index=False)
    source = TimestampFile(path, column="t")
    assert np.array_equal(concat(source, seed(), 7), times)
    assert source.duration_s == pytest.approx(times[-1]) and source.duration_s > times[-1]
    # the first column by default; small read blocks give the same stream
    monkeypatch.setattr("traces.files._READ_ROWS", 64)
    first = TimestampFile(path)
    assert first.column == "other"
    assert np.array_equal(concat(TimestampFile(path, column="t"), seed(), 100), times)


def test_csv_window_slices(tmp_path):
    path = write_csv(tmp_path / "a.csv", ["1,a", "2,b", "3,c", "4,d"])
    source = TimestampFile(path, column="t", duration_s=3.0)
    assert source.arrivals(seed()).tolist() == [1.0, 2.0]
    assert source.duration_s == 3.0


def test_parquet_round_trip(tmp_path):
    times = np.cumsum(np.random.default_rng(1).exponential(0.1, 5000))
    path = tmp_path / "arrivals.parquet"
    pd.DataFrame({"ts": times, "x": 1}).to_parquet(path, row_group_size=700)
    source = TimestampFile(path)
    assert source.column == "ts"
    assert np.array_equal(concat(source, seed(), 999), times)
    assert source.duration_s == pytest.approx(times[-1])
    ints = tmp_path / "ints.parquet"
    pd.DataFrame({"ts": np.array([0, 1, 1, 5], dtype=np.int64)}).to_parquet(ints)
    assert TimestampFile(ints, duration_s=5).arrivals(seed()).tolist() == [0.0, 1.0, 1.0]


@pytest.mark.parametrize("rows,line,expected", [
    (["1,a", "3,b", "2,c"], "line 4", "non-decreasing"),
    (["1,a", "-2,b"], "line 3", ">= 0"),
    (["1,a", "oops,b", "3,c"], "line 3", "finite number"),
    (["1,a", ",b", "3,c"], "line 3", "timestamp"),
    (["1,a", "", "3,c"], "line 3", "timestamp"),
])
def test_csv_bad_rows_name_file_and_line(tmp_path, rows, line, expected):
    path = write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(ConfigError) as err:
        TimestampFile(path, column="t").arrivals(seed())
    msg = str(err.value)
    assert "bad.csv" in msg and line in msg and "'t'" in msg and expected in msg


def test_csv_bad_row_found_while_streaming_across_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr("traces.files._READ_ROWS", 10)
    rows = [f"{i},x" for i in range(25)] + ["3,x"] + [f"{i},x" for i in range(30, 40)]
    path = write_csv(tmp_path / "late.csv", rows)
    source = TimestampFile(path, column="t")  # construction reads only the header and the tail
    with pytest.raises(ConfigError, match="line 27"):
        source.arrivals(seed())


def test_csv_trailing_blank_lines_are_fine(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("t\n1\n2\n\n\n")
    assert TimestampFile(path).arrivals(seed()).tolist() == [1.0, 2.0]


def test_csv_last_row_bad_is_reported_at_construction(tmp_path):
    path = write_csv(tmp_path / "tail.csv", ["1", "2", "x"], header="t")
    with pytest.raises(ConfigError, match="line 4"):
        TimestampFile(path)


@pytest.mark.parametrize("content,expected", [
    ("", "header row"),
    ("t\n", "at least one timestamp"),
    ("1.5\n2.5\n", "header row"),
])
def test_csv_without_data_or_header(tmp_path, content, expected):
    path = tmp_path / "x.csv"
    path.write_text(content)
    with pytest.raises(ConfigError, match=expected):
        TimestampFile(path)


def test_file_unknown_column_and_missing_file(tmp_path):
    path = write_csv(tmp_path / "a.csv", ["1,a"])
    with pytest.raises(ConfigError, match="one of the file's columns: t, other"):
        TimestampFile(path, column="time")
    with pytest.raises(ConfigError, match="existing"):
        TimestampFile(tmp_path / "nope.csv")


def test_parquet_bad_rows_name_row_and_column(tmp_path):
    path = tmp_path / "bad.parquet"
    pd.DataFrame({"ts": [0.0, 2.0, 1.0, 3.0]}).to_parquet(path)
    with pytest.raises(ConfigError) as err:
        TimestampFile(path).arrivals(seed())
    assert "bad.parquet" in str(err.value) and "row 2" in str(err.value) and "'ts'" in str(err.value)
    durations = tmp_path / "durations.parquet"
    pd.DataFrame({"ts": pd.to_timedelta([1, 2], unit="s")}).to_parquet(durations)
    with pytest.raises(ConfigError, match="seconds .numbers. or of datetimes"):
        TimestampFile(durations)


# -- files of datetimes ----------------------------------------------------------------------------

def test_csv_iso_datetimes_become_seconds_since_the_first(tmp_path):
    # 7 fractional digits (the Azure LLM traces' format): 100 ns steps are kept exactly
    path = write_csv(tmp_path / "dt.csv", ["2023-11-16 18:17:03.9799600,a", "2023-11-16 18:17:04.0000001,b",
                                           "2023-11-16 19:17:03.9799600,c"])
    source = TimestampFile(path, column="t")
    assert source.unit == "datetime"
    times = source.arrivals(seed())
    assert times[0] == 0.0
    assert times[1] == pytest.approx(0.0200401, abs=1e-12)
    assert times[2] == 3600.0
    assert source.duration_s > 3600.0 and source.duration_s == pytest.approx(3600.0)
    assert source.describe()["origin"] == "2023-11-16T18:17:03.979960+00:00"
    assert TimestampFile(path, column="t", duration_s=60).arrivals(seed()).size == 2


def test_csv_datetimes_with_offsets_and_naive_as_utc(tmp_path):
    path = write_csv(tmp_path / "tz.csv", ["2023-11-16T18:00:00+02:00", "2023-11-16 16:00:01",
                                           "2023-11-16T16:00:02Z", "2023-11-16T11:00:03-05:00"], header="t")
    assert TimestampFile(path).arrivals(seed()).tolist() == [0.0, 1.0, 2.0, 3.0]


def test_datetime_origin_as_string_datetime_or_date(tmp_path):
    import datetime as dt

    path = write_csv(tmp_path / "o.csv", ["2023-11-16 00:00:10", "2023-11-16 00:01:00"], header="t")
    for origin in ("2023-11-16", "2023-11-16T02:00:00+02:00", dt.date(2023, 11, 16),
                   dt.datetime(2023, 11, 16, 0, 0, 0)):
        assert TimestampFile(path, origin=origin).arrivals(seed()).tolist() == [10.0, 60.0]
    with pytest.raises(ConfigError, match=r"line 2, column 't'.*not before the origin"):
        TimestampFile(path, origin="2023-11-16 00:00:30").arrivals(seed())
    with pytest.raises(ConfigError, match="origin: expected an ISO-8601"):
        TimestampFile(path, origin="soon")
    seconds = write_csv(tmp_path / "s.csv", ["1", "2"], header="t")
    with pytest.raises(ConfigError, match="origin applies to a column of datetimes"):
        TimestampFile(seconds, origin="2023-11-16")


@pytest.mark.parametrize("rows,line,expected", [
    (["2023-11-16 00:00:00", "2023-11-16 25:00:00"], "line 3", "ISO-8601"),
    (["2023-11-16 00:00:00", "17"], "line 3", "ISO-8601"),
    (["2023-11-16 00:00:02", "2023-11-16 00:00:01"], "line 3", "non-decreasing"),
    (["yesterday", "2023-11-16 00:00:01"], "line 2", "or an ISO-8601"),
])
def test_csv_bad_datetimes_name_the_line(tmp_path, rows, line, expected):
    path = write_csv(tmp_path / "bad.csv", rows, header="t")
    with pytest.raises(ConfigError) as err:
        TimestampFile(path).arrivals(seed())
    msg = str(err.value)
    assert "bad.csv" in msg and line in msg and expected in msg


def test_csv_headerless_datetimes_are_refused(tmp_path):
    path = tmp_path / "nohead.csv"
    path.write_text("2023-11-16 00:00:00\n2023-11-16 00:00:01\n")
    with pytest.raises(ConfigError, match="header row"):
        TimestampFile(path)


def test_parquet_datetime_columns(tmp_path):
    naive = tmp_path / "naive.parquet"
    stamps = pd.to_datetime(["2026-01-01 00:00:00", "2026-01-01 00:00:01.5"], format="ISO8601")
    pd.DataFrame({"ts": stamps}).to_parquet(naive)
    assert TimestampFile(naive).arrivals(seed()).tolist() == [0.0, 1.5]
    aware = tmp_path / "aware.parquet"
    pd.DataFrame({"ts": pd.to_datetime(["2026-01-01 02:00:00", "2026-01-01 02:00:04"]).tz_localize("Europe/Paris")}
                 ).to_parquet(aware)
    assert TimestampFile(aware, origin="2026-01-01T00:59:58Z").arrivals(seed()).tolist() == [2.0, 6.0]
    dates = tmp_path / "dates.parquet"
    pd.DataFrame({"ts": pd.to_datetime(["2026-01-01", "2026-01-02"]).date}).to_parquet(dates)
    source = TimestampFile(dates)
    assert source.arrivals(seed()).tolist() == [0.0, 86400.0] and source.duration_s > 86400.0
    text = tmp_path / "text.parquet"
    pd.DataFrame({"ts": ["2026-01-01T00:00:00", "2026-01-01T00:00:00.25", "oops"]}).to_parquet(text)
    with pytest.raises(ConfigError, match=r"row 2 .*'ts'.*ISO-8601"):
        TimestampFile(text).arrivals(seed())


# -- specs -----------------------------------------------------------------------------------------

def test_parse_trace_kinds(tmp_path):
    p = parse_trace({"kind": "poisson", "rate_rps": 5, "duration": "2m"}, source="s.yaml", base_dir=tmp_path)
    assert isinstance(p, Poisson) and p.duration_s == 120.0 and p.rate_rps == 5.0
    lst = parse_trace({"kind": "list", "times": [1, 2]}, source="s.yaml", base_dir=tmp_path)
    assert lst.arrivals(seed()).tolist() == [1.0, 2.0]
    write_csv(tmp_path / "a.csv", ["1,a", "2,b"])
    f = parse_trace({"kind": "file", "path": "a.csv", "column": "t", "duration": 10}, source="s.yaml",
                    base_dir=tmp_path)
    assert f.arrivals(seed()).tolist() == [1.0, 2.0] and f.duration_s == 10.0


@pytest.mark.parametrize("spec,key,expected", [
    ({"kind": "poisson", "rate_rps": -3, "duration": 10}, "trace.rate_rps", "> 0"),
    ({"kind": "poisson", "rate_rps": "fast", "duration": 10}, "trace.rate_rps", "number"),
    ({"kind": "poisson", "rate_rps": 3}, "trace.duration", "poisson needs 'duration'"),
    ({"kind": "poisson", "rate_rps": 3, "duration": "soon"}, "trace.duration", "duration"),
    ({"kind": "poisson", "rate": 3, "duration": 10}, "trace.rate", "did you mean 'rate_rps'"),
    ({"kind": "weibull", "mean_rps": 3}, "trace.kind", "diurnal, mmpp, spike, ramp, renewal"),
    ({"rate_rps": 3}, "trace.kind", "poisson, list, file"),
    ({"kind": "file", "path": "missing.csv"}, "trace.path", "existing"),
    ({"kind": "list", "times": [3, 1]}, "trace.times[1]", "non-decreasing"),
    ([1, 2], "trace", "mapping"),
])
def test_parse_trace_errors(tmp_path, spec, key, expected):
    with pytest.raises(ConfigError) as err:
        parse_trace(spec, source="scn.yaml", base_dir=tmp_path)
    msg = str(err.value)
    assert msg.startswith("scn.yaml: ") and key in msg and expected in msg
