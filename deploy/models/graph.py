"""Writing ONNX graphs by hand from numpy weights, and counting what they compute.

`GraphBuilder` collects nodes and initializers and names intermediate values from a counter it
owns; weights come from the numpy Generator of `weights_rng(model_name)` (one root seed, one
stream per model), so building a model twice gives the same bytes and the same sha256.

Every zoo graph uses opset 17 and IR version 8, which onnxruntime has run since 1.14; they are
pinned so that the bytes do not change with the installed onnx version.

`model_stats` counts parameters and multiply-accumulates (MACs) for one sample: Conv, Gemm,
MatMul and LSTM, the operators that dominate the compute of the zoo's models; elementwise
operators, pooling and softmax are left out (as the usual FLOP counters do). Shapes come from
onnx shape inference with the batch set to 1; a MatMul by a 2-D weight whose input shape the
inference could not resolve (after an ``ai.onnx.ml`` operator) counts one row per sample.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from deploy.models.contract import TensorSpec

OPSET = 17
IR_VERSION = 8
PRODUCER = "servesim model zoo"
ZOO_SEED = 20240611  # root seed of every zoo model's weights


def weights_rng(model_name: str) -> np.random.Generator:
    """The Generator of a zoo model's weights: fixed, and different for each model."""
    return np.random.default_rng(np.random.SeedSequence([ZOO_SEED, zlib.crc32(model_name.encode())]))


def he_normal(rng: np.random.Generator, shape: Sequence[int], fan_in: int, gain: float = 2.0) -> np.ndarray:
    """Normal weights with variance gain / fan_in (He et al. 2015 for gain 2), as float32."""
    return (rng.standard_normal(shape) * np.sqrt(gain / fan_in)).astype(np.float32)


def value_info(spec: TensorSpec):
    """An ONNX ValueInfoProto for a TensorSpec."""
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(spec.dtype))
    return helper.make_tensor_value_info(spec.name, elem, list(spec.shape))


class GraphBuilder:
    """Nodes and initializers of one graph, with generated value names.

    ``op`` appends a node and returns the name of its output (a tuple of names when it has
    several); ``weight`` adds an initializer and returns its name.
    """

    def __init__(self, name: str):
        self.name = name
        self._nodes: list = []
        self._initializers: list = []
        self._next_id = 0

    def fresh(self, hint: str) -> str:
        self._next_id += 1
        return f"{hint}_{self._next_id}"

    def weight(self, array: np.ndarray, hint: str = "w") -> str:
        name = self.fresh(hint)
        self._initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def ints(self, values: Sequence[int], hint: str = "shape") -> str:
        """An int64 1-D initializer (shapes, axes, starts/ends)."""
        return self.weight(np.asarray(values, dtype=np.int64), hint)

    def scalar(self, value: float, hint: str = "c") -> str:
        return self.weight(np.asarray(value, dtype=np.float32), hint)

    def op(self, op_type: str, *inputs: str, outputs: Sequence[str] | int = 1, hint: str | None = None, **attrs):
        if isinstance(outputs, int):
            outputs = [self.fresh(hint or op_type.lower()) for _ in range(outputs)]
        outputs = list(outputs)
        self._nodes.append(helper.make_node(op_type, list(inputs), outputs, name=self.fresh(op_type), **attrs))
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    # Layers shared by several models.
    def conv(self, x: str, weight: np.ndarray, bias: np.ndarray, *, stride: int = 1, group: int = 1,
             hint: str = "conv") -> str:
        """A square 2-D convolution with 'same' padding for odd kernels (NCHW)."""
        k = weight.shape[-1]
        pad = k // 2
        return self.op("Conv", x, self.weight(weight, hint + "_w"), self.weight(bias, hint + "_b"),
                       kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4, group=group,
                       hint=hint)

    def dense(self, x: str, weight: np.ndarray, bias: np.ndarray, *, hint: str = "dense", outputs=1) -> str:
        """y = x @ weight.T + bias for x of shape [batch, in], weight of shape [out, in]."""
        return self.op("Gemm", x, self.weight(weight, hint + "_w"), self.weight(bias, hint + "_b"),
                       transB=1, hint=hint, outputs=outputs)

    def model(self, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec], doc: str) -> onnx.ModelProto:
        """The checked ModelProto (opset 17, IR 8) with the given graph inputs and outputs."""
        graph = helper.make_graph(self._nodes, self.name, [value_info(s) for s in inputs],
                                  [value_info(s) for s in outputs], initializer=self._initializers,
                                  doc_string=doc)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name=PRODUCER, ir_version=IR_VERSION, doc_string=doc)
        onnx.checker.check_model(m, full_check=True)
        return m


def save(model: onnx.ModelProto, path: Path) -> None:
    """Write a ModelProto as one file (weights inline; every zoo model is far below 2 GB)."""
    Path(path).write_bytes(model.SerializeToString())


def name_dynamic_dims(model: onnx.ModelProto, name: str = "batch") -> None:
    """Name the unnamed dynamic dimensions of the graph's inputs and outputs, in place."""
    for v in list(model.graph.input) + list(model.graph.output):
        for d in v.type.tensor_type.shape.dim:
            if not d.HasField("dim_value") and not d.dim_param:
                d.dim_param = name


@dataclass(frozen=True)
class ModelStats:
    """Size and compute of a model: `params` weights (float initializer elements), `macs`
    multiply-accumulates for one sample (None when a dimension other than batch is dynamic)."""

    params: int
    macs: int | None


def model_stats(model: onnx.ModelProto) -> ModelStats:
    """Parameters and per-sample MACs of Conv, Gemm, MatMul and LSTM nodes."""
    params = sum(int(np.prod(t.dims)) for t in model.graph.initializer
                 if t.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE))
    weights = {t.name for t in model.graph.initializer}
    # Fix the leading (batch) dimension of every input to 1; any other dynamic one means the
    # count depends on the data (a sequence length) and is not a property of the model.
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for v in m.graph.input:
        if v.name in weights:
            continue
        dims = v.type.tensor_type.shape.dim
        for i, d in enumerate(dims):
            if not d.HasField("dim_value"):
                if i > 0:
                    return ModelStats(params, None)
                d.Clear()
                d.dim_value = 1
    m = onnx.shape_inference.infer_shapes(m, data_prop=True)
    shapes = {}
    for v in list(m.graph.input) + list(m.graph.value_info) + list(m.graph.output):
        dims = v.type.tensor_type.shape.dim
        if v.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
            shapes[v.name] = tuple(d.dim_value for d in dims)
    for t in m.graph.initializer:
        shapes[t.name] = tuple(t.dims)

    def attr(node, key, default):
        for a in node.attribute:
            if a.name == key:
                return helper.get_attribute_value(a)
        return default

    macs = 0
    for node in m.graph.node:
        try:
            if node.op_type == "Conv":
                out = shapes[node.output[0]]
                w = shapes[node.input[1]]  # [out_channels, in_channels / group, kh, kw]
                macs += int(np.prod(out)) * int(np.prod(w[1:]))
            elif node.op_type == "Gemm":
                a = shapes[node.input[0]]
                k = a[0] if attr(node, "transA", 0) else a[1]
                macs += int(np.prod(shapes[node.output[0]])) * k
            elif node.op_type == "MatMul":
                b = shapes.get(node.input[1])
                if node.output[0] not in shapes and node.input[1] in weights and len(b) == 2:
                    macs += b[0] * b[1]  # unknown input shape (after an ai.onnx.ml op): one row per sample
                else:
                    macs += int(np.prod(shapes[node.output[0]])) * shapes[node.input[0]][-1]
            elif node.op_type == "LSTM":
                x = shapes[node.input[0]]  # [seq, batch, input] (layout 0)
                h = attr(node, "hidden_size", None)
                dirs = 2 if attr(node, "direction", b"forward") in (b"bidirectional", "bidirectional") else 1
                macs += dirs * x[0] * x[1] * 4 * h * (x[2] + h)
        except KeyError:
            return ModelStats(params, None)  # a shape the inference could not resolve
    return ModelStats(params, macs)
