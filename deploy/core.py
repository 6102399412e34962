"""The inference core shared by the Flask app (EC2, local-server) and the Lambda handler.

One `InferenceCore` loads an ONNX model once into one onnxruntime session (CPU execution
provider, sequential execution, `threads` intra-op threads), reads the model's input contract
from the session, validates every request against it and runs it. Only the model's own time is
reported as `inference_ms` (`time.perf_counter` around `session.run`); parsing, validation and
JSON encoding are not in it, so client latency minus `inference_ms` is the serving overhead.

Wire format (the same for the app, the handler and the clients that measure them)
---------------------------------------------------------------------------------
Request, a JSON object (`Content-Type: application/json`; no other top-level key is read)::

    {"inputs": {"<input name>": <nested list of numbers>}}
    {"inputs": {"<input name>": {"dtype": "float32", "shape": [1, 3, 224, 224],
                                 "b64": "<base64 of the raw little-endian C-order bytes>"}}}

The two forms can be mixed per input; the base64 form is for large tensors (a 1x3x224x224 image
is ~0.8 MB as base64, ~3-4 MB as a nested list). Every input of the model must be given, and no
other. A nested list may hold integers for a float input; an integer input takes integers only.
`dtype` in the base64 form must be the input's own dtype (numpy names: float32, int64, ...).

Response, a JSON object::

    {"outputs": {"<output name>": <nested list>}, "model": "<name>", "inference_ms": <float>}

Errors, a JSON object ``{"error": "<message>", "status": <int>}`` with that HTTP status:
400 malformed JSON, not an object, `inputs` missing or not an object, unknown or missing input
names, wrong dtype, wrong rank or a fixed dimension that differs, an empty tensor, symbolic
dimensions that disagree between inputs, a base64 length that does not match dtype x shape,
non-finite floats; 413 a body larger than `max_body_bytes` (default 6 MB, Lambda's synchronous
payload limit); 415 (HTTP wrappers) a Content-Type that is not JSON. Inputs onnxruntime itself
rejects as invalid arguments (say, a token id out of an embedding's range) are 400 too. Anything
else is a fault of the server, not of the request: 500.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

MAX_BODY_BYTES = 6 * 1024 * 1024  # Lambda's synchronous invocation payload limit (6 MB)

# onnxruntime's type strings -> numpy dtypes this wire format carries.
_ORT_DTYPES = {
    "tensor(float)": np.dtype("float32"),
    "tensor(double)": np.dtype("float64"),
    "tensor(float16)": np.dtype("float16"),
    "tensor(int64)": np.dtype("int64"),
    "tensor(int32)": np.dtype("int32"),
    "tensor(int16)": np.dtype("int16"),
    "tensor(int8)": np.dtype("int8"),
    "tensor(uint64)": np.dtype("uint64"),
    "tensor(uint32)": np.dtype("uint32"),
    "tensor(uint16)": np.dtype("uint16"),
    "tensor(uint8)": np.dtype("uint8"),
    "tensor(bool)": np.dtype("bool"),
}


class RequestError(Exception):
    """A request the client got wrong: `status` is the HTTP status (400, 413, 415)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = int(status)
        self.message = message

    def as_dict(self) -> dict:
        return {"error": self.message, "status": self.status}


class ModelFault(Exception):
    """The model failed on a valid request (a real fault: HTTP 500, a Lambda function error)."""


def error_body(status: int, message: str) -> bytes:
    """The JSON error body for an HTTP status and a message."""
    return json.dumps({"error": message, "status": int(status)}).encode()


@dataclass(frozen=True)
class InputSpec:
    """One model input: `shape` holds ints for fixed dimensions, a str for a named symbolic one
    (inputs that share the name must agree) and None for an unnamed free one."""

    name: str
    dtype: np.dtype
    shape: tuple[int | str | None, ...]

    def describe(self) -> str:
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {self.dtype.name}[{dims}]"


@dataclass(frozen=True)
class Prediction:
    """A served request: the JSON response body and the model's own time in ms."""

    body: bytes
    inference_ms: float


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _dim(d: Any) -> int | str | None:
    if isinstance(d, int) and d >= 0:
        return d
    if isinstance(d, str) and d:
        return d
    return None


class InferenceCore:
    """One ONNX model in one onnxruntime session, with its input contract.

    `model_path`: the .onnx file. `threads`: onnxruntime intra-op threads (inter-op is 1;
    execution is sequential). `name`: the model's name in responses (default: the file's stem).
    `max_body_bytes`: the largest request body accepted (413 above it)."""

    def __init__(self, model_path: str | os.PathLike, *, threads: int = 1, name: str | None = None,
                 max_body_bytes: int = MAX_BODY_BYTES):
        import onnxruntime as ort

        if int(threads) < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.path = Path(model_path)
        if not self.path.is_file():
            raise FileNotFoundError(f"model file not found: {self.path}")
        self.name = name or self.path.stem
        self.threads = int(threads)
        self.max_body_bytes = int(max_body_bytes)
        self.sha256 = file_sha256(self.path)
        t0 = time.perf_counter()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning worker threads burn CPU quota between requests; under a cgroup limit that
        # would be billed as if it were inference.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(self.path), sess_options=opts,
                                            providers=["CPUExecutionProvider"])
        self.load_ms = (time.perf_counter() - t0) * 1000.0
        self._invalid_argument = getattr(getattr(ort, "capi", None), "onnxruntime_pybind11_state", None)
        inputs = []
        for i in self.session.get_inputs():
            if i.type not in _ORT_DTYPES:
                raise ValueError(f"{self.path}: input {i.name!r} has type {i.type}, which this server does not carry")
            inputs.append(InputSpec(i.name, _ORT_DTYPES[i.type], tuple(_dim(d) for d in i.shape)))
        self.inputs: tuple[InputSpec, ...] = tuple(inputs)
        self.output_names: tuple[str, ...] = tuple(o.name for o in self.session.get_outputs())
        self._by_name = {s.name: s for s in self.inputs}

    def __repr__(self) -> str:
        ins = "; ".join(s.describe() for s in self.inputs)
        return f"InferenceCore({self.name!r}, {ins}, threads={self.threads})"

    def contract(self) -> dict:
        """The input contract and identity, as JSON-ready data (for /health and logs)."""
        return {
            "model": self.name,
            "sha256": self.sha256,
            "inputs": [{"name": s.name, "dtype": s.dtype.name, "shape": list(s.shape)} for s in self.inputs],
            "outputs": list(self.output_names),
            "threads": self.threads,
            "load_ms": round(self.load_ms, 3),
            "max_body_bytes": self.max_body_bytes,
        }

    # -- request handling -------------------------------------------------------------------

    def predict_body(self, body: bytes | str) -> Prediction:
        """Serve a raw request body: parse, validate, run, encode. Raises RequestError
        (status 400/413) for a bad request and ModelFault for a failure of the model."""
        if isinstance(body, str):
            body = body.encode("utf-8", "surrogatepass")
        if len(body) > self.max_body_bytes:
            raise RequestError(413, f"request body is {len(body)} bytes; the limit is {self.max_body_bytes}")
        if not body:
            raise RequestError(400, "empty request body; expected a JSON object {\"inputs\": {...}}")
        try:
            request = json.loads(body)
        except RecursionError:
            raise RequestError(400, "malformed JSON: nested too deeply") from None
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise RequestError(400, f"malformed JSON: {exc}") from None
        response = self.predict_request(request)
        return Prediction(json.dumps(response, allow_nan=False).encode(), response["inference_ms"])

    def predict_request(self, request: Any) -> dict:
        """Serve an already-decoded request mapping ({"inputs": ...}); returns the response
        mapping. Raises RequestError or ModelFault like `predict_body`."""
        outputs, ms = self.run(self.parse_inputs(request))
        return {"outputs": {k: v.tolist() for k, v in outputs.items()}, "model": self.name,
                "inference_ms": ms}

    def parse_inputs(self, request: Any) -> dict[str, np.ndarray]:
        """The validated input arrays of a request mapping; RequestError(400) if it is wrong."""
        if not isinstance(request, Mapping):
            raise RequestError(400, f"request must be a JSON object with key 'inputs', got {type(request).__name__}")
        if "inputs" not in request:
            raise RequestError(400, "request has no 'inputs' key; expected {\"inputs\": {\"<name>\": ...}}")
        given = request["inputs"]
        if not isinstance(given, Mapping):
            raise RequestError(400, f"'inputs' must be an object mapping input names to tensors, got {type(given).__name__}")
        unknown = [k for k in given if k not in self._by_name]
        if unknown:
            raise RequestError(400, f"unknown input(s) {unknown}; the model takes {self._expected()}")
        missing = [s.name for s in self.inputs if s.name not in given]
        if missing:
            raise RequestError(400, f"missing input(s) {missing}; the model takes {self._expected()}")
        arrays = {s.name: self._tensor(s, given[s.name]) for s in self.inputs}
        self._check_symbols(arrays)
        return arrays

    def run(self, inputs: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], float]:
        """Run validated inputs; returns the outputs by name and the model's time in ms."""
        t0 = time.perf_counter()
        try:
            results = self.session.run(None, dict(inputs))
        except Exception as exc:
            if self._is_invalid_argument(exc):
                raise RequestError(400, f"the model rejected the input: {exc}") from None
            raise ModelFault(f"{self.name}: inference failed: {exc}") from exc
        ms = (time.perf_counter() - t0) * 1000.0
        outputs = {}
        for name, value in zip(self.output_names, results):
            arr = np.asarray(value)
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                raise ModelFault(f"{self.name}: output {name!r} has non-finite values")
            if arr.dtype.kind not in "biuf":
                raise ModelFault(f"{self.name}: output {name!r} has dtype {arr.dtype}, which JSON does not carry")
            outputs[name] = arr
        return outputs, ms

    # -- validation helpers -----------------------------------------------------------------

    def _expected(self) -> str:
        return "; ".join(s.describe() for s in self.inputs)

    def _is_invalid_argument(self, exc: Exception) -> bool:
        states = self._invalid_argument
        kind = getattr(states, "InvalidArgument", None)
        return kind is not None and isinstance(exc, kind)

    def _tensor(self, spec: InputSpec, value: Any) -> np.ndarray:
        if isinstance(value, Mapping):
            arr = self._from_b64(spec, value)
        elif isinstance(value, list):
            arr = self._from_list(spec, value)
        else:
            raise RequestError(400, f"input {spec.name!r}: expected a nested list or "
                                    f"{{\"dtype\", \"shape\", \"b64\"}}, got {type(value).__name__}")
        self._check_shape(spec, arr.shape)
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise RequestError(400, f"input {spec.name!r}: non-finite values (NaN or infinity)")
        return np.ascontiguousarray(arr)

    def _from_list(self, spec: InputSpec, value: list) -> np.ndarray:
        try:
            raw = np.asarray(value)
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            raise RequestError(400, f"input {spec.name!r}: not a rectangular nested list of numbers ({exc})") from None
        want = spec.dtype
        kind = raw.dtype.kind
        if raw.size == 0:
            raise RequestError(400, f"input {spec.name!r}: empty tensor of shape {list(raw.shape)}")
        if want.kind == "f":
            ok = kind in "iuf"
        elif want.kind in "iu":
            ok = kind in "iu"
        else:  # bool
            ok = kind == "b"
        if not ok:
            got = {"f": "floating-point numbers", "i": "integers", "u": "integers", "b": "booleans",
                   "U": "strings", "S": "strings"}.get(kind, "mixed or non-numeric values")
            raise RequestError(400, f"input {spec.name!r}: expected {want.name}, got {got}")
        if want.kind in "iu":
            info = np.iinfo(want)
            if raw.min() < info.min or raw.max() > info.max:
                raise RequestError(400, f"input {spec.name!r}: integers out of the range of {want.name}")
        with np.errstate(over="ignore", invalid="ignore"):
            return raw.astype(want, copy=False)

    def _from_b64(self, spec: InputSpec, value: Mapping) -> np.ndarray:
        keys = set(value)
        if keys != {"dtype", "shape", "b64"}:
            raise RequestError(400, f"input {spec.name!r}: a base64 tensor has exactly the keys dtype, shape, b64; "
                                    f"got {sorted(map(str, keys))}")
        dtype, shape, b64 = value["dtype"], value["shape"], value["b64"]
        if not isinstance(dtype, str) or dtype != spec.dtype.name:
            raise RequestError(400, f"input {spec.name!r}: expected dtype {spec.dtype.name!r}, got {dtype!r}")
        if (not isinstance(shape, list)
                or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
            raise RequestError(400, f"input {spec.name!r}: shape must be a list of non-negative integers, got {shape!r}")
        self._check_shape(spec, tuple(shape))
        if not isinstance(b64, str):
            raise RequestError(400, f"input {spec.name!r}: b64 must be a base64 string")
        expected = math.prod(shape) * spec.dtype.itemsize
        if len(b64) > 4 * (-(-expected // 3)) + 4:  # refuse before decoding what cannot fit
            raise RequestError(400, f"input {spec.name!r}: base64 data longer than {spec.dtype.name}{shape} needs "
                                    f"({expected} bytes)")
        try:
            data = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise RequestError(400, f"input {spec.name!r}: invalid base64 ({exc})") from None
        if len(data) != expected:
            raise RequestError(400, f"input {spec.name!r}: {len(data)} bytes of data, but {spec.dtype.name}{shape} "
                                    f"needs {expected}")
        return np.frombuffer(data, dtype=spec.dtype.newbyteorder("<")).reshape(shape).astype(spec.dtype, copy=False)

    def _check_shape(self, spec: InputSpec, shape: tuple[int, ...]) -> None:
        if len(shape) != len(spec.shape):
            raise RequestError(400, f"input {spec.name!r}: expected rank {len(spec.shape)} "
                                    f"({spec.describe()}), got shape {list(shape)}")
        for axis, (want, got) in enumerate(zip(spec.shape, shape)):
            if isinstance(want, int) and want != got:
                raise RequestError(400, f"input {spec.name!r}: dimension {axis} must be {want} "
                                        f"({spec.describe()}), got shape {list(shape)}")
        if 0 in shape:
            raise RequestError(400, f"input {spec.name!r}: empty tensor of shape {list(shape)}")

    def _check_symbols(self, arrays: Mapping[str, np.ndarray]) -> None:
        seen: dict[str, tuple[str, int]] = {}
        for spec in self.inputs:
            for want, got in zip(spec.shape, arrays[spec.name].shape):
                if isinstance(want, str):
                    if want in seen and seen[want][1] != got:
                        other, size = seen[want]
                        raise RequestError(400, f"dimension {want!r} is {size} in input {other!r} but {got} "
                                                f"in input {spec.name!r}")
                    seen.setdefault(want, (spec.name, got))


def open_model(name_or_path: str | os.PathLike, *, threads: int = 1, name: str | None = None,
               max_body_bytes: int = MAX_BODY_BYTES) -> InferenceCore:
    """An InferenceCore for a model file, or for a model of the zoo by name (`deploy.models`).
    The name in responses is `name`, else the zoo's name, else the file's stem."""
    path = Path(name_or_path)
    if not path.is_file():
        try:
            from deploy.models import resolve_model
        except ImportError:
            raise FileNotFoundError(f"model file not found: {name_or_path}") from None
        model = resolve_model(str(name_or_path))
        path, name = Path(model.path), name or model.name
    return InferenceCore(path, threads=threads, name=name, max_body_bytes=max_body_bytes)


# -- client side ------------------------------------------------------------------------------

def encode_tensor(arr: np.ndarray) -> dict:
    """One array in the base64 form of the wire format."""
    arr = np.asarray(arr)
    le = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
    return {"dtype": arr.dtype.name, "shape": list(arr.shape),
            "b64": base64.b64encode(np.ascontiguousarray(le).tobytes()).decode("ascii")}


def encode_inputs(inputs: Mapping[str, np.ndarray]) -> bytes:
    """A request body carrying `inputs` in the base64 form (what clients and campaigns send)."""
    return json.dumps({"inputs": {k: encode_tensor(v) for k, v in inputs.items()}}).encode()


def decode_outputs(body: bytes | str | Mapping) -> dict[str, np.ndarray]:
    """The output arrays of a response body (or mapping). Raises ValueError for an error
    response. Nested lists come back as float64/int64 arrays (JSON has no dtypes)."""
    response = json.loads(body) if isinstance(body, (bytes, bytearray, str)) else body
    if not isinstance(response, Mapping) or "outputs" not in response:
        err = response.get("error") if isinstance(response, Mapping) else None
        raise ValueError(f"not a prediction response: {err or str(response)[:200]}")
    out = {}
    for name, value in response["outputs"].items():
        if isinstance(value, Mapping):
            data = base64.b64decode(value["b64"])
            out[name] = np.frombuffer(data, dtype=np.dtype(value["dtype"]).newbyteorder("<")).reshape(value["shape"])
        else:
            out[name] = np.asarray(value)
    return out
