"""What a campaign measures: targets, their configurations, and one request's measurement.

A `Target` is one model deployed on one kind of platform. It lists its configurations
(`configs`: Lambda memory sizes, server worker counts) and, for each, offers two things:

- ``cold_starts(config)``: a context manager yielding a function that forces and measures one
  cold start (`Sample` with `init_ms`), starting and stopping whatever that takes;
- ``serving(config)``: a context manager that brings the configuration up and yields an
  `Endpoint`, whose `client()` makes one client (one connection, for one thread) whose
  `call()` sends one request and measures it.

The campaign (`calibrate.campaign`) does the rest the same way for every target: how many cold
starts, the warm-up, the sequential warm requests, the closed-loop load levels and the knee,
and the bursts of k simultaneous requests for the targets that run on this host
(``burst_sizes(config, sizes)``: the sizes it can measure, none by default; with
``cold_bursts``, ``reset_units(endpoint)`` retires every unit so that the next requests each
start a new one), and, for the targets with ``cold_idle``, cold starts after the host has been
left idle (``reset_units``, then nothing for a while, then one request).
Every process a target starts is stopped when its context exits, also on Ctrl-C.

Implementations:

- `LocalServerTarget`: `deploy.local_server.LocalServer` (gunicorn + the Flask app), one
  configuration per worker count, optionally held to `cpus` vCPUs. A cold start is a fresh
  server: `init_ms` is its process start -> every worker has loaded the model (``ready_s``), and
  the row's `client_ms` is the first /predict after that, so process start -> first answer is
  `init_ms + client_ms`. `server_ms` is the app's ``X-Inference-Ms``; on a cold start
  `max_memory_mb` is the server's whole process tree's RSS.
- `LocalLambdaTarget`: the local Lambda gateway (`deploy.local_lambda.serve_forever`, run in a
  process of its own so the campaign's client threads do not share its interpreter), one
  configuration per memory size, invoked over HTTP with ``LogType=Tail`` exactly as AWS is.
  The REPORT line gives `server_ms` (Duration), `init_ms` (Init Duration, cold starts only),
  `billed_ms` and `max_memory_mb`; the limit column is the gateway's ``Servesim CPU Limit``.
  Cold starts run on a separate gateway with ``keep_alive_s=0``, waiting before each one until
  its status shows no environment left, so every one is a new environment; a 429 is
  ``throttled``. Cold bursts use the gateway's UpdateFunctionConfiguration (an empty update: as
  on AWS, every later invocation runs in a new environment; the idle ones are stopped before
  the answer), then wait until its status shows no environment left. Cold starts after host
  idle (``cold_idle``) use the same reset on the serving gateway.
- `HttpTarget`: any URL, as a black box: client-side times and statuses only. With an idle time
  it measures cold starts too: one request after each idle period, called a cold start when its
  latency is clearly outside the warm distribution of the same run (`calibrate.fit.ColdRule`);
  its row's `init_ms` is then the extra latency, else null. Such a target has
  `cold_after_warm` true: the campaign runs its cold phase after the warm phase and passes
  `cold_starts` the warm latencies.

Request bodies are `deploy.models.sample_input` of the model encoded with
`deploy.core.encode_inputs`, drawn from a seeded generator, so every configuration and every
target sees the same requests.
"""
from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence
from urllib.parse import urlsplit

import numpy as np

ERROR_TEXT_CHARS = 500


@dataclass(frozen=True)
class TargetConfig:
    """One configuration of a target: `key` (the table's ``config``, e.g. ``workers=2,cpus=2``),
    `fields` (the table's memory_mb / architecture / instance_type / workers / cpus) and a short
    `label` for progress bars (default: the key)."""

    key: str
    fields: Mapping[str, object] = field(default_factory=dict)
    label: str = ""

    def __post_init__(self):
        if not self.label:
            object.__setattr__(self, "label", self.key)


@dataclass
class Sample:
    """One request as measured (times in ms, memory in MB, `send_s` in Unix seconds)."""

    send_s: float
    client_ms: float
    status: str  # ok | throttled | error | timeout
    server_ms: float | None = None
    init_ms: float | None = None
    billed_ms: float | None = None
    max_memory_mb: float | None = None
    error: str | None = None
    limit: str | None = None


def request_bodies(model, seed: int = 0, n: int = 4) -> list[bytes]:
    """`n` request bodies for `model` (a `deploy.models.ModelFile`), drawn from `seed`."""
    from deploy.core import encode_inputs
    from deploy.models import sample_input

    rng = np.random.default_rng(seed)
    return [encode_inputs(sample_input(model, rng)) for _ in range(n)]


def _limit_text(limit) -> str:
    """A `deploy.procs.ResourceLimit` in the table's words (``cgroup 2 vCPU``, ``none``)."""
    if limit.method == "cgroup" and limit.vcpus:
        return f"cgroup {limit.vcpus:g} vCPU"
    if limit.method == "affinity":
        return f"affinity {int(limit.vcpus or 1)} CPU"
    return "none"


class HttpClient:
    """POSTs over one kept-alive connection (reopened when the server closes it); one per thread."""

    def __init__(self, url: str, *, timeout_s: float = 30.0):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.url = url
        self.path = parts.path or "/"
        if parts.query:
            self.path += "?" + parts.query
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self._conn = cls(parts.hostname, parts.port, timeout=timeout_s)

    def post(self, body: bytes, headers: Mapping[str, str] | None = None,
             path: str | None = None) -> tuple[float, float, int | None, Mapping[str, str], bytes, str | None]:
        """(send_s, client_ms, HTTP status, headers, body, failure): failure is None, 'timeout'
        or 'error: ...' (no answer; status is None then)."""
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        send_s = time.time()
        t0 = time.perf_counter()
        try:
            self._conn.request("POST", path or self.path, body=body, headers=hdrs)
            resp = self._conn.getresponse()
            data = resp.read()
            ms = (time.perf_counter() - t0) * 1000.0
            if resp.will_close:
                self._conn.close()
            return send_s, ms, resp.status, resp.headers, data, None
        except (socket.timeout, TimeoutError):
            self._conn.close()
            return send_s, (time.perf_counter() - t0) * 1000.0, None, {}, b"", "timeout"
        except (OSError, http.client.HTTPException) as exc:
            self._conn.close()
            return send_s, (time.perf_counter() - t0) * 1000.0, None, {}, b"", f"{type(exc).__name__}: {exc}"

    def reconnect(self) -> str | None:
        """Close the connection and open a new one now (not timed by the next `post`): None, or
        'timeout' / 'error: ...' when it cannot be opened."""
        self._conn.close()
        try:
            self._conn.connect()
            return None
        except (socket.timeout, TimeoutError):
            self._conn.close()
            return "timeout: connecting"
        except OSError as exc:
            self._conn.close()
            return f"{type(exc).__name__}: {exc}"

    def close(self) -> None:
        self._conn.close()


def _body_text(body: bytes) -> str:
    return body.decode("utf-8", "replace")[:ERROR_TEXT_CHARS]


class Client:
    """One client of an endpoint: `call()` sends the next request body and measures it."""

    def __init__(self, http_client: HttpClient, bodies: Sequence[bytes], parse: Callable[..., Sample], *,
                 headers: Mapping[str, str] | None = None, start: int = 0):
        self.http = http_client
        self.bodies = list(bodies)
        self.headers = dict(headers or {})
        self._parse = parse
        self._i = start

    def call(self) -> Sample:
        body = self.bodies[self._i % len(self.bodies)]
        self._i += 1
        return self._parse(*self.http.post(body, self.headers))

    def close(self) -> None:
        self.http.close()


class Endpoint:
    """A configuration that is up: `client()` makes one `Client` per thread. `parse` turns
    `HttpClient.post`'s answer into a Sample; `headers` go with every request."""

    def __init__(self, url: str, bodies: Sequence[bytes], parse: Callable[..., Sample], *,
                 headers: Mapping[str, str] | None = None, timeout_s: float = 30.0, info: Mapping | None = None):
        self.url = url
        self.bodies = list(bodies)
        self.headers = dict(headers or {})
        self._parse = parse
        self.timeout_s = timeout_s
        self.info = dict(info or {})
        self._made = 0

    def client(self) -> Client:
        self._made += 1
        return Client(HttpClient(self.url, timeout_s=self.timeout_s), self.bodies, self._parse,
                      headers=self.headers, start=self._made)


class Target:
    """The interface every target implements (see the module docstring)."""

    name = "target"
    supports_cold = True
    cold_after_warm = False
    """True: cold starts are told from warm requests by latency, so the campaign measures them
    after the warm phase and calls ``cold_starts(config, warm_ms)`` with its ok latencies (ms)."""

    def __init__(self, model: str, model_sha256: str | None):
        self.model = model
        self.model_sha256 = model_sha256

    def configs(self) -> list[TargetConfig]:
        raise NotImplementedError

    def cold_starts(self, config: TargetConfig) -> contextlib.AbstractContextManager[Callable[[], Sample]]:
        raise NotImplementedError

    def serving(self, config: TargetConfig) -> contextlib.AbstractContextManager[Endpoint]:
        raise NotImplementedError

    def warmup_requests(self, config: TargetConfig) -> int:
        """Requests to send, unrecorded, before the warm phase (on top of the campaign's own)."""
        return 0

    cold_bursts = False
    """True: each burst is first measured cold (`reset_units` before it), then warm."""

    def burst_sizes(self, config: TargetConfig, sizes: Sequence[int]) -> list[int]:
        """Of `sizes`, the burst sizes this target measures for `config` (none: it does not run
        on this host, so bursts say nothing of this host's CPUs)."""
        return []

    cold_idle = False
    """True: the campaign can measure cold starts after host idle (phase ``cold_idle``): on a
    `serving` endpoint, `reset_units`, then the host left idle, then one request, which starts a
    new unit and reports its init time (``init_ms``). Only a target whose units run on this host
    and report their own init time can: local-lambda."""

    def reset_units(self, endpoint: Endpoint) -> None:
        """Retire every unit of the running `endpoint`, so that each next request starts a new one."""
        raise NotImplementedError

    def session(self) -> contextlib.AbstractContextManager:
        """Entered around the whole campaign: cloud targets deploy here and tear down on exit."""
        return contextlib.nullcontext()

    def describe(self) -> dict:
        return {"target": self.name, "model": self.model, "model_sha256": self.model_sha256}


# ---- local-server ---------------------------------------------------------------------------

def _parse_app(send_s, client_ms, status, headers, body, failure, *, limit: str | None = None) -> Sample:
    """A Sample from the Flask app's answer (X-Inference-Ms is the model's time)."""
    if failure is not None:
        return Sample(send_s, client_ms, "timeout" if failure == "timeout" else "error",
                      error=None if failure == "timeout" else failure[:ERROR_TEXT_CHARS], limit=limit)
    if status == 200:
        ms = headers.get("X-Inference-Ms")
        return Sample(send_s, client_ms, "ok", server_ms=float(ms) if ms else None, limit=limit)
    return Sample(send_s, client_ms, "throttled" if status == 429 else "error",
                  error=f"HTTP {status}: {_body_text(body)}", limit=limit)


class LocalServerTarget(Target):
    """local-server: gunicorn + the app, one configuration per worker count in `workers_list`,
    all held to `cpus` vCPUs (None: no limit). `threads`: onnxruntime threads per worker.
    `instance_type`: the EC2 type this local configuration stands for (e.g. c6i.large for 2 vCPUs);
    recorded so that a profile's server entries match scenarios' `instance_type`."""

    name = "local-server"

    def __init__(self, model: str | os.PathLike, workers_list: Sequence[int] = (2,), cpus: float | None = None,
                 *, threads: int = 1, seed: int = 0, timeout_s: float = 60.0, instance_type: str | None = None):
        from deploy.models import resolve_model

        if not workers_list or any(int(w) < 1 for w in workers_list):
            raise ValueError(f"workers must be >= 1, got {list(workers_list)}")
        if cpus is not None and cpus <= 0:
            raise ValueError(f"cpus must be > 0, got {cpus}")
        self.model_arg = str(model)
        mf = resolve_model(model)
        super().__init__(mf.name, mf.sha256)
        self.workers_list = [int(w) for w in workers_list]
        self.cpus = None if cpus is None else float(cpus)
        self.instance_type = instance_type
        self.threads = int(threads)
        self.timeout_s = float(timeout_s)
        self.bodies = request_bodies(mf, seed)

    def configs(self) -> list[TargetConfig]:
        out = []
        for w in self.workers_list:
            key = f"workers={w}" if self.cpus is None else f"workers={w},cpus={self.cpus:g}"
            label = f"{w} worker{'s' if w > 1 else ''}" + ("" if self.cpus is None else f", {self.cpus:g} vCPU")
            fields = {"workers": w, "cpus": self.cpus}
            if self.instance_type:
                fields["instance_type"] = self.instance_type
                label += f" (as {self.instance_type})"
            out.append(TargetConfig(key, fields, label))
        return out

    def _server(self, config: TargetConfig):
        from deploy.local_server import LocalServer

        return LocalServer(self.model_arg, workers=int(config.fields["workers"]), cpus=self.cpus,
                           threads=self.threads, timeout_s=self.timeout_s)

    @contextlib.contextmanager
    def cold_starts(self, config: TargetConfig) -> Iterator[Callable[[], Sample]]:
        def one() -> Sample:
            with self._server(config) as server:
                limit = _limit_text(server.limit)
                client = HttpClient(server.url + "/predict", timeout_s=self.timeout_s)
                try:
                    sample = _parse_app(*client.post(self.bodies[0]), limit=limit)
                finally:
                    client.close()
                sample.init_ms = server.ready_s * 1000.0
                sample.max_memory_mb = round(server.proc.tree_rss_bytes() / 2**20, 1)
                return sample

        yield one

    @contextlib.contextmanager
    def serving(self, config: TargetConfig) -> Iterator[Endpoint]:
        with self._server(config) as server:
            limit = _limit_text(server.limit)
            yield Endpoint(server.url + "/predict", self.bodies,
                           lambda *a: _parse_app(*a, limit=limit), timeout_s=self.timeout_s,
                           info=server.describe())

    def warmup_requests(self, config: TargetConfig) -> int:
        return 3 * int(config.fields["workers"])  # every worker's first inference is slower

    def burst_sizes(self, config: TargetConfig, sizes: Sequence[int]) -> list[int]:
        """Warm bursts of at most one request per worker (more queue: the load levels measure that)."""
        return [int(k) for k in sizes if int(k) <= int(config.fields["workers"])]

    def describe(self) -> dict:
        return {**super().describe(), "workers": self.workers_list, "cpus": self.cpus, "threads": self.threads}


# ---- local-lambda ---------------------------------------------------------------------------

_INVOKE = "/2015-03-31/functions/{name}/invocations"
_REPO_ROOT = Path(__file__).resolve().parents[1]


def _get_json(url: str, timeout_s: float = 10.0):
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout_s) as r:
        return json.loads(r.read())
_TAIL_HEADERS = {"X-Amz-Log-Type": "Tail", "X-Amz-Invocation-Type": "RequestResponse"}


def parse_invoke(send_s, client_ms, status, headers, body, failure) -> Sample:
    """A Sample from a Lambda Invoke answer with ``LogType=Tail`` (the REPORT line's figures)."""
    from deploy.lambda_report import parse_log_result

    if failure is not None:
        return Sample(send_s, client_ms, "timeout" if failure == "timeout" else "error",
                      error=None if failure == "timeout" else failure[:ERROR_TEXT_CHARS])
    if status == 429:
        return Sample(send_s, client_ms, "throttled", error=_body_text(body))
    if status != 200:
        return Sample(send_s, client_ms, "error", error=f"HTTP {status}: {_body_text(body)}")
    sample = Sample(send_s, client_ms, "ok")
    log = headers.get("X-Amz-Log-Result")
    report = {}
    if log:
        try:
            report = parse_log_result(log)
        except ValueError as exc:
            sample.status, sample.error = "error", f"unreadable REPORT line: {exc}"
    if report:
        sample.server_ms = report["duration_ms"]
        # A SnapStart function restores a snapshot instead of running INIT: its cold-start time.
        sample.init_ms = (report["init_duration_ms"] if report["init_duration_ms"] is not None
                          else report["restore_duration_ms"])
        sample.billed_ms = float(report["billed_duration_ms"])
        sample.max_memory_mb = float(report["max_memory_used_mb"])
        sample.limit = report.get("servesim_cpu_limit")
    if headers.get("X-Amz-Function-Error"):
        sample.status = "timeout" if report.get("status") == "timeout" else "error"
        sample.error = _body_text(body)
    elif sample.status == "ok":
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or "outputs" not in answer:
            sample.status, sample.error = "error", _body_text(body)  # the handler's 400-style answer
    return sample


class LocalLambdaTarget(Target):
    """local-lambda: the Invoke API gateway, one configuration per memory size in `memory_list`.

    `rie`: the emulator binary (default `deploy.rie.rie_path()`); `concurrency_limit`: the
    gateway's (the largest load level must not exceed it, else the excess is throttled, which is
    recorded); `keep_alive_s`: idle environments' life during the warm and load phases."""

    name = "local-lambda"

    def __init__(self, model: str | os.PathLike, memory_list: Sequence[int] = (1024,), *,
                 rie: str | os.PathLike | None = None, concurrency_limit: int = 64,
                 keep_alive_s: float = 360.0, timeout_s: int = 30, seed: int = 0):
        from deploy.models import resolve_model
        from deploy.rie import host_arch, rie_path

        if not memory_list:
            raise ValueError("memory_list is empty")
        self.model_arg = str(model)
        mf = resolve_model(model)
        super().__init__(mf.name, mf.sha256)
        self.memory_list = [int(m) for m in memory_list]
        self.rie = rie_path(rie)
        self.architecture = host_arch()
        self.concurrency_limit = int(concurrency_limit)
        self.keep_alive_s = float(keep_alive_s)
        self.timeout_s = int(timeout_s)
        self.bodies = request_bodies(mf, seed)

    def configs(self) -> list[TargetConfig]:
        return [TargetConfig(f"memory_mb={m},architecture={self.architecture}",
                             {"memory_mb": m, "architecture": self.architecture}, f"{m} MB") for m in self.memory_list]

    @contextlib.contextmanager
    def _gateway(self, config: TargetConfig, *, keep_alive_s: float, concurrency_limit: int) -> Iterator[Endpoint]:
        """The gateway in a process of its own (`deploy.local_lambda.serve_forever`), so that
        the campaign's client threads do not share an interpreter with it; its endpoint."""
        import subprocess
        import sys
        import tempfile

        from deploy.procs import ManagedProcess, free_port, wait_http

        port = free_port()
        settings = {"model": self.model_arg, "memory_mb": int(config.fields["memory_mb"]),
                    "keep_alive_s": keep_alive_s, "concurrency_limit": concurrency_limit, "port": port,
                    "rie": str(self.rie), "timeout_s": self.timeout_s}
        code = ("import json, sys; from deploy.local_lambda import serve_forever; a = json.loads(sys.argv[1]); "
                "serve_forever(a.pop('model'), echo=lambda s: None, **a)")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(_REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
        url = f"http://127.0.0.1:{port}"
        with tempfile.TemporaryFile(prefix="servesim-gateway-") as log:
            proc = ManagedProcess([sys.executable, "-c", code, json.dumps(settings)], name="local-lambda-gateway",
                                  env=env, cwd=_REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
            try:
                try:
                    wait_http(url + "/servesim/status", proc, timeout_s=60.0, what="the local-lambda gateway")
                except RuntimeError as exc:
                    log.seek(0)
                    raise RuntimeError(f"{exc}\n{log.read()[-4000:].decode('utf-8', 'replace')}") from None
                function = _get_json(url + "/servesim/status")["function"]
                yield Endpoint(url + _INVOKE.format(name=function), self.bodies, parse_invoke, headers=_TAIL_HEADERS,
                               timeout_s=self.timeout_s + 10.0,
                               info={"url": url, "function": function, "memory_mb": settings["memory_mb"],
                                     "keep_alive_s": keep_alive_s, "concurrency_limit": concurrency_limit})
            finally:
                proc.stop(timeout_s=30.0)  # the gateway stops its environments on SIGTERM

    @contextlib.contextmanager
    def cold_starts(self, config: TargetConfig) -> Iterator[Callable[[], Sample]]:
        with self._gateway(config, keep_alive_s=0.0, concurrency_limit=1) as endpoint:
            client = endpoint.client()
            status_url = endpoint.info["url"] + "/servesim/status"

            def one() -> Sample:
                deadline = time.monotonic() + 10.0
                while _get_json(status_url)["environments"]:  # the last one is being reclaimed (keep_alive_s=0)
                    if time.monotonic() > deadline:
                        raise RuntimeError("local-lambda: an environment was not reclaimed within 10 s")
                    time.sleep(0.005)
                sample = client.call()
                if sample.status == "ok" and sample.init_ms is None:
                    sample.status, sample.error = "error", "not a cold start (no Init Duration in the REPORT line)"
                return sample

            try:
                yield one
            finally:
                client.close()

    def serving(self, config: TargetConfig) -> contextlib.AbstractContextManager[Endpoint]:
        return self._gateway(config, keep_alive_s=self.keep_alive_s, concurrency_limit=self.concurrency_limit)

    cold_bursts = True
    cold_idle = True

    def burst_sizes(self, config: TargetConfig, sizes: Sequence[int]) -> list[int]:
        """Bursts up to the concurrency limit (more would be throttled)."""
        return [int(k) for k in sizes if int(k) <= self.concurrency_limit]

    def reset_units(self, endpoint: Endpoint, timeout_s: float = 30.0) -> None:
        """An empty UpdateFunctionConfiguration (every environment retired, the idle ones stopped
        before the answer, as on AWS), then wait until the status shows none left."""
        import urllib.request

        base, function = endpoint.info["url"], endpoint.info["function"]
        req = urllib.request.Request(f"{base}/2015-03-31/functions/{function}/configuration", data=b"{}",
                                     method="PUT", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout_s) as r:
            r.read()
        deadline = time.monotonic() + timeout_s
        while _get_json(base + "/servesim/status")["environments"]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"local-lambda: environments were not retired within {timeout_s:g} s")
            time.sleep(0.005)

    def describe(self) -> dict:
        return {**super().describe(), "memory_mb": self.memory_list, "architecture": self.architecture,
                "concurrency_limit": self.concurrency_limit, "keep_alive_s": self.keep_alive_s, "rie": str(self.rie)}


# ---- http (black box) -----------------------------------------------------------------------

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def http_label(url: str) -> str:
    """The default label of an http target: the URL's last path segment (``/function/resnet`` ->
    ``resnet``), else its host name, with characters other than letters, digits, '.', '_' and
    '-' replaced by '-'."""
    parts = urlsplit(url)
    segment = next((p for p in reversed(parts.path.split("/")) if p), "") or parts.hostname or "http"
    return (re.sub(r"[^A-Za-z0-9._-]", "-", segment).strip("-._") or "http")[:64]


def http_config_key(label: str, url: str) -> str:
    """The table's ``config`` of an http target: ``label=<label>,url=<url>``."""
    return f"label={label},url={url}"


def parse_http_config(key: str) -> tuple[str, str]:
    """(label, url) from an http target's ``config`` (also the older ``url=<url>``, whose label
    is then `http_label` of the URL)."""
    if key.startswith("label=") and ",url=" in key:
        label, _, url = key[len("label="):].partition(",url=")
        return label, url
    url = key[len("url="):] if key.startswith("url=") else key
    return http_label(url), url


def _parse_black_box(send_s, client_ms, status, headers, body, failure) -> Sample:
    if failure is not None:
        return Sample(send_s, client_ms, "timeout" if failure == "timeout" else "error",
                      error=None if failure == "timeout" else failure[:ERROR_TEXT_CHARS])
    if 200 <= status < 300:
        return Sample(send_s, client_ms, "ok")
    return Sample(send_s, client_ms, "throttled" if status == 429 else "error",
                  error=f"HTTP {status}: {_body_text(body)}")


class HttpTarget(Target):
    """Any URL measured as a black box (an OpenFaaS gateway's ``/function/<name>``, a Knative
    service, a Lambda function URL): POST `body` (default: a sample request for `model`) with
    `headers`, client-side latency and status only (2xx is ok, 429 throttled). `label` names the
    profile entry (default `http_label` of the URL).

    **Cold starts**, only with `idle_s` (s, > 0): the platform is left alone for `idle_s`, longer
    than its scale-to-zero delay or keep-alive (the user knows it: Knative's stable window plus
    its grace period, 90 s by default; Lambda's is not published), then one request is sent and
    timed; and so on, one after the other. The idle time counts from the previous answer. Each of
    these requests goes on a connection opened beforehand and not timed (the idle period may
    have closed the old one; warm requests do not pay a TCP or TLS handshake either). Whether it
    was a cold start is decided by its latency against the warm requests measured in the same
    run (`calibrate.fit.ColdRule`, so the campaign runs the cold phase after the warm one:
    `cold_after_warm`): above the threshold, the row's ``init_ms`` is the extra latency (latency
    minus the warm median), as a Lambda cold start's row carries its Init Duration; otherwise
    ``init_ms`` is null: the platform kept an instance through the idle period, and the row is
    an ok request of phase ``cold`` that was not a cold start. Without `idle_s` there is no cold
    phase (`supports_cold` false)."""

    name = "http"
    cold_after_warm = True

    def __init__(self, url: str, body: bytes | None = None, *, model: str | os.PathLike | None = None,
                 seed: int = 0, timeout_s: float = 30.0, idle_s: float | None = None, label: str | None = None,
                 headers: Mapping[str, str] | None = None):
        from sim.errors import ServesimError

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ServesimError(f"not an http(s) URL: {url!r}")
        if idle_s is not None and not (math.isfinite(idle_s) and idle_s > 0):
            raise ServesimError(f"idle_s must be a number of seconds > 0 (longer than the platform's scale-to-zero "
                                f"delay or keep-alive), got {idle_s!r}")
        label = http_label(url) if label is None else label
        if not _LABEL.match(label):
            raise ServesimError(f"label {label!r}: expected 1-64 letters, digits, '.', '_' or '-', starting with a "
                                "letter or digit (it names the profile entry)")
        name, sha = "unknown", None
        if model is not None:
            from deploy.models import resolve_model

            mf = resolve_model(model)
            name, sha = mf.name, mf.sha256
            if body is None:
                body = request_bodies(mf, seed, n=1)[0]
        if body is None:
            raise ValueError("HttpTarget needs a request body or a model to draw one from")
        super().__init__(name, sha)
        self.url = url
        self.body = body
        self.label = label
        self.headers = dict(headers or {})
        self.timeout_s = float(timeout_s)
        self.idle_s = None if idle_s is None else float(idle_s)
        self.supports_cold = self.idle_s is not None

    def configs(self) -> list[TargetConfig]:
        return [TargetConfig(http_config_key(self.label, self.url), {}, self.label)]

    @contextlib.contextmanager
    def serving(self, config: TargetConfig) -> Iterator[Endpoint]:
        yield Endpoint(self.url, [self.body], _parse_black_box, headers=self.headers, timeout_s=self.timeout_s,
                       info={"url": self.url})

    @contextlib.contextmanager
    def cold_starts(self, config: TargetConfig, warm_ms: Sequence[float] = ()) -> Iterator[Callable[[], Sample]]:
        """One request after `idle_s` of idleness per call, classified against `warm_ms` (the ok
        warm latencies of the same run, ms; see the class docstring)."""
        from calibrate.fit import ColdRule
        from sim.errors import ServesimError

        if self.idle_s is None:
            raise ServesimError("the http target measures cold starts only with an idle time (--idle-s)")
        try:
            rule = ColdRule.from_warm(warm_ms)
        except ValueError as exc:
            raise ServesimError(f"http {self.url}: {exc}") from None
        client = HttpClient(self.url, timeout_s=self.timeout_s)

        def one() -> Sample:
            time.sleep(self.idle_s)
            failure = client.reconnect()
            if failure is not None:
                return Sample(time.time(), 0.0, "error", error=failure[:ERROR_TEXT_CHARS])
            sample = _parse_black_box(*client.post(self.body, self.headers))
            if sample.status == "ok" and rule.is_cold(sample.client_ms):
                sample.init_ms = rule.extra_ms(sample.client_ms)
            return sample

        try:
            yield one
        finally:
            client.close()

    def describe(self) -> dict:
        return {**super().describe(), "url": self.url, "label": self.label, "idle_s": self.idle_s,
                "headers": sorted(self.headers)}  # names only: a header may carry a credential
