"""Calibration profiles: a good profile loads into typed entries; mistakes name the file and key."""
from __future__ import annotations

import copy
import json

import pytest

from sim.dists import Constant, Exponential, ScipyDist
from sim.errors import ConfigError
from sim.profile import SCHEMA, LambdaEntry, ServerEntry, load_profile

SHA = "ab" * 32

GOOD = {
    "schema": SCHEMA,
    "model": {"name": "mobilenetv2", "sha256": SHA},
    "measured": {"target": "local-lambda", "host": "box", "at": "2026-11-22T10:00:00Z",
                 "versions": {"onnxruntime": "1.20"}, "table_sha256": SHA},
    "lambda": [
        {"memory_mb": 1024, "architecture": "x86_64",
         "warm_ms": {"dist": "lognorm", "s": 0.3, "scale": 40.0,
                     "fit": {"n": 400, "ks": 0.03, "aic": 2710.5, "family_beaten": ["gamma"]}},
         "cold_init_ms": {"dist": "constant", "value": 800}, "max_memory_mb": 180},
        {"memory_mb": 2048, "architecture": "arm64",
         "warm_ms": {"dist": "expon", "mean": 20}, "cold_init_ms": 700},
    ],
    "server": [
        {"instance_type": "c6i.large", "workers": 2, "service_ms": {"dist": "expon", "mean": 8},
         "boot_s": {"dist": "constant", "value": 75},
         "throughput": [{"concurrency": 1, "rps": 120.0, "p50_ms": 8.0, "p99_ms": 12.0},
                        {"concurrency": 4, "rps": 240.0, "p50_ms": 15.0, "p99_ms": 30.0}]},
    ],
}


def write(tmp_path, data, name="prof.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_good_profile_loads_with_lookups_and_fit_metadata(tmp_path):
    prof = load_profile(write(tmp_path, GOOD))
    assert prof.model.name == "mobilenetv2" and prof.measured.target == "local-lambda"
    entry = prof.lambda_entry(1024, "x86_64")
    assert isinstance(entry, LambdaEntry)
    assert entry.warm_ms == ScipyDist("lognorm", {"s": 0.3, "scale": 40.0})
    assert entry.fit["warm_ms"]["ks"] == 0.03 and "cold_init_ms" not in entry.fit
    assert entry.max_memory_mb == 180.0
    assert prof.lambda_entry(2048, "arm64").cold_init_ms == Constant(700)
    assert prof.lambda_entry(2048, "x86_64") is None
    server = prof.server_entry("c6i.large", 2)
    assert isinstance(server, ServerEntry) and server.service_ms == Exponential(8)
    assert server.boot_s == Constant(75) and [p.concurrency for p in server.throughput] == [1, 4]
    assert prof.server_entry("c6i.large", 4) is None
    assert "server c6i.large with 2 workers" in prof.describe_entries()


def test_minimal_profile(tmp_path):
    data = {"schema": SCHEMA, "model": {"name": "m"}, "measured": {"target": "http"},
            "server": [{"instance_type": "x", "workers": 1, "service_ms": 5}]}
    prof = load_profile(write(tmp_path, data))
    assert prof.lambdas == () and prof.server_entry("x", 1).boot_s is None


def mutate(path: str, value):
    data = copy.deepcopy(GOOD)
    *parents, last = path
    node = data
    for p in parents:
        node = node[p]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return data


@pytest.mark.parametrize("change,key,expected", [
    ((("lambda", 0, "warm_ms", "s"), "wide"), "lambda[0].warm_ms.s", "a number"),
    ((("lambda", 0, "warm_ms", "dist"), "nosuchfamily"), "lambda[0].warm_ms", "not a continuous distribution"),
    ((("lambda", 0, "warm_ms", "fit"), 3), "lambda[0].warm_ms.fit", "goodness-of-fit"),
    ((("lambda", 0, "memory"), 1024), "lambda[0].memory", "did you mean 'memory_mb'"),
    ((("lambda", 0, "architecture"), "sparc"), "lambda[0].architecture", "x86_64, arm64"),
    ((("lambda", 1, "memory_mb"), 1024.5), "lambda[1].memory_mb", "an integer"),
    ((("server", 0, "workers"), 0), "server[0].workers", "an integer >= 1"),
    ((("server", 0, "throughput", 1, "concurrency"), 1), "server[0].throughput[1].concurrency", "increasing"),
    ((("server", 0, "throughput", 0, "p99_ms"), 1.0), "server[0].throughput[0].p99_ms", ">= p50_ms"),
    ((("server", 0, "service_ms"), KeyError), "server[0].service_ms", "required"),
    ((("schema",), "servesim.profile/2"), "schema", "servesim.profile/1"),
    ((("model", "sha256"), "xyz"), "model.sha256", "64 lowercase hex"),
    ((("measured", "at"), "yesterday"), "measured.at", "ISO 8601"),
    ((("measured", "target"), KeyError), "measured.target", "required"),
])
def test_bad_profiles_name_file_key_and_expectation(tmp_path, change, key, expected):
    path = write(tmp_path, mutate(*change), "bad-prof.json")
    with pytest.raises(ConfigError) as err:
        load_profile(path)
    msg = str(err.value)
    assert "bad-prof.json" in msg and f": {key}:" in msg and expected in msg


def test_one_entry_per_configuration(tmp_path):
    data = mutate(("lambda", 1, "memory_mb"), 1024)  # same memory, other architecture: fine
    assert load_profile(write(tmp_path, data)).lambda_entry(1024, "arm64") is not None
    data["lambda"][1]["architecture"] = "x86_64"
    with pytest.raises(ConfigError, match=r"prof.json: lambda\[1\]: expected one entry per memory_mb.*lambda\[0\]"):
        load_profile(write(tmp_path, data))
    data = copy.deepcopy(GOOD)
    data["server"].append(copy.deepcopy(data["server"][0]))
    with pytest.raises(ConfigError, match=r"server\[1\]: expected one entry per instance_type"):
        load_profile(write(tmp_path, data))


@pytest.mark.parametrize("text,expected", [
    ('{"schema": ', "line 1"),
    ('{"schema": "a", "schema": "b"}', "repeated keys"),
    ("[]", "a JSON object"),
])
def test_unreadable_profiles(tmp_path, text, expected):
    with pytest.raises(ConfigError, match=expected):
        load_profile(write(tmp_path, text))


def test_missing_profile_file(tmp_path):
    with pytest.raises(ConfigError, match="nope.json.*existing profile"):
        load_profile(tmp_path / "nope.json")


def test_empty_profile_needs_an_entry(tmp_path):
    data = {"schema": SCHEMA, "model": {"name": "m"}, "measured": {"target": "http"}}
    with pytest.raises(ConfigError, match="at least one measured configuration"):
        load_profile(write(tmp_path, data))
