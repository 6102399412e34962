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
from numba import njit

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
        # ``* scale + loc``, the same operations on the same values (`_scaled_ndtri` is scipy's
        # ``ndtri``, compiled): the same floats for every u, 0 and 1 included (-inf and inf
        # there), and NaN outside [0, 1] as scipy.
        self._lognorm = ((self.params["s"], self.params.get("scale", 1.0), self.params.get("loc", 0.0))
                         if family == "lognorm" else None)

    def ppf(self, u):
        if self._lognorm is None:
            return self._frozen.ppf(u)
        s, scale, loc = self._lognorm
        u = np.asarray(u, dtype=np.float64)
        x = np.empty(u.shape)
        _scaled_ndtri(u.ravel(), s, x.reshape(-1))
        np.exp(x, out=x)
        if scale != 1.0:  # (x * 1.0 and x + 0.0 are x: exp gives no -0.0)
            x *= scale
        if loc != 0.0:
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


# scipy.special.ndtri (Cephes ndtri, as in scipy's xsf/cephes/ndtri.h): its coefficients and its
# operations in its order, so the same floats bit for bit (tests/test_dists.py). numba's math.log
# and math.sqrt are the C library's, which scipy calls, and numba contracts no multiply-add.
_S2PI = 2.50662827463100050242E0  # sqrt(2 pi)
_EXP_M2 = 0.13533528323661269189  # exp(-2): the centre is exp(-2) < u <= 1 - exp(-2)
_P0 = (-5.99633501014107895267E1, 9.80010754185999661536E1, -5.66762857469070293439E1,
       1.39312609387279679503E1, -1.23916583867381258016E0)
_Q0 = (1.95448858338141759834E0, 4.67627912898881538453E0, 8.63602421390890590575E1,
       -2.25462687854119370527E2, 2.00260212380060660359E2, -8.20372256168333339912E1,
       1.59056225126211695515E1, -1.18331621121330003142E0)
_P1 = (4.05544892305962419923E0, 3.15251094599893866154E1, 5.71628192246421288162E1,
       4.40805073893200834700E1, 1.46849561928858024014E1, 2.18663306850790267539E0,
       -1.40256079171354495875E-1, -3.50424626827848203418E-2, -8.57456785154685413611E-4)
_Q1 = (1.57799883256466749731E1, 4.53907635128879210584E1, 4.13172038254672030440E1,
       1.50425385692907503408E1, 2.50464946208309415979E0, -1.42182922854787788574E-1,
       -3.80806407691578277194E-2, -9.33259480895457427372E-4)
_P2 = (3.23774891776946035970E0, 6.91522889068984211695E0, 3.93881025292474443415E0,
       1.33303460815807542389E0, 2.01485389549179081538E-1, 1.23716634817820021358E-2,
       3.01581553508235416007E-4, 2.65806974686737550832E-6, 6.23974539184983293730E-9)
_Q2 = (6.02427039364742014255E0, 3.67983563856160859403E0, 1.37702099489081330271E0,
       2.16236993594496635890E-1, 1.34204006088543189037E-2, 3.28014464682127739104E-4,
       2.89247864745380683936E-6, 6.79019408009981274425E-9)


@njit(cache=True, inline="always")
def _polevl(x, coef):
    """Cephes polevl: the polynomial with coefficients `coef` (highest degree first), by Horner."""
    a = coef[0]
    for c in coef[1:]:
        a = a * x + c
    return a


@njit(cache=True, inline="always")
def _p1evl(x, coef):
    """Cephes p1evl: `_polevl` with a leading coefficient 1 left out of `coef`."""
    a = x + coef[0]
    for c in coef[1:]:
        a = a * x + c
    return a


@njit(cache=True, nogil=True, error_model="numpy")
def _scaled_ndtri(u, s, out):
    """``out[i] = s * ndtri(u[i])`` for 1-D arrays, ndtri's floats bit for bit.

    Cephes' ndtri is a rational function of ``u - 0.5`` in the centre and one of ``x = sqrt(-2
    log y)``, ``y = min(u, 1 - u)``, in the tails (about 27 % of uniforms), where the C library's
    log, taken twice, is most of the cost. Scipy's loop branches per value; here the centre is
    computed for every value in a loop without branches (vectorised), then the tails overwrite
    theirs, in passes over a list of their indices, each a loop of independent steps (one chain
    of log, square root and log per value would leave the core waiting on each)."""
    for i in range(u.size):
        y = u[i] - 0.5
        y2 = y * y
        out[i] = s * ((y + y * (y2 * _polevl(y2, _P0) / _p1evl(y2, _Q0))) * _S2PI)
    tails = np.empty(u.size, np.uint64)  # (unsigned: numba skips its wraparound of negative indices)
    k = 0
    for i in range(u.size):
        tails[np.uint64(k)] = i
        k += not (u[i] > _EXP_M2 and not u[i] > 1.0 - _EXP_M2)
    x = np.empty(k)
    log_x = np.empty(k)
    for m in range(k):
        y = u[tails[m]]
        x[m] = math.log(1.0 - y if y > 1.0 - _EXP_M2 else y)
    for m in range(k):
        x[m] = math.sqrt(-2.0 * x[m])
    for m in range(k):
        log_x[m] = math.log(x[m])
    for m in range(k):  # |ndtri|, into x (both rational functions, then a choice: no branch, vectorised)
        z = 1.0 / x[m]
        near = z * _polevl(z, _P1) / _p1evl(z, _Q1)  # for u > exp(-32)
        far = z * _polevl(z, _P2) / _p1evl(z, _Q2)
        x[m] = (x[m] - log_x[m] / x[m]) - (near if x[m] < 8.0 else far)
    for m in range(k):
        i = tails[m]
        y = u[i]
        v = x[m] if y > 1.0 - _EXP_M2 else -x[m]
        if not (y > 0.0 and y < 1.0):  # ndtri: -inf at 0, inf at 1, NaN outside [0, 1] and for NaN
            v = -np.inf if y == 0.0 else np.inf if y == 1.0 else np.nan
        out[i] = s * v


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
