"""The local Lambda gateway: AWS Lambda's Invoke API on 127.0.0.1, backed by real runtimes.

Routes:

- ``POST /2015-03-31/functions/{name}/invocations`` — Lambda's Invoke (synchronous,
  ``X-Amz-Invocation-Type: RequestResponse``), so ``boto3.client("lambda", endpoint_url=...)``
  works unchanged. `{name}` is the function's name or ARN (qualifier ``$LATEST`` only). The
  answer carries ``X-Amz-Executed-Version: $LATEST``, ``X-Amz-Function-Error: Unhandled`` when the
  function failed (handler exception, crash, failed init, timeout: status 200 and Lambda's error
  object, as AWS does), and with ``X-Amz-Log-Type: Tail`` the base64 last 4 KB of the log in
  ``X-Amz-Log-Result``: START, the function's own lines, END and a REPORT line in AWS's format
  (`deploy.lambda_report`) plus ``Servesim CPU Limit`` / ``Servesim Memory Limit`` fields saying
  which limits the environment ran under and, on a cold start, ``Servesim Emulator Start``.
- ``GET /2015-03-31/functions/{name}/configuration`` — GetFunctionConfiguration: AWS's
  FunctionConfiguration (FunctionName, FunctionArn, Runtime, Handler, MemorySize, Timeout,
  Architectures, Environment, State, LastUpdateStatus, RevisionId, LastModified, PackageType,
  CodeSize, CodeSha256, Version). ``Environment`` holds the function's own variables only (absent
  when it has none, as on AWS), never the gateway's plumbing. The model file stands for the
  deployment package in CodeSize and CodeSha256.
- ``GET /2015-03-31/functions/{name}`` — GetFunction: ``{"Configuration": ..., "Code":
  {"RepositoryType": "Local", "Location": <the model's file URI>}, "Tags": {}, "Concurrency":
  {"ReservedConcurrentExecutions": <concurrency limit>}}``.
- ``PUT /2015-03-31/functions/{name}/configuration`` — UpdateFunctionConfiguration. It sets
  ``Environment.Variables`` (replacing the previous set; names ``[a-zA-Z][a-zA-Z0-9_]+``, at most
  4 KB, Lambda's reserved keys and the gateway's plumbing refused). Other fields are accepted only
  when equal to the current value (MemorySize, Timeout, Handler, Runtime, Description); a
  ``RevisionId`` that is not the current one is 412 PreconditionFailedException. As on AWS, every
  invocation after an update runs in a new environment: idle environments are stopped before the
  answer, busy ones finish their request and are then retired. The update is complete when the
  answer is sent, so the answer (and every later read) says ``LastUpdateStatus: Successful``
  where AWS says ``InProgress`` first; boto3's ``function_updated_v2`` waiter passes on its first
  poll.
- ``GET /servesim/status`` — JSON: the function's configuration, its live environments and their
  states (idle, busy, retiring), the limits applied, and counters (invocations, cold starts,
  throttles, reclaims, config_updates, retired).

Errors are AWS's (``x-amzn-ErrorType`` header and a JSON body): 404 ResourceNotFoundException
(unknown function or qualifier), 400 InvalidParameterValueException (an invocation type other
than RequestResponse; a configuration the gateway cannot apply), 400
InvalidRequestContentException (a payload that is not JSON), 412 PreconditionFailedException
(stale RevisionId), 413 RequestTooLargeException (over 6 MB), 429 TooManyRequestsException
(concurrency limit; never queued). An empty payload is sent to the function as ``{}``.

`LocalLambda` runs the gateway (a context manager); `serve_forever` is the CLI's entry point.
What the REPORT figures measure is documented in `deploy.local_lambda.environments`.
"""
from __future__ import annotations

import base64
import dataclasses
import datetime
import json
import math
import os
import re
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Mapping, Sequence
from urllib.parse import parse_qs, unquote, urlsplit

from deploy.lambda_report import format_report
from deploy.local_lambda.environments import (
    VCPU_PER_MB,
    EnvironmentPool,
    EnvironmentSpec,
    Invocation,
    ThrottledError,
    limit_fields,
)
from sim.errors import ServesimError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_HANDLER = "deploy.handler.handler"
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # Lambda's synchronous request and response limit
LOG_TAIL_BYTES = 4096
DEFAULT_KEEP_ALIVE_S = 360.0  # the simulator's default (aws-facts §2.2: 5-7 min observed)
DEFAULT_CONCURRENCY_LIMIT = 10  # AWS's account default is 1,000; here each environment is a process
_INVOKE_ROUTE = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")
_FUNCTION_ROUTE = re.compile(r"^/2015-03-31/functions/([^/]+)(/configuration)?$")
_FUNCTION_ARN = re.compile(r"^(?:arn:aws[\w-]*:lambda:[\w-]+:\d{12}:function:|\d{12}:function:)?"
                           r"([A-Za-z0-9_-]{1,64})(?::([\w$-]+))?$")
# Environment variables a runtime inherits from the gateway's; Lambda's own are set explicitly.
_INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "SERVESIM_CACHE")
# Keys AWS refuses in a function's environment variables (the runtime's own).
_AWS_RESERVED_ENV = frozenset({
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "TZ"})
_ENV_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_]+")  # AWS's EnvironmentVariableName
MAX_ENV_BYTES = 4096  # Lambda's limit on a function's environment variables (as JSON)
# UpdateFunctionConfiguration fields the gateway accepts only with the current value.
_FIXED_FIELDS = ("MemorySize", "Timeout", "Handler", "Runtime", "Description")


def function_name_for(model_name: str) -> str:
    """A valid Lambda function name for a model: its name without ``.onnx``, other characters
    than letters, digits, '-' and '_' replaced by '-', at most 64 characters."""
    stem = model_name[:-5] if model_name.endswith(".onnx") else model_name
    return (re.sub(r"[^A-Za-z0-9_-]", "-", stem) or "model")[:64]


def _handler_spec(handler: str) -> str:
    """awslambdaric's ``module.function`` from ``module:function`` or ``module.function``."""
    module, sep, func = handler.rpartition(":") if ":" in handler else handler.rpartition(".")
    if not sep or not module or not func:
        raise ServesimError(f"handler {handler!r}: expected module:function (e.g. {DEFAULT_HANDLER})")
    return f"{module}.{func}"


class LocalLambda:
    """A Lambda function served locally: the gateway on 127.0.0.1 and its environments.

    `model`: a zoo name or a path to an ONNX file (the function is named after it).
    `memory_mb`: the function's memory, 128-10240 (CPU share memory/1769 vCPU).
    `keep_alive_s`: seconds an idle environment lives. `concurrency_limit`: invocations in
    flight before 429. `port`: the gateway's port (default: a free one). `rie`: the emulator
    binary (default: `deploy.rie.rie_path()`). `handler`: ``module:function`` run by awslambdaric,
    importable from the repository or `python_path`. `timeout_s`: the function timeout, 1-900.
    `env`: the function's environment variables (as in its configuration; names that Lambda
    reserves or the gateway sets itself are refused); UpdateFunctionConfiguration replaces them.

    Use as a context manager (or `start`/`stop`); `url` is the endpoint for boto3."""

    def __init__(self, model: str | os.PathLike, *, memory_mb: int = 1024,
                 keep_alive_s: float = DEFAULT_KEEP_ALIVE_S, concurrency_limit: int = DEFAULT_CONCURRENCY_LIMIT,
                 port: int | None = None, rie: str | os.PathLike | None = None, handler: str = DEFAULT_HANDLER,
                 python_path: Sequence[str | os.PathLike] = (), timeout_s: int = 30,
                 env: Mapping[str, str] | None = None, host: str = "127.0.0.1"):
        from deploy.models import resolve_model
        from deploy.rie import rie_path

        if not (isinstance(memory_mb, int) and 128 <= memory_mb <= 10240):
            raise ServesimError(f"memory_mb must be an integer from 128 to 10240 (Lambda's range), got {memory_mb!r}")
        if not (isinstance(timeout_s, int) and 1 <= timeout_s <= 900):
            raise ServesimError(f"timeout_s must be an integer from 1 to 900 (Lambda's range), got {timeout_s!r}")
        if not (keep_alive_s >= 0 and math.isfinite(keep_alive_s)):
            raise ServesimError(f"keep_alive_s must be >= 0, got {keep_alive_s!r}")
        if not (isinstance(concurrency_limit, int) and concurrency_limit >= 1):
            raise ServesimError(f"concurrency_limit must be an integer >= 1, got {concurrency_limit!r}")
        from deploy.rie import host_arch

        self.model = resolve_model(model)
        self.function_name = function_name_for(self.model.name)
        self.memory_mb = memory_mb
        self.keep_alive_s = float(keep_alive_s)
        self.concurrency_limit = concurrency_limit
        self.timeout_s = timeout_s
        self.host = host
        self._port = port
        self.architecture = host_arch()
        paths = [str(Path(p).resolve()) for p in python_path] + [str(REPO_ROOT)]
        plumbing = {k: os.environ[k] for k in _INHERITED_ENV if k in os.environ}
        plumbing.update({
            "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(timeout_s),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.function_name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "servesim-local",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "SERVESIM_MODEL": str(self.model.path),
            "SERVESIM_MODEL_NAME": self.model.name,
            "PYTHONPATH": os.pathsep.join(paths),
            "PYTHONUNBUFFERED": "1",  # function log lines reach the log in order
            "OMP_NUM_THREADS": "1",
        })
        self._plumbing_env = plumbing
        self._reserved_env = _AWS_RESERVED_ENV | set(_INHERITED_ENV) | set(plumbing)
        variables = dict(env or {})
        problem = _variables_problem(variables, self._reserved_env)
        if problem:
            raise ServesimError(f"env: {problem}")
        self._variables = variables
        self.spec = EnvironmentSpec(rie=rie_path(rie), python=sys.executable, handler=_handler_spec(handler),
                                    env=self._runtime_env(variables), cwd=REPO_ROOT, memory_mb=memory_mb,
                                    timeout_s=timeout_s)
        self.runtime = f"python{sys.version_info.major}.{sys.version_info.minor}"
        self.code_size = self.model.path.stat().st_size
        self._config_lock = threading.Lock()  # orders configuration reads against updates
        self._revision_id = str(uuid.uuid4())
        self._last_modified = _aws_timestamp()
        self.pool: EnvironmentPool | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- life cycle -------------------------------------------------------------------------

    def start(self) -> "LocalLambda":
        if self._server is not None:
            return self
        self.pool = EnvironmentPool(self.spec, keep_alive_s=self.keep_alive_s,
                                    concurrency_limit=self.concurrency_limit)
        try:
            self._server = _Server((self.host, self._port or 0), _Handler)
        except OSError as exc:
            self.pool.close()
            raise ServesimError(f"cannot listen on {self.host}:{self._port}: {exc.strerror or exc}") from None
        self._server.gateway = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.25},
                                        name="lambda-gateway", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting requests and stop every environment; idempotent."""
        if self._server is not None:
            self._server.shutdown()
            self._thread.join(timeout=5.0)
        if self.pool is not None:
            self.pool.close()
        if self._server is not None:
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "LocalLambda":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the gateway is not running")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The endpoint for ``boto3.client("lambda", endpoint_url=url)``."""
        return f"http://{self.host}:{self.port}"

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    def status(self) -> dict:
        """The function's configuration, its environments and counters (GET /servesim/status)."""
        envs = self.pool.environments() if self.pool else []
        return {
            "function": self.function_name, "arn": self.arn, "model": self.model.name,
            "model_path": str(self.model.path), "model_sha256": self.model.sha256,
            "memory_mb": self.memory_mb, "vcpus": round(self.memory_mb * VCPU_PER_MB, 6),
            "keep_alive_s": self.keep_alive_s, "concurrency_limit": self.concurrency_limit,
            "timeout_s": self.timeout_s, "handler": self.spec.handler, "rie": str(self.spec.rie),
            "revision_id": self._revision_id, "environments": envs,
            "limits_applied": sorted({e["limit"]["method"] for e in envs}),
            "counters": dict(vars(self.pool.counters)) if self.pool else {},
        }

    # ---- configuration ----------------------------------------------------------------------

    def _runtime_env(self, variables: Mapping[str, str]) -> dict[str, str]:
        """The runtime's environment: the function's variables under the gateway's plumbing."""
        return {**variables, **self._plumbing_env}

    def configuration(self) -> dict:
        """The function's configuration as GetFunctionConfiguration answers (see the module
        docstring). LastUpdateStatus is always "Successful": `update_configuration` is complete
        when it returns."""
        with self._config_lock:
            return self._configuration()

    def _configuration(self) -> dict:
        cfg = {
            "FunctionName": self.function_name, "FunctionArn": self.arn, "Runtime": self.runtime,
            "Handler": self.spec.handler, "CodeSize": self.code_size,
            "CodeSha256": base64.b64encode(bytes.fromhex(self.model.sha256)).decode("ascii"),
            "Description": "", "Timeout": self.timeout_s, "MemorySize": self.memory_mb,
            "LastModified": self._last_modified, "Version": "$LATEST", "RevisionId": self._revision_id,
            "State": "Active", "LastUpdateStatus": "Successful", "PackageType": "Zip",
            "Architectures": [self.architecture],
        }
        if self._variables:  # AWS leaves Environment out when the function has no variables
            cfg["Environment"] = {"Variables": dict(self._variables)}
        return cfg

    def function(self) -> dict:
        """GetFunction's answer: the configuration, the code's location, tags and concurrency."""
        return {"Configuration": self.configuration(),
                "Code": {"RepositoryType": "Local", "Location": self.model.path.as_uri()},
                "Tags": {}, "Concurrency": {"ReservedConcurrentExecutions": self.concurrency_limit}}

    def update_configuration(self, request: Mapping) -> dict:
        """Apply UpdateFunctionConfiguration's `request` (its JSON body) and return the new
        configuration; ApiError if it cannot be applied (nothing is changed then).

        Only ``Environment.Variables`` can change (the whole set is replaced); the other
        `_FIXED_FIELDS` are accepted with their current value. Every update gets a new RevisionId
        and LastModified, and retires every environment started before it
        (`EnvironmentPool.reconfigure`): idle ones are stopped before this returns, busy ones when
        their invocation ends. The update is complete on return, hence "Successful"."""
        if not isinstance(request, Mapping):
            raise ApiError(400, "InvalidRequestContentException", "the request body must be a JSON object")
        with self._config_lock:
            current = self._configuration()
            for key, value in request.items():
                if key in ("Environment", "RevisionId") or (key in _FIXED_FIELDS and value == current[key]):
                    continue
                if key in _FIXED_FIELDS:
                    raise ApiError(400, "InvalidParameterValueException",
                                   f"{key} cannot be changed on the local gateway ({current[key]!r} -> {value!r}); "
                                   f"start a gateway with the new setting")
                raise ApiError(400, "InvalidParameterValueException", f"{key} is not supported by the local gateway")
            revision = request.get("RevisionId")
            if revision is not None and revision != self._revision_id:
                raise ApiError(412, "PreconditionFailedException", "The Revision Id provided does not match the "
                               "latest Revision Id. Call the GetFunction API to retrieve the latest Revision Id")
            variables = self._variables
            if "Environment" in request:
                environment = request["Environment"]
                if not isinstance(environment, Mapping):
                    raise ApiError(400, "InvalidParameterValueException", "Environment must be an object")
                variables = environment.get("Variables")
                variables = {} if variables is None else variables
                problem = _variables_problem(variables, self._reserved_env)
                if problem:
                    raise ApiError(400, "InvalidParameterValueException", problem)
                variables = dict(variables)
            spec = dataclasses.replace(self.spec, env=self._runtime_env(variables))
            if self.pool is not None:
                try:
                    self.pool.reconfigure(spec)
                except RuntimeError as exc:  # the gateway is stopping
                    raise ApiError(500, "ServiceException", str(exc)) from None
            self.spec, self._variables = spec, variables
            self._revision_id, self._last_modified = str(uuid.uuid4()), _aws_timestamp()
            return self._configuration()

    # ---- one invocation ---------------------------------------------------------------------

    def invoke(self, payload: bytes, *, tail: bool) -> tuple[int, dict[str, str], bytes]:
        """Run one invocation through the pool: (HTTP status, headers, body) of the answer."""
        request_id = str(uuid.uuid4())
        try:
            env, _ = self.pool.acquire()
        except ThrottledError:
            return _aws_error(429, "TooManyRequestsException", "Rate Exceeded.", request_id,
                              Reason="ReservedFunctionConcurrentInvocationLimitExceeded")
        except Exception as exc:  # noqa: BLE001 - the environment did not start: a Lambda service error
            return _aws_error(500, "ServiceException", f"the execution environment did not start: {exc}",
                              request_id)
        inv = None
        try:
            inv = env.invoke(request_id, payload or b"{}")
        except Exception as exc:  # noqa: BLE001 - a fault of the gateway: a Lambda service error
            return _aws_error(500, "ServiceException", f"the invocation failed in the gateway: {exc}", request_id)
        finally:
            self.pool.release(env, inv)
        body = inv.payload
        function_error = None if inv.outcome == "ok" else "Unhandled"
        if function_error is None and len(body) > MAX_PAYLOAD_BYTES:
            function_error = "Unhandled"
            body = json.dumps({"errorMessage": f"Response payload size ({len(body)} bytes) exceeded maximum "
                               f"allowed payload size ({MAX_PAYLOAD_BYTES} bytes).",
                               "errorType": "Function.ResponseSizeTooLarge"}).encode()
        headers = {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST",
                   "x-amzn-RequestId": request_id}
        if function_error:
            headers["X-Amz-Function-Error"] = function_error
        if tail:
            headers["X-Amz-Log-Result"] = base64.b64encode(self._log_tail(inv, env.limit)).decode("ascii")
        return 200, headers, body

    def _log_tail(self, inv: Invocation, limit) -> bytes:
        status = {"ok": None, "error": None, "crash": "error", "timeout": "timeout"}[inv.outcome]
        extra = limit_fields(limit, self.memory_mb * VCPU_PER_MB, self.memory_mb)
        if inv.emulator_start_ms is not None:
            extra["Emulator Start"] = f"{inv.emulator_start_ms:.2f} ms"
        report = format_report(inv.request_id, duration_ms=inv.duration_ms, memory_size_mb=self.memory_mb,
                               max_memory_used_mb=inv.max_memory_used_mb, init_duration_ms=inv.init_duration_ms,
                               status=status, error_type=inv.error_type if status else None, servesim=extra)
        text = "\n".join([f"START RequestId: {inv.request_id} Version: $LATEST", *inv.log_lines,
                          f"END RequestId: {inv.request_id}", report]) + "\n"
        return text.encode("utf-8")[-LOG_TAIL_BYTES:]

    def resolve_function(self, name: str, qualifier: str | None) -> bool:
        """Whether `name` (a name, partial or full ARN) and `qualifier` designate this function."""
        m = _FUNCTION_ARN.match(name)
        if m is None or m.group(1) != self.function_name:
            return False
        q = qualifier if qualifier is not None else m.group(2)
        return q in (None, "$LATEST")


class ApiError(Exception):
    """A request the Lambda API refuses: HTTP `status`, AWS's error type and message."""

    def __init__(self, status: int, error_type: str, message: str):
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


def _variables_problem(variables: object, reserved: frozenset[str] | set[str]) -> str | None:
    """Why a function cannot have `variables` as its environment variables (AWS's rules, plus
    the gateway's plumbing as reserved keys), or None."""
    if not isinstance(variables, Mapping) or not all(isinstance(k, str) and isinstance(v, str)
                                                     for k, v in variables.items()):
        return "Environment.Variables must map names to string values"
    bad = sorted(k for k in variables if not _ENV_NAME.fullmatch(k))
    if bad:
        return f"environment variable names must match [a-zA-Z][a-zA-Z0-9_]+: {', '.join(map(repr, bad))}"
    taken = sorted(set(variables) & reserved)
    if taken:
        return ("Lambda was unable to configure your environment variables because the environment variables "
                "you have provided contains reserved keys that are currently not supported for modification. "
                f"Reserved keys used in this request: {', '.join(taken)}")
    size = len(json.dumps(dict(variables), separators=(",", ":")).encode())
    if size > MAX_ENV_BYTES:
        return ("Lambda was unable to configure your environment variables because the environment variables "
                f"you have provided exceeded the 4KB limit. String measured: {size} bytes")
    return None


def _aws_timestamp() -> str:
    """Now as Lambda writes LastModified: ``2024-05-01T12:34:56.789+0000``."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"


def _aws_error(status: int, error_type: str, message: str, request_id: str,
               **fields) -> tuple[int, dict[str, str], bytes]:
    """An AWS API error as botocore reads it (rest-json: ``x-amzn-ErrorType`` + JSON body)."""
    body = {"Type": "User" if status < 500 else "Service", "message": message, **fields}
    if error_type == "ResourceNotFoundException":
        body["Message"] = message
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": error_type, "x-amzn-RequestId": request_id}
    return status, headers, json.dumps(body).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    gateway: LocalLambda

    def handle_error(self, request, client_address) -> None:
        """A client closing its kept-alive connection is normal; anything else is printed."""
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else delayed ACKs add ~40 ms to kept-alive connections
    wbufsize = 1 << 16  # headers and body leave in one write (flushed after each request)
    server: _Server

    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        pass  # the gateway is measured; access logs on stderr would only slow it down

    def _send(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        gw = self.server.gateway
        parts = urlsplit(self.path)
        if parts.path == "/servesim/status":
            body = json.dumps(gw.status(), indent=1).encode()
            self._send(200, {"Content-Type": "application/json"}, body)
            return
        m = _FUNCTION_ROUTE.match(parts.path)
        if m is None:
            self._unknown()
            return
        rid = str(uuid.uuid4())
        if not self._found(m.group(1), parse_qs(parts.query).get("Qualifier", [None])[0], rid):
            return
        answer = gw.configuration() if m.group(2) else gw.function()
        self._send(200, {"Content-Type": "application/json", "x-amzn-RequestId": rid}, json.dumps(answer).encode())

    def do_PUT(self) -> None:  # noqa: N802
        gw = self.server.gateway
        rid = str(uuid.uuid4())
        m = _FUNCTION_ROUTE.match(urlsplit(self.path).path)
        if m is None or not m.group(2):
            self._drain()
            self._unknown()
            return
        body = self._read_body(rid, "UpdateFunctionConfiguration")
        if body is None or not self._found(m.group(1), None, rid):
            return
        try:
            request = json.loads(body or b"{}")
        except (ValueError, UnicodeDecodeError) as exc:
            self._send(*_aws_error(400, "InvalidRequestContentException",
                                   f"Could not parse request body into json: {exc}", rid))
            return
        try:
            answer = gw.update_configuration(request)
        except ApiError as exc:
            self._send(*_aws_error(exc.status, exc.error_type, exc.message, rid))
            return
        self._send(200, {"Content-Type": "application/json", "x-amzn-RequestId": rid}, json.dumps(answer).encode())

    def do_POST(self) -> None:  # noqa: N802
        gw = self.server.gateway
        rid = str(uuid.uuid4())
        parts = urlsplit(self.path)
        m = _INVOKE_ROUTE.match(parts.path)
        if m is None:
            self._drain()
            self._unknown()
            return
        payload = self._read_body(rid, "InvokeFunction")
        if payload is None or not self._found(m.group(1), parse_qs(parts.query).get("Qualifier", [None])[0], rid):
            return
        invocation_type = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if invocation_type != "RequestResponse":
            self._send(*_aws_error(400, "InvalidParameterValueException", f"InvocationType {invocation_type!r} "
                                   "is not supported by the local gateway (RequestResponse only)", rid))
            return
        log_type = self.headers.get("X-Amz-Log-Type", "None")
        if log_type not in ("None", "Tail"):
            self._send(*_aws_error(400, "InvalidParameterValueException",
                                   f"LogType must be None or Tail, got {log_type!r}", rid))
            return
        if payload:
            try:
                json.loads(payload)
            except (ValueError, UnicodeDecodeError) as exc:
                self._send(*_aws_error(400, "InvalidRequestContentException",
                                       f"Could not parse request body into json: {exc}", rid))
                return
        self._send(*gw.invoke(payload, tail=log_type == "Tail"))

    def _read_body(self, rid: str, operation: str) -> bytes | None:
        """The request's body, or None after answering an error (chunked, bad or too large)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            self._send(*_aws_error(400, "InvalidRequestContentException",
                                   "chunked request bodies are not supported; send Content-Length", rid))
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send(*_aws_error(400, "InvalidRequestContentException", "invalid Content-Length", rid))
            return None
        if length > MAX_PAYLOAD_BYTES:
            self.close_connection = True  # the body is not read
            self._send(*_aws_error(413, "RequestTooLargeException", f"Request must be smaller than "
                                   f"{MAX_PAYLOAD_BYTES} bytes for the {operation} operation", rid))
            return None
        return self.rfile.read(length) if length else b""

    def _found(self, raw_name: str, qualifier: str | None, rid: str) -> bool:
        """Whether the URI's function name (and qualifier) is this function; else answers 404."""
        name = unquote(raw_name)
        if self.server.gateway.resolve_function(name, qualifier):
            return True
        self._send(*_aws_error(404, "ResourceNotFoundException",
                               f"Function not found: arn:aws:lambda:us-east-1:000000000000:function:{name}"
                               + (f":{qualifier}" if qualifier else ""), rid))
        return False

    def _drain(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if 0 < length <= MAX_PAYLOAD_BYTES:
            self.rfile.read(length)
        elif length:
            self.close_connection = True

    def _unknown(self) -> None:
        self._send(*_aws_error(404, "UnknownOperationException", "Unknown operation", str(uuid.uuid4())))


def serve_forever(model: str | os.PathLike, *, memory_mb: int = 1024, keep_alive_s: float = DEFAULT_KEEP_ALIVE_S,
                  concurrency_limit: int = DEFAULT_CONCURRENCY_LIMIT, port: int | None = None,
                  rie: str | os.PathLike | None = None, timeout_s: int = 30,
                  echo: Callable[[str], None] = print) -> None:
    """Run the gateway until Ctrl-C or SIGTERM (the CLI's ``servesim local-lambda``); every
    environment is stopped on the way out."""
    from deploy.procs import install_signal_handlers

    install_signal_handlers()
    with LocalLambda(model, memory_mb=memory_mb, keep_alive_s=keep_alive_s, concurrency_limit=concurrency_limit,
                     port=port, rie=rie, timeout_s=timeout_s) as gw:
        limit = "cgroup CPU quota" if _cgroup_ok() else "no cgroup: CPU affinity, share not enforced"
        echo(f"Lambda function {gw.function_name!r} ({gw.model.name}, {memory_mb} MB = "
             f"{memory_mb * VCPU_PER_MB:.3f} vCPU, {limit}) at {gw.url}")
        echo(f"  keep-alive {keep_alive_s:g} s, concurrency limit {concurrency_limit}, timeout {timeout_s} s; "
             f"status: {gw.url}/servesim/status")
        echo(f"  boto3.client('lambda', endpoint_url='{gw.url}', region_name='us-east-1')"
             f".invoke(FunctionName='{gw.function_name}', Payload=..., LogType='Tail')")
        echo("Ctrl-C stops it.")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            echo("stopping")


def _cgroup_ok() -> bool:
    from deploy.procs import cgroup_available

    return cgroup_available()
