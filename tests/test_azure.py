"""Azure trace loaders on small fixture files with the published schemas (aws-facts.md §5)."""
from __future__ import annotations

import gzip
import hashlib
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
from tracehelp import check_contract, concat, seed

from sim.dists import Empirical
from sim.errors import ConfigError
from traces.azure import KINDS, Azure2019, Azure2021, AzureLLM, build_azure2019, build_azure2021, build_azure_llm

MINUTES = [str(m) for m in range(1, 1441)]
PCT = ["percentile_Average_0", "percentile_Average_1", "percentile_Average_25", "percentile_Average_50",
       "percentile_Average_75", "percentile_Average_99", "percentile_Average_100"]
RANKS = [0.0, 0.01, 0.25, 0.5, 0.75, 0.99, 1.0]


def h(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def per_minute(times: np.ndarray, n_minutes: int) -> np.ndarray:
    """Arrivals in each [60 m, 60 m + 60), counted exactly (no division)."""
    edges = np.searchsorted(times, np.arange(n_minutes + 1) * 60.0, side="left")
    return np.diff(edges)


# -- 2019 fixtures ---------------------------------------------------------------------------------

OWNER, APP_A, APP_B, APP_C = h("owner"), h("app-a"), h("app-b"), h("app-c")
A1, A2, B1, C1 = h("fn-a1"), h("fn-a2"), h("fn-b1"), h("fn-c1")


def day_counts(day: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(day)
    counts = {A1: rng.poisson(3, 1440), A2: np.where(np.arange(1440) % 5 == 0, 1, 0),
              B1: rng.poisson(50, 1440)}
    counts[B1][100] = 5000  # a burst: one minute bigger than an internal block
    if day == 1:
        c = np.zeros(1440, dtype=np.int64)
        c[[0, 10, 1439]] = [2, 1, 4]
        counts[C1] = c
    return counts


TRIGGER = {A1: "http", A2: "timer", B1: "queue", C1: "http"}
APP = {A1: APP_A, A2: APP_A, B1: APP_B, C1: APP_C}


def write_day(path: Path, counts: dict[str, np.ndarray], extra_rows: list[list] | None = None) -> Path:
    rows = [[OWNER, APP[f], f, TRIGGER[f], *c.tolist()] for f, c in counts.items()]
    frame = pd.DataFrame(rows + (extra_rows or []), columns=["HashOwner", "HashApp", "HashFunction", "Trigger",
                                                             *MINUTES])
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def days(tmp_path) -> Path:
    """A folder with two full day files (d01, d02) and their duration files."""
    for d in (1, 2):
        write_day(tmp_path / f"invocations_per_function_md.anon.d{d:02d}.csv", day_counts(d))
    durations = {
        1: [[OWNER, APP_C, C1, 30.0, 7, 1.0, 400.0, 1.0, 2.0, 10.0, 20.0, 35.0, 120.0, 400.0],
            [OWNER, APP_B, B1, 5.0, 1, 4.0, 10.0, 4.0, 4.0, 5.0, 6.0, 8.0, 9.0, 10.0],
            [OWNER, APP_A, A1, None, 5, None, None, None, None, None, None, None, None, None]],
        2: [[OWNER, APP_B, B1, 150.0, 3, 100.0, 200.0, 100.0, 100.0, 120.0, 150.0, 180.0, 199.0, 200.0]],
    }
    for d, rows in durations.items():
        pd.DataFrame(rows, columns=["HashOwner", "HashApp", "HashFunction", "Average", "Count", "Minimum",
                                    "Maximum", *PCT]).to_csv(
            tmp_path / f"function_durations_percentiles.anon.d{d:02d}.csv", index=False)
    return tmp_path


def both_days(fn: str) -> np.ndarray:
    return np.concatenate([day_counts(1).get(fn, np.zeros(1440, dtype=np.int64)),
                           day_counts(2).get(fn, np.zeros(1440, dtype=np.int64))])


# -- 2019: counts, placement, selection ------------------------------------------------------------

def test_2019_counts_per_minute_reproduced_over_two_days(days):
    source = Azure2019(days, function=B1)
    assert source.days == [1, 2] and source.duration_s == 2 * 86400.0
    times = source.arrivals(seed())
    check_contract(times, source.duration_s)
    assert np.array_equal(per_minute(times, 2880), both_days(B1))
    assert np.array_equal(source.minute_counts().ravel(), both_days(B1))


def test_2019_uniform_placement_is_uniform_within_minutes(days):
    times = Azure2019(days, function=B1).arrivals(seed(5))
    minute = np.repeat(np.arange(2880), per_minute(times, 2880))
    frac = (times - minute * 60.0) / 60.0
    assert np.all((frac >= 0) & (frac < 1))
    assert st.kstest(frac, "uniform").pvalue > 0.001
    # the 5,000-arrival minute alone, too (its order statistics are the sorted uniforms)
    burst = frac[minute == 100]
    assert burst.size == 5000 and st.kstest(burst, "uniform").pvalue > 0.001


def test_2019_equal_placement_exact_positions(days):
    source = Azure2019(days, function=A1, placement="equal")
    times = source.arrivals(seed())
    expected = [m * 60.0 + (i + 0.5) * 60.0 / n for m, n in enumerate(both_days(A1)) for i in range(n)]
    assert times.tolist() == expected
    assert np.array_equal(times, source.arrivals(seed(99)))  # no randomness


def test_2019_same_seed_same_arrivals_and_chunk_size_does_not_matter(days):
    source = Azure2019(days, function=B1)  # ~150,000 arrivals: several internal blocks
    a = concat(source, seed(1), 65536)
    assert a.size > 2 * 65536
    assert np.array_equal(a, concat(source, seed(1), 7)) and np.array_equal(a, concat(source, seed(1), 100_003))
    assert np.array_equal(a, Azure2019(days, function=B1).arrivals(seed(1)))
    assert not np.array_equal(a, source.arrivals(seed(2)))


def test_2019_function_by_prefix_app_and_top_k(days):
    full = Azure2019(days, function=B1).arrivals(seed())
    assert np.array_equal(Azure2019(days, function=B1[:8]).arrivals(seed()), full)
    app = Azure2019(days, app=APP_A)
    assert np.array_equal(per_minute(app.arrivals(seed()), 2880), both_days(A1) + both_days(A2))
    assert app.describe()["counts"]["functions_selected"] == 2
    # top_k: B1 has by far the most invocations, then A1 (~3/minute), then A2 (1 per 5 minutes), then C1
    totals = {f: both_days(f).sum() for f in (A1, A2, B1, C1)}
    assert sorted(totals, key=totals.get, reverse=True)[:2] == [B1, A1]
    top2 = Azure2019(days, top_k=2)
    picked = {f["function"] for f in top2.describe()["functions"]}
    assert picked == {B1, A1}
    assert np.array_equal(top2.minute_counts().ravel(), both_days(B1) + both_days(A1))
    assert any("first pass" in n for n in top2.notes())
    # with a trigger filter the ranking is among http functions only: A1 then C1
    top_http = Azure2019(days, top_k=2, trigger="http")
    assert {f["function"] for f in top_http.describe()["functions"]} == {A1, C1}


def test_2019_selection_errors(days):
    day1 = days / "invocations_per_function_md.anon.d01.csv"  # one day: C1 is there too
    with pytest.raises(ConfigError, match=r"s\.yaml: trace\.function: .*found in the files"):
        Azure2019(day1, function="deadbeefdeadbeef", source="s.yaml", key="trace").arrivals(seed())
    with pytest.raises(ConfigError, match="found in the files"):
        Azure2019(day1, function=B1[:7]).arrivals(seed())  # too short for a prefix, not an exact id
    with pytest.raises(ConfigError, match=r"trace\.top_k: expected one selection"):
        Azure2019(day1, top_k=1, function=B1, key="trace")
    with pytest.raises(ConfigError, match="a selection"):
        Azure2019(days)
    with pytest.raises(ConfigError, match=r"trace\.top_k: expected at most 4"):
        Azure2019(day1, top_k=5, key="trace").arrivals(seed())
    with pytest.raises(ConfigError, match="trigger: expected one of http"):
        Azure2019(day1, app=APP_A, trigger="cron")
    with pytest.raises(ConfigError, match="placement: expected uniform or equal"):
        Azure2019(day1, app=APP_A, placement="poisson")


def test_2019_ambiguous_function_id_needs_its_app(tmp_path):
    counts = {B1: np.ones(1440, dtype=np.int64)}
    path = write_day(tmp_path / "invocations_per_function_md.anon.d01.csv", counts,
                     extra_rows=[[OWNER, APP_C, B1, "http", *([2] * 1440)]])  # the same function id in app C
    with pytest.raises(ConfigError, match="matches 2"):
        Azure2019(path, function=B1).arrivals(seed())
    assert Azure2019(path, function=B1, app=APP_C).arrivals(seed()).size == 2 * 1440


def test_2019_day_layouts_and_offsets(days):
    d1 = days / "invocations_per_function_md.anon.d01.csv"
    d2 = days / "invocations_per_function_md.anon.d02.csv"
    two = Azure2019([d1, d2], function=A1).arrivals(seed(3))
    assert np.array_equal(Azure2019(days, days=[1, 2], function=A1).arrivals(seed(3)), two)
    # day 2 alone covers [0, 86400) and draws from its own seed: the same arrivals, shifted
    second = Azure2019(days, days=[2], function=A1)
    assert second.duration_s == 86400.0
    alone = second.arrivals(seed(3))
    np.testing.assert_allclose(alone, two[two >= 86400.0] - 86400.0, rtol=0, atol=1e-9)
    assert np.array_equal(per_minute(alone, 1440), day_counts(2)[A1])
    with pytest.raises(ConfigError, match="consecutive days"):
        Azure2019([d2, d1], function=A1)
    with pytest.raises(ConfigError, match=r"days: expected days whose files are in"):
        Azure2019(days, days=[2, 3], function=A1)
    with pytest.raises(ConfigError, match="days go with a folder"):
        Azure2019(d1, days=[1], function=A1)


def test_2019_window_slices_and_rebases(days):
    full = Azure2019(days, function=B1).arrivals(seed(8))
    lo, dur = 86400.0 - 3600.0 + 30.0, 7200.0  # crosses midnight, starts and ends mid-minute
    window = Azure2019(days, function=B1, start_s=lo, duration_s=dur)
    got = window.arrivals(seed(8))
    rel = full - lo
    assert np.array_equal(got, rel[(rel >= 0) & (rel < dur)])
    check_contract(got, dur)
    counts = both_days(B1)
    first, last = int(lo // 60), int((lo + dur) // 60)
    note = next(n for n in window.notes() if n.startswith("The window"))
    assert f"keeps the {counts[first + 1:last].sum()} invocations" in note
    assert f"{counts[first] + counts[last]} lie in the minutes it cuts" in note
    assert f"{counts.sum() - counts[first:last + 1].sum()} are outside it" in note
    with pytest.raises(ConfigError, match="window inside the files' 2 day"):
        Azure2019(days, function=B1, start_s=86400.0, duration_s=86401.0)


def test_2019_skipped_rows_are_counted_in_notes(days):
    source = Azure2019(days, app=APP_A, trigger="http")  # A1 only: A2 is a timer
    notes = " ".join(source.notes())
    not_http = both_days(A2).sum() + both_days(B1).sum()  # the timer and the queue function, 2 days each
    assert f"Skipped 4 rows ({not_http} invocations) with a trigger other than 'http'" in notes
    assert f"Skipped 1 rows ({both_days(C1).sum()} invocations) of other functions" in notes
    counts = source.describe()["counts"]
    assert counts["rows_read"] == 7 and counts["rows_selected"] == 2
    assert counts["invocations_selected"] == both_days(A1).sum()
    c1 = Azure2019(days, function=C1)
    assert any("no invocation on day(s) 2" in n for n in c1.notes())


def test_2019_blank_lines_are_counted(tmp_path):
    path = write_day(tmp_path / "invocations_per_function_md.anon.d01.csv", {A1: day_counts(1)[A1]})
    text = path.read_text().splitlines()
    path.write_text("\n".join([text[0], "", text[1], ""]) + "\n")
    source = Azure2019(path, function=A1)
    assert np.array_equal(per_minute(source.arrivals(seed()), 1440), day_counts(1)[A1])
    assert any("Skipped 2 blank lines" in n for n in source.notes())


# -- 2019: durations -------------------------------------------------------------------------------

def test_2019_duration_quantiles_are_the_published_percentiles(days):
    source = Azure2019(days, function=C1, durations_paths=days)
    dist = source.duration_distribution()
    assert isinstance(dist, Empirical)
    published = [1.0, 2.0, 10.0, 20.0, 35.0, 120.0, 400.0]
    np.testing.assert_allclose(dist.ppf(np.array(RANKS[:-1])), published[:-1], rtol=1e-9)
    assert dist.samples.max() == 400.0 and dist.samples.min() == 1.0
    # linear between the percentiles: the 62.5th percentile is halfway between the 50th and 75th
    assert dist.ppf(np.array([0.625]))[0] == pytest.approx(27.5, rel=1e-9)
    notes = " ".join(source.notes())
    assert "30-second-window averages" in notes and "cold-start" in notes
    assert "not of single invocations" in notes and "understated" in notes
    assert "30-second-window averages" in Azure2019.duration_distribution.__doc__
    assert "cold-start" in Azure2019.duration_distribution.__doc__


def test_2019_durations_weighted_by_count_across_days(days):
    # B1: day 1 (Count 1) spans 4-10 ms, day 2 (Count 3) spans 100-200 ms: the mixture's median is
    # the day-2 quantile at rank (0.5 - 0.25) / 0.75 = 1/3
    source = Azure2019(days, function=B1, durations_paths=days)
    dist = source.duration_distribution()
    day2 = [100.0, 100.0, 120.0, 150.0, 180.0, 199.0, 200.0]
    assert dist.ppf(np.array([0.5]))[0] == pytest.approx(np.interp(1 / 3, RANKS, day2), rel=1e-9)
    assert dist.ppf(np.array([0.2]))[0] == pytest.approx(np.interp(0.8, RANKS, [4, 4, 5, 6, 8, 9, 10]), rel=1e-9)
    # the day-2 row has equal 0th and 1st percentiles: an atom of 1 % x 3/4 at 100 ms
    assert np.mean(dist.samples == 100.0) == pytest.approx(0.0075, abs=2e-4)
    info = source.describe()["durations"]
    assert info["rows_used"] == 2 and info["count"] == 4
    assert info["average_ms"] == pytest.approx((5.0 * 1 + 150.0 * 3) / 4)


def test_2019_durations_skipped_rows_and_missing_files(days):
    source = Azure2019(days, app=APP_A, durations_paths=days)  # A1's only row has no percentiles
    with pytest.raises(ConfigError, match="duration rows for the selected function"):
        source.duration_distribution()
    assert any(n.startswith("Durations: unusable") for n in source.notes())
    with pytest.raises(ConfigError, match="durations: expected the duration percentile files"):
        Azure2019(days, function=A1, key="trace").duration_distribution()
    both = Azure2019(days, top_k=4, durations_paths=days)
    both.duration_distribution()
    assert any("skipped 1 rows with a missing percentile and 0 with Count 0" in n for n in both.notes())


def test_2019_duration_percentiles_out_of_order_name_the_line(days):
    path = days / "function_durations_percentiles.anon.d01.csv"
    frame = pd.read_csv(path)
    frame.loc[0, "percentile_Average_50"] = 1.5  # below the 25th
    frame.to_csv(path, index=False)
    with pytest.raises(ConfigError, match=r"d01\.csv: line 2, column 'percentile_Average_50'.*non-decreasing"):
        Azure2019(days, function=C1, durations_paths=days).duration_distribution()


# -- 2019: bad files -------------------------------------------------------------------------------

def test_2019_missing_column_is_named(tmp_path):
    path = tmp_path / "invocations_per_function_md.anon.d01.csv"
    frame = pd.DataFrame([[OWNER, APP_A, A1, "http", *([1] * 1440)]],
                         columns=["HashOwner", "HashApp", "HashFunction", "Trigger", *MINUTES])
    frame.drop(columns=["720"]).to_csv(path, index=False)
    with pytest.raises(ConfigError, match=r"d01\.csv: line 1: expected the columns of .*missing column '720'"):
        Azure2019(path, function=A1)
    frame.drop(columns=["HashApp"]).to_csv(path, index=False)
    with pytest.raises(ConfigError, match="missing column 'HashApp'"):
        Azure2019(path, function=A1)


@pytest.mark.parametrize("value,expected", [(-3, "integer >= 0"), ("abc", "integer >= 0"), (1.5, "integer >= 0"),
                                            ("", "integer >= 0")])
def test_2019_bad_count_names_line_and_column(tmp_path, value, expected):
    rows = [[OWNER, APP[f], f, TRIGGER[f], *([1] * 1440)] for f in (A1, A2, B1)]
    rows[2][4 + 99] = value  # third data row (line 4), minute column '100'
    path = tmp_path / "invocations_per_function_md.anon.d01.csv"
    pd.DataFrame(rows, columns=["HashOwner", "HashApp", "HashFunction", "Trigger", *MINUTES]).to_csv(path, index=False)
    source = Azure2019(path, function=A1)
    with pytest.raises(ConfigError) as err:
        source.arrivals(seed())
    msg = str(err.value)
    assert "d01.csv" in msg and "line 4, column '100'" in msg and expected in msg


# -- 2021 ------------------------------------------------------------------------------------------

def write_2021(path: Path) -> pd.DataFrame:
    rng = np.random.default_rng(21)
    n = 3000
    apps = rng.choice([h("x"), h("y")], n)
    funcs = rng.choice([h("f1"), h("f2")], n)
    end = np.sort(rng.uniform(100.0, 5000.0, n))
    duration = np.round(rng.exponential(2.0, n), 3)
    duration[5] = 90.0  # a long one starts well before the rows above it
    frame = pd.DataFrame({"app": apps, "func": funcs, "end_timestamp": end, "duration": duration})
    frame.to_csv(path, index=False)
    return pd.read_csv(path)  # the values as written


def test_2021_arrivals_are_end_minus_duration_sorted_and_filtered(tmp_path):
    path = tmp_path / "AzureFunctionsInvocationTraceForTwoWeeksJan2021.csv"
    rows = write_2021(path)
    sel = rows[(rows.app == h("x")) & (rows.func == h("f2"))]
    starts = (sel.end_timestamp - sel.duration).to_numpy()
    assert np.any(np.diff(starts) < 0)  # not in order in the file
    source = Azure2021(path, app=h("x"), func=h("f2")[:10])
    times = concat(source, seed(), 100)
    assert np.array_equal(times, np.sort(starts - starts.min()))
    check_contract(times, source.duration_s)
    assert times.size == len(sel) and source.duration_s > times[-1]
    dist = source.duration_distribution()
    assert np.array_equal(dist.samples, np.sort(sel.duration.to_numpy() * 1000.0))
    notes = " ".join(source.notes())
    assert f"skipped {len(rows) - len(sel)} rows of other apps or functions" in notes and "sorted once" in notes
    everything = Azure2021(path)
    all_starts = (rows.end_timestamp - rows.duration).to_numpy()
    assert np.array_equal(everything.arrivals(seed()), np.sort(all_starts - all_starts.min()))
    assert np.array_equal(Azure2021(path, app=h("y")).arrivals(seed()).size, (rows.app == h("y")).sum())


def test_2021_window_from_start_on_the_file_clock(tmp_path):
    path = tmp_path / "t.csv"
    rows = write_2021(path)
    starts = np.sort((rows.end_timestamp - rows.duration).to_numpy())
    source = Azure2021(path, start_s=1000.0, duration_s=600.0)
    rel = starts - 1000.0
    assert np.array_equal(source.arrivals(seed()), rel[(rel >= 0) & (rel < 600.0)])
    counts = source.describe()["counts"]
    assert counts["rows_before_window"] == (rel < 0).sum() and counts["rows_after_window"] == (rel >= 600).sum()


def test_2021_bad_files(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("app,func,end_timestamp,duration\na,f,10.0,0.5\na,f,11.0,-0.2\n")
    with pytest.raises(ConfigError, match=r"bad\.csv: line 3, column 'duration': expected a duration"):
        Azure2021(path)
    path.write_text("app,func,end_timestamp,duration\na,f,10.0,0.5\na,f,noon,0.2\n")
    with pytest.raises(ConfigError, match=r"line 3, column 'end_timestamp'"):
        Azure2021(path)
    path.write_text("app,func,end,duration\na,f,10.0,0.5\n")
    with pytest.raises(ConfigError, match="missing column 'end_timestamp'"):
        Azure2021(path)
    path.write_text("app,func,end_timestamp,duration\na,f,10.0,0.5\n")
    with pytest.raises(ConfigError, match="trace.app: expected an app"):
        Azure2021(path, func="f", key="trace")
    with pytest.raises(ConfigError, match="found in"):
        Azure2021(path, app="b")


# -- LLM -------------------------------------------------------------------------------------------

LLM_STAMPS = ["2023-11-16 18:15:46.6805900", "2023-11-16 18:15:50.9951690", "2023-11-16 18:15:50.9951691",
              "2023-11-16 18:15:51.0000000", "2023-11-16 18:16:00.0000001", "2023-11-16 18:17:03.9799600",
              "2023-11-16 19:14:59.9999999"]


def write_llm(path: Path, stamps=LLM_STAMPS, images: bool = False) -> Path:
    header = "TIMESTAMP,NumImages,ContextTokens,GeneratedTokens" if images else "TIMESTAMP,ContextTokens,GeneratedTokens"
    lines = [header]
    for i, s in enumerate(stamps):
        lines.append(f"{s},{i % 3},{1000 + i},{10 * i}" if images else f"{s},{1000 + i},{10 * i}")
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def exact_seconds(stamps) -> list[Decimal]:
    """Seconds since the first stamp, in exact decimal arithmetic (all stamps are on one day)."""
    def secs(stamp: str) -> Decimal:
        hours, minutes, seconds = stamp.split(" ")[1].split(":")
        return Decimal(hours) * 3600 + Decimal(minutes) * 60 + Decimal(seconds)
    return [secs(s) - secs(stamps[0]) for s in stamps]


def test_llm_seven_digit_timestamps_exact_and_attributes_aligned(tmp_path):
    source = AzureLLM(write_llm(tmp_path / "AzureLLMInferenceTrace_code.csv"))
    times = source.arrivals(seed())
    expected = exact_seconds(LLM_STAMPS)
    assert times[0] == 0.0
    assert all(abs(Decimal(float(t)) - e) < Decimal("1e-9") for t, e in zip(times, expected))
    assert times[2] - times[1] == pytest.approx(1e-7, abs=1e-12)  # 100 ns apart, kept apart
    assert source.attribute_names == ("context_tokens", "generated_tokens")
    assert source.duration_s > times[-1] and source.duration_s == pytest.approx(float(expected[-1]))
    batches = list(source.batches(seed(), 3))
    assert [b.times.size for b in batches] == [3, 3, 1]
    t = np.concatenate([b.times for b in batches])
    ctx = np.concatenate([b.attrs["context_tokens"] for b in batches])
    gen = np.concatenate([b.attrs["generated_tokens"] for b in batches])
    assert np.array_equal(t, times)
    assert ctx.dtype == np.int64 and ctx.tolist() == [1000 + i for i in range(7)]
    assert gen.tolist() == [10 * i for i in range(7)]
    assert [b.times.size for b in source.batches(seed(), 100)] == [7]


def test_llm_multimodal_gz_and_window(tmp_path):
    source = AzureLLM(write_llm(tmp_path / "AzureLMMInferenceTrace_multimodal.csv.gz", images=True),
                      start_s=4.0, duration_s=60.0)
    assert source.attribute_names == ("context_tokens", "generated_tokens", "num_images")
    expected = [float(e) - 4.0 for e in exact_seconds(LLM_STAMPS)]
    batch, = list(source.batches(seed()))
    assert batch.times.tolist() == pytest.approx([e for e in expected if 0 <= e < 60.0], abs=1e-9)
    assert batch.attrs["num_images"].tolist() == [1, 2, 0, 1]  # rows 1..4
    assert batch.attrs["context_tokens"].tolist() == [1001, 1002, 1003, 1004]
    counts = source.describe()["counts"]
    assert counts == {"rows_read": 7, "rows_before_window": 1, "rows_after_window": 2, "requests": 4,
                      "blank_lines": 0}
    assert any("skipped 1 before it and 2 at or after its end" in n for n in source.notes())
    whole = AzureLLM(tmp_path / "AzureLMMInferenceTrace_multimodal.csv.gz")  # no cheap tail: read through
    assert whole.arrivals(seed()).size == 7


def test_llm_out_of_order_and_unparseable_rows_name_the_line(tmp_path):
    stamps = list(LLM_STAMPS)
    stamps[3], stamps[4] = stamps[4], stamps[3]
    source = AzureLLM(write_llm(tmp_path / "order.csv", stamps))
    with pytest.raises(ConfigError, match=r"order\.csv: line 6, column 'TIMESTAMP': expected timestamps in time order"):
        source.arrivals(seed())
    stamps = list(LLM_STAMPS)
    stamps[2] = "2023-11-16 18:15:61.0"
    with pytest.raises(ConfigError, match=r"line 4, column 'TIMESTAMP': expected an ISO-8601"):
        AzureLLM(write_llm(tmp_path / "bad.csv", stamps)).arrivals(seed())
    path = tmp_path / "tokens.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,12,-1\n")
    with pytest.raises(ConfigError, match=r"line 2, column 'GeneratedTokens'"):
        AzureLLM(path).arrivals(seed())
    path.write_text("TIMESTAMP,ContextTokens\n2023-11-16 18:15:46.6805900,12\n")
    with pytest.raises(ConfigError, match="missing column 'GeneratedTokens'"):
        AzureLLM(path)


# -- scenario builders -----------------------------------------------------------------------------

def test_builders_resolve_paths_and_check_keys(days, tmp_path):
    assert set(KINDS) == {"azure2019", "azure2021", "azure_llm"}
    for kind, (keys, _) in KINDS.items():
        assert {"kind", "path", "duration", "start"} <= set(keys)
    spec = {"kind": "azure2019", "path": ".", "days": [2], "function": A1, "placement": "equal",
            "durations": ".", "start": "1h", "duration": "2h"}
    source = build_azure2019(spec, "s.yaml", "trace", days)
    assert source.start_s == 3600.0 and source.duration_s == 7200.0
    assert np.array_equal(per_minute(source.arrivals(seed()), 120), day_counts(2)[A1][60:180])
    with pytest.raises(ConfigError, match=r"s\.yaml: trace\.fucntion: expected a known key \(did you mean 'function'"):
        build_azure2019({"kind": "azure2019", "path": ".", "fucntion": A1}, "s.yaml", "trace", days)
    with pytest.raises(ConfigError, match=r"s\.yaml: trace\.path\[1\]: expected an existing file"):
        build_azure2019({"kind": "azure2019", "path": ["invocations_per_function_md.anon.d01.csv", "nope.csv"],
                         "top_k": 1}, "s.yaml", "trace", days)
    with pytest.raises(ConfigError, match=r"s\.yaml: trace\.function: expected an id"):
        build_azure2019({"kind": "azure2019", "path": ".", "function": 12345678}, "s.yaml", "trace", days)
    with pytest.raises(ConfigError, match=r"s\.yaml: trace\.start: expected a duration"):
        build_azure2019({"kind": "azure2019", "path": ".", "top_k": 1, "start": "soon"}, "s.yaml", "trace", days)
    write_2021(tmp_path / "inv2021.csv")
    s21 = build_azure2021({"kind": "azure2021", "path": "inv2021.csv", "app": h("y"), "duration": "10m"},
                          "s.yaml", "trace", tmp_path)
    assert s21.duration_s == 600.0
    write_llm(tmp_path / "llm.csv")
    llm = build_azure_llm({"kind": "azure_llm", "path": "llm.csv", "duration": 60}, "s.yaml", "trace", tmp_path)
    assert llm.arrivals(seed()).size == 5
    with pytest.raises(ConfigError, match=r"s\.yaml: trace\.path: expected a path \(azure_llm needs 'path'\)"):
        build_azure_llm({"kind": "azure_llm"}, "s.yaml", "trace", tmp_path)


# -- in a scenario ------------------------------------------------------------------------------------

def test_scenario_replays_2019_and_uses_its_durations_as_service_time(days, tmp_path):
    from click.testing import CliRunner

    from cli import main
    from scenarios.loader import load_scenario

    sc = tmp_path / "replay.yaml"
    sc.write_text(f"""
name: replay
trace: {{kind: azure2019, path: {days}, function: {B1}, durations: {days}}}
platforms:
  - name: fn
    kind: lambda
    service: {{warm_ms: trace, cold_init_ms: {{dist: constant, value: 300}}}}
  - name: box
    kind: ec2
    service: {{service_ms: trace}}
""")
    s = load_scenario(sc)
    warm = s.platforms[0].service.warm_ms
    assert warm == Azure2019(days, function=B1, durations_paths=days).duration_distribution()
    r = CliRunner().invoke(main, ["simulate", str(sc)])
    assert r.exit_code == 0, r.output
    assert "30-second-window averages" in r.output and "cold-start" in r.output
    assert int(both_days(B1).sum()) == sum(json_requests(main, sc))


def json_requests(main, sc):
    import json

    from click.testing import CliRunner

    r = CliRunner().invoke(main, ["simulate", str(sc), "--json"])
    return [json.loads(r.output)[0]["requests"]]


def test_service_from_a_trace_without_durations_is_a_clear_error(days, tmp_path):
    from scenarios.loader import load_scenario

    sc = tmp_path / "bad.yaml"
    sc.write_text("name: b\ntrace: {kind: poisson, rate_rps: 1, duration: 60}\nplatforms:\n"
                  "  - {name: fn, kind: lambda, service: {warm_ms: trace, cold_init_ms: 100}}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: platforms\[0\]\.service\.warm_ms: .*azure2019"):
        load_scenario(sc)


def test_trace_show_prints_the_durations_and_their_caveat(days, tmp_path):
    import json

    from click.testing import CliRunner

    from cli import main

    sc = tmp_path / "show.yaml"
    sc.write_text(f"name: s\ntrace: {{kind: azure2019, path: {days}, function: {B1}, durations: {days}}}\n"
                  "platforms:\n  - {name: fn, kind: lambda, service: {warm_ms: trace, cold_init_ms: 100}}\n")
    r = CliRunner().invoke(main, ["trace", "show", str(sc), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    d = Azure2019(days, function=B1, durations_paths=days).duration_distribution()
    assert out["durations_ms"]["p50"] == pytest.approx(float(d.ppf(np.array([0.5]))[0]))
    assert any("30-second-window averages" in n for n in out["notes"])
