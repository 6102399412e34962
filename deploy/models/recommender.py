"""A matrix-factorisation recommender: a user's embedding against every item's, then the top k.

score(u, i) = <user_u, item_i> + bias_i for `N_USERS` users and `N_ITEMS` items in `DIM`
dimensions; the graph gathers the users' rows, scores all items with one matrix product and
keeps the `TOP_K` best with TopK (sorted, best first). Embeddings are random (normal, standard
deviation 0.1, fixed seed): the compute is that of a trained model of this size, the
recommendations mean nothing.

Contract: ``user_id`` int64 [batch] (0 ≤ id < 10000) → ``scores`` float32 [batch, 5000],
``top_items`` int64 [batch, 10] (item ids, best first), ``top_scores`` float32 [batch, 10].
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from deploy.models.contract import ModelInfo, TensorSpec, ZooEntry
from deploy.models.graph import GraphBuilder, save, weights_rng

NAME = "mf-recommender"
N_USERS = 10_000
N_ITEMS = 5_000
DIM = 64
TOP_K = 10

INFO = ModelInfo(
    name=NAME,
    description=f"matrix factorisation: {N_USERS} users x {N_ITEMS} items, {DIM}-d embeddings → scores, top {TOP_K}",
    inputs=(TensorSpec("user_id", "int64", ("batch",)),),
    outputs=(TensorSpec("scores", "float32", ("batch", N_ITEMS)),
             TensorSpec("top_items", "int64", ("batch", TOP_K)),
             TensorSpec("top_scores", "float32", ("batch", TOP_K))),
    notes=f"user_id in [0, {N_USERS}); random embeddings: the same compute as a trained model",
)


def build(path: Path) -> None:
    rng = weights_rng(NAME)
    users = (0.1 * rng.standard_normal((N_USERS, DIM))).astype(np.float32)
    items = (0.1 * rng.standard_normal((N_ITEMS, DIM))).astype(np.float32)
    bias = (0.1 * rng.standard_normal(N_ITEMS)).astype(np.float32)
    g = GraphBuilder(NAME)
    u = g.op("Gather", g.weight(users, "user_embeddings"), "user_id", axis=0)  # [batch, dim]
    s = g.op("MatMul", u, g.weight(items.T, "item_embeddings_t"))            # [batch, items]
    g.op("Add", s, g.weight(bias, "item_bias"), outputs=["scores"])
    g.op("TopK", "scores", g.ints([TOP_K], "k"), axis=-1, largest=1, sorted=1,
         outputs=["top_scores", "top_items"])
    save(g.model(INFO.inputs, INFO.outputs, doc=INFO.description), path)


def sample_input(rng: np.random.Generator, batch: int = 1) -> dict[str, np.ndarray]:
    """Uniformly random user ids."""
    return {"user_id": rng.integers(0, N_USERS, batch).astype(np.int64)}


ENTRY = ZooEntry(info=INFO, build=build, sample_input=sample_input, version=1)
