"""Durations with units: seconds as numbers, or strings like ``90s``, ``15m``, ``4h``, ``30d``."""
from __future__ import annotations

import math
import re
from typing import Any

from .errors import ConfigError

_UNIT_S = {"ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ms|s|min|m|h|d|w)?\s*$")


def parse_duration_s(value: Any, *, source: str | None = None, key: str = "",
                     allow_zero: bool = True) -> float:
    """Return a duration in seconds from a number (seconds) or a string with a unit."""
    if isinstance(value, bool):
        raise ConfigError(source, key, "a duration (seconds, or a string like '90s', '15m', '4h', '30d')", value)
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (m := _RE.match(value)):
        seconds = float(m.group(1)) * _UNIT_S[m.group(2) or "s"]
    else:
        raise ConfigError(source, key, "a duration (seconds, or a string like '90s', '15m', '4h', '30d')", value)
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        raise ConfigError(source, key, "a positive duration" if not allow_zero else "a non-negative duration", value)
    return seconds
