"""A tabular regressor: the resale price of a second-hand phone or tablet, from eight features.

A small multilayer perceptron (standardised features → 64 → 32 → 1, ReLU) trained with
scikit-learn on synthetic data and converted to ONNX (float32) with skl2onnx (the ``tabular``
extra). Training is Adam for a fixed 200 epochs, in float64 and on one BLAS thread, so that the
weights, and the file's sha256, do not depend on the number of threads or on whether the
process flushes denormals to zero (onnxruntime can switch that on); a different BLAS or CPU could
still round differently, which is why the build records the package versions.

The synthetic market (`synthetic_devices`) is made up but plausible: a device loses half of
its launch price every 18, 24 or 30 months (budget, mid-range, flagship), condition and battery
health scale the price, storage, memory and screen size add to it, and the observed price
carries a multiplicative log-normal error of 8 %. `true_price_usd` is the noiseless rule, so a
test can check what the model learnt.

Contract: ``features`` float32 [batch, 8], columns in the order of `FEATURES` →
``price_usd`` float32 [batch, 1].
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from deploy.models.contract import ModelInfo, TensorSpec, ZooEntry
from deploy.models.graph import IR_VERSION, name_dynamic_dims, save, weights_rng

NAME = "price-mlp"
FEATURES = (
    "brand_tier",          # 0 budget, 1 mid-range, 2 flagship
    "launch_price_usd",
    "age_months",
    "storage_gb",
    "ram_gb",
    "screen_in",
    "battery_health_pct",
    "condition",           # 0 poor, 1 fair, 2 good, 3 like new
)
HIDDEN = (64, 32)
N_TRAIN = 5000
EPOCHS = 200
NOISE_SIGMA = 0.08  # log-normal price error

INFO = ModelInfo(
    name=NAME,
    description="second-hand device price regressor: MLP 8→64→32→1 on synthetic data",
    inputs=(TensorSpec("features", "float32", ("batch", len(FEATURES))),),
    outputs=(TensorSpec("price_usd", "float32", ("batch", 1)),),
    notes="features: " + ", ".join(FEATURES) + "; needs the 'tabular' extra (scikit-learn, skl2onnx)",
)

_LAUNCH_USD = ((150.0, 400.0), (350.0, 800.0), (700.0, 1400.0))  # by brand tier
_HALF_LIFE_MONTHS = np.array([18.0, 24.0, 30.0])


def true_price_usd(x: np.ndarray) -> np.ndarray:
    """The noiseless price (USD) of devices with features `x` ([n, 8], columns of `FEATURES`)."""
    tier, launch, age, storage, ram, screen, battery, condition = np.asarray(x, dtype=np.float64).T
    price = launch * 0.5 ** (age / _HALF_LIFE_MONTHS[tier.astype(int)])
    price *= (0.55 + 0.15 * condition) * (0.7 + 0.3 * (battery - 60.0) / 40.0)
    price += 40.0 * np.log2(storage / 64.0) + 8.0 * ram + 20.0 * (screen - 6.0)
    return np.maximum(price, 10.0)


def synthetic_devices(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` devices: features float32 [n, 8] and observed prices float32 [n] (USD)."""
    tier = rng.integers(0, 3, n)
    lo, hi = np.array(_LAUNCH_USD).T
    launch = rng.uniform(lo[tier], hi[tier])
    age = rng.uniform(0.0, 60.0, n)
    storage = rng.choice([32.0, 64.0, 128.0, 256.0, 512.0], n)
    ram = rng.choice([3.0, 4.0, 6.0, 8.0, 12.0], n)
    screen = rng.uniform(5.0, 6.9, n)
    battery = np.clip(100.0 - age * rng.uniform(0.2, 0.6, n), 60.0, 100.0)
    condition = rng.integers(0, 4, n)
    x = np.column_stack([tier, launch, age, storage, ram, screen, battery, condition]).astype(np.float32)
    y = true_price_usd(x) * np.exp(NOISE_SIGMA * rng.standard_normal(n))
    return x, y.astype(np.float32)


def build(path: Path) -> dict:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    rng = weights_rng(NAME)
    x, y = synthetic_devices(rng, N_TRAIN)
    mlp = MLPRegressor(hidden_layer_sizes=HIDDEN, solver="adam", learning_rate_init=0.01, alpha=1e-3,
                       max_iter=EPOCHS, tol=0.0, n_iter_no_change=EPOCHS,  # exactly EPOCHS epochs
                       random_state=int(rng.integers(2**31)))
    pipe = make_pipeline(StandardScaler(), mlp)
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(x.astype(np.float64), y.astype(np.float64))
    model = to_onnx(pipe, initial_types=[("features", FloatTensorType([None, len(FEATURES)]))],
                    final_types=[("price_usd", FloatTensorType([None, 1]))],
                    target_opset={"": 17, "ai.onnx.ml": 3})
    model.ir_version = IR_VERSION
    model.doc_string = INFO.description
    name_dynamic_dims(model)
    save(model, path)
    return {"train_samples": N_TRAIN, "train_r2": float(pipe.score(x, y)), "epochs": int(mlp.n_iter_)}


def sample_input(rng: np.random.Generator, batch: int = 1) -> dict[str, np.ndarray]:
    """Devices drawn from the synthetic market."""
    return {"features": synthetic_devices(rng, batch)[0]}


ENTRY = ZooEntry(info=INFO, build=build, sample_input=sample_input, version=1,
                 requires=("scikit-learn", "skl2onnx"), extra="tabular")
