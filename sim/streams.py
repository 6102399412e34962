"""Random streams per purpose, from one scenario seed.

One `numpy.random.SeedSequence` per scenario seed; each purpose gets its own child (a fixed
spawn key, so adding a purpose never shifts another's stream). Per-request draws are uniforms
tied to the request's index in the trace, not to the platform: every platform configuration run
from the same seed sees the same arrivals and, request by request, the same luck (common random
numbers). No global random state is used anywhere.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Fixed spawn keys: never renumber (results for a seed would change).
ARRIVALS, WARM, COLD, KEEPALIVE, ROUTING, BOOT = range(6)


def child_seed(seed: int, purpose: int) -> np.random.SeedSequence:
    """The SeedSequence of one purpose (ARRIVALS, WARM, ...) under a scenario seed."""
    return np.random.SeedSequence(entropy=seed, spawn_key=(purpose,))


def generator(seed: int, purpose: int) -> np.random.Generator:
    """A fresh Generator for one purpose: equal arguments give identical streams."""
    return np.random.default_rng(child_seed(seed, purpose))


@dataclass
class RequestDraws:
    """Uniform draws in [0, 1) for one chunk of requests, one array per purpose."""

    warm: np.ndarray
    cold: np.ndarray
    keepalive: np.ndarray
    routing: np.ndarray


class RequestStreams:
    """Per-request uniforms, consumed chunk by chunk in arrival order.

    Each purpose draws exactly one uniform per request whether or not the request needs it
    (a warm request still consumes its cold-start draw), so request i gets the same draws in
    every configuration.
    """

    def __init__(self, seed: int):
        self._warm = generator(seed, WARM)
        self._cold = generator(seed, COLD)
        self._keep = generator(seed, KEEPALIVE)
        self._route = generator(seed, ROUTING)

    def next(self, n: int) -> RequestDraws:
        return RequestDraws(self._warm.random(n), self._cold.random(n),
                            self._keep.random(n), self._route.random(n))
