"""A small CIFAR-10 convolutional classifier (the classic Keras example), with random weights.

conv 3x3 32 – conv 3x3 32 – max-pool 2 – conv 3x3 64 – conv 3x3 64 – max-pool 2 – dense 512 –
dense 10 – softmax, ReLU after every convolution and the hidden dense layer, 'same' padding.
About 27 M multiply-accumulates and 2.2 M parameters per image. Weights are random (He-normal,
fixed seed): the compute is that of the trained model, the predicted classes mean nothing.

Contract: ``input`` float32 [batch, 3, 32, 32] (an RGB image scaled to [0, 1]) →
``probabilities`` float32 [batch, 10] (softmax over the CIFAR-10 classes).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from deploy.models.contract import ModelInfo, TensorSpec, ZooEntry
from deploy.models.graph import GraphBuilder, he_normal, save, weights_rng

NAME = "cifar10-cnn"
CONV_CHANNELS = (32, 32, "pool", 64, 64, "pool")
HIDDEN = 512
NUM_CLASSES = 10
IMAGE_SIZE = 32

INFO = ModelInfo(
    name=NAME,
    description="CIFAR-10 CNN conv32-conv32-pool-conv64-conv64-pool-dense512-dense10, 32x32 RGB → 10-class softmax",
    inputs=(TensorSpec("input", "float32", ("batch", 3, IMAGE_SIZE, IMAGE_SIZE)),),
    outputs=(TensorSpec("probabilities", "float32", ("batch", NUM_CLASSES)),),
    notes="random weights: the same compute as the trained model, meaningless classes",
)


def build(path: Path) -> None:
    rng = weights_rng(NAME)
    g = GraphBuilder(NAME)
    x, c_in, size = "input", 3, IMAGE_SIZE
    for i, layer in enumerate(CONV_CHANNELS):
        if layer == "pool":
            x = g.op("MaxPool", x, kernel_shape=[2, 2], strides=[2, 2], hint="pool")
            size //= 2
            continue
        w = he_normal(rng, (layer, c_in, 3, 3), c_in * 9)
        x = g.op("Relu", g.conv(x, w, np.zeros(layer, np.float32), hint=f"conv{i}"))
        c_in = layer
    x = g.op("Flatten", x, axis=1)
    flat = c_in * size * size
    x = g.op("Relu", g.dense(x, he_normal(rng, (HIDDEN, flat), flat), np.zeros(HIDDEN, np.float32), hint="hidden"))
    logits = g.dense(x, he_normal(rng, (NUM_CLASSES, HIDDEN), HIDDEN, gain=1.0), np.zeros(NUM_CLASSES, np.float32),
                     hint="classifier")
    g.op("Softmax", logits, axis=1, outputs=["probabilities"])
    save(g.model(INFO.inputs, INFO.outputs, doc=INFO.description), path)


def sample_input(rng: np.random.Generator, batch: int = 1) -> dict[str, np.ndarray]:
    """Random images with pixel values in [0, 1]."""
    return {"input": rng.random((batch, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)}


ENTRY = ZooEntry(info=INFO, build=build, sample_input=sample_input, version=1)
