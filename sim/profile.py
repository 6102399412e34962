"""Calibration profiles: what was measured for one model, as distributions the simulator samples.

A profile is a JSON file written by ``calibrate`` (or by hand) and read here, validated, into
frozen dataclasses. Reading one has no side effects. Format, ``schema: servesim.profile/1``::

    {"schema": "servesim.profile/1",
     "model": {"name": "mobilenetv2", "sha256": "<64 hex digits of the ONNX file>"},
     "measured": {"target": "local-lambda", "host": "...", "at": "2026-11-22T10:00:00Z",
                  "versions": {"onnxruntime": "1.20"}, "table_sha256": "<hex>"},
     "lambda": [{"memory_mb": 1024, "architecture": "x86_64",
                 "warm_ms": <dist spec>, "cold_init_ms": <dist spec>, "max_memory_mb": 180,
                 "idle_effect": {"hot_ratio": 0.65, "tau_ms": 12.0},
                 "host_share": {"cores": 1.7, "init_cores": 1, "work_cores": 1}}],
     "server": [{"instance_type": "c6i.large", "workers": 2,
                 "service_ms": <dist spec>, "boot_s": <dist spec, optional>,
                 "idle_effect": {"hot_ratio": 0.62, "tau_ms": 14.0},
                 "throughput": [{"concurrency": 1, "rps": 150.0, "p50_ms": 6.5, "p99_ms": 9.1}]}],
     "http": [{"label": "resnet", "url": "http://127.0.0.1:8080/function/resnet",
               "service_ms": <dist spec>, "start_s": <dist spec, or null: no cold start seen>,
               "counts": {"warm": {"ok": 500, ...}, "cold": {"ok": 20, ..., "cold_starts": 20}},
               "cold_detection": {"idle_s": 120, "threshold_ms": 48.0, "reason": "...", ...}}]}

Required: ``schema``, ``model.name``, ``measured.target``, and at least one entry in ``lambda``,
``server`` or ``http``. Optional: ``model.sha256`` (64 hex digits), ``measured.host``, ``measured.at``
(ISO 8601), ``measured.versions`` (name → version string), ``measured.table_sha256`` (64 hex
digits, the measurement table's Parquet file), ``max_memory_mb``, ``boot_s``, ``throughput``
(points in increasing concurrency), ``idle_effect`` (`sim.config.IdleEffect`: how the warm or
service time depends on the idle time before a request; ``warm_ms`` / ``service_ms`` are then
the times of a request reaching a rested unit; it may carry a ``fit`` key like a dist spec),
``host_share`` (`sim.config.HostShare`, Lambda and server entries: how concurrent work shared
the CPUs of the host it was measured on, fitted from bursts of simultaneous requests;
``{cores, init_cores, work_cores, work_contention, way_in_ms, way_in_pressure, init_idle_s,
init_idle_factor, fit}``, init_cores and work_cores default 1, work_contention 0 (the stretch
each other job in progress adds to an invocation), way_in_ms 0 and way_in_pressure 1 (Lambda:
the gateway's work for a request before its environment runs it, and how hard it presses on
running invocations); init_idle_s and init_idle_factor, both or neither, make the host cold
after init_idle_s seconds without an INIT, a lone INIT that finds it so taking
init_idle_factor (>= 1) times as long, its extra a page-in that the INITs starting during it
wait for too (Lambda; none when absent); or ``{cores: null, fit: {reason: ...}}``, no other
key, when the calibration measured bursts but identified no sharing: the entry's `host` is then
None and the reason stays in its ``fit``).

A dist spec is the one of `sim.dists` (``{"dist": "lognorm", "s": 0.4, "scale": 95}``); units
are in the key (``warm_ms`` in ms, ``boot_s`` in seconds). Inside a profile it may carry a
``fit`` key with its goodness of fit (``{"n": 400, "ks": 0.03, "aic": 2710.5, "family_beaten":
["gamma", "weibull_min"]}``): kept as metadata in the entry's ``fit`` (dist key → that mapping),
not part of the distribution. An empirical ``file`` resolves relative to the profile's folder.

An ``http`` entry is an endpoint measured as a black box (an OpenFaaS or Knative function,
``servesim calibrate http``): ``service_ms`` is the client-side latency of warm requests (ms),
``start_s`` the extra latency of a cold start after scale to zero (s), null when none was
detected (``cold_detection.reason`` says why). ``label`` names it for scenarios
(``profile_entry: <label>``); ``url`` says what was measured. ``counts`` and ``cold_detection``
are free-form metadata, kept in the entry's ``fit`` under those keys.

Each (memory_mb, architecture), each (instance_type, workers) and each http ``label`` appears
at most once, so `Profile.lambda_entry`, `Profile.server_entry` and `Profile.http_entry` are
unambiguous.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from .config import ARCHITECTURES, HostShare, IdleEffect

from .dists import Distribution, parse_dist
from .errors import ConfigError, check_keys, read_user_file

__all__ = ["SCHEMA", "Profile", "ModelInfo", "Measurement", "LambdaEntry", "ServerEntry", "HttpEntry",
           "ThroughputPoint", "load_profile", "profile_from_dict", "parse_idle_effect", "parse_host_share"]

SCHEMA = "servesim.profile/1"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ModelInfo:
    """The model measured: its name and the sha256 of its ONNX file (None if not recorded)."""

    name: str
    sha256: str | None = None


@dataclass(frozen=True)
class Measurement:
    """Where and when: target (local-lambda, aws-lambda, local-server, ...), host, ISO time,
    library versions, and the sha256 of the measurement table the fits came from."""

    target: str
    host: str | None = None
    at: str | None = None
    versions: Mapping[str, str] = field(default_factory=dict)
    table_sha256: str | None = None


@dataclass(frozen=True)
class LambdaEntry:
    """One measured Lambda configuration. warm_ms, cold_init_ms in ms; max_memory_mb in MB."""

    memory_mb: int
    architecture: str
    warm_ms: Distribution
    cold_init_ms: Distribution
    max_memory_mb: float | None = None
    fit: Mapping[str, Mapping] = field(default_factory=dict)
    """Goodness of fit per distribution key (``{"warm_ms": {"n": .., "ks": .., ...}}``)."""
    idle: IdleEffect | None = None
    host: HostShare | None = None
    """How the environments shared the host's CPUs where this was measured (None: not measured
    or not identified; the fit's figures and reason are in ``fit["host_share"]``)."""


@dataclass(frozen=True)
class LambdaScaling:
    """How warm duration scales with Lambda memory, fitted across the measured sizes:
    t(m) = a_ms + b_ms / share(m), share(m) = min(m * share_per_mb, max_share) vCPU."""

    a_ms: float
    b_ms: float
    measured_mb: tuple[int, int]
    share_per_mb: float = 1.0 / 1769.0
    max_share: float = 6.0
    points: tuple[tuple[int, float], ...] = ()
    """Measured (memory_mb, median warm ms): inside the measured range the duration is
    interpolated between them, linearly in 1/share; the a + b/share model only extrapolates."""

    def duration_ms(self, memory_mb: float) -> float:
        if len(self.points) >= 2 and self.within(memory_mb):
            inv = [1.0 / (m * self.share_per_mb) for m, _ in self.points]  # decreasing in memory
            return float(np.interp(1.0 / (memory_mb * self.share_per_mb), inv[::-1], [t for _, t in self.points][::-1]))
        return self.a_ms + self.b_ms / min(memory_mb * self.share_per_mb, self.max_share)

    def factor(self, from_mb: int, to_mb: int) -> float:
        """t(to) / t(from): how much longer a warm invocation takes at `to_mb` than at `from_mb`."""
        return self.duration_ms(to_mb) / self.duration_ms(from_mb)

    def within(self, memory_mb: int) -> bool:
        return self.measured_mb[0] <= memory_mb <= self.measured_mb[1]


@dataclass(frozen=True)
class ThroughputPoint:
    """Closed-loop load at `concurrency` clients: throughput (req/s) and latency percentiles (ms)."""

    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class ServerEntry:
    """One measured server configuration: `workers` processes on `instance_type`.

    service_ms: one worker's time per request (ms); boot_s: launch to serving (s), if measured.
    """

    instance_type: str
    workers: int
    service_ms: Distribution
    boot_s: Distribution | None = None
    throughput: tuple[ThroughputPoint, ...] = ()
    fit: Mapping[str, Mapping] = field(default_factory=dict)
    idle: IdleEffect | None = None
    host: HostShare | None = None
    """How the workers shared the host's CPUs where this was measured (None: not measured or not identified)."""


@dataclass(frozen=True)
class HttpEntry:
    """One endpoint measured as a black box (``servesim calibrate http``).

    service_ms: client-side latency of a warm request (ms); start_s: what a cold start after
    scale to zero adds to a request's latency (s), None when the calibration saw no cold start;
    fit: goodness of fit per distribution key (``service_ms``, ``start_s``; for a missing
    ``start_s``, ``{"reason": ...}``), plus ``counts`` and ``cold_detection`` as measured."""

    label: str
    url: str
    service_ms: Distribution
    start_s: Distribution | None
    fit: Mapping[str, Mapping] = field(default_factory=dict)


@dataclass(frozen=True)
class Profile:
    """A validated calibration profile."""

    path: Path | None
    model: ModelInfo
    measured: Measurement
    lambdas: tuple[LambdaEntry, ...] = ()
    servers: tuple[ServerEntry, ...] = ()
    lambda_scaling: Mapping[str, LambdaScaling] = field(default_factory=dict)
    """Memory scaling of warm durations per architecture (fitted when several sizes were measured)."""
    http_entries: tuple[HttpEntry, ...] = ()

    def nearest_lambda_entry(self, memory_mb: int, architecture: str) -> LambdaEntry | None:
        """The measured entry of this architecture closest in memory (for interpolation), or None."""
        same = [e for e in self.lambdas if e.architecture == architecture]
        return min(same, key=lambda e: (abs(e.memory_mb - memory_mb), e.memory_mb)) if same else None

    def lambda_entry(self, memory_mb: int, architecture: str) -> LambdaEntry | None:
        """The entry measured at this memory size and architecture, or None."""
        for entry in self.lambdas:
            if entry.memory_mb == memory_mb and entry.architecture == architecture:
                return entry
        return None

    def server_entry(self, instance_type: str, workers: int) -> ServerEntry | None:
        """The entry measured on this instance type with this many workers, or None."""
        for entry in self.servers:
            if entry.instance_type == instance_type and entry.workers == workers:
                return entry
        return None

    def http_entry(self, label: str) -> HttpEntry | None:
        """The black-box endpoint measured under this label, or None."""
        for entry in self.http_entries:
            if entry.label == label:
                return entry
        return None

    def describe_entries(self) -> str:
        """The measured configurations, for error messages."""
        parts = [f"lambda {e.memory_mb} MB {e.architecture}" for e in self.lambdas]
        parts += [f"server {e.instance_type} with {e.workers} workers" for e in self.servers]
        parts += [f"http {e.label} ({e.url})" for e in self.http_entries]
        return "; ".join(parts) if parts else "no entries"


# -- reading ---------------------------------------------------------------------------------------

class _Reader:
    """Typed access to one JSON object, errors naming the file and the key path."""

    def __init__(self, data: Any, source: str | None, key: str, allowed: Iterable[str]):
        if not isinstance(data, Mapping):
            raise ConfigError(source, key or "(top level)", "a JSON object", data)
        check_keys(data, allowed, source=source, key=key)
        self.data, self.source, self.key = data, source, key

    def path(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def has(self, name: str) -> bool:
        return self.data.get(name) is not None

    def get(self, name: str, required: bool) -> Any:
        if name not in self.data or self.data[name] is None:
            if required:
                raise ConfigError(self.source, self.path(name), "a value (this key is required)")
            return None
        return self.data[name]

    def text(self, name: str, required: bool = True) -> str | None:
        v = self.get(name, required)
        if v is not None and (not isinstance(v, str) or not v):
            raise ConfigError(self.source, self.path(name), "a non-empty string", v)
        return v

    def sha256(self, name: str) -> str | None:
        v = self.text(name, required=False)
        if v is not None and not _HEX64.match(v):
            raise ConfigError(self.source, self.path(name), "a sha256 digest (64 lowercase hex digits)", v)
        return v

    def integer(self, name: str, lo: int) -> int:
        v = self.get(name, True)
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ConfigError(self.source, self.path(name), f"an integer >= {lo}", v)
        return v

    def number(self, name: str, lo: float = 0.0, required: bool = True) -> float | None:
        v = self.get(name, required)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < lo:
            raise ConfigError(self.source, self.path(name), f"a number >= {lo:g}", v)
        return float(v)

    def dist(self, name: str, base_dir: Path | None, fits: dict, required: bool = True) -> Distribution | None:
        spec = self.get(name, required)
        if spec is None:
            return None
        if isinstance(spec, Mapping) and "fit" in spec:
            fit = spec["fit"]
            if not isinstance(fit, Mapping):
                raise ConfigError(self.source, f"{self.path(name)}.fit",
                                  "a mapping of goodness-of-fit figures (n, ks, aic, family_beaten)", fit)
            fits[name] = dict(fit)
            spec = {k: v for k, v in spec.items() if k != "fit"}
        return parse_dist(spec, source=self.source, key=self.path(name), base_dir=base_dir)

    def idle(self, fits: dict) -> IdleEffect | None:
        """The optional ``idle_effect`` key (its ``fit`` metadata goes to ``fits["idle_effect"]``)."""
        if not self.has("idle_effect"):
            return None
        effect, fit = parse_idle_effect(self.data["idle_effect"], self.source, self.path("idle_effect"))
        if fit is not None:
            fits["idle_effect"] = fit
        return effect

    def host(self, fits: dict) -> HostShare | None:
        """The optional ``host_share`` key (its ``fit`` metadata goes to ``fits["host_share"]``)."""
        if not self.has("host_share"):
            return None
        share, fit = parse_host_share(self.data["host_share"], self.source, self.path("host_share"))
        if fit is not None:
            fits["host_share"] = fit
        return share


def parse_host_share(data: Any, source: str | None, key: str, *, allow_null: bool = True,
                     allow_fit: bool = True) -> tuple[HostShare | None, dict | None]:
    """``{cores: 1.7, init_cores: 1, work_cores: 1, work_contention: 0.25, init_idle_s: 30,
    init_idle_factor: 1.3, fit: {...}}`` -> (HostShare, fit or None); init_cores and work_cores
    default to 1, work_contention and way_in_ms to 0, way_in_pressure to 1, init_idle_s and
    init_idle_factor are both given or neither (no cold host). With `allow_null`, ``cores: null``
    (measured, not identified) gives (None, fit). ConfigError naming `source` and `key` otherwise."""
    allowed = ("cores", "init_cores", "work_cores", "work_contention", "way_in_ms", "way_in_pressure", "init_idle_s",
               "init_idle_factor") + (("fit",) if allow_fit else ())
    if not isinstance(data, Mapping):
        raise ConfigError(source, key, "a mapping such as {cores: 1.7, init_cores: 1, work_cores: 1}", data)
    check_keys(data, allowed, source=source, key=key)
    fit = data.get("fit")
    if fit is not None and not isinstance(fit, Mapping):
        raise ConfigError(source, f"{key}.fit", "a mapping of fit figures", fit)
    fit = dict(fit) if fit is not None else None
    if "cores" not in data:
        raise ConfigError(source, f"{key}.cores", "a value (this key is required)")
    if data["cores"] is None and allow_null:
        extra = [k for k in ("init_cores", "work_cores", "work_contention", "way_in_ms", "way_in_pressure")
                 if data.get(k) is not None]
        extra += [k for k in ("init_idle_s", "init_idle_factor") if k in data]
        if extra:
            raise ConfigError(source, f"{key}.{extra[0]}", "no value when cores is null (no host share identified)",
                              data[extra[0]])
        return None, fit
    idle = [k for k in ("init_idle_s", "init_idle_factor") if k in data]
    if len(idle) == 1:
        other = "init_idle_factor" if idle[0] == "init_idle_s" else "init_idle_s"
        raise ConfigError(source, f"{key}.{other}", f"a value: init_idle_s and init_idle_factor go together "
                          f"(a cold host), or neither is given (only {idle[0]} is)")
    wanted = {"cores": "the host's capacity in cores, a number > 0",
              "init_cores": "the cores one job uses when alone, a number > 0",
              "work_cores": "the cores one job uses when alone, a number > 0",
              "work_contention": "the stretch each other job in progress adds to an invocation, a number >= 0 "
                                 "(0: none)",
              "way_in_ms": "the gateway's work for a request before its environment runs it, ms >= 0 (0: none)",
              "way_in_pressure": "how hard a way in presses on running invocations against an ordinary job, a "
                                 "number >= 0",
              "init_idle_s": "the seconds without an INIT after which the host is cold, a number > 0",
              "init_idle_factor": "how many times longer a lone INIT takes on a cold host, a number >= 1"}
    values = {}
    zero_ok = ("work_contention", "way_in_ms", "way_in_pressure")  # 0 is allowed (none); the others must be > 0
    for name in ("cores", "init_cores", "work_cores", *zero_ok, *idle):
        v = data.get(name, 0.0 if name in ("work_contention", "way_in_ms") else 1.0)
        low_ok = name in zero_ok
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 < v or (low_ok and v == 0)) \
                or not v < math.inf or (name == "init_idle_factor" and v < 1):
            raise ConfigError(source, f"{key}.{name}", wanted[name], v)
        values[name] = float(v)
    return HostShare(**values), fit


def parse_idle_effect(data: Any, source: str | None, key: str) -> tuple[IdleEffect, dict | None]:
    """``{hot_ratio: 0.65, tau_ms: 12, fit: {...}}`` (fit optional) -> (IdleEffect, fit or None)."""
    r = _Reader(data, source, key, ("hot_ratio", "tau_ms", "fit"))
    hot = r.number("hot_ratio")
    if not 0 < hot <= 10:
        raise ConfigError(source, r.path("hot_ratio"), "a ratio in (0, 10]: the service time of a request reaching a "
                          "unit that just finished one, over that of one reaching a rested unit", hot)
    tau = r.number("tau_ms")
    if not tau > 0:
        raise ConfigError(source, r.path("tau_ms"), "a time constant > 0 (ms)", tau)
    fit = r.get("fit", False)
    if fit is not None and not isinstance(fit, Mapping):
        raise ConfigError(source, r.path("fit"), "a mapping of fit figures", fit)
    return IdleEffect(hot_ratio=hot, tau_ms=tau), (dict(fit) if fit is not None else None)


def _items(data: Any, source: str | None, key: str) -> list:
    if data is None:
        return []
    if not isinstance(data, list):
        raise ConfigError(source, key, "a list of entries", data)
    return data


def _lambda_entry(data: Any, source: str | None, key: str, base_dir: Path | None) -> LambdaEntry:
    r = _Reader(data, source, key, ("memory_mb", "architecture", "warm_ms", "cold_init_ms", "max_memory_mb",
                                    "idle_effect", "host_share"))
    arch = r.get("architecture", True)
    if arch not in ARCHITECTURES:
        raise ConfigError(source, r.path("architecture"), f"one of {', '.join(ARCHITECTURES)}", arch)
    fits: dict = {}
    return LambdaEntry(memory_mb=r.integer("memory_mb", 128), architecture=arch,
                       warm_ms=r.dist("warm_ms", base_dir, fits), cold_init_ms=r.dist("cold_init_ms", base_dir, fits),
                       max_memory_mb=r.number("max_memory_mb", required=False), idle=r.idle(fits),
                       host=r.host(fits), fit=fits)


def _throughput(data: Any, source: str | None, key: str) -> tuple[ThroughputPoint, ...]:
    points = []
    for i, item in enumerate(_items(data, source, key)):
        r = _Reader(item, source, f"{key}[{i}]", ("concurrency", "rps", "p50_ms", "p99_ms"))
        p = ThroughputPoint(r.integer("concurrency", 1), r.number("rps"), r.number("p50_ms"), r.number("p99_ms"))
        if p.p99_ms < p.p50_ms:
            raise ConfigError(source, r.path("p99_ms"), f"a value >= p50_ms ({p.p50_ms:g})", p.p99_ms)
        if points and p.concurrency <= points[-1].concurrency:
            raise ConfigError(source, r.path("concurrency"),
                              f"points in increasing concurrency (the one before is {points[-1].concurrency})",
                              p.concurrency)
        points.append(p)
    return tuple(points)


def _server_entry(data: Any, source: str | None, key: str, base_dir: Path | None) -> ServerEntry:
    r = _Reader(data, source, key, ("instance_type", "workers", "service_ms", "boot_s", "throughput", "idle_effect",
                                    "host_share"))
    fits: dict = {}
    return ServerEntry(instance_type=r.text("instance_type"), workers=r.integer("workers", 1),
                       service_ms=r.dist("service_ms", base_dir, fits),
                       boot_s=r.dist("boot_s", base_dir, fits, required=False),
                       throughput=_throughput(r.data.get("throughput"), source, r.path("throughput")),
                       idle=r.idle(fits), host=r.host(fits), fit=fits)


_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _http_entry(data: Any, source: str | None, key: str, base_dir: Path | None) -> HttpEntry:
    r = _Reader(data, source, key, ("label", "url", "service_ms", "start_s", "counts", "cold_detection"))
    label = r.text("label")
    if not _LABEL.match(label):
        raise ConfigError(source, r.path("label"), "1-64 letters, digits, '.', '_' or '-', starting with a letter "
                          "or digit", label)
    url = r.text("url")
    if not re.match(r"^https?://[^/\s]+", url):
        raise ConfigError(source, r.path("url"), "an http(s) URL", url)
    fits: dict = {}
    service = r.dist("service_ms", base_dir, fits)
    start = r.dist("start_s", base_dir, fits, required=False)
    for name in ("counts", "cold_detection"):
        v = r.get(name, False)
        if v is not None and not isinstance(v, Mapping):
            raise ConfigError(source, r.path(name), "a mapping", v)
        if v is not None:
            fits[name] = dict(v)
    if start is None and isinstance(fits.get("cold_detection"), Mapping) and "reason" in fits["cold_detection"]:
        fits.setdefault("start_s", {"reason": fits["cold_detection"]["reason"]})
    return HttpEntry(label=label, url=url, service_ms=service, start_s=start, fit=fits)


def profile_from_dict(data: Any, *, source: str | None = "<profile>", path: Path | None = None,
                      base_dir: Path | None = None) -> Profile:
    """Validate a parsed profile; errors name `source` and the key path (``lambda[0].warm_ms.s``)."""
    top = _Reader(data, source, "", ("schema", "model", "measured", "lambda", "server", "http", "lambda_scaling"))
    schema = top.get("schema", True)
    if schema != SCHEMA:
        raise ConfigError(source, "schema", f"'{SCHEMA}' (a servesim calibration profile)", schema)
    m = _Reader(top.get("model", True), source, "model", ("name", "sha256"))
    model = ModelInfo(name=m.text("name"), sha256=m.sha256("sha256"))
    w = _Reader(top.get("measured", True), source, "measured", ("target", "host", "at", "versions", "table_sha256"))
    at = w.text("at", required=False)
    if at is not None:
        try:
            datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(source, "measured.at", "an ISO 8601 time such as 2026-11-22T10:00:00Z", at) from None
    versions = w.get("versions", False) or {}
    if not isinstance(versions, Mapping) or not all(isinstance(v, str) for v in versions.values()):
        raise ConfigError(source, "measured.versions", 'a mapping of names to version strings ({"onnxruntime": "1.20"})',
                          versions)
    measured = Measurement(target=w.text("target"), host=w.text("host", required=False), at=at,
                           versions=dict(versions), table_sha256=w.sha256("table_sha256"))

    lambdas = tuple(_lambda_entry(item, source, f"lambda[{i}]", base_dir)
                    for i, item in enumerate(_items(top.data.get("lambda"), source, "lambda")))
    servers = tuple(_server_entry(item, source, f"server[{i}]", base_dir)
                    for i, item in enumerate(_items(top.data.get("server"), source, "server")))
    https = tuple(_http_entry(item, source, f"http[{i}]", base_dir)
                  for i, item in enumerate(_items(top.data.get("http"), source, "http")))
    if not lambdas and not servers and not https:
        raise ConfigError(source, "lambda", "at least one measured configuration in 'lambda', 'server' or 'http'")
    seen: dict = {}
    for i, e in enumerate(lambdas):
        if seen.setdefault((e.memory_mb, e.architecture), i) != i:
            raise ConfigError(source, f"lambda[{i}]", f"one entry per memory_mb and architecture "
                              f"(lambda[{seen[(e.memory_mb, e.architecture)]}] has the same)")
    seen = {}
    for i, e in enumerate(servers):
        if seen.setdefault((e.instance_type, e.workers), i) != i:
            raise ConfigError(source, f"server[{i}]", f"one entry per instance_type and workers "
                              f"(server[{seen[(e.instance_type, e.workers)]}] has the same)")
    seen = {}
    for i, e in enumerate(https):
        if seen.setdefault(e.label, i) != i:
            raise ConfigError(source, f"http[{i}].label", f"one entry per label (http[{seen[e.label]}] has the same)",
                              e.label)
    scaling = _lambda_scalings(top.data["lambda_scaling"], source) if "lambda_scaling" in top.data else {}
    return Profile(path=path, model=model, measured=measured, lambdas=lambdas, servers=servers,
                   lambda_scaling=scaling, http_entries=https)


def _lambda_scalings(data: Any, source: str | None) -> dict[str, LambdaScaling]:
    """``lambda_scaling: {<architecture>: {model, a_ms, b_ms, measured_mb, ...}}``."""
    if not isinstance(data, Mapping) or not data:
        raise ConfigError(source, "lambda_scaling", "a mapping of architecture to its memory scaling", data)
    return {arch: _lambda_scaling(v, source, f"lambda_scaling.{arch}") for arch, v in data.items()}


def _lambda_scaling(data: Any, source: str | None, key: str) -> LambdaScaling:
    r = _Reader(data, source, key, ("model", "statistic", "a_ms", "b_ms", "share_per_mb", "share_max_vcpu",
                                     "measured_mb", "points", "residuals", "p99"))
    if r.data.get("model", "a + b/share") != "a + b/share":
        raise ConfigError(source, f"{key}.model", "'a + b/share' (the only scaling model)", r.data.get("model"))

    def number(name: str, default: float | None = None, positive: bool = False) -> float:
        v = r.data.get(name, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or (positive and v <= 0):
            raise ConfigError(source, f"{key}.{name}", "a positive number" if positive else "a number", v)
        return float(v)

    rng = r.data.get("measured_mb")
    if (not isinstance(rng, list) or len(rng) != 2 or not all(isinstance(x, int) and not isinstance(x, bool)
                                                              for x in rng) or rng[0] > rng[1]):
        raise ConfigError(source, f"{key}.measured_mb", "[smallest, largest] measured memory sizes (MB)", rng)
    pts = r.data.get("points", [])
    if (not isinstance(pts, list) or not all(isinstance(p, list) and len(p) == 2 and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 for x in p) for p in pts)
            or [p[0] for p in pts] != sorted({p[0] for p in pts})):
        raise ConfigError(source, f"{key}.points", "[[memory_mb, median_ms], ...] with increasing memory sizes", pts)
    out = LambdaScaling(a_ms=number("a_ms"), b_ms=number("b_ms"), measured_mb=(rng[0], rng[1]),
                        share_per_mb=number("share_per_mb", 1.0 / 1769.0, True),
                        max_share=number("share_max_vcpu", 6.0, True),
                        points=tuple((int(m), float(t)) for m, t in pts))
    if out.duration_ms(rng[0]) <= 0 or out.duration_ms(rng[1]) <= 0:
        raise ConfigError(source, key, "a scaling with positive durations over the measured range", dict(r.data))
    return out


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def load_profile(path: str | Path) -> Profile:
    """Read and validate a profile JSON file. Errors are `ConfigError` naming the file and key."""
    path = Path(path)
    source = str(path)
    text = read_user_file(path, "profile file (JSON)")
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise ConfigError(source, f"line {exc.lineno}", f"valid JSON ({exc.msg})") from None
    except ValueError as exc:  # a duplicate key
        raise ConfigError(source, "", f"valid JSON without repeated keys ({exc})") from None
    return profile_from_dict(data, source=source, path=path, base_dir=path.parent)
