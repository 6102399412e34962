"""Open-loop replay: send each request of a trace at its arrival time, whatever happened to the
earlier ones.

A closed-loop client (N threads sending back to back) waits for an answer before it sends the
next request, so a slow answer delays the requests behind it and the measured latencies miss
exactly the bad periods ("coordinated omission"). Here a dispatcher thread sleeps until each
request's time and hands it to an idle sender thread; when every sender is busy it starts a new
one first, so a request never waits for an earlier one's answer. What is left is the client's
own send lag (the dispatcher waking late, a new thread and connection starting, the GIL), which
is measured per request as ``send time - scheduled time`` and reported, so a run whose client
was the bottleneck shows it.

`replay(endpoint, offsets_s)` returns, per request in trace order, its `Sample` (as
`calibrate.targets` measures one), its scheduled offset, its send lag and the requests in flight
when it was sent. Ctrl-C stops the dispatch; the requests in flight finish and are kept.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from calibrate.targets import Endpoint, Sample

#: Sender threads started before the first request (more are started when they are all busy).
INITIAL_SENDERS = 8
#: The dispatcher starts this long after `replay` is called (threads and connections get ready).
LEAD_S = 0.25


@dataclass
class ReplayResult:
    """The replay of `offsets_s` (seconds after `start_wall`, Unix seconds)."""

    offsets_s: np.ndarray
    samples: list[Sample | None]        # per request, in trace order (None: never sent, after Ctrl-C)
    lag_ms: np.ndarray                  # send time - scheduled time, NaN when never sent
    in_flight: np.ndarray               # requests in flight when each was sent (itself included)
    start_wall: float
    senders: int                        # sender threads it took
    interrupted: bool = False
    errors: list[str] = field(default_factory=list)

    def lag_summary(self) -> dict:
        lag = self.lag_ms[np.isfinite(self.lag_ms)]
        if lag.size == 0:
            return {"n": 0}
        return {"n": int(lag.size), "p50_ms": float(np.percentile(lag, 50)), "p99_ms": float(np.percentile(lag, 99)),
                "max_ms": float(lag.max()), "senders": self.senders, "max_in_flight": int(self.in_flight.max())}


def replay(endpoint: Endpoint, offsets_s: np.ndarray, *, max_senders: int = 1024,
           tick: Callable[[int, float], None] | None = None) -> ReplayResult:
    """Send request i at ``start + offsets_s[i]`` (non-decreasing offsets, seconds) through
    clients of `endpoint`; see the module docstring. `tick(sent, elapsed_s)` is called about ten
    times a second. More than `max_senders` requests in flight at once is a RuntimeError (the
    target has stopped answering)."""
    offsets = np.asarray(offsets_s, dtype=float)
    if offsets.ndim != 1 or (offsets.size and (not np.isfinite(offsets).all() or (np.diff(offsets) < 0).any()
                                               or offsets[0] < 0)):
        raise ValueError("offsets_s must be finite, >= 0 and non-decreasing")
    n = offsets.size
    samples: list[Sample | None] = [None] * n
    lag = np.full(n, np.nan)
    in_flight = np.zeros(n, np.int64)
    work: queue.SimpleQueue = queue.SimpleQueue()
    lock = threading.Lock()
    state = {"idle": 0, "busy": 0, "senders": 0}
    failures: list[str] = []
    threads: list[threading.Thread] = []
    clock = {}

    def sender() -> None:
        client = endpoint.client()
        try:
            while True:
                item = work.get()
                if item is None:
                    return
                i = item
                with lock:
                    state["busy"] += 1
                    in_flight[i] = state["busy"]
                try:
                    s = client.call()
                except Exception as exc:  # noqa: BLE001 - a failed send is a sample with its error
                    s = Sample(time.time(), 0.0, "error", error=f"{type(exc).__name__}: {exc}"[:500])
                    failures.append(s.error)
                samples[i] = s
                lag[i] = (s.send_s - (clock["wall"] + offsets[i])) * 1000.0
                with lock:
                    state["busy"] -= 1
                    state["idle"] += 1
        finally:
            client.close()

    def start_sender() -> None:
        if state["senders"] >= max_senders:
            raise RuntimeError(f"replay: {max_senders} requests in flight at once; the target is not answering")
        t = threading.Thread(target=sender, name=f"replay-sender-{state['senders']}", daemon=True)
        state["senders"] += 1
        state["idle"] += 1
        threads.append(t)
        t.start()

    for _ in range(min(INITIAL_SENDERS, max(n, 1))):
        start_sender()
    clock["perf"] = time.perf_counter() + LEAD_S
    clock["wall"] = time.time() + LEAD_S
    interrupted = False
    last_tick = 0.0
    try:
        for i in range(n):
            due = clock["perf"] + offsets[i]
            while True:
                now = time.perf_counter()
                if now >= due:
                    break
                time.sleep(min(due - now, 0.1))
                if tick is not None and now - last_tick > 0.1:
                    last_tick = now
                    tick(i, now - clock["perf"])
            with lock:
                if state["idle"] == 0:
                    start_sender()
                state["idle"] -= 1
            work.put(i)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        for _ in threads:
            work.put(None)
        for t in threads:
            t.join(timeout=120.0)
    if tick is not None:
        tick(n, time.perf_counter() - clock["perf"])
    return ReplayResult(offsets, samples, lag, in_flight, clock["wall"], state["senders"], interrupted, failures)
