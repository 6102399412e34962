"""The AWS Lambda handler: the same inference core as the Flask app, behind Lambda's events.

The model is loaded once, at module import (Lambda's INIT phase), from env `SERVESIM_MODEL`
(a path, a zoo name where `deploy.models` is importable, or an ``s3://bucket/key`` URL) or else
`model.onnx` next to this file (the layout of the deployment zip). An S3 model (one too large
for the zip) is downloaded once with boto3 (imported only then; Lambda's Python runtimes include
it) to ``<tempdir>/servesim-model-<sha256 or key name>.onnx`` (``/tmp`` on Lambda, whose size is
the function's ephemeral storage), and checked against env `SERVESIM_MODEL_SHA256` when that is
set; a file already there with that sha256 is reused. Its name in responses is env
`SERVESIM_MODEL_NAME`, else the key's file name without ``.onnx``. `INIT_MS` records how long
the load took, download included. If the model cannot be had (missing, not downloadable, the
wrong sha256) the module still imports, and every invocation raises with the reason: a missing
model is a fault of the deployment, and a Lambda function error is how a fault shows.

`handler(event, context)` takes two event shapes:

- **Direct invoke** (`Invoke` API, boto3): the event *is* the request mapping of `deploy.core`,
  ``{"inputs": {...}}``; the result is the response mapping ``{"outputs", "model",
  "inference_ms"}``. A bad request is *not* a function error: it returns
  ``{"error": "<message>", "status": 400}`` (the caller checks for "error"), so a function error
  (`FunctionError` in the Invoke response) is kept for real faults (no model, the model failing).
- **HTTP** (function URL and API Gateway HTTP API, payload v2.0; API Gateway REST, v1.0): any
  event with `requestContext`, `httpMethod` or `body`. POST (any path) predicts, GET answers like
  the app's /health, other methods get 405. The body is a string, base64-encoded when
  `isBase64Encoded` is true. The result is ``{"statusCode", "headers": {"content-type":
  "application/json", "x-inference-ms", "x-model-sha256"}, "body": "<json>", "isBase64Encoded":
  false}``; errors are the same JSON error bodies and statuses (400/413/415) as the app's.

Lambda itself refuses payloads over 6 MB before the handler runs; HTTP bodies are checked
against the same limit here too, so the local gateway and the app behave alike.

Run under the runtime interface client: ``python -m awslambdaric deploy.handler.handler``.
"""
from __future__ import annotations

import base64
import binascii
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

from deploy.core import InferenceCore, ModelFault, RequestError, file_sha256, error_body, open_model

JSON = "application/json"

CORE: InferenceCore | None = None
INIT_MS: float | None = None
INIT_ERROR: str | None = None


def load(model: str | os.PathLike | None = None, *, threads: int | None = None) -> InferenceCore:
    """(Re)load the model: `model`, else env SERVESIM_MODEL, else model.onnx next to this file;
    an ``s3://`` source is downloaded first (see the module docstring). Sets CORE and INIT_MS;
    called at import, callable again (tests, a warm re-deploy)."""
    global CORE, INIT_MS, INIT_ERROR
    t0 = time.perf_counter()
    source = model or os.environ.get("SERVESIM_MODEL") or Path(__file__).with_name("model.onnx")
    threads = threads if threads is not None else int(os.environ.get("SERVESIM_THREADS", "1"))
    name = os.environ.get("SERVESIM_MODEL_NAME") or None
    if str(source).startswith("s3://"):
        name = name or _s3_name(str(source))
        source = fetch_s3_model(str(source), os.environ.get("SERVESIM_MODEL_SHA256") or None)
    CORE = open_model(source, threads=threads, name=name)
    INIT_MS = (time.perf_counter() - t0) * 1000.0
    INIT_ERROR = None
    return CORE


def _split_s3(url: str) -> tuple[str, str]:
    bucket, _, key = url[len("s3://"):].partition("/")
    if not bucket or not key or key.endswith("/"):
        raise ValueError(f"SERVESIM_MODEL {url!r} is not an S3 object URL (s3://bucket/key)")
    return bucket, key


def _s3_name(url: str) -> str:
    leaf = url.rstrip("/").rsplit("/", 1)[-1]
    return leaf[:-len(".onnx")] if leaf.endswith(".onnx") and len(leaf) > len(".onnx") else leaf


def fetch_s3_model(url: str, sha256: str | None = None) -> Path:
    """Download the model at `url` (``s3://bucket/key``) to the temporary folder, once, and
    return its path. With `sha256` (hex), a file already there with that hash is reused and a
    download with another hash is deleted and refused (ValueError naming both hashes)."""
    bucket, key = _split_s3(url)
    want = sha256.strip().lower() if sha256 else None
    tag = re.sub(r"[^A-Za-z0-9._-]", "_", want or _s3_name(url))[:100]
    target = Path(tempfile.gettempdir()) / f"servesim-model-{tag}.onnx"
    if want and target.is_file() and file_sha256(target) == want:
        return target
    import boto3  # in Lambda's Python runtimes; needed only for a model in S3

    part = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        try:
            boto3.client("s3").download_file(bucket, key, str(part))
        except Exception as exc:  # noqa: BLE001 - botocore's errors (no such key, access denied, no network)
            raise RuntimeError(f"cannot download the model {url}: {exc}") from exc
        got = file_sha256(part)
        if want and got != want:
            raise ValueError(f"the model downloaded from {url} has sha256 {got}, "
                             f"but SERVESIM_MODEL_SHA256 is {want}")
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
    return target


def _init_at_import() -> None:
    global INIT_ERROR
    try:
        load()
    except Exception as exc:  # noqa: BLE001 - an init failure makes every invocation a function error, as on AWS
        INIT_ERROR = str(exc)


_init_at_import()


def handler(event: Any, context: Any = None) -> dict:
    """The Lambda entry point (see the module docstring for the event shapes)."""
    if CORE is None:
        raise RuntimeError(f"servesim handler has no model: {INIT_ERROR}")
    if isinstance(event, Mapping) and "inputs" not in event and _is_http(event):
        return _http(CORE, event)
    try:
        return CORE.predict_request(event)
    except RequestError as exc:
        return exc.as_dict()


def health() -> dict:
    """What GET answers: the model's identity and contract, and the init time."""
    if CORE is None:
        raise RuntimeError(f"servesim handler has no model: {INIT_ERROR}")
    return {"status": "ok", "pid": os.getpid(), "init_ms": INIT_MS, **CORE.contract()}


def _is_http(event: Mapping) -> bool:
    return any(k in event for k in ("requestContext", "httpMethod", "body", "routeKey"))


def _method(event: Mapping) -> str:
    ctx = event.get("requestContext") or {}
    http = ctx.get("http") if isinstance(ctx, Mapping) else None
    if isinstance(http, Mapping) and http.get("method"):
        return str(http["method"]).upper()  # v2.0 (function URL, HTTP API)
    if event.get("httpMethod"):
        return str(event["httpMethod"]).upper()  # v1.0 (REST API)
    return "POST"


def _headers(event: Mapping) -> dict[str, str]:
    headers = event.get("headers") or {}
    if not isinstance(headers, Mapping):
        return {}
    return {str(k).lower(): str(v) for k, v in headers.items() if v is not None}


def _reply(status: int, body: bytes, extra: Mapping[str, str] | None = None) -> dict:
    headers = {"content-type": JSON, **(extra or {})}
    return {"statusCode": status, "headers": headers, "body": body.decode("utf-8"), "isBase64Encoded": False}


def _http(core: InferenceCore, event: Mapping) -> dict:
    method = _method(event)
    if method == "GET":
        return _reply(200, json.dumps(health()).encode())
    if method != "POST":
        return _reply(405, error_body(405, f"method {method} not allowed; POST a request, GET for health"),
                      {"allow": "GET, POST"})
    try:
        content_type = _headers(event).get("content-type", "")
        mimetype = content_type.split(";", 1)[0].strip().lower()
        if mimetype and mimetype != JSON and not (mimetype.startswith("application/") and mimetype.endswith("+json")):
            raise RequestError(415, f"Content-Type must be {JSON}, got {content_type!r}")
        body = event.get("body") or ""
        if not isinstance(body, str):
            raise RequestError(400, "event body must be a string")
        if event.get("isBase64Encoded"):
            if len(body) > 4 * (-(-core.max_body_bytes // 3)) + 4:
                raise RequestError(413, f"request body is larger than the limit of {core.max_body_bytes} bytes")
            try:
                raw = base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise RequestError(400, f"body is marked base64 but is not valid base64 ({exc})") from None
        else:
            raw = body.encode("utf-8", "surrogatepass")
        pred = core.predict_body(raw)
    except RequestError as exc:
        return _reply(exc.status, error_body(exc.status, exc.message))
    except ModelFault as exc:
        return _reply(500, error_body(500, str(exc)))
    return _reply(200, pred.body, {"x-inference-ms": f"{pred.inference_ms:.4f}", "x-model-sha256": core.sha256})
