"""What a model takes and returns: tensor specs, model info, a built model file, zoo entries.

A contract is data: the names, element types and shapes of a model's inputs and outputs, where a
dimension is an int (fixed), a string (a named dynamic dimension such as ``"batch"``) or None
(dynamic, unnamed). The zoo documents each model's contract by hand; for a user's ONNX file it is
read from the graph (`info_from_graph`). `sample_from_specs` draws inputs that satisfy a
contract when nothing more is known about the model (every dynamic dimension becomes ``batch``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from sim.errors import ServesimError


@dataclass(frozen=True)
class TensorSpec:
    """One input or output: name, numpy dtype name ('float32', 'int64', ...) and shape.

    A dimension is an int, a string naming a dynamic dimension, or None (dynamic, unnamed).
    """

    name: str
    dtype: str
    shape: tuple

    def __post_init__(self):
        np.dtype(self.dtype)  # raises TypeError on an unknown dtype name
        object.__setattr__(self, "shape", tuple(self.shape))
        for d in self.shape:
            if not (d is None or isinstance(d, str) or (isinstance(d, int) and d >= 0)):
                raise ValueError(f"{self.name}: a dimension is an int >= 0, a name or None, got {d!r}")

    def concrete_shape(self, batch: int) -> tuple[int, ...]:
        """The shape with every dynamic dimension set to `batch`."""
        return tuple(d if isinstance(d, int) else batch for d in self.shape)

    def matches(self, shape: Sequence[int], dtype: Any) -> bool:
        """Whether an actual array shape and dtype satisfy this spec (dynamic dims match any size)."""
        if np.dtype(dtype) != np.dtype(self.dtype) or len(shape) != len(self.shape):
            return False
        return all(not isinstance(d, int) or d == n for d, n in zip(self.shape, shape))

    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


@dataclass(frozen=True)
class ModelInfo:
    """A model's documented contract: what it is, its inputs and outputs, and caveats."""

    name: str
    description: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    notes: str = ""

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description,
                "inputs": [s.to_dict() for s in self.inputs],
                "outputs": [s.to_dict() for s in self.outputs], "notes": self.notes}


@dataclass(frozen=True)
class ModelFile:
    """A model on disk: its name (a zoo name, or the file name of a user's file), path, the
    sha256 of its bytes (hex), and its contract."""

    name: str
    path: Path
    sha256: str
    info: ModelInfo


@dataclass(frozen=True)
class ZooEntry:
    """A model of the zoo.

    `build(path)` writes the ONNX file to `path` (the same bytes every time) and may return a
    mapping of provenance to record beside it; `sample_input(rng, batch)` draws valid inputs.
    `version` changes whenever the built bytes would: a cached file of another version is
    rebuilt. `requires` lists the distributions the build needs beyond onnx and numpy, installed
    by the package extra `extra`.
    """

    info: ModelInfo
    build: Callable[[Path], Mapping[str, Any] | None]
    sample_input: Callable[[np.random.Generator, int], dict[str, np.ndarray]]
    version: int
    requires: tuple[str, ...] = field(default=())
    extra: str | None = None


def info_from_graph(model, name: str, description: str, notes: str = "") -> ModelInfo:
    """The contract of an ONNX ModelProto, read from its graph's inputs and outputs.

    Graph inputs that are also initializers (older exporters list weights as inputs) are left
    out: they have defaults and are not fed.
    """
    import onnx

    def spec(value) -> TensorSpec:
        t = value.type
        if t.WhichOneof("value") != "tensor_type":
            raise ServesimError(f"{name}: input/output '{value.name}' is not a tensor "
                                f"({t.WhichOneof('value')}); only tensor inputs and outputs are supported")
        try:
            dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.tensor_type.elem_type)).name
        except (KeyError, TypeError, ValueError):
            raise ServesimError(f"{name}: '{value.name}' has an unsupported element type "
                                f"{onnx.TensorProto.DataType.Name(t.tensor_type.elem_type)}") from None
        dims = []
        for d in t.tensor_type.shape.dim:
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            else:
                dims.append(d.dim_param or None)
        return TensorSpec(value.name, dtype, tuple(dims))

    weights = {init.name for init in model.graph.initializer}
    return ModelInfo(
        name=name, description=description,
        inputs=tuple(spec(v) for v in model.graph.input if v.name not in weights),
        outputs=tuple(spec(v) for v in model.graph.output), notes=notes)


def sample_from_specs(specs: Sequence[TensorSpec], rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
    """Inputs that satisfy `specs`, knowing nothing else about the model.

    Dynamic dimensions become `batch`; floats are standard normal; integers are 0 or 1 (valid as
    indices, masks and flags); booleans are fair coin flips.
    """
    out = {}
    for s in specs:
        shape = s.concrete_shape(batch)
        dt = np.dtype(s.dtype)
        if dt.kind == "f":
            out[s.name] = rng.standard_normal(shape).astype(dt)
        elif dt.kind in "iu":
            out[s.name] = rng.integers(0, 2, size=shape).astype(dt)
        elif dt.kind == "b":
            out[s.name] = rng.random(shape) < 0.5
        else:
            raise ServesimError(f"input '{s.name}': cannot draw a sample of element type {s.dtype}")
    return out
