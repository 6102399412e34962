"""Lambda execution environments on this host, and the pool that applies Lambda's semantics.

An `Environment` is one real Lambda runtime: AWS's Runtime Interface Emulator (RIE) running
``python -m awslambdaric <handler>``, started as one `deploy.procs.ManagedProcess` (its own process
group; cgroup CPU quota of memory/1769 vCPU and a memory limit of the function's memory where
the host allows, CPU affinity otherwise). It serves one invocation at a time.

What the gateway measures (the emulator's own REPORT figures are not used):

- **Emulator start** (servesim's own REPORT field ``Servesim Emulator Start``, cold starts only):
  from starting the environment's process until the emulator accepts connections (15-35 ms
  here). It stands for Lambda's sandbox creation, which AWS does not report but a client sees.
- **Init Duration**: from sending the first event to the emulator, which is when it starts the
  runtime (it does so lazily, on the first invocation), until the runtime is ready for its first
  event, i.e. until the emulator logs ``INIT RTDONE`` (the runtime has imported the handler module
  and asked for its first event): the runtime's start, Python's imports and the handler module's
  code (the model load), as AWS's Init Duration. (An emulator that starts the runtime before
  the first event would be measured from the process start.)
- **Duration**: from the moment the event can reach the runtime (the gateway sends it to the
  emulator; on a cold start, the later moment the runtime became ready) until the gateway has
  the response. It includes the local HTTP hop to the emulator (well under a millisecond).
  Emulator start + Init Duration + Duration on a cold start is exactly process start -> response.
  Without the ``INIT RTDONE`` line (another emulator version) a cold start's init is counted in
  its Duration and Init Duration is 0.
- **Max Memory Used**: the largest resident memory (RSS) of the runtime's process tree (the
  emulator itself excluded) sampled at the end of each invocation of the environment so far.
  The cgroup memory limit, where applied, holds the whole tree (the emulator's ~15 MB included).
- The log lines are timestamped when the gateway reads them from the emulator's output; the
  emulator's log text is used only to know *when* the runtime became ready.

`EnvironmentPool` applies Lambda's semantics: an idle environment is reused (most recently used
first), else a new one is started, unless `concurrency_limit` invocations are in flight, in
which case the request is throttled at once (no queueing). An environment idle for
`keep_alive_s` is stopped by a reaper thread that sleeps until the next deadline. An environment
whose runtime crashed, failed its init or timed out is stopped and never reused.

`EnvironmentPool.reconfigure` applies a configuration update as Lambda does: every invocation
that starts after it runs in an environment started from the new spec. Idle environments are
stopped before it returns; busy ones (and ones still starting) finish their current invocation
and are then stopped ("retired"), never reused.
"""
from __future__ import annotations

import collections
import http.client
import itertools
import json
import math
import re
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from deploy.procs import ManagedProcess, ResourceLimit, free_port

VCPU_PER_MB = 1.0 / 1769.0  # Lambda: 1,769 MB of memory = 1 vCPU of CPU share
INVOKE_PATH = "/2015-03-31/functions/function/invocations"
START_TIMEOUT_S = 10.0  # the emulator must accept connections within this (it takes 15-35 ms)
LOG_SETTLE_S = 1.0  # after a response, how long to wait for the emulator's END line

_RAPID = re.compile(r"\(rapid\) (.*)$")
_LAMBDA_ERROR_KEYS = {"errorMessage", "errorType", "requestId", "stackTrace"}


class ThrottledError(Exception):
    """The concurrency limit is reached: Lambda answers 429 TooManyRequestsException."""


class EnvironmentStartError(Exception):
    """An environment's process did not come up (the message holds its last log lines)."""


@dataclass(frozen=True)
class EnvironmentSpec:
    """What every environment of one function runs.

    `handler`: ``module.function`` as awslambdaric takes it. `env`: the runtime's complete
    environment variables. `memory_mb`: the function's memory (sets the CPU share and memory
    limit). `timeout_s`: the function timeout, enforced by the emulator."""

    rie: Path
    python: str
    handler: str
    env: Mapping[str, str]
    cwd: Path
    memory_mb: int
    timeout_s: int

    @property
    def vcpus(self) -> float:
        return self.memory_mb * VCPU_PER_MB


@dataclass
class Invocation:
    """One invocation as the environment saw it (times in ms, memory in MB).

    `outcome` is 'ok', 'error' (the handler raised; the environment is kept), 'crash' (the
    runtime or emulator died, or init failed) or 'timeout'. `payload` is the function's answer or
    Lambda's error object; `error_type` is set for every outcome but 'ok'."""

    request_id: str
    environment_id: int
    cold: bool
    outcome: str
    payload: bytes
    duration_ms: float
    init_duration_ms: float | None
    max_memory_used_mb: int
    log_lines: list[str]
    error_type: str | None = None
    emulator_start_ms: float | None = None  # cold starts only

    @property
    def reusable(self) -> bool:
        return self.outcome in ("ok", "error")


def limit_fields(limit: ResourceLimit, vcpus: float, memory_mb: int) -> dict[str, str]:
    """The servesim REPORT fields that state which CPU and memory limits were applied."""
    if limit.method == "cgroup":
        cpu = f"cgroup {vcpus:.3f} vCPU"
    elif limit.method == "affinity":
        cpu = f"affinity {int(limit.vcpus or 1)} CPU ({vcpus:.3f} vCPU share not enforced)"
    else:
        cpu = f"none ({vcpus:.3f} vCPU share not enforced)"
    mem = f"cgroup {memory_mb} MB" if limit.memory_mb else "none"
    return {"CPU Limit": cpu, "Memory Limit": mem}


class Environment:
    """One execution environment: the emulator + runtime processes, started by `start`."""

    def __init__(self, spec: EnvironmentSpec, environment_id: int):
        self.spec = spec
        self.id = environment_id
        self.proc: ManagedProcess | None = None
        self.port: int | None = None
        self.invocations = 0
        self.idle_since: float | None = None  # time.monotonic() when it last became idle
        self.started_at: float | None = None  # time.time() of the process start
        self.emulator_start_ms: float | None = None  # process start -> the emulator accepts connections
        self._t_spawn: float | None = None
        self._life = threading.Lock()  # orders start against stop
        self._stopped = False
        self._saw_end = None  # whether this emulator logs END lines (None: not known yet)
        self._conn: http.client.HTTPConnection | None = None
        self._cond = threading.Condition()
        self._lines: list[str] = []  # function log lines of the current invocation
        self._tail: collections.deque[str] = collections.deque(maxlen=40)  # for error messages
        self._init_done_t: float | None = None
        self._ended: str | None = None  # request id of the last END line
        self._eof = False
        self._max_rss = 0
        self._runtime_procs: list = []
        self._reader: threading.Thread | None = None

    # ---- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the emulator and wait until it accepts connections (the runtime itself starts
        on the first invocation). EnvironmentStartError if it does not."""
        spec = self.spec
        for attempt in range(3):  # a port taken between free_port() and bind: try new ones
            port, api_port = free_port(), free_port()
            args = [str(spec.rie), "--runtime-interface-emulator-address", f"127.0.0.1:{port}",
                    "--runtime-api-address", f"127.0.0.1:{api_port}",
                    spec.python, "-m", "awslambdaric", spec.handler]
            with self._life:
                if self._stopped:
                    raise EnvironmentStartError("the environment was stopped while starting")
                self._t_spawn = time.perf_counter()
                self.started_at = time.time()
                self.proc = ManagedProcess(args, name=f"lambda-env-{self.id}", env=spec.env, cwd=spec.cwd,
                                           vcpus=spec.vcpus, memory_mb=spec.memory_mb,
                                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self._eof = False
            self._reader = threading.Thread(target=self._read_log, args=(self.proc,),
                                            name=f"lambda-env-{self.id}-log", daemon=True)
            self._reader.start()
            if self._wait_port(port):
                self.emulator_start_ms = (time.perf_counter() - self._t_spawn) * 1000.0
                self.port = port
                self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=spec.timeout_s + 10.0)
                return
            self.proc.stop()
            if attempt == 2 or self._stopped or not self._port_clash():
                break
        raise EnvironmentStartError(f"the Lambda emulator did not start: {self._tail_text()}")

    def _wait_port(self, port: int) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self.proc.alive():
                return False
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return True
            except OSError:
                time.sleep(0.002)
        return False

    def _port_clash(self) -> bool:
        with self._cond:
            return any("address already in use" in line for line in self._tail)

    def _tail_text(self) -> str:
        with self._cond:
            return " | ".join(list(self._tail)[-8:]) or "(no output)"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive()

    @property
    def limit(self) -> ResourceLimit:
        return self.proc.limit if self.proc else ResourceLimit("none")

    def stop(self) -> None:
        """Stop the emulator and the runtime (the whole process group); idempotent. An
        environment stopped while starting does not start."""
        with self._life:
            self._stopped = True
            proc = self.proc
        if proc is not None:
            proc.stop(timeout_s=2.0)  # Lambda's Shutdown phase is capped at 2 s too
        if self._conn is not None:
            self._conn.close()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=2.0)

    # ---- the emulator's output --------------------------------------------------------------

    def _read_log(self, proc: ManagedProcess) -> None:
        stream = proc.popen.stdout
        try:
            for raw in iter(stream.readline, b""):
                now = time.perf_counter()
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                with self._cond:
                    self._tail.append(line)
                    m = _RAPID.search(line)
                    if m:
                        if m.group(1).startswith("INIT RTDONE") and self._init_done_t is None:
                            self._init_done_t = now
                    elif line.startswith("END RequestId: "):
                        self._ended = line[len("END RequestId: "):].strip()
                        self._cond.notify_all()
                    elif not line.startswith(("START RequestId: ", "REPORT RequestId: ")):
                        self._lines.append(line)
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                self._eof = True
                self._cond.notify_all()
            try:
                stream.close()
            except OSError:
                pass

    # ---- invoking ---------------------------------------------------------------------------

    def invoke(self, request_id: str, payload: bytes) -> Invocation:
        """Send one event to the runtime and wait for its answer (the caller ensures one at a
        time)."""
        cold = self.invocations == 0
        self.invocations += 1
        with self._cond:
            if not cold:
                self._lines = []  # a cold start keeps what the runtime printed while starting
        t_send = time.perf_counter()
        status, body, outcome = None, b"", "ok"
        try:
            self._conn.request("POST", INVOKE_PATH, body=payload,
                               headers={"Content-Type": "application/json", "X-Amzn-RequestId": request_id})
            resp = self._conn.getresponse()
            body = resp.read()
            status = resp.status
        except socket.timeout:
            outcome = "timeout"
        except (OSError, http.client.HTTPException):
            outcome = "crash"
        t_resp = time.perf_counter()
        if outcome == "ok":
            self._wait_end(request_id)
        with self._cond:
            init_done_t = self._init_done_t
            lines, self._lines = self._lines, []
        if cold:
            init_done = init_done_t if init_done_t is not None and init_done_t <= t_resp else t_send
            init_ms = (init_done - (t_send if init_done >= t_send else self._t_spawn)) * 1000.0
            duration_ms = (t_resp - max(t_send, init_done)) * 1000.0
        else:
            init_ms, duration_ms = None, (t_resp - t_send) * 1000.0
        error_type = None
        if outcome == "ok":
            outcome, error_type, body = self._classify(request_id, status, body)
        elif outcome == "timeout":
            body = self._timeout_body(request_id)
            error_type = "Sandbox.Timedout"
        else:
            error_type = "Runtime.ExitError"
            body = json.dumps({"errorType": error_type, "errorMessage": f"RequestId: {request_id} Error: "
                               "the runtime exited (the environment's process ended)"}).encode()
        if outcome == "timeout":
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
            lines.append(f"{stamp}Z {request_id} Task timed out after {self.spec.timeout_s:.2f} seconds")
        return Invocation(request_id, self.id, cold, outcome, body, duration_ms, init_ms,
                          self._max_memory_mb(), lines, error_type,
                          self.emulator_start_ms if cold else None)

    def _wait_end(self, request_id: str) -> None:
        """Wait (briefly) until the emulator has logged END for this request, so the function's
        log lines are all read. An emulator that never logged END is not waited for again."""
        if self._saw_end is False:
            return
        deadline = time.monotonic() + LOG_SETTLE_S
        with self._cond:
            while self._ended != request_id and not self._eof:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            if self._saw_end is None:
                self._saw_end = self._ended == request_id

    def _classify(self, request_id: str, status: int, body: bytes) -> tuple[str, str | None, bytes]:
        """(outcome, error type, payload) of the emulator's answer."""
        if body.startswith(b"Task timed out after"):
            return "timeout", "Sandbox.Timedout", self._timeout_body(request_id)
        err = _lambda_error(body)
        if status == 200:
            if err is not None and (err.get("requestId") == request_id or set(err) <= _LAMBDA_ERROR_KEYS):
                return "error", str(err["errorType"]), body
            return "ok", None, body
        # The emulator answers 5xx when the runtime exited or its init failed: the environment
        # is broken (AWS resets it); the payload is Lambda's error object.
        if err is None:
            err = {"errorType": "Runtime.ExitError",
                   "errorMessage": f"RequestId: {request_id} Error: {body.decode('utf-8', 'replace')[:500]}"}
            body = json.dumps(err).encode()
        return "crash", str(err["errorType"]), body

    def _timeout_body(self, request_id: str) -> bytes:
        return json.dumps({"errorType": "Sandbox.Timedout", "errorMessage": f"RequestId: {request_id} "
                           f"Error: Task timed out after {self.spec.timeout_s:.2f} seconds"}).encode()

    def _max_memory_mb(self) -> int:
        self._max_rss = max(self._max_rss, self._runtime_rss())
        return max(1, math.ceil(self._max_rss / 2**20))

    def _runtime_rss(self) -> int:
        """RSS of the runtime's processes (the emulator's children and below). The list of
        processes is cached and refreshed only when one of them has gone."""
        import psutil

        total = 0
        for attempt in range(2):
            if not self._runtime_procs or attempt:
                try:
                    self._runtime_procs = psutil.Process(self.proc.pid).children(recursive=True)
                except psutil.Error:
                    return 0
            try:
                total = sum(p.memory_info().rss for p in self._runtime_procs)
                break
            except psutil.Error:
                self._runtime_procs = []
        return total

    def describe(self) -> dict:
        return {"id": self.id, "pid": self.proc.pid if self.proc else None, "port": self.port,
                "invocations": self.invocations, "limit": self.limit.as_dict(),
                "emulator_start_ms": None if self.emulator_start_ms is None else round(self.emulator_start_ms, 3),
                "max_memory_used_mb": math.ceil(self._max_rss / 2**20)}


def _lambda_error(body: bytes) -> dict | None:
    """Lambda's error object (``errorType`` and ``errorMessage``) if `body` is one."""
    if not body.startswith(b"{"):
        return None
    try:
        obj = json.loads(body)
    except ValueError:
        return None
    if isinstance(obj, dict) and "errorType" in obj and "errorMessage" in obj:
        return obj
    return None


@dataclass
class PoolCounters:
    invocations: int = 0
    cold_starts: int = 0
    throttled: int = 0
    reclaimed: int = 0  # stopped after keep_alive_s idle
    discarded: int = 0  # stopped after a crash, failed init or timeout
    function_errors: int = 0
    config_updates: int = 0  # `EnvironmentPool.reconfigure` calls
    retired: int = 0  # stopped because the configuration changed after they started


class EnvironmentPool:
    """Lambda's scheduling of one function's environments (see the module docstring).

    `acquire` returns an environment for one invocation (starting one if none is idle) or raises
    ThrottledError; `release` hands it back; `reconfigure` switches to a new spec. `close` stops
    every environment."""

    def __init__(self, spec: EnvironmentSpec, *, keep_alive_s: float, concurrency_limit: int):
        self.spec = spec
        self.keep_alive_s = float(keep_alive_s)
        self.concurrency_limit = int(concurrency_limit)
        self.counters = PoolCounters()
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._idle: list[Environment] = []  # oldest release first: MRU is the last
        self._busy: dict[int, Environment] = {}
        self._retiring: set[int] = set()  # ids of busy environments started from an older spec
        self._closed = False
        self._reaper = threading.Thread(target=self._reap, name="lambda-keep-alive", daemon=True)
        self._reaper.start()

    def acquire(self) -> tuple[Environment, bool]:
        """(environment, cold): the most recently used idle one, else a new one, started.
        ThrottledError when `concurrency_limit` invocations are already in flight."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the gateway is stopping")
            if self._idle:
                env = self._idle.pop()
                self._busy[env.id] = env
                self.counters.invocations += 1
                return env, False
            if len(self._busy) >= self.concurrency_limit:
                self.counters.throttled += 1
                raise ThrottledError(f"{len(self._busy)} invocations in flight (limit {self.concurrency_limit})")
            env = Environment(self.spec, next(self._ids))
            self._busy[env.id] = env
            self.counters.invocations += 1
            self.counters.cold_starts += 1
        try:
            env.start()
        except BaseException:
            with self._cond:
                self._busy.pop(env.id, None)
                self._retiring.discard(env.id)
                self.counters.discarded += 1
            env.stop()
            raise
        with self._cond:
            closed = self._closed
        if closed:  # close() ran while it started
            env.stop()
            raise RuntimeError("the gateway is stopping")
        return env, True

    def release(self, env: Environment, inv: Invocation | None) -> None:
        """Hand an environment back after `inv` (None: the invocation never ran). A healthy one
        becomes idle; a broken one, or one started before the last `reconfigure`, is stopped."""
        keep = inv is not None and inv.reusable and env.alive()
        with self._cond:
            self._busy.pop(env.id, None)
            if inv is not None and inv.outcome != "ok":
                self.counters.function_errors += 1
            if env.id in self._retiring:
                self._retiring.discard(env.id)
                if keep:
                    self.counters.retired += 1
                else:
                    self.counters.discarded += 1
            elif keep and not self._closed:
                env.idle_since = time.monotonic()
                self._idle.append(env)
                self._cond.notify_all()
                return
            else:
                self.counters.discarded += 1
        env.stop()

    def reconfigure(self, spec: EnvironmentSpec) -> None:
        """Run every later invocation in environments started from `spec` (Lambda's behaviour
        after a configuration update): idle environments are stopped before this returns; busy
        ones finish their invocation and are stopped on release."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the gateway is stopping")
            self.spec = spec
            stale, self._idle = self._idle, []
            self._retiring.update(self._busy)
            self.counters.config_updates += 1
            self.counters.retired += len(stale)
            self._cond.notify_all()  # the reaper's next deadline changed
        for env in stale:
            env.stop()

    def _reap(self) -> None:
        """Stop environments idle for keep_alive_s; sleeps until the next deadline."""
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    now = time.monotonic()
                    expired = [e for e in self._idle if now - e.idle_since >= self.keep_alive_s]
                    if expired:
                        self._idle = [e for e in self._idle if e not in expired]
                        self.counters.reclaimed += len(expired)
                        break
                    wait = min((e.idle_since + self.keep_alive_s - now for e in self._idle), default=None)
                    self._cond.wait(wait)
            for env in expired:
                env.stop()

    def environments(self) -> list[dict]:
        """Every live environment with its state: 'idle', 'busy', or 'retiring' (busy, started
        before the last `reconfigure`: stopped when its invocation ends)."""
        now = time.monotonic()
        with self._cond:
            rows = [{**e.describe(), "state": "retiring" if e.id in self._retiring else "busy"}
                    for e in self._busy.values()]
            rows += [{**e.describe(), "state": "idle", "idle_s": round(now - e.idle_since, 3)} for e in self._idle]
        return sorted(rows, key=lambda r: r["id"])

    def close(self) -> None:
        """Stop the reaper and every environment (idle and busy); idempotent."""
        with self._cond:
            self._closed = True
            envs = self._idle + list(self._busy.values())
            self._idle, self._busy = [], {}
            self._retiring.clear()
            self._cond.notify_all()
        if self._reaper is not threading.current_thread():
            self._reaper.join(timeout=5.0)
        for env in envs:
            env.stop()
