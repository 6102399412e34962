"""Distribution specs as objects.

A spec is a small mapping (DESIGN.md, "Distribution spec")::

    {dist: constant, value: 100}
    {dist: expon, mean: 100}
    {dist: lognorm, s: 0.4, scale: 95, loc: 0}   # any scipy.stats continuous family, scipy's parameters
    {dist: empirical, samples: [...]}            # or {dist: empirical, file: samples.npy}
    {dist: scaled, factor: 0.6, of: {...}}        # factor * X (memory scaling of a measured profile)
    {dist: mixture, weights: [...], components: [...]}   # and {dist: spliced, at, body, tail}: dists_composite.py

Every distribution samples by inverse transform: ``sample(rng, n) == ppf(rng.random(n))``. The
engines draw one uniform per request and purpose and map it through `ppf`, so two
configurations that differ only in a distribution's parameters see the same requests with the
same luck (a request that is slow on one is slow on the other: common random numbers).

Units are not part of the spec: they are in the key that holds it (``warm_ms``, ``boot_s``).
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .errors import ConfigError

__all__ = ["Distribution", "Constant", "Exponential", "ScipyDist", "Empirical", "Scaled", "parse_dist"]


class Distribution(ABC):
    """A non-negative continuous distribution (a duration)."""

    @abstractmethod
    def ppf(self, u: np.ndarray) -> np.ndarray:
        """Quantile function, vectorised over uniforms u in [0, 1)."""

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n independent draws, by inverse transform of ``rng.random(n)``."""
        return self.ppf(rng.random(n))

    @abstractmethod
    def mean(self) -> float:
        """Exact mean (the sample mean for an empirical distribution)."""

    @abstractmethod
    def to_spec(self) -> dict:
        """The spec this distribution was built from (JSON-serialisable)."""

    def scaled(self, factor: float) -> "Distribution":
        """The distribution of ``factor * X``."""
        return Scaled(self, factor)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.to_spec() == other.to_spec()  # type: ignore[union-attr]

    def __hash__(self) -> int:
        return hash(repr(self))


class Constant(Distribution):
    def __init__(self, value: float):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"constant value must be finite and >= 0, got {value!r}")
        self.value = float(value)

    def ppf(self, u):
        return np.full(np.shape(u), self.value)

    def mean(self) -> float:
        return self.value

    def to_spec(self) -> dict:
        return {"dist": "constant", "value": self.value}

    def __repr__(self) -> str:
        return f"Constant(value={self.value:g})"


class Exponential(Distribution):
    """Exponential by its mean (not scipy's `scale`/`loc`, though they coincide)."""

    def __init__(self, mean: float):
        if not (math.isfinite(mean) and mean > 0):
            raise ValueError(f"expon mean must be finite and > 0, got {mean!r}")
        self._mean = float(mean)

    def ppf(self, u):
        return -self._mean * np.log1p(-np.asarray(u, dtype=float))

    def mean(self) -> float:
        return self._mean

    def to_spec(self) -> dict:
        return {"dist": "expon", "mean": self._mean}

    def __repr__(self) -> str:
        return f"Exponential(mean={self._mean:g})"


class ScipyDist(Distribution):
    """Any continuous family of scipy.stats, with scipy's own parameter names."""

    def __init__(self, family: str, params: Mapping[str, float]):
        import scipy.stats as st

        gen = getattr(st, family, None)
        if not isinstance(gen, st.rv_continuous):
            raise ValueError(f"{family!r} is not a continuous distribution of scipy.stats")
        self.family = family
        self.params = {k: float(v) for k, v in params.items()}
        if not all(math.isfinite(v) for v in self.params.values()):
            raise ValueError(f"parameters of scipy.stats.{family} must be finite, got {self.params}")
        try:
            self._frozen = gen(**self.params)
            m = float(self._frozen.mean())
            lo = float(self._frozen.ppf(0.0))
            med = float(self._frozen.ppf(0.5))
        except TypeError as exc:  # unknown or missing parameter names
            raise ValueError(f"bad parameters for scipy.stats.{family}: {exc}") from None
        if math.isnan(med) or math.isnan(m):  # scipy answers nan for out-of-range parameters
            raise ValueError(f"parameters out of range for scipy.stats.{family}: {self.params}")
        if lo < 0:
            raise ValueError(f"scipy.stats.{family}{self.params} takes negative values; durations must be >= 0 (set loc)")
        self._mean = m
        # lognorm, the common case, skips scipy's generic `ppf` (argument checks, masks, `place`),
        # which costs more than the quantiles themselves. It is scipy's own `lognorm._ppf` then
        # ``* scale + loc``, the same operations on the same values: the same floats for every u,
        # 0 and 1 included (``ndtri`` gives -inf and inf there), and NaN outside [0, 1] as scipy.
        self._lognorm = ((self.params["s"], self.params.get("scale", 1.0), self.params.get("loc", 0.0))
                         if family == "lognorm" else None)

    def ppf(self, u):
        if self._lognorm is None:
            return self._frozen.ppf(u)
        from scipy.special import ndtri

        s, scale, loc = self._lognorm
        x = np.asarray(ndtri(u))  # a new array: the steps below work in place
        x *= s
        np.exp(x, out=x)
        x *= scale
        x += loc
        return x if x.ndim else x[()]

    def mean(self) -> float:
        return self._mean

    def to_spec(self) -> dict:
        return {"dist": self.family, **self.params}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        return f"ScipyDist({self.family}, {args})"

    def __hash__(self) -> int:  # equal params in another order are equal (__eq__ compares dicts)
        return hash((self.family, tuple(sorted(self.params.items()))))


class Empirical(Distribution):
    """Resampling of measured values: each draw is one of the samples, equally likely."""

    def __init__(self, samples, source: str | None = None):
        arr = np.sort(np.asarray(samples, dtype=float).ravel())
        if arr.size == 0:
            raise ValueError("empirical distribution needs at least one sample")
        if not np.all(np.isfinite(arr)) or arr[0] < 0:
            raise ValueError("empirical samples must be finite and >= 0")
        self.samples = arr
        self.source = source

    def ppf(self, u):
        idx = np.minimum((np.asarray(u) * self.samples.size).astype(np.int64), self.samples.size - 1)
        return self.samples[idx]

    def mean(self) -> float:
        return float(self.samples.mean())

    def to_spec(self) -> dict:
        if self.source is not None:
            return {"dist": "empirical", "file": self.source}
        return {"dist": "empirical", "samples": self.samples.tolist()}

    def __repr__(self) -> str:
        return f"Empirical(n={self.samples.size}, mean={self.mean():g})"


class Scaled(Distribution):
    """factor * X: a measured distribution carried to another CPU share (memory size)."""

    def __init__(self, base: Distribution, factor: float):
        if not (math.isfinite(factor) and factor > 0):
            raise ValueError(f"scale factor must be finite and > 0, got {factor!r}")
        self.base = base
        self.factor = float(factor)

    def ppf(self, u):
        return self.factor * self.base.ppf(u)

    def mean(self) -> float:
        return self.factor * self.base.mean()

    def to_spec(self) -> dict:
        return {"dist": "scaled", "factor": self.factor, "of": self.base.to_spec()}

    def __repr__(self) -> str:
        return f"{self.factor:g} * {self.base!r}"


def parse_dist(spec: Any, *, source: str | None = None, key: str = "",
               base_dir: Path | None = None) -> Distribution:
    """Build a Distribution from a spec mapping; errors name `source` (a file) and `key`.

    A bare number is accepted as a constant. ``file:`` paths of empirical specs resolve
    relative to `base_dir` (the folder of the file that holds the spec).
    """
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        spec = {"dist": "constant", "value": spec}
    if not isinstance(spec, Mapping):
        raise ConfigError(source, key, "a distribution such as {dist: lognorm, s: 0.4, scale: 95}", spec)
    if "dist" not in spec:
        raise ConfigError(source, f"{key}.dist" if key else "dist",
                          "a family name (constant, expon, empirical, or a scipy.stats family)")
    family = spec["dist"]
    params = {k: v for k, v in spec.items() if k != "dist"}
    k = key or "dist"

    def num(name: str) -> float:
        if name not in params:
            raise ConfigError(source, f"{k}.{name}", f"a number ({family} needs '{name}')")
        v = params[name]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(source, f"{k}.{name}", "a number", v)
        return float(v)

    def only(*names: str) -> None:
        extra = sorted(set(params) - set(names))
        if extra:
            raise ConfigError(source, f"{k}.{extra[0]}", f"one of the keys of {family}: {', '.join(names)}",
                              extra[0])

    try:
        if family == "constant":
            only("value")
            return Constant(num("value"))
        if family in ("expon", "exponential"):
            if "mean" not in params and "scale" in params:
                only("scale", "loc")
                if params.get("loc", 0):
                    return ScipyDist("expon", {"loc": num("loc"), "scale": num("scale")})
                return Exponential(num("scale"))
            only("mean")
            return Exponential(num("mean"))
        if family in ("mixture", "spliced"):
            from .dists_composite import parse_composite

            return parse_composite(spec, source=source, key=key, base_dir=base_dir)
        if family == "scaled":
            only("factor", "of")
            if "of" not in params:
                raise ConfigError(source, f"{k}.of", "the distribution to scale (a spec)")
            return Scaled(parse_dist(params["of"], source=source, key=f"{k}.of", base_dir=base_dir), num("factor"))
        if family == "empirical":
            if ("samples" in params) == ("file" in params):
                raise ConfigError(source, k, "exactly one of 'samples' (a list) or 'file' (a .npy file)")
            only("samples", "file")
            if "samples" in params:
                s = params["samples"]
                if not isinstance(s, (list, tuple)) or not all(
                        isinstance(x, (int, float)) and not isinstance(x, bool) for x in s):
                    raise ConfigError(source, f"{k}.samples", "a list of numbers")
                return Empirical(s)
            fname = params["file"]
            if not isinstance(fname, str):
                raise ConfigError(source, f"{k}.file", "a path to a .npy file", fname)
            path = Path(fname)
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
            if not path.is_file():
                raise ConfigError(source, f"{k}.file", "an existing .npy file", str(path))
            try:
                data = np.load(path, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise ConfigError(source, f"{k}.file", f"a readable .npy array ({exc})", str(path)) from None
            return Empirical(data, source=str(path.resolve()))
        if not isinstance(family, str):
            raise ConfigError(source, f"{k}.dist", "a family name", family)
        for name, v in params.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ConfigError(source, f"{k}.{name}", "a number", v)
        return ScipyDist(family, params)
    except ValueError as exc:
        raise ConfigError(source, k, f"a valid distribution ({exc})", dict(spec)) from None
