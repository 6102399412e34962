"""Progress bars for long simulations: shown on a terminal once a run has taken a couple of seconds.

The bar advances in simulated time (the trace's window is known up front, the number of requests
is not) and shows the simulated request rate and the ETA.
"""
from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class SimProgress:
    """Context manager handing out one progress callback per platform (`for_platform`)."""

    def __init__(self, horizon_s: float | None, *, enabled: bool | None = None, delay_s: float = 2.0):
        console = Console(stderr=True)
        self.enabled = console.is_terminal if enabled is None else enabled
        self.horizon_s = horizon_s
        self.delay_s = delay_s
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                  TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                  console=console, transient=True)
        self._started = False
        self._t0 = 0.0

    def __enter__(self):
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self._started:
            self._progress.stop()
        return False

    def with_horizon(self, horizon_s: float | None) -> "SimProgress":
        """Set the bar's total (simulated seconds) once it is known."""
        self.horizon_s = horizon_s
        return self

    def for_platform(self, cfg):
        return self.task(f"simulating {cfg.name}")

    def task(self, description: str):
        """A callback (n_requests, sim_time_s) for one bar, or None when progress is off."""
        if not self.enabled or not self.horizon_s:
            return None
        state = {"task": None, "n": 0, "t0": time.perf_counter()}

        def update(n_requests: int, sim_time_s: float) -> None:
            state["n"] += n_requests
            now = time.perf_counter()
            if not self._started:
                if now - self._t0 < self.delay_s:
                    return
                self._progress.start()
                self._started = True
            if state["task"] is None:
                state["task"] = self._progress.add_task(description, total=self.horizon_s, rate="")
            rate = state["n"] / max(now - state["t0"], 1e-9)
            self._progress.update(state["task"], completed=min(sim_time_s, self.horizon_s),
                                  rate=f"{rate:,.0f} req/s")

        return update

