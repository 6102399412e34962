"""Measurement campaigns: cold starts, warm latency and throughput of a target, into the table.

`run_campaign(target, out, ...)` checks the host (`calibrate.host`; loud warnings when it is
noisy), then for each of the target's configurations measures, in this order:

1. **cold** — `n_cold` forced cold starts (a new Lambda environment; a new server process), one
   after the other, with nothing else of the target running. On a target whose host can be cold
   (`Target.cold_idle`, local-lambda: see cold_idle) one unrecorded cold start goes first: a
   campaign usually starts after the host has idled, and the first INITs would then page the
   files back in, which is the cold_idle phase's measure, not this one's (back to back).
2. **warm** — the configuration is brought up, `warmup` requests (plus the target's own, e.g.
   three per server worker) are sent and *not recorded*, then `n_warm` sequential requests are,
   each after an idle pause. A request that reaches an idle worker takes longer than one sent
   back to back (the CPU sleeps deeper and loses its caches the longer it waits: on this host a
   tiny model answers in 1.5 ms right after the previous request and in 2.3 ms after 50 ms or
   more of idleness, with a time constant of about 12 ms, on gunicorn as in a Lambda
   environment; ``servesim validate`` showed this mechanism). So half the pauses are spread
   log-uniformly from `WARM_GAP_MIN_S` (0.5 ms) to `warm_gap_s` (200 ms) and half are
   `warm_gap_s`, in a shuffled order fixed by `WARM_GAP_SEED` (so that drift over the phase is
   not mistaken for the effect); the fit (`calibrate.fit.fit_idle_effect`) takes from the spread
   how the time shrinks with shorter idle times (`sim.config.IdleEffect`), and from the rested
   ones mostly the distribution of a request reaching a rested unit.
   ``warm_gap_s: 0`` measures back to back.
3. **load** — closed loop at increasing concurrency (`load_levels`, clients each sending its
   next request as soon as the previous one is answered) for `level_s` seconds per level, after
   two unrecorded requests per client (on Lambda these start the level's environments). Per
   level: throughput (ok answers per second), p50 and p99 of client latency. The levels stop at
   the **knee**: when throughput grows by less than `knee_growth` (5 %) over the previous level,
   when p99 exceeds `p99_explode` (10) times the first level's, or when fewer than half the
   requests succeed. The knee is the last level whose throughput still grew by more than 5 %.

4. **burst** — for each k in `burst_sizes` (default 1, 2, 4, 8), `bursts` times: after an idle pause
   of `BURST_PAUSE_S` (so every request reaches a rested unit, whatever k), k requests sent at
   the same instant (k client threads, their connections opened beforehand, released together
   by a barrier); each is a row of phase ``burst``, ``level`` = ``concurrency`` = k. Concurrent
   work shares the host's CPUs: these rows measure how much it stretches (fitted by
   `calibrate.fit.fit_host_share`). Before the recorded one, every burst is preceded by an
   unrecorded one of the same size (the units it reaches have served a request, their first
   inference's extra cost paid). Only the local targets measure bursts
   (`Target.burst_sizes`): local-server warm bursts with k <= workers (beyond that requests
   queue, which the load levels measure); local-lambda first a **cold burst** (the target
   retires every environment, `Target.reset_units`, so each of the k requests starts a new one
   and its REPORT line has the Init Duration of k INITs run at once; a row without one is an
   ``error``), then the priming and the recorded **warm burst** on the k environments the cold
   burst left (a row with an Init Duration is an ``error`` there). A cold row whose Init
   Duration is 0 (the gateway did not see the emulator's INIT RTDONE line, which happens now and
   then under load, and counted the INIT in the Duration) is an ``error`` too. ``bursts: 0``
   disables the phase.
5. **pairs** — only on targets with `Target.cold_bursts` (local-lambda, whose environments run
   on this host): pairs of requests, A then B sent δ ms after A, for each δ in `pair_offsets_ms`
   (default 0 to 4 ms by 0.5, then 5 and 6), `pairs` times each (``--pairs N``; default 20,
   quick 6; 0 skips the phase), in a shuffled order fixed by `PAIR_SEED` (so that drift over the
   phase is not mistaken for the effect). Why: the gateway's and the emulator's work for a newly
   arriving request (its *way in*, about 1.3 ms before its invocation starts) slows an invocation
   already running on the same host; A's duration (``server_ms``) against the actual offset tells
   how much B's way in and B's invocation slow A (fitted by `calibrate.fit.fit_way_in`). Two
   clients, their connections opened beforehand; first one unrecorded burst of 2 (two warm
   environments). Each pair: both clients' threads are started and waiting, then after a rest of
   `warm_gap_s` (0.2 s when it is 0: both environments rested, as the warm phase's rested
   requests) A is sent, and B, from its own thread, δ ms after A's send time (slept to 0.3 ms
   before it, then busy-waited on `time.perf_counter`), without waiting for A's answer. The
   achieved offset (B's ``send_s`` minus A's) is not corrected, only shown (its median error on
   the progress bar and in the unit summary): the fit uses the actual send times. Rows of phase
   ``pairs``, ``level`` = the nominal δ (ms), ``concurrency`` 2, ``seq`` 2i for A and 2i + 1 for
   B (i: the pair's number at that offset, from 0); a sample with an Init Duration is an
   ``error`` (a cold start in a pair). When δ exceeds A's time, B may reach A's environment just
   after A (not rested): only A is a rested request. One unit per offset (the table's units are
   its (config, phase, level)); they all finish at the end of the phase.
6. **cold_idle** — only on targets with `Target.cold_idle` (local-lambda): `n_idle_cold` cold
   starts, each after the host has run no INIT and no request of the target for `idle_cold_s`
   seconds (default 30): every environment retired (`Target.reset_units`), `idle_cold_s` of
   sleep, then one request (its connection reopened beforehand, not timed), which starts a new
   environment. Rows of phase ``cold_idle``, ``level`` = `idle_cold_s`, concurrency 1; as in
   the cold bursts, a row without an Init Duration, or with one of 0, is an ``error``. Why:
   an INIT that starts after the host has run none for a while is slower (this VM's memory
   reclaim pages out what was not touched for 30 s: lone INITs after 30 s idle took 223-251 ms
   against 148-197 ms back to back), and the cold phase, whose INITs follow one another, never
   sees it; `calibrate.fit.fit_init_idle` compares the two (``host_share.init_idle_factor``).
   The phase comes *last* in each configuration: it is the slowest by far (`n_idle_cold` x
   `idle_cold_s` of waiting), it uses the serving gateway the warm, load, burst and pairs
   phases have up, and what ran before it does not matter, as each of its cold starts begins with
   `idle_cold_s` of nothing; an interrupted campaign has the quick phases on disk already.
   ``n_idle_cold: 0`` (the default, quick and full: it costs `idle_cold_s` per cold start)
   skips it; asking for it on another target is an error.

A target that tells cold starts from warm requests by latency alone (`Target.cold_after_warm`:
the ``http`` black box) has its cold phase *last*, after the load levels: ``n_cold`` times, idle
for the target's idle time, then one request, classified against the ok warm latencies of the
same run (this session's warm phase, or on resume the warm rows already in the table; at least
`calibrate.fit.MIN_COLD_REFERENCE_N` of them, so such a campaign needs ``n_warm`` >= 20).
Its unit summary records the rule's figures and how many were cold starts.

Every request is a row of the measurement table (`calibrate.table`), appended as it is
measured through `calibrate.writer.TableWriter` (a load level's rows when the level ends, a few
seconds later; on Ctrl-C in the middle of a level they are dropped, as that unit is measured
again on resume anyway). A **unit** (one configuration's cold phase, warm phase, one load
level, one burst size, one pair offset, or its cold_idle phase at one idle time) is recorded as finished in
``_campaign.json`` once its rows are on disk; `resume=True` skips finished units, so an
interrupted campaign continues where it stopped (a unit cut in the middle is measured again,
its partial rows replaced). Each phase shows a progress bar on a terminal.

`--quick` sizes (3 cold starts, 50 warm requests, levels 1 and 2 clients for 2 s each, bursts of
1, 2, 4 and 8 three times each, on local-lambda 6 pairs per offset) make a campaign of one
configuration take a few seconds plus its cold starts (the bursts add about 1 s on local-server,
8 s per memory size on local-lambda, the pairs about 14 s per memory size; no cold_idle phase).

The client runs on the same host as the target and takes some of its CPU: the host check says
how much CPU there is, and throughput figures are the host's, not an instance's, unless the
target is held to fewer vCPUs than the host has.
"""
from __future__ import annotations

import math
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from calibrate.targets import Endpoint, Sample, Target, TargetConfig
from calibrate.writer import TableWriter, unit_key
from sim.errors import ServesimError


@dataclass(frozen=True)
class CampaignSettings:
    """How much to measure. `load_levels`: closed-loop clients per level, increasing;
    `level_s`: seconds measured per level; `warmup`: unrecorded requests before the warm phase;
    `knee_growth`: the throughput growth below which the levels stop; `p99_explode`: the factor
    over the first level's p99 at which they stop; `flush_rows`: rows per part file at most;
    `warm_gap_s`: the longest idle pause before a warm request (they spread from WARM_GAP_MIN_S);
    `burst_sizes`: requests sent at once per burst, increasing, starting at 1 (the reference);
    `bursts`: recorded bursts per size (0: no burst phase); `n_idle_cold`: cold starts after host
    idle (0: no cold_idle phase); `idle_cold_s`: the host's idle time before each of them (s);
    `pairs`: recorded pairs per offset (0: no pairs phase); `pair_offsets_ms`: the offsets of a
    pair's second request after its first (ms), increasing, from 0 to PAIR_OFFSET_MAX_MS."""

    n_cold: int
    n_warm: int
    warmup: int
    load_levels: tuple[int, ...]
    level_s: float
    knee_growth: float = 0.05
    p99_explode: float = 10.0
    quick: bool = False
    flush_rows: int = 2000
    warm_gap_s: float = 0.2
    burst_sizes: tuple[int, ...] = (1, 2, 4, 8)
    bursts: int = 5
    n_idle_cold: int = 0
    idle_cold_s: float = 30.0
    pairs: int = 0
    pair_offsets_ms: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0)

    def __post_init__(self):
        if self.n_cold < 0 or self.n_warm < 0 or self.warmup < 0:
            raise ServesimError(f"n_cold, n_warm and warmup must be >= 0, got {self.n_cold}, {self.n_warm}, "
                                f"{self.warmup}")
        levels = tuple(int(c) for c in self.load_levels)
        if any(c < 1 for c in levels) or list(levels) != sorted(set(levels)):
            raise ServesimError(f"load levels must be increasing client counts >= 1, got {list(self.load_levels)}")
        object.__setattr__(self, "load_levels", levels)
        if not self.level_s > 0:
            raise ServesimError(f"level_s must be > 0, got {self.level_s}")
        if not 0 <= self.warm_gap_s <= 60:
            raise ServesimError(f"warm_gap_s must be from 0 to 60 s, got {self.warm_gap_s}")
        sizes = tuple(int(k) for k in self.burst_sizes)
        if self.bursts < 0:
            raise ServesimError(f"bursts must be >= 0, got {self.bursts}")
        if self.bursts and (not sizes or sizes[0] != 1 or any(k < 1 for k in sizes) or list(sizes) != sorted(set(sizes))):
            raise ServesimError(f"burst sizes must be increasing request counts starting at 1 (the reference the "
                                f"others are compared with), got {list(self.burst_sizes)}")
        object.__setattr__(self, "burst_sizes", sizes)
        self._check_cold_idle()
        self._check_pairs()

    def _check_cold_idle(self) -> None:
        n, idle_s = self.n_idle_cold, self.idle_cold_s
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ServesimError(f"n_idle_cold (cold starts after host idle) must be a whole number >= 0, got {n!r}")
        if isinstance(idle_s, bool) or not (isinstance(idle_s, (int, float, np.floating)) and math.isfinite(idle_s)
                                            and 0 < idle_s <= IDLE_COLD_MAX_S):
            raise ServesimError(f"idle_cold_s (the host's idle time before each cold start of the cold_idle phase) "
                                f"must be > 0 and at most {IDLE_COLD_MAX_S:g} s, got {idle_s!r}")
        object.__setattr__(self, "n_idle_cold", int(n))
        object.__setattr__(self, "idle_cold_s", float(idle_s))

    def _check_pairs(self) -> None:
        n = self.pairs
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ServesimError(f"pairs (recorded pairs per offset) must be a whole number >= 0, got {n!r}")
        try:
            offsets = tuple(self.pair_offsets_ms)
        except TypeError:
            offsets = ()
        numbers = all(isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)
                      for x in offsets)
        if not offsets or not numbers or not all(math.isfinite(x) and 0 <= x <= PAIR_OFFSET_MAX_MS for x in offsets) \
                or any(b <= a for a, b in zip(offsets, offsets[1:])):
            raise ServesimError(f"pair_offsets_ms (the offsets of a pair's second request after its first) must be "
                                f"increasing numbers from 0 to {PAIR_OFFSET_MAX_MS:g} ms, at least one, got "
                                f"{self.pair_offsets_ms!r}")
        object.__setattr__(self, "pairs", int(n))
        object.__setattr__(self, "pair_offsets_ms", tuple(float(x) for x in offsets))


WARM_GAP_MIN_S = 0.0005
WARM_GAP_SEED = 20261122
IDLE_COLD_MAX_S = 3600.0
"""The longest idle time before a cold start of the cold_idle phase (s)."""
BURST_PAUSE_S = 0.1
"""Idle pause before each burst (s): far longer than the idle effect's time constant (~12 ms),
so every request of every burst reaches a rested unit and k = 1 is a fair reference."""
PAIRS_FULL, PAIRS_QUICK = 20, 6
"""Recorded pairs per offset by default (full, quick) on targets that measure pairs."""
PAIR_SEED = 20261123
PAIR_OFFSET_MAX_MS = 1000.0
"""The largest offset of a pair's second request after its first (ms)."""
PAIR_REST_S = 0.2
"""The rest before each pair (s) when `warm_gap_s` is 0 (back to back would not rest the units)."""
PAIR_SPIN_S = 0.0003
"""How long before its send time a pair's thread stops sleeping and busy-waits (s): longer than
`time.sleep` overshoots here (about 0.1 ms), so each request leaves within microseconds of it."""


def warm_pauses(n: int, longest_s: float) -> np.ndarray:
    """The idle pauses (s) before each of `n` warm requests: half log-uniformly spaced from
    WARM_GAP_MIN_S to `longest_s`, the others `longest_s`, shuffled with a fixed seed (all
    `longest_s` when it is shorter than WARM_GAP_MIN_S, zeros for 0)."""
    if longest_s <= WARM_GAP_MIN_S or n < 4:
        return np.full(n, float(longest_s))
    spread = n // 2
    pauses = np.concatenate([np.geomspace(WARM_GAP_MIN_S, longest_s, spread), np.full(n - spread, float(longest_s))])
    return np.random.default_rng(WARM_GAP_SEED).permutation(pauses)


QUICK = CampaignSettings(n_cold=3, n_warm=50, warmup=5, load_levels=(1, 2), level_s=2.0, quick=True, bursts=3)
FULL = CampaignSettings(n_cold=20, n_warm=500, warmup=20, load_levels=(1, 2, 4, 8, 16, 32), level_s=10.0, bursts=5)


def settings_for(quick: bool = False, *, n_cold: int | None = None, n_warm: int | None = None,
                 load_levels: Sequence[int] | None = None, level_s: float | None = None,
                 warm_gap_s: float | None = None, burst_sizes: Sequence[int] | None = None,
                 bursts: int | None = None, n_idle_cold: int | None = None,
                 idle_cold_s: float | None = None, pairs: int | None = None,
                 pair_offsets_ms: Sequence[float] | None = None, target: Target | None = None) -> CampaignSettings:
    """The quick or full sizes, with any of them overridden. `pairs` defaults to PAIRS_QUICK or
    PAIRS_FULL when `target` measures pairs (`Target.cold_bursts`), else to 0."""
    base = QUICK if quick else FULL
    if pairs is None and target is not None and target.cold_bursts:
        pairs = PAIRS_QUICK if quick else PAIRS_FULL
    changes = {k: v for k, v in dict(n_cold=n_cold, n_warm=n_warm, level_s=level_s, warm_gap_s=warm_gap_s,
                                     bursts=bursts, n_idle_cold=n_idle_cold, idle_cold_s=idle_cold_s,
                                     pairs=pairs).items()
               if v is not None}
    if load_levels is not None:
        changes["load_levels"] = tuple(load_levels)
    if burst_sizes is not None:
        changes["burst_sizes"] = tuple(burst_sizes)
    if pair_offsets_ms is not None:
        changes["pair_offsets_ms"] = pair_offsets_ms  # checked (and made a tuple) by CampaignSettings
    return CampaignSettings(**{**asdict(base), **changes})


def pair_order(offsets_ms: Sequence[float], n: int) -> np.ndarray:
    """Each of `offsets_ms` `n` times, shuffled with PAIR_SEED: the order the pairs are sent in."""
    return np.random.default_rng(PAIR_SEED).permutation(np.repeat(np.asarray(offsets_ms, dtype=float), n))


def parse_list(text: str, what: str = "value") -> list[int]:
    """``"512,1024,2048"`` -> [512, 1024, 2048]: positive integers, no repeats. ServesimError
    naming `what` otherwise."""
    items = [t.strip() for t in str(text).split(",")]
    if not items or any(t == "" for t in items):
        raise ServesimError(f"{what}: expected comma-separated positive integers like 512,1024,2048, got {text!r}")
    out = []
    for t in items:
        try:
            v = int(t)
        except ValueError:
            raise ServesimError(f"{what}: {t!r} is not an integer (expected e.g. 512,1024,2048)") from None
        if v < 1:
            raise ServesimError(f"{what}: {v} must be >= 1")
        if v in out:
            raise ServesimError(f"{what}: {v} is given twice")
        out.append(v)
    return out


@dataclass
class LevelResult:
    """One load level: clients, requests, ok answers, throughput (ok/s), latency percentiles (ms)."""

    level: int
    requests: int
    ok: int
    duration_s: float
    throughput_rps: float
    p50_ms: float | None
    p99_ms: float | None


@dataclass
class CampaignSummary:
    """What a campaign did. `load` maps each configuration to its measured levels; `knee` to the
    knee's client count (None: throughput still grew at the last level); `cold`/`warm`/`cold_idle`
    to their unit summaries; `burst` to one per burst size; `pairs` to one per pair offset (ms)."""

    out: Path
    run_id: str
    target: str
    model: str
    settings: CampaignSettings
    duration_s: float = 0.0
    rows: int = 0
    units_measured: list[str] = field(default_factory=list)
    units_skipped: list[str] = field(default_factory=list)
    host: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    cold: dict[str, dict] = field(default_factory=dict)
    warm: dict[str, dict] = field(default_factory=dict)
    load: dict[str, list[LevelResult]] = field(default_factory=dict)
    knee: dict[str, int | None] = field(default_factory=dict)
    burst: dict[str, dict[int, dict]] = field(default_factory=dict)
    pairs: dict[str, dict[float, dict]] = field(default_factory=dict)
    cold_idle: dict[str, dict] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """A short human-readable account, one line per phase and configuration."""
        out = [f"{self.target} {self.model}: {self.rows} rows in {self.duration_s:.1f} s -> {self.out} "
               f"(run {self.run_id}; {len(self.units_measured)} units measured, {len(self.units_skipped)} resumed)"]
        for cfg in dict.fromkeys([*self.cold, *self.warm, *self.load, *self.burst, *self.pairs,
                                     *self.cold_idle]):
            c, w = self.cold.get(cfg), self.warm.get(cfg)
            if c and "cold_detected" in c:
                out.append(f"  {cfg} cold: {c['cold_detected']} of {c['requests']} requests after {c['idle_s']:g} s "
                           f"idle were cold starts (latency > {_fmt(c['threshold_ms'])} ms), extra latency p50 "
                           f"{_fmt(c.get('init_ms_p50'))} ms; {c['ok']} ok")
            elif c:
                out.append(f"  {cfg} cold: {c['ok']}/{c['requests']} ok, init p50 {_fmt(c.get('init_ms_p50'))} ms, "
                           f"first answer p50 {_fmt(c.get('client_ms_p50'))} ms")
            if w:
                out.append(f"  {cfg} warm: {w['ok']}/{w['requests']} ok, p50 {_fmt(w.get('client_ms_p50'))} ms, "
                           f"p99 {_fmt(w.get('client_ms_p99'))} ms, server p50 {_fmt(w.get('server_ms_p50'))} ms")
            for lv in self.load.get(cfg, []):
                out.append(f"  {cfg} load {lv.level:>3} clients: {lv.throughput_rps:8.1f} req/s, "
                           f"p50 {_fmt(lv.p50_ms)} ms, p99 {_fmt(lv.p99_ms)} ms ({lv.ok}/{lv.requests} ok)")
            if cfg in self.knee:
                k = self.knee[cfg]
                out.append(f"  {cfg} knee: {k} clients" if k is not None else
                           f"  {cfg} knee: not reached (throughput still grew at the last level)")
            for k, b in sorted(self.burst.get(cfg, {}).items()):
                cold = (f"cold init p50 {_fmt(b.get('cold_init_ms_p50'))} ms, " if b.get("cold_requests") else "")
                out.append(f"  {cfg} burst x{k}: {cold}warm p50 {_fmt(b.get('warm_ms_p50'))} ms "
                           f"({b.get('ok')}/{b.get('requests')} ok)")
            p = sorted(self.pairs.get(cfg, {}).items())
            if p:
                errors = [u["offset_error_ms_p50"] for _, u in p if u.get("offset_error_ms_p50") is not None]
                a_ms = ", ".join(f"{d:g}: {_fmt(u.get('a_server_ms_p50'))}" for d, u in p)
                out.append(f"  {cfg} pairs: {sum(u['ok'] for _, u in p)}/{sum(u['requests'] for _, u in p)} ok, "
                           f"offset error p50 at most {_fmt(max(errors, default=None))} ms; "
                           f"A server p50 by offset (ms): {a_ms}")
            i = self.cold_idle.get(cfg)
            if i:
                ref = f" (back to back: {_fmt(c['init_ms_p50'])} ms)" if c and c.get("init_ms_p50") is not None else ""
                out.append(f"  {cfg} cold after {i['idle_s']:g} s idle: {i['ok']}/{i['requests']} ok, init p50 "
                           f"{_fmt(i.get('init_ms_p50'))} ms{ref}")
        return out


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _pct(values: Sequence[float], q: float) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.percentile(vals, q)) if vals else None


def _phase_summary(samples: Sequence[Sample]) -> dict:
    ok = [s for s in samples if s.status == "ok"]
    return {"requests": len(samples), "ok": len(ok),
            "client_ms_p50": _pct([s.client_ms for s in ok], 50), "client_ms_p99": _pct([s.client_ms for s in ok], 99),
            "server_ms_p50": _pct([s.server_ms for s in ok], 50), "init_ms_p50": _pct([s.init_ms for s in ok], 50),
            "init_ms_mean": float(np.mean([s.init_ms for s in ok if s.init_ms is not None]))
            if any(s.init_ms is not None for s in ok) else None}


def _pairs_summary(offset_ms: float, got: Sequence[tuple[Sample, Sample]], pairs: int) -> dict:
    """One offset's unit summary: requests, ok ones, the median |achieved - nominal| offset (ms)
    and A's median server_ms, over the pairs whose two requests are ok (A's: over the ok A)."""
    both = [(a, b) for a, b in got if a.status == b.status == "ok"]
    return {"offset_ms": offset_ms, "pairs": pairs, "requests": 2 * len(got),
            "ok": sum(s.status == "ok" for ab in got for s in ab),
            "offset_error_ms_p50": _pct([abs((b.send_s - a.send_s) * 1000.0 - offset_ms) for a, b in both], 50),
            "a_server_ms_p50": _pct([a.server_ms for a, _ in got if a.status == "ok"], 50)}


def _require_init(s: Sample) -> Sample:
    """A sample that must be a cold start: ok only with an Init Duration > 0, else ``error`` (0:
    the gateway missed the emulator's INIT RTDONE line and counted the INIT in the Duration)."""
    if s.status == "ok" and s.init_ms is None:
        s.status, s.error = "error", "not a cold start (no Init Duration in the REPORT line)"
    elif s.status == "ok" and s.init_ms == 0:
        s.status, s.error = "error", "Init Duration 0: the INIT was counted in the Duration"
    return s


def knee_reached(curve: Sequence[LevelResult], growth: float = 0.05, explode: float = 10.0) -> bool:
    """Whether the last level of `curve` is past saturation (see the module docstring)."""
    if not curve:
        return False
    last = curve[-1]
    if last.requests == 0 or last.ok < 0.5 * last.requests:
        return True
    if len(curve) < 2:
        return False
    prev, first = curve[-2], curve[0]
    if last.throughput_rps < prev.throughput_rps * (1.0 + growth):
        return True
    return first.p99_ms is not None and last.p99_ms is not None and last.p99_ms > explode * first.p99_ms


def knee_of(curve: Sequence[LevelResult], growth: float = 0.05) -> int | None:
    """The last level whose throughput grew by more than `growth` over the previous one (the
    first level counts as grown); None when the last level still grew (no saturation seen)."""
    if not curve:
        return None
    knee = curve[0].level
    for prev, cur in zip(curve, curve[1:]):
        if cur.throughput_rps > prev.throughput_rps * (1.0 + growth):
            knee = cur.level
        else:
            return knee
    return None if len(curve) > 1 and knee == curve[-1].level else knee


# ---- progress -------------------------------------------------------------------------------

class _Bars:
    """One rich progress bar per phase (with rate and ETA), on stderr when it is a terminal."""

    def __init__(self, enabled: bool):
        from rich.console import Console

        self.console = Console(stderr=True)
        self.enabled = bool(enabled) and self.console.is_terminal
        self._progress = None
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(TextColumn("{task.description:<24}"), BarColumn(bar_width=20),
                                      TextColumn("{task.fields[count]:>9}"), TextColumn("{task.fields[rate]:>12}"),
                                      TimeRemainingColumn(), console=self.console)

    def __enter__(self):
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.stop()

    def task(self, description: str, total: float):
        """(advance, set) callbacks for a new bar; no-ops when progress is off."""
        if self._progress is None:
            return (lambda n=1, rate="": None), (lambda done, rate="": None)
        p = self._progress
        tid = p.add_task(description, total=total, rate="", count="")

        done_n = [0]

        def advance(n=1, rate=""):
            done_n[0] += n
            p.update(tid, advance=n, rate=rate, count=f"{done_n[0]}/{total:g}")

        def set_done(done, rate=""):
            p.update(tid, completed=done, rate=rate, count=f"{done:.1f}/{total:g} s")

        return advance, set_done

    def say(self, text: str, loud: bool = False) -> None:
        self.console.print(text, style="bold red" if loud else None, markup=False, highlight=False)


# ---- the phases -----------------------------------------------------------------------------

def closed_loop(endpoint: Endpoint, clients: int, duration_s: float, *, warmup_calls: int = 2,
                tick: Callable[[float, int], None] | None = None) -> tuple[list[tuple[int, Sample]], float]:
    """`clients` threads, each sending requests back to back for `duration_s` after
    `warmup_calls` unrecorded ones (all start measuring together). Returns ([(client, sample)]
    in send order, the measured window's start in Unix seconds). `tick(elapsed_s, n)` is called
    about ten times a second. Ctrl-C stops the clients after their request in flight."""
    stop = threading.Event()
    window: dict[str, float] = {}

    def begin():
        window["wall"], window["perf"] = time.time(), time.perf_counter()

    barrier = threading.Barrier(clients + 1, action=begin)
    results: list[list[Sample]] = [[] for _ in range(clients)]
    failures: list[BaseException] = []

    def run(i: int) -> None:
        client = endpoint.client()
        try:
            for _ in range(warmup_calls):
                if stop.is_set():
                    return
                client.call()
            barrier.wait()
            deadline = window["perf"] + duration_s
            while not stop.is_set() and time.perf_counter() < deadline:
                results[i].append(client.call())
        except threading.BrokenBarrierError:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported to the caller below
            failures.append(exc)
            barrier.abort()
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(i,), name=f"load-client-{i}", daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    try:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=0.1)
                if tick is not None and "perf" in window:
                    tick(min(time.perf_counter() - window["perf"], duration_s), sum(len(r) for r in results))
    except BaseException:
        stop.set()
        barrier.abort()
        for t in threads:
            t.join(timeout=60.0)
        raise
    if failures:
        raise failures[0]
    merged = sorted(((i, s) for i, rs in enumerate(results) for s in rs), key=lambda x: x[1].send_s)
    return merged, window.get("wall", time.time())


def burst(clients: Sequence, barrier_timeout_s: float = 60.0, *, rest_s: float = 0.0,
          offsets_s: Sequence[float] | None = None) -> list[Sample]:
    """One request from each of `clients` (one `calibrate.targets.Client` per thread), all sent at
    the same instant: each thread opens its connection first (not timed), then waits at a
    barrier that releases them together. With `offsets_s`, client i sends instead `rest_s` after
    the release plus `offsets_s[i]` (`wait_until`), whether or not the others have been
    answered. Returns the samples in the order of `clients`."""
    k = len(clients)
    at: dict[str, float] = {}

    def schedule():
        at["start"] = time.perf_counter() + rest_s

    barrier = threading.Barrier(k, action=schedule if offsets_s is not None else None)
    results: list[Sample | None] = [None] * k
    failures: list[BaseException] = []

    def run(i: int) -> None:
        client = clients[i]
        try:
            problem = client.http.reconnect()
            barrier.wait(timeout=barrier_timeout_s)
            if offsets_s is not None:
                wait_until(at["start"] + offsets_s[i])
            results[i] = client.call() if problem is None else Sample(time.time(), 0.0, "error", error=problem)
        except threading.BrokenBarrierError:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported to the caller below
            failures.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i,), name=f"burst-client-{i}", daemon=True) for i in range(k)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]
    if any(r is None for r in results):
        raise RuntimeError("a burst's clients were not released together (barrier broken)")
    return results  # type: ignore[return-value]


def wait_until(deadline: float) -> None:
    """Return at `deadline` (`time.perf_counter` seconds): sleep until PAIR_SPIN_S before it, then
    busy-wait."""
    left = deadline - PAIR_SPIN_S - time.perf_counter()
    if left > 0:
        time.sleep(left)
    while time.perf_counter() < deadline:
        pass


def pair(clients: Sequence, rest_s: float, offset_ms: float, barrier_timeout_s: float = 60.0) -> tuple[Sample, Sample]:
    """One request from each of the two `clients`, A (the first) then B `offset_ms` after it: a
    `burst` whose A is sent `rest_s` after the release and B `offset_ms` after A's send time,
    whether or not A has been answered. Returns (A, B)."""
    a, b = burst(clients, barrier_timeout_s, rest_s=rest_s, offsets_s=(0.0, offset_ms / 1000.0))
    return a, b


def _level_result(level: int, samples: Sequence[Sample], t0: float) -> LevelResult:
    ok = [s for s in samples if s.status == "ok"]
    end = max((s.send_s + s.client_ms / 1000.0 for s in samples), default=t0)
    duration = max(end - t0, 1e-9)
    lat = [s.client_ms for s in ok]
    return LevelResult(level, len(samples), len(ok), round(duration, 4), len(ok) / duration,
                       _pct(lat, 50), _pct(lat, 99))


def _base_row(run_id: str, target: Target, config: TargetConfig) -> dict:
    f = config.fields
    return {"run_id": run_id, "target": target.name, "model": target.model, "model_sha256": target.model_sha256,
            "config": config.key, "memory_mb": f.get("memory_mb"), "architecture": f.get("architecture"),
            "instance_type": f.get("instance_type"), "workers": f.get("workers"),
            "cpus": None if f.get("cpus") is None else float(f["cpus"])}


def _row(base: dict, phase: str, level: float | None, concurrency: int, seq: int, s: Sample) -> dict:
    return {**base, "phase": phase, "level": None if level is None else float(level), "concurrency": concurrency,
            "seq": seq, "send_s": s.send_s, "client_ms": s.client_ms, "server_ms": s.server_ms,
            "init_ms": s.init_ms, "billed_ms": s.billed_ms, "max_memory_mb": s.max_memory_mb,
            "status": s.status, "error": s.error, "limit": s.limit}


def new_run_id() -> str:
    """A run id: UTC time and a random suffix, e.g. ``20250101T120000Z-3f9a1c``."""
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def run_campaign(target: Target, out: str | Path, *, quick: bool = False, resume: bool = False,
                 n_cold: int | None = None, n_warm: int | None = None, load_levels: Sequence[int] | None = None,
                 level_s: float | None = None, warm_gap_s: float | None = None,
                 burst_sizes: Sequence[int] | None = None, bursts: int | None = None,
                 n_idle_cold: int | None = None, idle_cold_s: float | None = None, pairs: int | None = None,
                 pair_offsets_ms: Sequence[float] | None = None, progress: bool = True, host: dict | None = None,
                 echo: Callable[[str], None] | None = None,
                 on_unit: Callable[[str, dict], None] | None = None) -> CampaignSummary:
    """Measure `target` into the table folder `out` (see the module docstring).

    `quick`: the quick sizes; `n_cold`, `n_warm`, `load_levels`, `level_s`, `warm_gap_s`,
    `burst_sizes`, `bursts`, `n_idle_cold`, `idle_cold_s`, `pairs`, `pair_offsets_ms` override
    them (`n_idle_cold` > 0 on a target without `Target.cold_idle`, or `pairs` > 0 on one without
    `Target.cold_bursts`, is a ServesimError, before anything is measured; `pairs` defaults to
    PAIRS_FULL or PAIRS_QUICK on a target with it, 0 on others).
    `resume`: continue the campaign recorded in `out` (else an existing table is refused).
    `host`: host checks already made (`calibrate.host.check_host()`), else they are made now.
    `echo`: where messages go (default: stderr, warnings in bold red). `on_unit(key, summary)`
    is called after each unit is on disk. Ctrl-C stops everything started and keeps the rows."""
    from calibrate.host import check_host
    from calibrate.host import warnings as host_warnings

    t_start = time.perf_counter()
    settings = settings_for(quick, n_cold=n_cold, n_warm=n_warm, load_levels=load_levels, level_s=level_s,
                            warm_gap_s=warm_gap_s, burst_sizes=burst_sizes, bursts=bursts,
                            n_idle_cold=n_idle_cold, idle_cold_s=idle_cold_s, pairs=pairs,
                            pair_offsets_ms=pair_offsets_ms, target=target)
    if settings.pairs > 0 and not target.cold_bursts:
        raise ServesimError(f"{target.name}: pairs of requests (pairs, --pairs) are measured on local-lambda only (a "
                            f"target whose environments share this host with its gateway), got pairs={settings.pairs}")
    if settings.n_idle_cold > 0 and not target.cold_idle:
        raise ServesimError(f"{target.name}: cold starts after host idle (n_idle_cold, --idle-cold) are measured on "
                            f"local-lambda only (a target whose environments run on this host and report their "
                            f"Init Duration), got n_idle_cold={settings.n_idle_cold}")
    from calibrate.fit import MIN_COLD_REFERENCE_N  # scipy: only when a campaign runs

    if target.supports_cold and target.cold_after_warm and settings.n_cold > 0 and \
            settings.n_warm < MIN_COLD_REFERENCE_N:
        raise ServesimError(f"{target.name}: cold starts are told from warm requests by latency, so the campaign "
                            f"needs at least {MIN_COLD_REFERENCE_N} warm requests (--warm), got {settings.n_warm}")
    writer = TableWriter(out, new_run_id(), resume=resume, flush_rows=settings.flush_rows)
    bars = _Bars(progress)

    def say(text: str, loud: bool = False) -> None:
        text = ("WARNING: " if loud else "") + text
        if echo is not None:
            echo(text)
        else:
            bars.say(text, loud)

    if host is None:
        say("checking the host (usable CPUs, scaling, noise, cgroup quotas)...")
        host = check_host()
    warns = host_warnings(host)
    for w in warns:
        say(w, loud=True)
    summary = CampaignSummary(Path(out), writer.run_id, target.name, target.model, settings, host=host,
                              warnings=warns)
    with writer, bars:
        writer.start(target=target.name, model=target.model, model_sha256=target.model_sha256,
                     session={"host": host, "warnings": warns, "settings": asdict(settings),
                              "target_details": target.describe()})
        summary.run_id = writer.run_id
        run = _Run(target, settings, writer, bars, summary, on_unit)
        with target.session():
            for config in target.configs():
                run.config(config)
        writer.finish()
    summary.duration_s = time.perf_counter() - t_start
    return summary


class _Run:
    """One session of a campaign: the phases of each configuration, skipping finished units."""

    def __init__(self, target: Target, settings: CampaignSettings, writer: TableWriter, bars: _Bars,
                 summary: CampaignSummary, on_unit: Callable[[str, dict], None] | None):
        self.target, self.settings, self.writer, self.bars = target, settings, writer, bars
        self.summary, self.on_unit = summary, on_unit
        self.done = writer.done_units()
        self.warm_ms: dict[str, list[float]] = {}  # config key -> ok warm latencies of this session

    def _finish(self, key: str, info: dict, rows: int) -> None:
        self.writer.end_unit(key, info, rows=rows)
        self.summary.units_measured.append(key)
        self.summary.rows += rows
        if self.on_unit is not None:
            self.on_unit(key, info)

    def _skip(self, key: str) -> dict:
        self.summary.units_skipped.append(key)
        return self.writer.unit_summary(key) or {}

    def config(self, config: TargetConfig) -> None:
        st = self.settings
        base = _base_row(self.writer.run_id, self.target, config)
        cold_todo = self.target.supports_cold and st.n_cold > 0
        if cold_todo and not self.target.cold_after_warm:
            self.cold(config, base)
        warm_key = unit_key(config.key, "warm")
        warm_todo = st.n_warm > 0 and warm_key not in self.done
        if st.n_warm > 0 and not warm_todo:
            self.summary.warm[config.key] = self._skip(warm_key)
        # The load levels already measured, replaying the knee decision.
        curve, next_level = [], 0
        for level in st.load_levels:
            key = unit_key(config.key, "load", level)
            if key not in self.done:
                break
            curve.append(LevelResult(**self._skip(key)))
            next_level += 1
            if knee_reached(curve, st.knee_growth, st.p99_explode):
                next_level = len(st.load_levels)
                break
        burst_todo = []
        if st.bursts > 0:
            for k in self.target.burst_sizes(config, st.burst_sizes):
                key = unit_key(config.key, "burst", k)
                if key in self.done:
                    self.summary.burst.setdefault(config.key, {})[k] = self._skip(key)
                else:
                    burst_todo.append(k)
        pairs_todo = []
        if st.pairs > 0:
            for offset_ms in st.pair_offsets_ms:
                key = unit_key(config.key, "pairs", offset_ms)
                if key in self.done:
                    self.summary.pairs.setdefault(config.key, {})[offset_ms] = self._skip(key)
                else:
                    pairs_todo.append(offset_ms)
        idle_key = unit_key(config.key, "cold_idle", st.idle_cold_s)
        idle_todo = st.n_idle_cold > 0 and idle_key not in self.done
        if st.n_idle_cold > 0 and not idle_todo:
            self.summary.cold_idle[config.key] = self._skip(idle_key)
        if warm_todo or next_level < len(st.load_levels) or burst_todo or pairs_todo or idle_todo:
            with self.target.serving(config) as endpoint:
                warm_client = endpoint.client()
                try:
                    for _ in range(st.warmup + self.target.warmup_requests(config)):
                        warm_client.call()
                    if warm_todo:
                        self.warm(config, base, warm_client)
                finally:
                    warm_client.close()
                for level in st.load_levels[next_level:]:
                    curve.append(self.load_level(config, base, endpoint, level))
                    if knee_reached(curve, st.knee_growth, st.p99_explode):
                        break
                for k in burst_todo:
                    self.bursts(config, base, endpoint, k)
                if pairs_todo:
                    self.pairs(config, base, endpoint, pairs_todo)
                if idle_todo:
                    self.cold_idle(config, base, endpoint)
        if st.load_levels:
            self.summary.load[config.key] = curve
            self.summary.knee[config.key] = knee_of(curve, st.knee_growth)
        if cold_todo and self.target.cold_after_warm:
            self.cold(config, base)

    def _warm_reference(self, config: TargetConfig) -> list[float]:
        """The ok warm latencies (ms) of `config` in this campaign: measured in this session, or
        read back from the table when the warm phase was finished before a resume."""
        if config.key in self.warm_ms:
            return self.warm_ms[config.key]
        import pandas as pd

        try:
            df = pd.read_parquet(self.writer.path, columns=["config", "phase", "status", "client_ms"])
        except Exception:  # noqa: BLE001 - no part yet (or unreadable): no reference
            return []
        warm = df[(df["config"] == config.key) & (df["phase"] == "warm") & (df["status"] == "ok")]
        return [float(v) for v in warm["client_ms"]]

    def cold(self, config: TargetConfig, base: dict) -> None:
        key = unit_key(config.key, "cold")
        if key in self.done:
            self.summary.cold[config.key] = self._skip(key)
            return
        extra: dict = {}
        if self.target.cold_after_warm:
            from calibrate.fit import MIN_COLD_REFERENCE_N, ColdRule

            warm_ms = self._warm_reference(config)
            contexts = self.target.cold_starts(config, warm_ms)  # refuses too few when entered
            if len(warm_ms) >= MIN_COLD_REFERENCE_N:
                extra = {"idle_s": getattr(self.target, "idle_s", None), **ColdRule.from_warm(warm_ms).describe()}
        else:
            contexts = self.target.cold_starts(config)
        advance, _ = self.bars.task(f"{config.label} cold", self.settings.n_cold)
        samples = []
        with contexts as cold_start:
            if self.target.cold_idle:  # a cold host (see cold_idle) would slow the first ones: prime it
                cold_start()
            for i in range(self.settings.n_cold):
                s = cold_start()
                samples.append(s)
                self.writer.append([_row(base, "cold", None, 1, i, s)])
                advance(1, f"init {s.init_ms or 0:.0f} ms" if not self.target.cold_after_warm else
                        "not cold" if s.init_ms is None else f"cold +{s.init_ms:.0f} ms")
        info = _phase_summary(samples)
        if extra:
            info.update(extra, cold_detected=sum(s.init_ms is not None for s in samples))
        self.summary.cold[config.key] = info
        self._finish(key, info, len(samples))

    def warm(self, config: TargetConfig, base: dict, client) -> None:
        advance, _ = self.bars.task(f"{config.label} warm", self.settings.n_warm)
        samples = []
        for i, pause_s in enumerate(warm_pauses(self.settings.n_warm, self.settings.warm_gap_s)):
            if pause_s > 0:
                time.sleep(pause_s)
            s = client.call()
            samples.append(s)
            self.writer.append([_row(base, "warm", None, 1, i, s)])
            advance(1, f"{s.client_ms:.1f} ms")
        self.warm_ms[config.key] = [s.client_ms for s in samples if s.status == "ok"]
        info = _phase_summary(samples)
        self.summary.warm[config.key] = info
        self._finish(unit_key(config.key, "warm"), info, len(samples))

    def load_level(self, config: TargetConfig, base: dict, endpoint: Endpoint, level: int) -> LevelResult:
        _, set_done = self.bars.task(f"{config.label} load x{level}", self.settings.level_s)
        pairs, t0 = closed_loop(endpoint, level, self.settings.level_s,
                                tick=lambda el, n: set_done(el, f"{n / max(el, 1e-9):.0f} req/s"))
        rows = [_row(base, "load", level, level, i, s) for i, (_, s) in enumerate(pairs)]
        self.writer.append(rows)
        result = _level_result(level, [s for _, s in pairs], t0)
        self._finish(unit_key(config.key, "load", level), asdict(result), len(rows))
        return result

    def bursts(self, config: TargetConfig, base: dict, endpoint: Endpoint, k: int) -> None:
        """`settings.bursts` bursts of `k` requests (see the module docstring): per burst, on a
        target with cold bursts, the units are reset and a cold burst recorded; then an
        unrecorded warm burst and a recorded one."""
        cold = self.target.cold_bursts
        advance, _ = self.bars.task(f"{config.label} burst x{k}", self.settings.bursts)
        clients = [endpoint.client() for _ in range(k)]
        samples: list[tuple[bool, Sample]] = []
        rows, seq = 0, 0
        try:
            for _ in range(self.settings.bursts):
                if cold:
                    self.target.reset_units(endpoint)
                    time.sleep(BURST_PAUSE_S)
                    for s in burst(clients):
                        samples.append((True, _require_init(s)))
                        self.writer.append([_row(base, "burst", k, k, seq, s)])
                        seq += 1
                for record in (False, True):
                    time.sleep(BURST_PAUSE_S)
                    got = burst(clients)
                    if not record:
                        continue
                    for s in got:
                        if s.status == "ok" and s.init_ms is not None:
                            s.status, s.error = "error", "a cold start in a warm burst"
                        samples.append((False, s))
                        self.writer.append([_row(base, "burst", k, k, seq, s)])
                        seq += 1
                last = [s for c, s in samples[-k:]]
                advance(1, f"{np.median([s.client_ms for s in last]):.1f} ms")
        finally:
            for c in clients:
                c.close()
        rows = len(samples)
        ok_cold = [s for c, s in samples if c and s.status == "ok"]
        ok_warm = [s for c, s in samples if not c and s.status == "ok"]
        info = {"k": k, "bursts": self.settings.bursts, "requests": rows,
                "ok": len(ok_cold) + len(ok_warm), "cold_requests": sum(c for c, _ in samples),
                "cold_init_ms_p50": _pct([s.init_ms for s in ok_cold], 50),
                "warm_ms_p50": _pct([s.server_ms if s.server_ms is not None else s.client_ms for s in ok_warm], 50),
                "warm_client_ms_p50": _pct([s.client_ms for s in ok_warm], 50)}
        self.summary.burst.setdefault(config.key, {})[k] = info
        self._finish(unit_key(config.key, "burst", k), info, rows)

    def pairs(self, config: TargetConfig, base: dict, endpoint: Endpoint, offsets_ms: Sequence[float]) -> None:
        """`settings.pairs` pairs at each of `offsets_ms` (see the module docstring), in `pair_order`,
        after an unrecorded burst of 2; one unit per offset, all finished at the end."""
        st = self.settings
        rest_s = st.warm_gap_s if st.warm_gap_s > 0 else PAIR_REST_S
        order = pair_order(offsets_ms, st.pairs)
        advance, _ = self.bars.task(f"{config.label} pairs", len(order))
        measured: dict[float, list[tuple[Sample, Sample]]] = {float(d): [] for d in offsets_ms}
        errors_ms: list[float] = []
        clients = [endpoint.client() for _ in range(2)]
        try:
            burst(clients)  # unrecorded: two warm environments
            for offset_ms in order:
                got = measured[float(offset_ms)]
                a, b = pair(clients, rest_s, offset_ms)
                for s in (a, b):
                    if s.status == "ok" and s.init_ms is not None:
                        s.status, s.error = "error", "a cold start in a pair"
                i = len(got)
                got.append((a, b))
                self.writer.append([_row(base, "pairs", offset_ms, 2, 2 * i, a),
                                    _row(base, "pairs", offset_ms, 2, 2 * i + 1, b)])
                if a.status == b.status == "ok":
                    errors_ms.append(abs((b.send_s - a.send_s) * 1000.0 - offset_ms))
                advance(1, f"err {np.median(errors_ms):.2f} ms" if errors_ms else "")
        finally:
            for c in clients:
                c.close()
        for offset_ms, got in measured.items():
            info = _pairs_summary(offset_ms, got, st.pairs)
            self.summary.pairs.setdefault(config.key, {})[offset_ms] = info
            self._finish(unit_key(config.key, "pairs", offset_ms), info, 2 * len(got))

    def cold_idle(self, config: TargetConfig, base: dict, endpoint: Endpoint) -> None:
        """`settings.n_idle_cold` cold starts, each after `settings.idle_cold_s` of host idle
        (see the module docstring): every unit retired, the idle time, then one request."""
        st = self.settings
        advance, _ = self.bars.task(f"{config.label} cold idle", st.n_idle_cold)
        client = endpoint.client()
        samples = []
        try:
            for i in range(st.n_idle_cold):
                self.target.reset_units(endpoint)
                time.sleep(st.idle_cold_s)
                problem = client.http.reconnect()  # not timed: the idle time may have closed the connection
                s = _require_init(client.call()) if problem is None else \
                    Sample(time.time(), 0.0, "error", error=problem)
                samples.append(s)
                self.writer.append([_row(base, "cold_idle", st.idle_cold_s, 1, i, s)])
                advance(1, f"init {s.init_ms or 0:.0f} ms")
        finally:
            client.close()
        info = {"idle_s": st.idle_cold_s, **_phase_summary(samples)}
        self.summary.cold_idle[config.key] = info
        self._finish(unit_key(config.key, "cold_idle", st.idle_cold_s), info, len(samples))
