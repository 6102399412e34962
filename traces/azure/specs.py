"""Scenario ``trace:`` mappings of the Azure kinds → sources (errors name the key path)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

from sim.errors import ConfigError, check_keys
from sim.units import parse_duration_s

from ..base import (
    ArrivalSource,
)
from .functions2019 import Azure2019
from .functions2021 import Azure2021
from .llm import AzureLLM

# -- scenario builders ---------------------------------------------------------------------------

def _spec_paths(raw: Any, source: str | None, key: str, base_dir: Path | None, *, many: bool,
                folder_ok: bool) -> Path | list[Path]:
    """A path (or, if `many`, a list of paths) from a scenario, resolved against `base_dir`."""
    def one(value: Any, k: str) -> Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(source, k, "a path (a string)", value)
        p = Path(value).expanduser()
        if not p.is_absolute():
            p = (base_dir if base_dir is not None else Path.cwd()) / p
        if not (p.is_file() or (folder_ok and p.is_dir())):
            raise ConfigError(source, k, "an existing file" + (" or folder" if folder_ok else ""), str(p))
        return p

    if many and isinstance(raw, list):
        if not raw:
            raise ConfigError(source, key, "a non-empty list of files", raw)
        return [one(v, f"{key}[{i}]") for i, v in enumerate(raw)]
    return one(raw, key)


def _spec_window(spec: Mapping, source: str | None, key: str) -> tuple[float | None, float | None]:
    duration = start = None
    if spec.get("duration") is not None:
        duration = parse_duration_s(spec["duration"], source=source, key=f"{key}.duration", allow_zero=False)
    if spec.get("start") is not None:
        start = parse_duration_s(spec["start"], source=source, key=f"{key}.start", allow_zero=True)
    return start, duration


def _checked(spec: Any, kind: str, source: str | None, key: str) -> Mapping:
    if not isinstance(spec, Mapping):
        raise ConfigError(source, key, f"a mapping such as {{kind: {kind}, path: ...}}", spec)
    check_keys(spec, KINDS[kind][0], source=source, key=key)
    if "path" not in spec:
        raise ConfigError(source, f"{key}.path", f"a path ({kind} needs 'path')")
    return spec


def build_azure2019(spec: Mapping, source: str | None, key: str, base_dir: Path | None) -> Azure2019:
    """``{kind: azure2019, path: <day file | [files] | folder>, days: [1, 2], function | app | top_k,
    trigger, placement: uniform | equal, durations: <file | [files] | folder>, duration, start}``."""
    spec = _checked(spec, "azure2019", source, key)
    paths = _spec_paths(spec["path"], source, f"{key}.path", base_dir, many=True, folder_ok=True)
    durations = None
    if spec.get("durations") is not None:
        durations = _spec_paths(spec["durations"], source, f"{key}.durations", base_dir, many=True, folder_ok=True)
    start, duration = _spec_window(spec, source, key)
    return Azure2019(paths, days=spec.get("days"), function=spec.get("function"), app=spec.get("app"),
                     top_k=spec.get("top_k"), trigger=spec.get("trigger"),
                     placement=spec.get("placement", "uniform"), durations_paths=durations,
                     duration_s=duration, start_s=start, source=source, key=key)


def build_azure2021(spec: Mapping, source: str | None, key: str, base_dir: Path | None) -> Azure2021:
    """``{kind: azure2021, path: <csv>, app, func, duration, start}`` (start on the file's clock)."""
    spec = _checked(spec, "azure2021", source, key)
    path = _spec_paths(spec["path"], source, f"{key}.path", base_dir, many=False, folder_ok=False)
    start, duration = _spec_window(spec, source, key)
    return Azure2021(path, app=spec.get("app"), func=spec.get("func"), duration_s=duration, start_s=start,
                     source=source, key=key)


def build_azure_llm(spec: Mapping, source: str | None, key: str, base_dir: Path | None) -> AzureLLM:
    """``{kind: azure_llm, path: <csv or csv.gz>, duration, start}`` (start: seconds after the first request)."""
    spec = _checked(spec, "azure_llm", source, key)
    path = _spec_paths(spec["path"], source, f"{key}.path", base_dir, many=False, folder_ok=False)
    start, duration = _spec_window(spec, source, key)
    return AzureLLM(path, duration_s=duration, start_s=start, source=source, key=key)


_Builder = Callable[[Mapping, "str | None", str, "Path | None"], ArrivalSource]

KINDS: dict[str, tuple[tuple[str, ...], _Builder]] = {
    "azure2019": (("kind", "path", "days", "function", "app", "top_k", "trigger", "placement", "durations",
                   "duration", "start"), build_azure2019),
    "azure2021": (("kind", "path", "app", "func", "duration", "start"), build_azure2021),
    "azure_llm": (("kind", "path", "duration", "start"), build_azure_llm),
}
"""kind -> (its keys, builder), in the shape of `traces.spec.TRACE_KINDS`."""
