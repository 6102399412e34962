"""The Flask app that serves one ONNX model over HTTP: what goes to EC2 and what local-server runs.

Routes (wire format in `deploy.core`):
- `POST /predict`: a JSON request -> the JSON response, with headers `X-Inference-Ms` (the
  model's own time, ms), `X-Model-Sha256` and `X-Worker-Pid` (which worker served it).
- `GET /health`: 200 with the model's name, sha256, input contract and the worker's pid.

Every error is a JSON body ``{"error", "status"}``: 400 for a malformed request, 413 for a body
over the limit (6 MB, Lambda's, so both targets accept the same requests), 415 for a
Content-Type that is not JSON (a missing one is taken as JSON), 404/405 for other routes. A 500
means a real fault of the server, never a bad request.

Run it under gunicorn without `--preload`, so each worker loads the model itself, as each
instance's workers do in production (that load is part of the start-up cost):

    SERVESIM_MODEL=model.onnx gunicorn -w 2 -b 127.0.0.1:8000 'deploy.app:create_app()'

Environment: `SERVESIM_MODEL` (a path, or a zoo name), `SERVESIM_MODEL_NAME` (name in responses),
`SERVESIM_THREADS` (onnxruntime intra-op threads, default 1), `SERVESIM_READY_DIR` (if set, each
worker creates an empty file named after its pid there once its model is loaded, so a
supervisor can tell when every worker is ready).
"""
from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from deploy.core import InferenceCore, ModelFault, RequestError, error_body, open_model

JSON = "application/json"


def _json_response(body: bytes, status: int = 200, headers: dict | None = None) -> Response:
    return Response(body, status=status, mimetype=JSON, headers=headers)


def _is_json_type(mimetype: str) -> bool:
    return mimetype == JSON or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def _read_body(limit: int) -> bytes:
    """The request body, 413 above `limit` bytes: werkzeug refuses a larger Content-Length, but
    silently cuts a chunked body (no Content-Length) at the limit, so that one is read here."""
    if request.content_length is not None:
        return request.get_data(cache=False)  # RequestEntityTooLarge above MAX_CONTENT_LENGTH
    stream = request.environ["wsgi.input"]
    parts, size = [], 0
    while size <= limit:
        part = stream.read(min(1 << 16, limit + 1 - size))
        if not part:
            break
        parts.append(part)
        size += len(part)
    if size > limit:
        raise RequestError(413, f"request body is larger than the limit of {limit} bytes")
    return b"".join(parts)


def create_app(model_path: str | os.PathLike | None = None, *, threads: int | None = None,
               name: str | None = None) -> Flask:
    """A Flask app serving `model_path` (None: env SERVESIM_MODEL), the model loaded once, now."""
    model = model_path if model_path is not None else os.environ.get("SERVESIM_MODEL")
    if not model:
        raise RuntimeError("no model: pass model_path or set SERVESIM_MODEL")
    threads = threads if threads is not None else int(os.environ.get("SERVESIM_THREADS", "1"))
    core = open_model(model, threads=threads, name=name or os.environ.get("SERVESIM_MODEL_NAME") or None)
    return _build_app(core)


def _build_app(core: InferenceCore) -> Flask:
    app = Flask("servesim")
    app.config["MAX_CONTENT_LENGTH"] = core.max_body_bytes
    app.extensions["servesim.core"] = core
    pid = str(os.getpid())

    @app.post("/predict")
    def predict():
        if request.content_type and not _is_json_type(request.mimetype):
            raise RequestError(415, f"Content-Type must be {JSON}, got {request.content_type!r}")
        pred = core.predict_body(_read_body(core.max_body_bytes))
        return _json_response(pred.body, headers={
            "X-Inference-Ms": f"{pred.inference_ms:.4f}", "X-Model-Sha256": core.sha256, "X-Worker-Pid": pid})

    @app.get("/health")
    def health():
        return {"status": "ok", "pid": os.getpid(), **core.contract()}

    @app.errorhandler(RequestError)
    def request_error(exc: RequestError):
        return _json_response(error_body(exc.status, exc.message), exc.status)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 413:
            message = f"request body is larger than the limit of {core.max_body_bytes} bytes"
        return _json_response(error_body(status, message), status)

    @app.errorhandler(ModelFault)
    def model_fault(exc: ModelFault):
        app.logger.error("model fault: %s", exc)
        return _json_response(error_body(500, str(exc)), 500)

    @app.errorhandler(Exception)
    def internal_error(exc: Exception):
        app.logger.exception("unhandled error")
        return _json_response(error_body(500, f"internal error: {type(exc).__name__}"), 500)

    ready_dir = os.environ.get("SERVESIM_READY_DIR")
    if ready_dir and Path(ready_dir).is_dir():
        (Path(ready_dir) / pid).touch()
    return app
