"""The calibration targets on AWS: `aws-lambda` and `aws-ec2` (see `calibrate.targets` for the interface).

Both deploy in `session()` (entered by the campaign around all its work), tag everything with
the campaign's AWS run id, and tear it all down in its ``finally`` (unless `keep`), also on
errors and Ctrl-C.

**aws-lambda** invokes with boto3 (``Invoke``, ``LogType=Tail``) and reads the REPORT line of
the log tail (`deploy.lambda_report`): Duration, Billed Duration, Init Duration (or SnapStart's
Restore Duration), Max Memory Used. A cold start is forced the way AWS documents new execution
environments: update the function's configuration (an environment variable
``SERVESIM_COLD_NONCE`` with a fresh value), wait until the update is done
(``function_updated_v2``), invoke; an invocation without Init Duration is recorded as an error,
never passed off as a cold start. The invoke client never retries (boto3's retries are off for
it): a throttle is a ``throttled`` row, a function error an ``error`` row, a read timeout a
``timeout`` row. With `function=NAME` it measures a function that already exists (no deploy,
no teardown; its environment variables are put back at the end), which is also how it runs
against the local Lambda gateway through `endpoint_url`, on the same code path as on AWS.

**aws-ec2** launches one instance per cold start and records RunInstances -> first healthy
``/health`` answer as its `init_ms` (the boot as a user sees it, set-up script and model load
included) and the first ``/predict`` after that as the row's latency; the warm and load phases
run against one more instance, over HTTP exactly as local-server's. One instance type per
campaign (gunicorn workers = its vCPUs unless given); campaigns of several types are fitted
together by ``servesim fit``.
"""
from __future__ import annotations

import contextlib
import os
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator, Sequence

from calibrate.targets import (
    ERROR_TEXT_CHARS,
    Endpoint,
    HttpClient,
    Sample,
    Target,
    TargetConfig,
    _parse_app,
    parse_invoke,
    request_bodies,
)
from deploy.aws.session import AwsContext, aws_errors, error_code, new_run_id

COLD_VARIABLE = "SERVESIM_COLD_NONCE"


def _work_dir(work_dir) -> Path:
    if work_dir is not None:
        return Path(work_dir)
    from deploy.models.cache import cache_dir

    return cache_dir() / "aws"


@contextlib.contextmanager
def _torn_down(ctx: AwsContext, run_id: str, keep: bool, echo: Callable[[str], None]) -> Iterator[None]:
    from deploy.aws.teardown import teardown

    try:
        yield
    finally:
        if keep:
            echo(f"kept the AWS resources of run {run_id}: delete them with `servesim teardown --run-id {run_id}`")
        else:
            echo(f"tearing down AWS run {run_id}...")
            teardown(ctx, run_id=run_id, echo=echo)


# ---- aws-lambda -----------------------------------------------------------------------------

class InvokeClient:
    """One client of a Lambda function over boto3's Invoke (no retries); `call()` measures one."""

    def __init__(self, lam, function: str, bodies: Sequence[bytes], start: int = 0):
        self.lam, self.function, self.bodies, self._i = lam, function, list(bodies), start

    def call(self) -> Sample:
        from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

        body = self.bodies[self._i % len(self.bodies)]
        self._i += 1
        send_s = time.time()
        t0 = time.perf_counter()
        try:
            resp = self.lam.invoke(FunctionName=self.function, InvocationType="RequestResponse", LogType="Tail",
                                   Payload=body)
            data = resp["Payload"].read()
            ms = (time.perf_counter() - t0) * 1000.0
            headers = {"X-Amz-Log-Result": resp.get("LogResult") or "",
                       "X-Amz-Function-Error": resp.get("FunctionError") or ""}
            return parse_invoke(send_s, ms, int(resp.get("StatusCode", 200)), headers, data, None)
        except ClientError as exc:
            ms = (time.perf_counter() - t0) * 1000.0
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            code = error_code(exc)
            text = f"{code}: {(exc.response.get('Error') or {}).get('Message', '')}".encode()
            return parse_invoke(send_s, ms, 429 if code == "TooManyRequestsException" else (status or 500), {}, text,
                                None)
        except ReadTimeoutError:
            return parse_invoke(send_s, (time.perf_counter() - t0) * 1000.0, None, {}, b"", "timeout")
        except BotoCoreError as exc:
            return parse_invoke(send_s, (time.perf_counter() - t0) * 1000.0, None, {}, b"",
                                f"{type(exc).__name__}: {exc}"[:ERROR_TEXT_CHARS])

    def close(self) -> None:
        pass


class InvokeEndpoint:
    """A Lambda function to measure: `client()` makes one `InvokeClient` per thread."""

    def __init__(self, lam, function: str, bodies: Sequence[bytes], info: dict):
        self.lam, self.function, self.bodies, self.info = lam, function, list(bodies), info
        self._made = 0

    def client(self) -> InvokeClient:
        self._made += 1
        return InvokeClient(self.lam, self.function, self.bodies, start=self._made)


class AwsLambdaTarget(Target):
    """aws-lambda: one configuration per memory size (deployed as run `run_id`), or the one
    existing function `function` (see the module docstring)."""

    name = "aws-lambda"

    def __init__(self, model: str | os.PathLike, memory_list: Sequence[int] = (1024,), *, ctx: AwsContext,
                 architecture: str = "x86_64", python_version: str = "3.12", timeout_s: int = 30,
                 function: str | None = None, work_dir: str | os.PathLike | None = None, keep: bool = False,
                 run_id: str | None = None, seed: int = 0, echo: Callable[[str], None] = print):
        from deploy.aws.lambda_deploy import LambdaSpec
        from deploy.models import resolve_model

        mf = resolve_model(model)
        super().__init__(mf.name, mf.sha256)
        self.ctx, self.function, self.keep, self.echo = ctx, function, keep, echo
        self.spec = LambdaSpec(str(model), tuple(memory_list), architecture, python_version, int(timeout_s))
        self.run_id = run_id or new_run_id()
        self.work_dir = _work_dir(work_dir)
        self.bodies = request_bodies(mf, seed)
        self.functions: dict[int, str] = {}
        self._architecture = architecture
        self._lam = None

    def stack(self):
        from deploy.aws.lambda_deploy import LambdaStack

        return LambdaStack(self.ctx, self.spec, self.run_id, self.work_dir, echo=self.echo)

    def _control(self):
        return self.ctx.client("lambda")

    def _invoker(self):
        if self._lam is None:  # shared by the client threads (boto3 clients are thread-safe); never retries
            self._lam = self.ctx.client("lambda", retries=1, read_timeout_s=self.spec.timeout_s + 30.0, pool=128)
        return self._lam

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        if self.function is not None:
            with aws_errors(f"reading the configuration of {self.function}"):
                cfg = self._control().get_function_configuration(FunctionName=self.function)
            self.functions = {int(cfg["MemorySize"]): self.function}
            self._architecture = (cfg.get("Architectures") or ["x86_64"])[0]
            original = dict((cfg.get("Environment") or {}).get("Variables") or {})
            try:
                yield
            finally:
                self._set_variables(self.function, original)
            return
        with _torn_down(self.ctx, self.run_id, self.keep, self.echo):
            deployment = self.stack().deploy()
            self.functions = {f.memory_mb: f.name for f in deployment.functions}
            yield

    def configs(self) -> list[TargetConfig]:
        arch = self._architecture
        return [TargetConfig(f"memory_mb={m},architecture={arch}", {"memory_mb": m, "architecture": arch},
                             f"{m} MB") for m in sorted(self.functions)]

    def _set_variables(self, function: str, variables: dict) -> None:
        lam = self._control()
        with aws_errors(f"updating the configuration of {function}"):
            lam.update_function_configuration(FunctionName=function, Environment={"Variables": variables})
            lam.get_waiter("function_updated_v2").wait(FunctionName=function,
                                                        WaiterConfig={"Delay": 1, "MaxAttempts": 300})

    def _endpoint(self, config: TargetConfig) -> InvokeEndpoint:
        fn = self.functions[int(config.fields["memory_mb"])]
        return InvokeEndpoint(self._invoker(), fn, self.bodies,
                              {"function": fn, "memory_mb": int(config.fields["memory_mb"]), **self.ctx.describe()})

    @contextlib.contextmanager
    def cold_starts(self, config: TargetConfig) -> Iterator[Callable[[], Sample]]:
        endpoint = self._endpoint(config)
        client = endpoint.client()
        fn = endpoint.function
        with aws_errors(f"reading the configuration of {fn}"):
            variables = dict((self._control().get_function_configuration(FunctionName=fn).get("Environment") or {})
                             .get("Variables") or {})

        def one() -> Sample:
            self._set_variables(fn, {**variables, COLD_VARIABLE: uuid.uuid4().hex})
            sample = client.call()
            if sample.status == "ok" and sample.init_ms is None:
                sample.status, sample.error = "error", "not a cold start (no Init Duration in the REPORT line)"
            return sample

        yield one

    @contextlib.contextmanager
    def serving(self, config: TargetConfig) -> Iterator[InvokeEndpoint]:
        yield self._endpoint(config)

    def describe(self) -> dict:
        return {**super().describe(), "memory_mb": list(self.spec.memory_mb), "architecture": self._architecture,
                "timeout_s": self.spec.timeout_s, "function": self.function, "aws_run_id": self.run_id,
                **self.ctx.describe()}


# ---- aws-ec2 --------------------------------------------------------------------------------

class AwsEc2Target(Target):
    """aws-ec2: one instance type, measured over HTTP (see the module docstring). `url_for`
    maps a DescribeInstances record to the instance's base URL (tests point it at a local
    server, since moto's instances run nothing)."""

    name = "aws-ec2"

    def __init__(self, model: str | os.PathLike, instance_type: str, *, ctx: AwsContext, allow_cidr: str,
                 allow_anywhere: bool = False, workers: int | None = None, threads: int = 1, port: int = 8080,
                 health_timeout_s: float = 900.0, timeout_s: float = 60.0, work_dir: str | os.PathLike | None = None,
                 keep: bool = False, run_id: str | None = None, seed: int = 0, echo: Callable[[str], None] = print,
                 url_for: Callable[[dict], str] | None = None):
        from deploy.aws.ec2_deploy import Ec2Spec, Ec2Stack
        from deploy.models import resolve_model

        mf = resolve_model(model)
        super().__init__(mf.name, mf.sha256)
        self.ctx, self.keep, self.echo = ctx, keep, echo
        self.run_id = run_id or new_run_id()
        self.timeout_s = float(timeout_s)
        self.spec = Ec2Spec(str(model), instance_type, 1, allow_cidr, allow_anywhere, workers, threads, port,
                            health_timeout_s)
        self.stack = Ec2Stack(ctx, self.spec, self.run_id, _work_dir(work_dir), echo=echo, url_for=url_for)
        self.bodies = request_bodies(mf, seed)

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        with _torn_down(self.ctx, self.run_id, self.keep, self.echo):
            self.stack.prepare()
            yield

    def configs(self) -> list[TargetConfig]:
        t, w = self.spec.instance_type, self.stack.workers
        vcpus = self.stack.type_info()["vcpus"]
        return [TargetConfig(f"instance_type={t},workers={w}", {"instance_type": t, "workers": w, "cpus": vcpus},
                             f"{t}, {w} worker{'s' if w > 1 else ''}")]

    @contextlib.contextmanager
    def _instance(self) -> Iterator:
        instances = self.stack.launch(1)
        try:
            yield self.stack.wait_healthy(instances)[0]
        finally:
            self.stack.terminate(instances)

    @contextlib.contextmanager
    def cold_starts(self, config: TargetConfig) -> Iterator[Callable[[], Sample]]:
        def one() -> Sample:
            with self._instance() as inst:
                client = HttpClient(inst.url + "/predict", timeout_s=self.timeout_s)
                try:
                    sample = _parse_app(*client.post(self.bodies[0]))
                finally:
                    client.close()
                sample.init_ms = inst.boot_s * 1000.0
                return sample

        yield one

    @contextlib.contextmanager
    def serving(self, config: TargetConfig) -> Iterator[Endpoint]:
        with self._instance() as inst:
            yield Endpoint(inst.url + "/predict", self.bodies, _parse_app, timeout_s=self.timeout_s,
                           info={"instance_id": inst.instance_id, "boot_s": inst.boot_s, **self.ctx.describe()})

    def warmup_requests(self, config: TargetConfig) -> int:
        return 3 * int(config.fields["workers"])

    def describe(self) -> dict:
        return {**super().describe(), "instance_type": self.spec.instance_type, "allow_cidr": self.spec.allow_cidr,
                "aws_run_id": self.run_id, **self.ctx.describe()}
