"""The model zoo: its registry, building models into the cache, and resolving a model argument.

A zoo name resolves to ``<cache>/models/NAME.onnx``, built on first use, with ``NAME.json``
beside it (sha256, contract, compute, package versions, build time). A cached file is reused
while its JSON names the zoo entry's current version and its bytes still hash to the recorded
sha256; otherwise it is rebuilt. Builds are deterministic (fixed seeds), so the same versions of
the packages give the same bytes and sha256 on every machine.

Anything else given as a model is a path to a user's ONNX file: its contract is read from the
graph and its sample inputs are drawn from that contract.
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib.metadata
import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from deploy.models import cifar, lstm, minilm, mobilenetv2, recommender, tabular
from deploy.models.cache import models_dir, sha256_file, write_atomic
from deploy.models.contract import ModelFile, ModelInfo, ZooEntry, info_from_graph, sample_from_specs
from sim.atomic import atomic_path
from sim.errors import ServesimError

ZOO: dict[str, ZooEntry] = {e.info.name: e for e in (
    mobilenetv2.ENTRY, cifar.ENTRY, tabular.ENTRY, lstm.ENTRY, recommender.ENTRY, minilm.ENTRY)}

METADATA_SCHEMA = "servesim.model/1"


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.version(distribution)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def missing_requirements(name: str) -> list[str]:
    """The distributions a zoo model's build needs that are not installed."""
    return [d for d in _entry(name).requires if not _installed(d)]


def _entry(name: str) -> ZooEntry:
    try:
        return ZOO[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(ZOO), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ServesimError(f"unknown model '{name}'{hint}: expected a zoo name ({', '.join(ZOO)}) "
                            "or a path to an .onnx file") from None


def list_models() -> list[ModelInfo]:
    """The zoo's models; one whose extra is not installed says so in its notes."""
    out = []
    for name, entry in ZOO.items():
        info = entry.info
        missing = missing_requirements(name)
        if missing:
            info = dataclasses.replace(info, notes=f"{info.notes}; unavailable here: needs {', '.join(missing)} "
                                                   f"(pip install 'servesim[{entry.extra}]')")
        out.append(info)
    return out


def _versions(entry: ZooEntry) -> dict[str, str]:
    dists = ("numpy", "onnx") + entry.requires
    out = {"python": platform.python_version()}
    out.update({d: importlib.metadata.version(d) for d in dists if _installed(d)})
    return out


def _cached(name: str, path: Path, meta_path: Path) -> ModelFile | None:
    """The cached build of a zoo model, if it is whole and of the entry's current version."""
    entry = ZOO[name]
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("zoo_version") != entry.version or meta.get("sha256") != sha256_file(path):
            return None
    except (OSError, ValueError):
        return None
    return ModelFile(name, path, meta["sha256"], entry.info)


def _check_contract(info: ModelInfo, built: ModelInfo) -> None:
    """A zoo graph must have exactly its documented inputs and outputs (a programming error if not)."""
    if (info.inputs, info.outputs) != (built.inputs, built.outputs):
        raise RuntimeError(f"{info.name}: the built graph's contract {built.inputs} → {built.outputs} is not "
                           f"the documented {info.inputs} → {info.outputs}")


def build_model(name: str, *, force: bool = False) -> ModelFile:
    """Build zoo model `name` into the cache (unless a valid build is there and not `force`).

    Writes ``NAME.onnx`` and ``NAME.json`` atomically. Raises ServesimError for an unknown name,
    a missing extra, or weights that cannot be fetched.
    """
    import onnx

    from deploy.models.graph import model_stats

    entry = _entry(name)
    missing = missing_requirements(name)
    if missing:
        raise ServesimError(f"model '{name}' needs {', '.join(missing)}, not installed: "
                            f"pip install 'servesim[{entry.extra}]'")
    path = models_dir() / f"{name}.onnx"
    meta_path = models_dir() / f"{name}.json"
    if not force:
        cached = _cached(name, path, meta_path)
        if cached is not None:
            return cached
    started = time.perf_counter()
    with atomic_path(path) as tmp:
        provenance = entry.build(tmp) or {}
        sha = sha256_file(tmp)
        proto = onnx.load(str(tmp))
        _check_contract(entry.info, info_from_graph(proto, name, entry.info.description))
        stats = model_stats(proto)
        del proto
    meta: dict[str, Any] = {
        "schema": METADATA_SCHEMA,
        "name": name,
        "file": path.name,
        "sha256": sha,
        "size_bytes": path.stat().st_size,
        "zoo_version": entry.version,
        **entry.info.to_dict(),
        "params": stats.params,
        "macs_per_sample": stats.macs,
        "provenance": dict(provenance),
        "versions": _versions(entry),
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "build_s": round(time.perf_counter() - started, 3),
    }
    write_atomic(meta_path, (json.dumps(meta, indent=2) + "\n").encode("utf-8"))
    return ModelFile(name, path, sha, entry.info)


def _looks_like_path(arg: str) -> bool:
    return arg.endswith(".onnx") or "/" in arg or "\\" in arg


def load_user_model(path: str | Path) -> ModelFile:
    """A user's ONNX file, its contract read from the graph. ServesimError if it is missing or
    not a valid ONNX model."""
    import onnx

    path = Path(path).expanduser()
    if not path.is_file():
        raise ServesimError(f"{path}: no such ONNX file")
    try:
        proto = onnx.load(str(path), load_external_data=False)
        onnx.checker.check_model(str(path))
    except Exception as exc:  # onnx raises protobuf DecodeError, ValidationError, OSError, ...
        raise ServesimError(f"{path}: not a valid ONNX model ({type(exc).__name__}: {str(exc).strip()[:200]})") from None
    opsets = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in proto.opset_import)
    producer = f"{proto.producer_name} {proto.producer_version}".strip() or "unknown producer"
    info = info_from_graph(proto, path.name, proto.doc_string.strip() or f"user ONNX file {path}",
                           notes=f"{producer}; opset {opsets}")
    return ModelFile(path.name, path.resolve(), sha256_file(path), info)


def resolve_model(name_or_path: str | Path) -> ModelFile:
    """A zoo name (built on first use) or a path to an .onnx file, as a ModelFile.

    A bare word is a zoo name; anything ending in ``.onnx`` or containing a path separator (or
    given as a Path) is a file.
    """
    if isinstance(name_or_path, Path) or _looks_like_path(str(name_or_path)):
        return load_user_model(name_or_path)
    return build_model(_entry(str(name_or_path)).info.name)


def sample_input(model: ModelFile, rng: np.random.Generator, batch: int = 1) -> dict[str, np.ndarray]:
    """Valid inputs for `model`: the zoo's generator for a zoo model, else drawn from its
    contract (dynamic dimensions = `batch`)."""
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    entry = ZOO.get(model.name)
    if entry is not None:
        return entry.sample_input(rng, batch)
    return sample_from_specs(model.info.inputs, rng, batch)


def metadata(model: ModelFile) -> Mapping[str, Any] | None:
    """The JSON recorded beside a built zoo model (None for a user's file or a missing record)."""
    meta_path = model.path.with_suffix(".json")
    if model.name not in ZOO or not meta_path.is_file():
        return None
    return json.loads(meta_path.read_text(encoding="utf-8"))
