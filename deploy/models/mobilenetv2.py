"""MobileNetV2 (Sandler et al. 2018), the ImageNet classifier at 224x224, with random weights.

The architecture is the paper's (width multiplier 1.0, as in torchvision's ``mobilenet_v2``):
a 3x3 stride-2 convolution to 32 channels, seventeen inverted residual blocks (1x1 expansion by
6 except in the first block, 3x3 depthwise, 1x1 linear projection; a residual connection where
the stride is 1 and the width unchanged) with widths 16-24-32-64-96-160-320, a 1x1 convolution to
1280, global average pooling and a 1000-way classifier with a softmax. Activations are ReLU6
(``Clip(0, 6)``). Batch normalisation is folded into the convolutions' weights and biases, as an
exporter does for inference. About 300 M multiply-accumulates and 3.5 M parameters per image.

Weights are random (He-normal, from a fixed seed), not trained: the compute, memory traffic and
latency are those of the trained model (dense float32 kernels do the same work whatever the
values), but the predicted classes mean nothing.

Contract: ``input`` float32 [batch, 3, 224, 224] (an RGB image, normalised as for ImageNet) →
``probabilities`` float32 [batch, 1000] (softmax over the ImageNet classes).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from deploy.models.contract import ModelInfo, TensorSpec, ZooEntry
from deploy.models.graph import GraphBuilder, he_normal, save, weights_rng

NAME = "mobilenetv2"
# (expansion t, output channels c, repeats n, first stride s), from the paper's Table 2.
BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
STEM_CHANNELS = 32
LAST_CHANNELS = 1280
NUM_CLASSES = 1000
IMAGE_SIZE = 224

INFO = ModelInfo(
    name=NAME,
    description="MobileNetV2 ImageNet classifier, 224x224 RGB → 1000-class softmax (~300 M MACs, 3.5 M params)",
    inputs=(TensorSpec("input", "float32", ("batch", 3, IMAGE_SIZE, IMAGE_SIZE)),),
    outputs=(TensorSpec("probabilities", "float32", ("batch", NUM_CLASSES)),),
    notes="random weights: the same compute as the trained model, meaningless classes",
)


def _conv(g: GraphBuilder, rng: np.random.Generator, x: str, c_in: int, c_out: int, k: int, *,
          stride: int = 1, depthwise: bool = False, relu6: bool = True, hint: str) -> str:
    """Convolution with folded batch norm (a bias), then ReLU6 unless it is a linear projection."""
    group = c_in if depthwise else 1
    fan_in = (c_in // group) * k * k
    w = he_normal(rng, (c_out, c_in // group, k, k), fan_in, gain=2.0 if relu6 else 1.0)
    b = (0.01 * rng.standard_normal(c_out)).astype(np.float32)
    y = g.conv(x, w, b, stride=stride, group=group, hint=hint)
    if relu6:
        y = g.op("Clip", y, g.scalar(0.0, "zero"), g.scalar(6.0, "six"), hint=hint + "_relu6")
    return y


def _inverted_residual(g, rng, x: str, c_in: int, c_out: int, stride: int, t: int, hint: str) -> str:
    h = x
    hidden = c_in * t
    if t != 1:
        h = _conv(g, rng, h, c_in, hidden, 1, hint=hint + "_expand")
    h = _conv(g, rng, h, hidden, hidden, 3, stride=stride, depthwise=True, hint=hint + "_dw")
    h = _conv(g, rng, h, hidden, c_out, 1, relu6=False, hint=hint + "_project")
    if stride == 1 and c_in == c_out:
        h = g.op("Add", x, h, hint=hint + "_residual")
    return h


def build(path: Path) -> None:
    rng = weights_rng(NAME)
    g = GraphBuilder(NAME)
    x = _conv(g, rng, "input", 3, STEM_CHANNELS, 3, stride=2, hint="stem")
    c_in = STEM_CHANNELS
    n_block = 0
    for t, c, n, s in BLOCKS:
        for i in range(n):
            n_block += 1
            x = _inverted_residual(g, rng, x, c_in, c, s if i == 0 else 1, t, hint=f"block{n_block}")
            c_in = c
    x = _conv(g, rng, x, c_in, LAST_CHANNELS, 1, hint="last")
    x = g.op("GlobalAveragePool", x, hint="pool")
    x = g.op("Flatten", x, axis=1, hint="flatten")
    w = he_normal(rng, (NUM_CLASSES, LAST_CHANNELS), LAST_CHANNELS, gain=1.0)
    logits = g.dense(x, w, np.zeros(NUM_CLASSES, np.float32), hint="classifier")
    g.op("Softmax", logits, axis=1, outputs=["probabilities"])
    save(g.model(INFO.inputs, INFO.outputs, doc=INFO.description), path)


def sample_input(rng: np.random.Generator, batch: int = 1) -> dict[str, np.ndarray]:
    """Images as the ImageNet preprocessing leaves them: roughly zero mean, unit variance."""
    return {"input": rng.standard_normal((batch, 3, IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)}


ENTRY = ZooEntry(info=INFO, build=build, sample_input=sample_input, version=1)
