"""A time-series forecaster: the ONNX LSTM operator over a window, then a dense head.

The last `WINDOW` observations (e.g. two days of hourly load) go through one LSTM layer of
`HIDDEN` units; its final hidden state goes through a dense layer to the next `HORIZON` values.
Weights are random (uniform in ±1/sqrt(hidden), PyTorch's initialisation, fixed seed): the compute
is that of a trained forecaster of this size, the forecasts mean nothing.

Contract: ``window`` float32 [batch, 48, 1] (one standardised series per row, oldest first) →
``forecast`` float32 [batch, 24].
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from deploy.models.contract import ModelInfo, TensorSpec, ZooEntry
from deploy.models.graph import GraphBuilder, save, weights_rng

NAME = "lstm-forecaster"
WINDOW = 48
FEATURES = 1
HIDDEN = 64
HORIZON = 24

INFO = ModelInfo(
    name=NAME,
    description=f"LSTM forecaster: {WINDOW} past values → LSTM({HIDDEN}) → dense → next {HORIZON} values",
    inputs=(TensorSpec("window", "float32", ("batch", WINDOW, FEATURES)),),
    outputs=(TensorSpec("forecast", "float32", ("batch", HORIZON)),),
    notes="random weights: the same compute as a trained forecaster, meaningless forecasts",
)


def build(path: Path) -> None:
    rng = weights_rng(NAME)
    g = GraphBuilder(NAME)
    bound = 1.0 / np.sqrt(HIDDEN)

    def uniform(*shape):
        return rng.uniform(-bound, bound, shape).astype(np.float32)

    # ONNX LSTM (layout 0) wants [seq, batch, features]; gates in the order i, o, f, c.
    x = g.op("Transpose", "window", perm=[1, 0, 2])
    _, h_last, _ = g.op("LSTM", x, g.weight(uniform(1, 4 * HIDDEN, FEATURES), "lstm_W"),
                        g.weight(uniform(1, 4 * HIDDEN, HIDDEN), "lstm_R"),
                        g.weight(uniform(1, 8 * HIDDEN), "lstm_B"),
                        hidden_size=HIDDEN, outputs=3, hint="lstm")
    h = g.op("Squeeze", h_last, g.ints([0], "axes"))  # [1, batch, hidden] → [batch, hidden]
    g.dense(h, uniform(HORIZON, HIDDEN), uniform(HORIZON), hint="head", outputs=["forecast"])
    save(g.model(INFO.inputs, INFO.outputs, doc=INFO.description), path)


def sample_input(rng: np.random.Generator, batch: int = 1) -> dict[str, np.ndarray]:
    """Windows of a standardised hourly series: a daily cycle with a random phase, plus noise."""
    t = np.arange(WINDOW) + rng.uniform(0, 24, (batch, 1))
    y = np.sin(2 * np.pi * t / 24) + 0.3 * rng.standard_normal((batch, WINDOW))
    return {"window": y[:, :, None].astype(np.float32)}


ENTRY = ZooEntry(info=INFO, build=build, sample_input=sample_input, version=1)
