"""User-facing errors.

A `ServesimError` is a mistake in the user's input (a scenario, a profile, a pricing file, a
command-line value). The CLI prints its message and exits with code 2, without a traceback.
Programming errors stay ordinary exceptions.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Iterable, Mapping

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


def check_keys(data: Mapping, allowed: Iterable[str], *, source: str | None, key: str) -> None:
    """Refuse any key of `data` not in `allowed`, naming its path and the closest valid key."""
    allowed = list(allowed)
    for name in data:
        if name in allowed:
            continue
        path = f"{key}.{name}" if key else str(name)
        close = difflib.get_close_matches(str(name), allowed, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ConfigError(source, path, f"a known key ({hint}valid keys here: {', '.join(allowed)})")


def read_user_file(path: str | Path, what: str) -> str:
    """The text of a file the user named; a missing or unreadable one is a ConfigError.

    `what` describes the file for the message, e.g. "scenario file (YAML)".
    """
    source = str(path)
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, "", f"an existing {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, "", f"a readable {what} ({getattr(exc, 'strerror', None) or exc})") from None
