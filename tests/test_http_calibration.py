"""The http target with cold starts: the detection rule on synthetic samples, the profile's http
entries (fit, write, load, look up), and a real run against the local Lambda gateway (AWS's
runtime emulator running awslambdaric), an HTTP endpoint that reclaims idle environments after
its keep-alive, standing in for a gateway that scales to zero. No mocks in the real run.

After every test no process it started may be left."""
from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
from test_campaign import rie, tiny_model  # noqa: F401 - fixtures

from calibrate.fit import COLD_K, COLD_MIN_EXTRA_MS, MIN_COLD_REFERENCE_N, ColdRule
from calibrate.profiles import profile_from_table, write_profile
from calibrate.table import COLUMNS
from calibrate.targets import HttpTarget, http_config_key, http_label, parse_http_config
from sim.dists import parse_dist
from sim.errors import ConfigError, ServesimError
from sim.profile import HttpEntry, load_profile

# ---- the detection rule ---------------------------------------------------------------------


def test_threshold_is_the_largest_of_the_three_terms():
    rng = np.random.default_rng(1)
    noisy = rng.lognormal(np.log(50.0), 0.5, 2000)  # a slow, noisy model: the spread term wins
    rule = ColdRule.from_warm(noisy)
    m, p99, p999 = np.quantile(noisy, [0.5, 0.99, 0.999])
    assert rule.median_ms == pytest.approx(m) and rule.n == 2000
    assert rule.threshold_ms == pytest.approx(m + COLD_K * (p99 - m)) and rule.threshold_ms > p999
    tight = 2.0 + rng.exponential(0.05, 500)  # loopback, a few ms: the 20 ms floor wins
    rule = ColdRule.from_warm(tight)
    assert rule.threshold_ms == pytest.approx(np.median(tight) + COLD_MIN_EXTRA_MS)
    spiky = np.concatenate([np.full(990, 10.0), np.full(10, 500.0)])  # rare huge outliers: p99.9 wins
    assert ColdRule.from_warm(spiky).threshold_ms == pytest.approx(np.quantile(spiky, 0.999))


def test_after_idle_without_scale_to_zero_nothing_is_cold_and_cold_starts_are():
    """Requests after idle on a platform that kept its instance (a few ms of idle effect on top of
    the warm distribution) are not cold; ones carrying a start of 150 ms or more all are."""
    rng = np.random.default_rng(7)
    warm = 3.0 * rng.lognormal(0.0, 0.3, 500)
    rule = ColdRule.from_warm(warm)
    kept = 3.0 * rng.lognormal(0.0, 0.3, 2000) + rng.uniform(0, 8, 2000)  # idle effect, new connection
    assert not any(rule.is_cold(x) for x in kept)
    started = 3.0 * rng.lognormal(0.0, 0.3, 200) + rng.uniform(150, 2000, 200)
    assert all(rule.is_cold(x) for x in started)
    assert rule.extra_ms(rule.median_ms + 400.0) == pytest.approx(400.0)
    # A warm request of the same distribution is called cold about never (lognormal s = 0.3).
    assert np.mean([rule.is_cold(x) for x in 3.0 * rng.lognormal(0.0, 0.3, 100_000)]) < 1e-3


def test_too_few_warm_requests_are_refused():
    with pytest.raises(ValueError, match=f"at least {MIN_COLD_REFERENCE_N}"):
        ColdRule.from_warm(np.ones(MIN_COLD_REFERENCE_N - 1))
    ColdRule.from_warm(np.ones(MIN_COLD_REFERENCE_N))


def test_http_target_settings():
    url = "http://127.0.0.1:8080/function/resnet"
    assert http_label(url) == "resnet" and http_label("http://hello.default.example.com/") == "hello.default.example.com"
    assert parse_http_config(http_config_key("a-b", url + "?x=1,y=2")) == ("a-b", url + "?x=1,y=2")
    assert parse_http_config("url=" + url) == ("resnet", url)  # tables written before labels
    t = HttpTarget(url, b"{}")
    assert not t.supports_cold and t.label == "resnet" and t.configs()[0].key == f"label=resnet,url={url}"
    t = HttpTarget(url, b"{}", idle_s=95, label="of", headers={"Authorization": "secret"})
    assert t.supports_cold and t.cold_after_warm and "secret" not in json.dumps(t.describe())
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ServesimError, match="idle_s"):
            HttpTarget(url, b"{}", idle_s=bad)
    with pytest.raises(ServesimError, match="label"):
        HttpTarget(url, b"{}", label="no spaces")


# ---- profiles -------------------------------------------------------------------------------

def http_table(label: str, *, n_warm: int = 300, cold_extra_ms=(), n_not_cold: int = 0, seed: int = 0) -> pd.DataFrame:
    """A measurement table of the http target: warm requests, then requests after 5 s idle, the
    cold starts among them carrying their extra latency in init_ms."""
    rng = np.random.default_rng(seed)
    url = f"http://127.0.0.1:8080/function/{label}"
    rows, t = [], 1.8e9
    warm = 4.0 * rng.lognormal(0.0, 0.25, n_warm)
    median = float(np.median(warm))

    def row(phase, seq, ms, init=None):
        nonlocal t
        r = {n: None for n in COLUMNS.names}
        r.update(run_id="r1", target="http", model="m", config=http_config_key(label, url), phase=phase,
                 concurrency=1, seq=seq, send_s=t, client_ms=float(ms), init_ms=init, status="ok")
        t += ms / 1000.0 + (5.0 if phase == "cold" else 0.05)
        return r

    rows += [row("warm", i, x) for i, x in enumerate(warm)]
    t += 5.0
    colds = [median + e for e in cold_extra_ms] + list(4.0 * rng.lognormal(0.0, 0.25, n_not_cold))
    rows += [row("cold", i, x, (x - median) if i < len(cold_extra_ms) else None) for i, x in enumerate(colds)]
    return pd.DataFrame(rows)


def test_http_entries_round_trip_through_a_profile_file(tmp_path):
    extra_ms = np.random.default_rng(3).lognormal(np.log(1500.0), 0.2, 25)
    df = pd.concat([http_table("knative-resnet", cold_extra_ms=extra_ms),
                    http_table("openfaas-ce", n_not_cold=4, seed=1)], ignore_index=True)
    prof = profile_from_table(df)
    assert "server" not in prof and "lambda" not in prof and prof["measured"]["target"] == "http"
    cold, warm = prof["http"]
    assert cold["label"] == "knative-resnet" and cold["url"].endswith("/function/knative-resnet")
    assert cold["start_s"]["fit"]["n"] == 25 and cold["cold_detection"]["cold_starts"] == 25
    assert cold["cold_detection"]["idle_s_min"] == pytest.approx(5.0, abs=0.01)
    assert cold["counts"]["cold"] == {"ok": 25, "throttled": 0, "error": 0, "timeout": 0, "cold_starts": 25}
    assert cold["service_ms"]["fit"]["n"] == 300 and cold["service_ms"]["fit"]["column"] == "client_ms"
    assert warm["start_s"] is None and "none of the 4 ok requests" in warm["cold_detection"]["reason"]
    assert "threshold_ms" in warm["cold_detection"] and "rule" in warm["cold_detection"]

    path = write_profile(prof, tmp_path / "p.json")
    loaded = load_profile(path)
    entry = loaded.http_entry("knative-resnet")
    assert isinstance(entry, HttpEntry) and entry.url == cold["url"]
    start = entry.start_s.sample(np.random.default_rng(0), 20_000)
    assert np.median(start) == pytest.approx(np.median(extra_ms) / 1000.0, rel=0.1)  # seconds
    service = entry.service_ms.sample(np.random.default_rng(0), 20_000)
    assert np.median(service) == pytest.approx(4.0, rel=0.05)
    assert entry.fit["cold_detection"]["cold_starts"] == 25 and entry.fit["start_s"]["n"] == 25
    none = loaded.http_entry("openfaas-ce")
    assert none.start_s is None and "kept an instance" in none.fit["start_s"]["reason"]
    assert loaded.http_entry("nope") is None and loaded.lambdas == () and loaded.servers == ()
    assert "http knative-resnet (http://127.0.0.1:8080/function/knative-resnet)" in loaded.describe_entries()


def test_a_table_without_a_cold_phase_says_so():
    prof = profile_from_table(http_table("plain"))
    (entry,) = prof["http"]
    assert entry["start_s"] is None and "no requests after an idle period" in entry["cold_detection"]["reason"]


def test_hand_written_http_entry_and_its_mistakes(tmp_path):
    base = {"schema": "servesim.profile/1", "model": {"name": "m"}, "measured": {"target": "http"},
            "http": [{"label": "svc", "url": "https://svc.example.com/", "service_ms": {"dist": "expon", "mean": 9},
                      "start_s": {"dist": "constant", "value": 2.5}}]}
    p = tmp_path / "p.json"
    p.write_text(json.dumps(base))
    e = load_profile(p).http_entry("svc")
    assert e.service_ms == parse_dist({"dist": "expon", "mean": 9}) and e.start_s == parse_dist(2.5)
    for key, value, expected in [("label", "has space", "letters, digits"), ("url", "ftp://x", "an http(s) URL"),
                                 ("service_ms", None, "required"), ("start_s", {"dist": "nope"}, "start_s"),
                                 ("counts", [1], "a mapping"), ("extra", 1, "a known key")]:
        bad = json.loads(json.dumps(base))
        bad["http"][0][key] = value
        p.write_text(json.dumps(bad))
        with pytest.raises(ConfigError) as err:
            load_profile(p)
        assert str(p) in str(err.value) and f"http[0].{key}" in str(err.value) and expected in str(err.value)
    twice = json.loads(json.dumps(base))
    twice["http"].append(twice["http"][0])
    p.write_text(json.dumps(twice))
    with pytest.raises(ConfigError, match=r"http\[1\].label: expected one entry per label"):
        load_profile(p)


# ---- the real thing: the local Lambda gateway as a scale-to-zero endpoint ---------------------

KEEP_ALIVE_S = 1.0


@pytest.fixture(autouse=True)
def no_process_left():
    psutil = pytest.importorskip("psutil")
    from deploy.procs import live_processes

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    assert live_processes() == []
    deadline = time.monotonic() + 5.0
    while True:
        left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before
                and p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert left == []


def _probe_cold_start(gw, invoke_url: str, body: bytes) -> float:
    """The gateway's own figure of one cold start, process start -> response (emulator start +
    Init Duration + Duration, ms; the split between the last two depends on when the emulator
    logs INIT RTDONE), from an invocation with LogType=Tail once the last environment has been
    reclaimed."""
    from calibrate.targets import HttpClient
    from deploy.lambda_report import parse_log_result

    deadline = time.monotonic() + 10
    while gw.status()["environments"] and time.monotonic() < deadline:
        time.sleep(0.02)
    client = HttpClient(invoke_url)
    try:
        _, _, status, headers, _, failure = client.post(body, {"X-Amz-Log-Type": "Tail"})
    finally:
        client.close()
    assert failure is None and status == 200
    report = parse_log_result(headers["X-Amz-Log-Result"])
    return (float(report["servesim_emulator_start"].removesuffix(" ms")) + (report["init_duration_ms"] or 0.0)
            + report["duration_ms"])


def test_cold_starts_after_scale_to_zero_are_detected_and_idle_below_keep_alive_is_not(rie, tiny_model, tmp_path):
    from calibrate.campaign import run_campaign
    from calibrate.profiles import fit_measurements
    from calibrate.targets import request_bodies
    from deploy.local_lambda import LocalLambda
    from deploy.models import resolve_model

    host = {"usable_cpus": 2, "scaling_ratio": 2.0, "noise_cv": 0.01, "loadavg": [0, 0, 0],
            "cgroup_available": False, "quota_holds": None}  # the host check is test_campaign's
    sizes = dict(n_cold=3, n_warm=40, warm_gap_s=0.02, load_levels=[1], level_s=0.5, quick=True, progress=False,
                 host=host, echo=lambda s: None)
    body = request_bodies(resolve_model(tiny_model), 0, n=1)[0]  # the Invoke event is the request itself
    with LocalLambda(tiny_model, keep_alive_s=KEEP_ALIVE_S, rie=rie) as gw:
        url = f"{gw.url}/2015-03-31/functions/{gw.function_name}/invocations"
        starts0 = gw.status()["counters"]["cold_starts"]
        scaled = run_campaign(HttpTarget(url, model=tiny_model, idle_s=KEEP_ALIVE_S + 1.0, label="to-zero"),
                              tmp_path / "a", **sizes)
        starts1 = gw.status()["counters"]["cold_starts"]
        kept = run_campaign(HttpTarget(url, model=tiny_model, idle_s=KEEP_ALIVE_S / 3, label="kept"),
                            tmp_path / "b", **sizes)
        starts2 = gw.status()["counters"]["cold_starts"]
        gateway_ms = _probe_cold_start(gw, url, body)

    a, b = pd.read_parquet(tmp_path / "a"), pd.read_parquet(tmp_path / "b")
    assert (a.status == "ok").all() and (b.status == "ok").all()
    cold_a, cold_b = a[a.phase == "cold"], b[b.phase == "cold"]
    # Idle above the keep-alive: every request after it was a new environment, and was called cold.
    assert starts1 - starts0 == 1 + 3  # the first warm-up request, then the cold phase
    assert len(cold_a) == 3 and cold_a.init_ms.notna().all()
    assert scaled.cold["label=to-zero,url=" + url]["cold_detected"] == 3
    # Below it: the environment stayed; nothing was called cold (at most the first warm-up started one).
    assert starts2 - starts1 <= 1
    assert len(cold_b) == 3 and cold_b.init_ms.isna().all()
    assert kept.cold["label=kept,url=" + url]["cold_detected"] == 0
    # The extra latency is the gateway's own cold start (process start -> response), give or take.
    extra = float(cold_a.init_ms.median())
    print(f"cold starts detected 3/3, extra latency p50 {extra:.1f} ms "
          f"(each {', '.join(f'{x:.1f}' for x in cold_a.init_ms)} ms); gateway process start -> response "
          f"{gateway_ms:.1f} ms; warm p50 {a[a.phase == 'warm'].client_ms.median():.2f} ms")
    assert 0.5 * gateway_ms < extra < 2.0 * gateway_ms + 50  # cold starts vary (170-380 ms in one run here)

    prof = fit_measurements([tmp_path / "a", tmp_path / "b"], tmp_path / "p.json")
    loaded = load_profile(tmp_path / "p.json")
    to_zero, kept_entry = loaded.http_entry("to-zero"), loaded.http_entry("kept")
    assert to_zero.url == url and to_zero.start_s is not None
    assert to_zero.start_s.sample(np.random.default_rng(0), 1000).mean() == pytest.approx(extra / 1000, rel=0.5)
    assert kept_entry.start_s is None and "kept an instance" in kept_entry.fit["start_s"]["reason"]
    assert [e["label"] for e in prof["http"]] == ["kept", "to-zero"]


def test_a_resumed_campaign_takes_the_warm_reference_from_the_table(tiny_model, tmp_path):
    """Warm and load measured first without --idle-s; resumed with it, only the cold phase runs,
    against the warm rows already in the table. A server that never scales to zero: not cold."""
    pytest.importorskip("gunicorn")
    from calibrate.campaign import run_campaign
    from deploy.local_server import LocalServer

    host = {"usable_cpus": 2, "scaling_ratio": 2.0, "noise_cv": 0.01, "loadavg": [0, 0, 0],
            "cgroup_available": False, "quota_holds": None}
    sizes = dict(n_cold=2, n_warm=30, warm_gap_s=0.01, load_levels=[1], level_s=0.3, quick=True, progress=False,
                 host=host, echo=lambda s: None)
    out = tmp_path / "t"
    with LocalServer(tiny_model, workers=1) as server:
        url = server.url + "/predict"
        first = run_campaign(HttpTarget(url, model=tiny_model, label="srv"), out, **sizes)
        assert first.cold == {}
        again = run_campaign(HttpTarget(url, model=tiny_model, label="srv", idle_s=0.3), out, resume=True, **sizes)
    key = f"label=srv,url={url}"
    assert again.units_measured == [f"{key}|cold|"] and again.cold[key]["cold_detected"] == 0
    assert again.cold[key]["warm_n"] == 30 and again.cold[key]["idle_s"] == 0.3
    df = pd.read_parquet(out)
    cold = df[df.phase == "cold"]
    assert len(cold) == 2 and (cold.status == "ok").all() and cold.init_ms.isna().all()
    assert (cold.send_s > df[df.phase == "load"].send_s.max() + 0.3).all()
