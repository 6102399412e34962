"""The pairs phase of a campaign (`calibrate.campaign`, phase 5 of its docstring): request A, then
B sent δ ms after A, on warm rested environments of a Lambda-like target.

Most tests drive a fake Lambda-like target whose client records its wall-clock send time (as
`calibrate.targets.HttpClient.post` does) and answers at once, or after a set time; one runs the
phase against the real local-lambda gateway (skipped without the emulator)."""
from __future__ import annotations

import contextlib
import json
import math
import threading
import time

import numpy as np
import pytest
from test_campaign import no_process_left, rie, tiny_model  # noqa: F401 - fixtures

from calibrate.campaign import QUICK, CampaignSettings, pair_order, run_campaign, settings_for
from calibrate.targets import Sample, Target, TargetConfig
from calibrate.writer import CAMPAIGN_FILE, unit_key
from sim.errors import ServesimError

pd = pytest.importorskip("pandas")

HOST = {"usable_cpus": 2, "cgroup_available": True}
CFG = "memory_mb=1024,architecture=x86_64"
OFFSETS = (0.0, 0.5, 1.0, 2.0, 5.0)
# Nothing but the pairs: no cold starts, one warm request, no load levels, no bursts; a short
# rest (warm_gap_s) keeps the fake campaigns well under a second.
SIZES = dict(quick=True, progress=False, echo=lambda s: None, host=HOST, n_cold=0, n_warm=1, load_levels=[],
             bursts=0, warm_gap_s=0.02)
OFFSET_TOLERANCE_MS = 0.5
"""The median |achieved - nominal| offset allowed for a fake client that sends at once: the
threads sleep to 0.3 ms before their time, then busy-wait, so each sends within a few µs of it;
0.5 ms leaves room for a loaded test host (a GIL hand-over, a late wake-up) but not for B
waiting for A (the fake's 20 ms answer, or a serial send)."""


class FakeLambda(Target):
    """A Lambda-like target on this host (`cold_bursts`), no processes: each call records its
    wall-clock send time, then takes `call_s` (sleeping); the calls numbered in `cold_calls`
    (from 1, in the order they are made) report an Init Duration; `interrupt_at` raises Ctrl-C
    in the call of that number."""

    name = "fake-lambda"
    cold_bursts = True

    def __init__(self, call_s: float = 0.0, cold_calls: tuple[int, ...] = (), interrupt_at: int | None = None):
        super().__init__("fake-model", None)
        self.call_s, self.cold_calls, self.interrupt_at = call_s, set(cold_calls), interrupt_at
        self.calls = 0
        self.lock = threading.Lock()

    def configs(self) -> list[TargetConfig]:
        return [TargetConfig(CFG, {"memory_mb": 1024, "architecture": "x86_64"}, "1024 MB")]

    @contextlib.contextmanager
    def serving(self, config: TargetConfig):
        yield FakeEndpoint(self)

    def call(self) -> Sample:
        send_s = time.time()
        with self.lock:
            self.calls += 1
            n = self.calls
        if n == self.interrupt_at:
            raise KeyboardInterrupt
        if self.call_s:
            time.sleep(self.call_s)
        return Sample(send_s, (time.time() - send_s) * 1000.0, "ok", server_ms=1.0 + n / 1000.0,
                      init_ms=100.0 if n in self.cold_calls else None)


class FakeServer(FakeLambda):
    """The same, but not Lambda-like: no pairs phase."""

    name = "fake-server"
    cold_bursts = False


class FakeHttp:
    def reconnect(self) -> None:
        return None

    def close(self) -> None:
        pass


class FakeClient:
    def __init__(self, target: FakeLambda):
        self.target, self.http = target, FakeHttp()

    def call(self) -> Sample:
        return self.target.call()

    def close(self) -> None:
        pass


class FakeEndpoint:
    def __init__(self, target: FakeLambda):
        self.target = target

    def client(self) -> FakeClient:
        return FakeClient(self.target)


CALLS_BEFORE_PAIRS = QUICK.warmup + 1 + 2  # the warm-up, the one warm request, the priming burst of 2


def pairs_rows(out) -> pd.DataFrame:
    df = pd.read_parquet(out)
    return df[df.phase == "pairs"].sort_values(["send_s", "seq"])


def joined(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per pair: A's and B's columns side by side (suffixes _a, _b), and the achieved offset (ms)."""
    rows = rows.assign(pair=rows.seq // 2)
    both = rows[rows.seq % 2 == 0].merge(rows[rows.seq % 2 == 1], on=["level", "pair"], suffixes=("_a", "_b"))
    return both.assign(offset_ms=(both.send_s_b - both.send_s_a) * 1000.0)


# ---- settings -------------------------------------------------------------------------------

def test_pairs_settings_defaults_and_overrides():
    assert settings_for(True).pairs == 0 and settings_for(False).pairs == 0  # no target: none
    assert settings_for(True, target=FakeLambda()).pairs == 6
    assert settings_for(False, target=FakeLambda()).pairs == 20
    assert settings_for(True, target=FakeServer()).pairs == 0
    assert settings_for(True, target=FakeLambda(), pairs=0).pairs == 0
    s = settings_for(True, pairs=3, pair_offsets_ms=[0, 1.5, 4])
    assert s.pairs == 3 and s.pair_offsets_ms == (0.0, 1.5, 4.0)
    assert CampaignSettings(n_cold=0, n_warm=0, warmup=0, load_levels=(), level_s=1.0).pair_offsets_ms == \
        (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0)


@pytest.mark.parametrize("bad, needle", [
    (dict(pairs=-1), "pairs .recorded pairs per offset. must be a whole number >= 0, got -1"),
    (dict(pairs=1.5), "got 1.5"),
    (dict(pairs=True), "got True"),
    (dict(pair_offsets_ms=[]), "at least one"),
    (dict(pair_offsets_ms=[1.0, 0.5]), "increasing"),
    (dict(pair_offsets_ms=[0.0, 0.0]), "increasing"),
    (dict(pair_offsets_ms=[-0.5, 1.0]), "from 0 to 1000 ms"),
    (dict(pair_offsets_ms=[0.0, 1001.0]), "from 0 to 1000 ms"),
    (dict(pair_offsets_ms=[0.0, math.nan]), "got \\[0.0, nan\\]"),
    (dict(pair_offsets_ms=[0.0, math.inf]), "pair_offsets_ms"),
    (dict(pair_offsets_ms=["1"]), "pair_offsets_ms"),
    (dict(pair_offsets_ms=2.0), "pair_offsets_ms"),
])
def test_bad_pairs_settings_are_refused(bad, needle):
    with pytest.raises(ServesimError, match=needle):
        settings_for(True, **bad)


def test_pair_order_is_every_offset_n_times_shuffled_with_a_fixed_seed():
    order = pair_order(OFFSETS, 4)
    assert sorted(order) == sorted(OFFSETS * 4)
    assert list(order) == list(pair_order(OFFSETS, 4))  # fixed
    assert list(order) != sorted(order)  # shuffled: drift is not the effect


# ---- the phase, on a fake target ------------------------------------------------------------

def test_pairs_phase_rows_offsets_and_rests(tmp_path):
    out = tmp_path / "pairs.parquet"
    summary = run_campaign(FakeLambda(), out, pairs=4, pair_offsets_ms=OFFSETS, **SIZES)
    rows = pairs_rows(out)
    assert len(rows) == len(OFFSETS) * 4 * 2
    assert (rows.concurrency == 2).all() and (rows.status == "ok").all() and rows.init_ms.isna().all()
    assert sorted(rows.level.unique()) == list(OFFSETS)
    for _, unit in rows.groupby("level"):
        assert sorted(unit.seq) == list(range(8))  # 2i for A, 2i + 1 for B, i from 0 per offset
    pairs = joined(rows)
    assert len(pairs) == len(OFFSETS) * 4
    # In the order sent: A then B (at once for 0 ms), the offsets shuffled.
    sent = rows.level.to_numpy()[::2]
    assert list(sent) == list(pair_order(OFFSETS, 4))
    assert (pairs.offset_ms > pairs.level - OFFSET_TOLERANCE_MS).all()
    errors = (pairs.offset_ms - pairs.level).abs()
    assert errors.median() < OFFSET_TOLERANCE_MS, errors.describe()
    # Each pair after a rest of warm_gap_s (0.02 s) since the previous pair was answered.
    ends = np.maximum(pairs.send_s_a + pairs.client_ms_a / 1000.0, pairs.send_s_b + pairs.client_ms_b / 1000.0)
    order = np.argsort(pairs.send_s_a.to_numpy())
    starts, ends = pairs.send_s_a.to_numpy()[order], ends.to_numpy()[order]
    assert (starts[1:] - ends[:-1] >= 0.02 - 0.001).all()
    # One unit per offset, in the campaign record, with its summary.
    meta = json.loads((out / CAMPAIGN_FILE).read_text())
    keys = {unit_key(CFG, "pairs", d) for d in OFFSETS}
    assert keys <= set(meta["units"])
    info = meta["units"][unit_key(CFG, "pairs", 2.0)]["summary"]
    assert info["offset_ms"] == 2.0 and info["pairs"] == 4 and info["requests"] == 8 and info["ok"] == 8
    assert info["offset_error_ms_p50"] < OFFSET_TOLERANCE_MS
    a = rows[(rows.level == 2.0) & (rows.seq % 2 == 0)]
    assert info["a_server_ms_p50"] == pytest.approx(float(np.median(a.server_ms)))
    assert set(summary.pairs[CFG]) == set(OFFSETS) and summary.pairs[CFG][2.0] == info
    assert any(line.startswith(f"  {CFG} pairs: 40/40 ok, offset error p50 at most") for line in summary.lines())


def test_b_is_sent_without_waiting_for_a(tmp_path):
    out = tmp_path / "slow.parquet"
    run_campaign(FakeLambda(call_s=0.02), out, pairs=3, pair_offsets_ms=(0.0, 1.0, 5.0), **SIZES)
    pairs = joined(pairs_rows(out))
    assert len(pairs) == 9 and (pairs.client_ms_a >= 20.0).all()
    # B leaves δ after A, not after A's answer (>= 20 ms).
    assert (pairs.offset_ms < pairs.level + 10.0).all(), pairs[["level", "offset_ms"]]
    assert (pairs.offset_ms - pairs.level).abs().median() < OFFSET_TOLERANCE_MS


def test_a_cold_start_in_a_pair_is_an_error(tmp_path):
    out = tmp_path / "cold.parquet"
    first = CALLS_BEFORE_PAIRS + 1
    run_campaign(FakeLambda(cold_calls=(first,)), out, pairs=2, pair_offsets_ms=(0.0, 3.0), **SIZES)
    rows = pairs_rows(out)
    bad = rows[rows.status != "ok"]
    assert len(bad) == 1 and bad.error.iloc[0] == "a cold start in a pair" and bad.status.iloc[0] == "error"
    assert bad.init_ms.iloc[0] == 100.0
    assert bad.send_s.iloc[0] == rows.send_s.min()  # the first pair's first call
    assert len(rows) == 8 and (rows[rows.status == "ok"].init_ms.isna()).all()


def test_pairs_resume(tmp_path):
    out = tmp_path / "resumed.parquet"
    sizes = SIZES
    offsets = (0.0, 1.0, 3.0)
    # Interrupted in the middle of the phase: its rows so far are kept in the table...
    with pytest.raises(KeyboardInterrupt):
        run_campaign(FakeLambda(interrupt_at=CALLS_BEFORE_PAIRS + 7), out, pairs=3, pair_offsets_ms=offsets,
                     **sizes)
    kept = pairs_rows(out)
    assert 0 < len(kept) < 18
    assert not any("|pairs|" in k for k in json.loads((out / CAMPAIGN_FILE).read_text())["units"])
    # ... and the resumed campaign measures the whole phase again, each unit once.
    resumed_at = time.time()
    again = run_campaign(FakeLambda(), out, resume=True, pairs=3, pair_offsets_ms=offsets, **sizes)
    assert {unit_key(CFG, "pairs", d) for d in offsets} <= set(again.units_measured)
    rows = pairs_rows(out)
    assert len(rows) == 18 and (rows.send_s > resumed_at).all()
    for _, unit in rows.groupby("level"):
        assert sorted(unit.seq) == list(range(6))
    # Finished: resumed again, nothing is measured, the summaries come back.
    last = run_campaign(FakeLambda(), out, resume=True, pairs=3, pair_offsets_ms=offsets, **sizes)
    assert last.units_measured == [] and len(pairs_rows(out)) == 18
    assert {unit_key(CFG, "pairs", d) for d in offsets} <= set(last.units_skipped)
    assert last.pairs[CFG][1.0]["requests"] == 6 and any(" pairs: 18/18 ok" in line for line in last.lines())


def test_no_pairs_when_zero_or_not_lambda_like(tmp_path):
    run_campaign(FakeLambda(), tmp_path / "zero.parquet", pairs=0, **SIZES)
    assert pairs_rows(tmp_path / "zero.parquet").empty
    units = json.loads((tmp_path / "zero.parquet" / CAMPAIGN_FILE).read_text())["units"]
    assert units and not any("|pairs|" in k for k in units)
    summary = run_campaign(FakeServer(), tmp_path / "server.parquet", **SIZES)  # default: none on a server
    assert summary.settings.pairs == 0 and pairs_rows(tmp_path / "server.parquet").empty
    with pytest.raises(ServesimError, match="pairs=2"):
        run_campaign(FakeServer(), tmp_path / "refused.parquet", pairs=2, **SIZES)
    assert not (tmp_path / "refused.parquet").exists()


# ---- the CLI ----------------------------------------------------------------------------------

def test_calibrate_help_shows_pairs():
    from click.testing import CliRunner

    from cli import main

    out = " ".join(CliRunner().invoke(main, ["calibrate", "--help"]).output.split())
    assert "--pairs INTEGER" in out and "local-lambda: recorded pairs per offset (default 20; quick 6; 0: no pairs " \
        "phase)." in out


@pytest.mark.parametrize("target", ["local-server", "http", "aws-lambda"])
def test_calibrate_refuses_pairs_on_other_targets(tmp_path, target):
    pytest.importorskip("onnxruntime")
    from click.testing import CliRunner

    from cli import main

    out = tmp_path / "t"
    result = CliRunner().invoke(main, ["calibrate", target, "--model", "x", "--pairs", "3", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "--pairs is for the local-lambda target only" in result.output + (result.stderr or "")
    assert not out.exists()


# ---- the real local-lambda gateway --------------------------------------------------------------

def test_pairs_phase_local_lambda(tmp_path, tiny_model, rie):  # noqa: F811 - the fixtures imported above
    from calibrate.targets import LocalLambdaTarget

    out = tmp_path / "lambda.parquet"
    target = LocalLambdaTarget(tiny_model, [1024], rie=rie)
    assert settings_for(True, target=target).pairs == 6  # the quick campaign measures pairs here
    t0 = time.perf_counter()
    summary = run_campaign(target, out, pairs=1, pair_offsets_ms=(0.0, 3.0),
                           **{**SIZES, "host": HOST, "warm_gap_s": 0.2})
    took = time.perf_counter() - t0
    rows = pairs_rows(out)
    assert (rows.status == "ok").all(), rows.error.unique()
    assert len(rows) == 4 and rows.init_ms.isna().all() and rows.server_ms.notna().all()
    assert (rows.concurrency == 2).all() and sorted(rows.level) == [0.0, 0.0, 3.0, 3.0]
    pairs = joined(rows)
    # The real client's send times: the median error is ~0.02 ms here, but while A's invocation
    # keeps this host's CPUs busy B's thread now and then wakes late (up to 1.8 ms seen on a
    # 2-vCPU VM), so 3 ms per pair: enough to tell 0 from 3 ms, not to be flaky.
    assert ((pairs.offset_ms - pairs.level).abs() < 3.0).all(), pairs[["level", "offset_ms"]]
    cfg = rows.config.iloc[0]
    assert set(summary.pairs[cfg]) == {0.0, 3.0}
    assert took < 30, took


class ColdHostFake(FakeLambda):
    """A Lambda-like target whose host can be cold (`cold_idle`): its cold starts report Init
    Durations 100, 101, 102, ... in the order they are made."""

    name = "fake-cold-host"
    cold_idle = True

    def cold_starts(self, config: TargetConfig):
        def one() -> Sample:
            self.calls += 1
            return Sample(time.time(), 1.0, "ok", server_ms=1.0, init_ms=99.0 + self.calls)

        return contextlib.nullcontext(one)


def test_the_cold_phase_primes_a_host_that_can_be_cold(tmp_path):
    # One unrecorded cold start before the cold phase's n_cold (the first INIT after the host
    # idled would page the files back in: the cold_idle phase's measure, not the cold phase's).
    target = ColdHostFake()
    run_campaign(target, tmp_path / "t.parquet", **{**SIZES, "n_cold": 3, "n_warm": 0, "pairs": 0})
    df = pd.read_parquet(tmp_path / "t.parquet")
    assert target.calls == 4
    assert df[df.phase == "cold"].sort_values("seq").init_ms.tolist() == [101.0, 102.0, 103.0]
