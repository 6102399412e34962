"""`trace:` composition in scenarios, and the `servesim trace gen/show` commands."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cli import main
from sim.errors import ConfigError
from sim.streams import ARRIVALS, child_seed
from traces.spec import parse_trace


def arrivals(spec, seed=1, base_dir=None):
    src = parse_trace(spec, source="s.yaml", base_dir=base_dir)
    return src, src.arrivals(np.random.SeedSequence(seed))


def test_superpose_scale_and_shift_compose_any_kinds():
    spec = {"superpose": [{"kind": "poisson", "rate_rps": 10, "duration": "1h"},
                          {"kind": "ramp", "start_rps": 0, "end_rps": 20, "duration": "1h"}],
            "scale": 2, "shift_s": 60}
    src, t = arrivals(spec)
    expected = 2 * (10 * 3600 + 10 * 3600)  # rates doubled; the ramp's mean is 10 req/s
    assert t.size == pytest.approx(expected, abs=4 * np.sqrt(expected))
    assert t.min() >= 60 and src.duration_s == 3660
    assert np.all(np.diff(t) >= 0)


def test_scale_up_of_a_replayed_trace_is_refused_clearly(tmp_path):
    with pytest.raises(ConfigError, match=r"s\.yaml: trace\.scale: .*cannot be scaled up"):
        parse_trace({"kind": "list", "times": [1, 2, 3], "scale": 2}, source="s.yaml", base_dir=tmp_path)
    src, t = arrivals({"kind": "list", "times": list(range(1000)), "scale": 0.5})
    assert 400 < t.size < 600  # independent thinning keeps each with probability 0.5


@pytest.mark.parametrize("spec,path", [
    ({"superpose": [{"kind": "poisson", "rate_rps": 1, "duration": 10}]}, "trace.superpose"),
    ({"superpose": [{"kind": "poisson", "rate_rps": 1, "duration": 10}, {"kind": "nope"}]}, "trace.superpose[1].kind"),
    ({"kind": "poisson", "rate_rps": 1, "duration": 10, "scale": -1}, "trace.scale"),
    ({"kind": "poisson", "rate_rps": 1, "duration": 10, "shift": 5}, "trace.shift"),
])
def test_composition_errors_name_the_key(spec, path):
    with pytest.raises(ConfigError, match="s\\.yaml: " + re.escape(path)):
        parse_trace(spec, source="s.yaml", base_dir=None)


def test_trace_gen_writes_the_arrivals_a_scenario_with_that_seed_simulates(tmp_path):
    out = tmp_path / "t.parquet"
    r = CliRunner().invoke(main, ["trace", "gen", "poisson", "-p", "rate_rps=20", "--duration", "10m",
                                  "--seed", "7", "--out", str(out)])
    assert r.exit_code == 0, r.output
    t = pd.read_parquet(out)["t_s"].to_numpy()
    src = parse_trace({"kind": "poisson", "rate_rps": 20, "duration": "10m"}, source=None, base_dir=None)
    assert np.array_equal(t, src.arrivals(child_seed(7, ARRIVALS)))
    assert f"wrote {t.size:,} arrivals" in r.output
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_trace_show_reports_rates_and_burstiness(tmp_path):
    out = tmp_path / "bursty.parquet"
    r = CliRunner().invoke(main, ["trace", "gen", "mmpp", "-p", "rates_rps=[2,50]", "-p", "mean_sojourn_s=[300,60]",
                                  "--duration", "2d", "--out", str(out)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["trace", "show", str(out), "--json", "--plot", str(tmp_path / "b.png")])
    assert r.exit_code == 0, r.output
    s = json.loads(r.output)
    n = pd.read_parquet(out).shape[0]
    assert s["requests"] == n
    assert s["mean_rps"] == pytest.approx(n / (2 * 86400), rel=1e-4)
    # Stationary mix: (2*300 + 50*60) / 360 = 10 req/s; MMPP counts are over-dispersed.
    assert s["mean_rps"] == pytest.approx(10.0, rel=0.1)
    assert s["index_of_dispersion"]["60s"] > 5
    assert (tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = CliRunner().invoke(main, ["trace", "show", str(out)])
    assert "index of dispersion, 60 s windows" in r.output and "peak-to-mean" in r.output


def test_trace_show_of_a_scenario_uses_its_trace_and_seed(tmp_path):
    sc = tmp_path / "s.yaml"
    sc.write_text("name: s\nseed: 3\ntrace: {kind: diurnal, mean_rps: 5, peak_to_mean: 3, duration: 3d}\n"
                  "platforms:\n  - {name: l, kind: lambda, service: {warm_ms: 10, cold_init_ms: 100}}\n")
    r = CliRunner().invoke(main, ["trace", "show", str(sc), "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.output)
    src = parse_trace({"kind": "diurnal", "mean_rps": 5, "peak_to_mean": 3, "duration": "3d"}, source=None,
                      base_dir=None)
    assert s["requests"] == src.arrivals(child_seed(3, ARRIVALS)).size
    assert s["peak_to_mean"] == pytest.approx(3.0, rel=0.15)  # the busiest minute: noisy upward


@pytest.mark.parametrize("args,needle", [
    (["trace", "gen", "poisson", "-p", "rate_rps=-1", "--duration", "1h", "--out", "x.parquet"], "trace.rate_rps"),
    (["trace", "gen", "nope", "--duration", "1h", "--out", "x.parquet"], "trace.kind"),
    (["trace", "gen", "poisson", "-p", "rate_rps", "--out", "x.parquet"], "key=value"),
    (["trace", "show", "missing.parquet"], "missing.parquet"),
])
def test_trace_commands_bad_input(tmp_path, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2
    assert needle in r.output + (r.stderr or "")
    assert "Traceback" not in r.output
    assert not list(tmp_path.iterdir())  # nothing written
