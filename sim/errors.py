"""User-facing errors.

A `ServesimError` is a mistake in the user's input (a scenario, a profile, a pricing file, a
command-line value). The CLI prints its message and exits with code 2, without a traceback.
Programming errors stay ordinary exceptions.
"""
from __future__ import annotations

from typing import Any

_MISSING = object()


class ServesimError(Exception):
    """An error in the user's input: the message says what is wrong and where."""

    exit_code = 2


class ConfigError(ServesimError):
    """A value in an input file that is missing or not what was expected.

    `source` is the file (or another description of where the value came from), `key` the key
    path inside it (``platforms[1].service.warm_ms``), `expected` a short phrase.
    """

    def __init__(self, source: str | None, key: str, expected: str, got: Any = _MISSING):
        self.source = source
        self.key = key
        self.expected = expected
        where = f"{source}: " if source else ""
        keypart = f"{key}: " if key else ""
        msg = f"{where}{keypart}expected {expected}"
        if got is not _MISSING:
            shown = repr(got)
            if len(shown) > 80:
                shown = shown[:77] + "..."
            msg += f", got {shown}"
        super().__init__(msg)
