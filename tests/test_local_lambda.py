"""The local Lambda gateway with real processes: AWS's Runtime Interface Emulator running
awslambdaric, driven by boto3's lambda client exactly as the AWS path drives AWS. No mocks.

After every test no process this test started may be left (ManagedProcess registry empty, no
descendant of the test process alive)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import psutil
import pytest

boto3 = pytest.importorskip("boto3")
from botocore.config import Config  # noqa: E402

from deploy.lambda_report import parse_log_result  # noqa: E402
from deploy.local_lambda import LocalLambda  # noqa: E402
from deploy.procs import live_processes  # noqa: E402
from sim.errors import ServesimError  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

# A handler whose behaviour the event chooses: answer, sleep, raise, kill its runtime, or read an
# environment variable.
TEST_HANDLER = textwrap.dedent("""\
    import os, time
    def handler(event, context):
        action = event.get("action")
        if action == "sleep":
            time.sleep(event["s"])
        elif action == "raise":
            raise ValueError("boom")
        elif action == "exit":
            os._exit(3)
        elif action == "env":
            return {"value": os.environ.get(event["name"]), "pid": os.getpid()}
        print("handled", action)
        return {"action": action, "pid": os.getpid(), "memory": os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]}
    """)


@pytest.fixture(scope="session")
def rie():
    from deploy.rie import fetch_rie, rie_path

    try:
        return rie_path()
    except ServesimError:
        pass
    try:
        return fetch_rie()
    except ServesimError as exc:  # no network to PyPI: nothing to run the environments with
        pytest.skip(f"the Lambda Runtime Interface Emulator is not installed and could not be fetched: {exc}")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """y = 2x, x float32 [batch, 4]."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    two = helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0])
    graph = helper.make_graph([helper.make_node("Mul", ["x", "two"], ["y"])], "tiny", [x], [y], [two])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def handler_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("handler")
    (d / "llfn.py").write_text(TEST_HANDLER)
    return d


def _descendants() -> set[int]:
    out = set()
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                out.add(p.pid)
        except psutil.Error:
            pass
    return out


@pytest.fixture(autouse=True)
def no_leaks():
    before = _descendants()
    yield
    assert live_processes() == []
    deadline = time.monotonic() + 3
    while _descendants() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [psutil.Process(pid).cmdline() for pid in _descendants() - before if psutil.pid_exists(pid)]
    assert left == []


def client(gw):
    return boto3.client("lambda", endpoint_url=gw.url, region_name="us-east-1", aws_access_key_id="x",
                        aws_secret_access_key="x", config=Config(retries={"max_attempts": 0}, read_timeout=30))


def call(c, gw, event):
    """(payload, FunctionError, parsed REPORT, response) of one invocation with LogType=Tail."""
    r = c.invoke(FunctionName=gw.function_name, Payload=json.dumps(event), LogType="Tail")
    return json.loads(r["Payload"].read()), r.get("FunctionError"), parse_log_result(r["LogResult"]), r


def test_boto3_invoke_returns_the_handler_answer_and_init_only_on_first(rie, tiny_model):
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    with LocalLambda(tiny_model, memory_mb=1024, keep_alive_s=60, rie=rie) as gw:
        assert gw.function_name == "tiny"
        c = client(gw)
        reports = []
        for _ in range(3):
            body, ferr, rep, resp = call(c, gw, {"inputs": {"x": x.tolist()}})
            assert resp["StatusCode"] == 200 and ferr is None and resp["ExecutedVersion"] == "$LATEST"
            assert np.array_equal(np.array(body["outputs"]["y"], dtype=np.float32), 2 * x)
            assert body["model"] == "tiny.onnx" and body["inference_ms"] > 0
            reports.append(rep)
        # The function name as an ARN works too; a payload-less invoke reaches the handler as {}.
        r = c.invoke(FunctionName=gw.arn)
        assert r.get("FunctionError") is None and "error" in json.loads(r["Payload"].read())
        status = gw.status()
    first, *warm = reports
    assert first["init_duration_ms"] is not None and first["init_duration_ms"] > 10
    assert float(first["servesim_emulator_start"].removesuffix(" ms")) > 0
    assert all(rep["init_duration_ms"] is None and "servesim_emulator_start" not in rep for rep in warm)
    assert len({rep["request_id"] for rep in reports}) == 3
    for rep in reports:
        assert rep["memory_size_mb"] == 1024
        assert rep["billed_duration_ms"] == max(1, -(-round(rep["duration_ms"] * 100) // 100))
        assert 20 < rep["max_memory_used_mb"] < 1024
    assert [e["invocations"] for e in status["environments"]] == [4]  # one environment, reused
    method = status["environments"][0]["limit"]["method"]
    assert first["servesim_cpu_limit"].startswith(method)  # the limit applied is recorded
    if method == "cgroup":
        assert first["servesim_cpu_limit"] == "cgroup 0.579 vCPU"
        assert first["servesim_memory_limit"] == "cgroup 1024 MB"
    assert status["counters"]["cold_starts"] == 1 and status["counters"]["invocations"] == 4


def test_two_concurrent_requests_start_two_environments(rie, tiny_model, handler_dir):
    with LocalLambda(tiny_model, rie=rie, handler="llfn:handler", python_path=[handler_dir],
                     keep_alive_s=60, concurrency_limit=5) as gw:
        c = client(gw)
        barrier = threading.Barrier(2)
        out = [None, None]

        def one(i):
            barrier.wait()
            out[i] = call(c, gw, {"action": "sleep", "s": 1.0})

        threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        pids = {o[0]["pid"] for o in out}
        assert len(pids) == 2
        assert all(o[2]["init_duration_ms"] is not None for o in out)
        assert all(o[2]["duration_ms"] >= 1000 for o in out)
        # Both now idle; the next request reuses one (warm), the most recently used.
        body, _, rep, _ = call(c, gw, {"action": "hi"})
        assert body["pid"] in pids and rep["init_duration_ms"] is None
        status = gw.status()
        assert [e["state"] for e in status["environments"]] == ["idle", "idle"]
        assert status["counters"]["cold_starts"] == 2


def test_idle_environment_is_reclaimed_after_keep_alive(rie, tiny_model, handler_dir):
    with LocalLambda(tiny_model, rie=rie, handler="llfn:handler", python_path=[handler_dir],
                     keep_alive_s=1.0) as gw:
        c = client(gw)
        first, _, rep1, _ = call(c, gw, {"action": "a"})
        second, _, rep2, _ = call(c, gw, {"action": "b"})  # within keep-alive: warm, same runtime
        assert rep1["init_duration_ms"] is not None and rep2["init_duration_ms"] is None
        assert first["pid"] == second["pid"]
        t0 = time.monotonic()
        while gw.status()["environments"] and time.monotonic() - t0 < 5:
            time.sleep(0.05)
        assert gw.status()["environments"] == []
        assert 0.9 <= time.monotonic() - t0 + 0.05  # not before keep-alive
        assert not psutil.pid_exists(first["pid"]) or psutil.Process(first["pid"]).status() == psutil.STATUS_ZOMBIE
        third, _, rep3, _ = call(c, gw, {"action": "c"})
        assert rep3["init_duration_ms"] is not None and third["pid"] != first["pid"]
        assert gw.status()["counters"]["reclaimed"] == 1


def test_concurrency_limit_is_429_too_many_requests(rie, tiny_model, handler_dir):
    with LocalLambda(tiny_model, rie=rie, handler="llfn:handler", python_path=[handler_dir],
                     keep_alive_s=60, concurrency_limit=1) as gw:
        c = client(gw)
        slow = threading.Thread(target=call, args=(c, gw, {"action": "sleep", "s": 1.5}))
        slow.start()
        t0 = time.monotonic()
        while not gw.status()["environments"] and time.monotonic() - t0 < 5:
            time.sleep(0.01)
        t1 = time.monotonic()
        with pytest.raises(c.exceptions.TooManyRequestsException) as info:
            c.invoke(FunctionName=gw.function_name, Payload=b"{}")
        assert time.monotonic() - t1 < 1.0  # refused at once, not queued
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert info.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
        slow.join()
        _, ferr, rep, _ = call(c, gw, {"action": "after"})  # the environment is free again: warm
        assert ferr is None and rep["init_duration_ms"] is None
        assert gw.status()["counters"]["throttled"] == 1


def test_function_errors_crashes_and_timeouts(rie, tiny_model, handler_dir):
    with LocalLambda(tiny_model, rie=rie, handler="llfn:handler", python_path=[handler_dir],
                     keep_alive_s=60, timeout_s=1) as gw:
        c = client(gw)
        ok, _, _, _ = call(c, gw, {"action": "a"})
        # A handler exception: 200, Unhandled, Lambda's error object; the environment is kept.
        err, ferr, rep, resp = call(c, gw, {"action": "raise"})
        assert resp["StatusCode"] == 200 and ferr == "Unhandled"
        assert err["errorType"] == "ValueError" and err["errorMessage"] == "boom"
        assert rep["init_duration_ms"] is None and rep["status"] is None
        again, _, _, _ = call(c, gw, {"action": "b"})
        assert again["pid"] == ok["pid"]
        # The runtime dies: Unhandled Runtime.ExitError; the environment is discarded.
        err, ferr, rep, _ = call(c, gw, {"action": "exit"})
        assert ferr == "Unhandled" and err["errorType"] == "Runtime.ExitError"
        assert (rep["status"], rep["error_type"]) == ("error", "Runtime.ExitError")
        fresh, _, rep, _ = call(c, gw, {"action": "c"})
        assert rep["init_duration_ms"] is not None and fresh["pid"] != ok["pid"]
        # Past the function timeout: Sandbox.Timedout; the environment is discarded.
        err, ferr, rep, r = call(c, gw, {"action": "sleep", "s": 5})
        assert ferr == "Unhandled" and err["errorType"] == "Sandbox.Timedout"
        assert "Task timed out after 1.00 seconds" in err["errorMessage"]
        assert rep["status"] == "timeout" and 900 <= rep["duration_ms"] < 3000
        _, _, rep, _ = call(c, gw, {"action": "d"})
        assert rep["init_duration_ms"] is not None
        assert gw.status()["counters"]["discarded"] == 2


def test_aws_errors_for_bad_requests(rie, tiny_model, handler_dir):
    with LocalLambda(tiny_model, rie=rie, handler="llfn:handler", python_path=[handler_dir]) as gw:
        c = client(gw)
        with pytest.raises(c.exceptions.ResourceNotFoundException):
            c.invoke(FunctionName="no-such-function", Payload=b"{}")
        with pytest.raises(c.exceptions.ResourceNotFoundException):
            c.invoke(FunctionName=gw.function_name, Qualifier="7", Payload=b"{}")
        with pytest.raises(c.exceptions.InvalidParameterValueException):
            c.invoke(FunctionName=gw.function_name, InvocationType="Event", Payload=b"{}")
        with pytest.raises(c.exceptions.InvalidRequestContentException):
            c.invoke(FunctionName=gw.function_name, Payload=b"{not json")
        with pytest.raises(c.exceptions.RequestTooLargeException):
            c.invoke(FunctionName=gw.function_name, Payload=b"[" + b"0," * (3 * 2**20) + b"0]")
        with urllib.request.urlopen(gw.url + "/servesim/status") as r:
            status = json.loads(r.read())
        assert status["function"] == gw.function_name and status["environments"] == []
        # The function's own log lines reach the tail, between START and END.
        r = c.invoke(FunctionName=gw.function_name, Payload=b'{"action": "logged"}', LogType="Tail")
        import base64

        log = base64.b64decode(r["LogResult"]).decode()
        lines = log.splitlines()
        assert lines[0].startswith("START RequestId: ") and "handled logged" in lines
        assert lines[-2].startswith("END RequestId: ") and lines[-1].startswith("REPORT RequestId: ")


def test_bad_settings_are_user_errors(rie, tiny_model, tmp_path):
    with pytest.raises(ServesimError, match="memory_mb"):
        LocalLambda(tiny_model, memory_mb=64, rie=rie)
    with pytest.raises(ServesimError, match="--rie"):
        LocalLambda(tiny_model, rie=tmp_path / "nothing")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_forever_stops_every_environment_on_signal(rie, tiny_model, sig):
    code = ("import sys; from deploy.local_lambda import serve_forever; "
            f"serve_forever({str(tiny_model)!r}, memory_mb=512, rie={str(rie)!r}, echo=lambda s: print(s, flush=True))")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        line = proc.stdout.readline()
        url = line.split(" at ", 1)[1].split()[0]
        c = boto3.client("lambda", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x",
                         aws_secret_access_key="x", config=Config(retries={"max_attempts": 0}))
        r = c.invoke(FunctionName="tiny", Payload=json.dumps({"inputs": {"x": [[1, 2, 3, 4]]}}))
        assert r.get("FunctionError") is None
        tree = psutil.Process(proc.pid).children(recursive=True)
        assert any("aws-lambda-rie" in " ".join(p.cmdline()) for p in tree)
        proc.send_signal(sig)
        assert proc.wait(timeout=15) != 0 or sig == signal.SIGINT
        gone, alive = psutil.wait_procs(tree, timeout=5)
        assert [p for p in alive if p.status() != psutil.STATUS_ZOMBIE] == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stdout.close()


def in_flight(c, gw, sleep_s: float, *, wait_s: float):
    """Start a request whose handler sleeps `sleep_s` in a thread; return once the runtime is in
    the handler: (the thread, the list its answer goes to)."""
    out = []
    t = threading.Thread(target=lambda: out.append(call(c, gw, {"action": "sleep", "s": sleep_s})))
    t.start()
    deadline = time.monotonic() + wait_s
    while not any(e["invocations"] for e in gw.status()["environments"]) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # the runtime is in the handler now
    return t, out


def test_stopping_the_gateway_mid_invocation_leaves_nothing(rie, tiny_model, handler_dir):
    gw = LocalLambda(tiny_model, rie=rie, handler="llfn:handler", python_path=[handler_dir]).start()
    try:
        c = client(gw)
        t, out = in_flight(c, gw, 5, wait_s=5)
        t0 = time.monotonic()
        gw.stop()
        assert time.monotonic() - t0 < 3
    finally:
        gw.stop()
    t.join(timeout=10)
    body, ferr, rep, _ = out[0]  # the request in flight ends as a function error, not a hang
    assert ferr == "Unhandled" and body["errorType"] == "Runtime.ExitError"


# ---- the configuration API: GetFunctionConfiguration, GetFunction, UpdateFunctionConfiguration ----

def boto_client(gw):
    """The client as the aws-lambda target makes it (credentials are not checked locally)."""
    return boto3.client("lambda", endpoint_url=gw.url, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing", config=Config(retries={"max_attempts": 0}, read_timeout=30))


def _gone(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def _wait_updated(c, gw) -> float:
    """Seconds boto3's function_updated_v2 waiter took (it polls GetFunction every second)."""
    t0 = time.monotonic()
    c.get_waiter("function_updated_v2").wait(FunctionName=gw.function_name,
                                             WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    return time.monotonic() - t0


def test_get_function_configuration_has_aws_fields_and_only_the_function_variables(rie, tiny_model):
    from deploy.rie import host_arch

    with LocalLambda(tiny_model, memory_mb=512, timeout_s=7, rie=rie, env={"GREETING": "hi"}) as gw:
        c = boto_client(gw)
        cfg = c.get_function_configuration(FunctionName=gw.function_name)
        assert cfg["FunctionName"] == "tiny" and cfg["FunctionArn"] == gw.arn
        assert cfg["Runtime"] == f"python{sys.version_info.major}.{sys.version_info.minor}"
        assert cfg["Handler"] == "deploy.handler.handler"
        assert (cfg["MemorySize"], cfg["Timeout"]) == (512, 7)
        assert cfg["Architectures"] == [host_arch()]
        assert cfg["Environment"] == {"Variables": {"GREETING": "hi"}}  # no SERVESIM_*, PYTHONPATH, AWS_*
        assert (cfg["State"], cfg["LastUpdateStatus"], cfg["PackageType"]) == ("Active", "Successful", "Zip")
        assert cfg["CodeSize"] == tiny_model.stat().st_size and cfg["Version"] == "$LATEST"
        assert cfg["RevisionId"] and cfg["LastModified"].endswith("+0000")
        fn = c.get_function(FunctionName=gw.arn, Qualifier="$LATEST")
        assert fn["Configuration"] == {k: v for k, v in cfg.items() if k != "ResponseMetadata"}
        assert fn["Tags"] == {} and fn["Code"]["Location"] == tiny_model.resolve().as_uri()
        assert fn["Concurrency"] == {"ReservedConcurrentExecutions": gw.concurrency_limit}
        assert gw.status()["environments"] == []  # reading the configuration starts nothing
    with LocalLambda(tiny_model, rie=rie) as gw:  # no variables: no Environment, as AWS answers
        assert "Environment" not in boto_client(gw).get_function_configuration(FunctionName=gw.function_name)


def test_update_function_configuration_makes_every_next_invoke_cold(rie, tiny_model, handler_dir):
    with LocalLambda(tiny_model, rie=rie, handler="llfn:handler", python_path=[handler_dir],
                     keep_alive_s=60, env={"KEEP": "1"}) as gw:
        c = boto_client(gw)
        first, _, rep, _ = call(c, gw, {"action": "a"})
        warm, _, rep_warm, _ = call(c, gw, {"action": "b"})
        assert rep["init_duration_ms"] is not None and rep_warm["init_duration_ms"] is None  # warm before
        pids, revisions = [first["pid"]], [c.get_function(FunctionName=gw.function_name)["Configuration"]["RevisionId"]]
        for i in range(3):
            variables = c.get_function_configuration(FunctionName=gw.function_name)["Environment"]["Variables"]
            cfg = c.update_function_configuration(
                FunctionName=gw.function_name,
                Environment={"Variables": {**variables, "SERVESIM_COLD_NONCE": f"nonce-{i}"}})
            assert cfg["Environment"]["Variables"] == {"KEEP": "1", "SERVESIM_COLD_NONCE": f"nonce-{i}"}
            assert cfg["LastUpdateStatus"] == "Successful" and cfg["RevisionId"] not in revisions
            revisions.append(cfg["RevisionId"])
            assert _wait_updated(c, gw) < 0.9  # passed on its first poll
            assert _gone(pids[-1])  # the idle environment was stopped by the update
            body, ferr, rep, _ = call(c, gw, {"action": "after"})
            assert ferr is None and rep["init_duration_ms"] is not None  # a cold start
            assert body["pid"] not in pids
            pids.append(body["pid"])
        status = gw.status()
        assert status["counters"]["config_updates"] == 3 and status["counters"]["retired"] == 3
        assert status["counters"]["cold_starts"] == 4 and status["revision_id"] == revisions[-1]
        assert [e["state"] for e in status["environments"]] == ["idle"]


def test_update_while_a_request_is_in_flight(rie, tiny_model, handler_dir):
    with LocalLambda(tiny_model, rie=rie, handler="llfn:handler", python_path=[handler_dir], keep_alive_s=60) as gw:
        c = boto_client(gw)
        t, out = in_flight(c, gw, 2.0, wait_s=10)
        t0 = time.monotonic()
        c.update_function_configuration(FunctionName=gw.function_name,
                                        Environment={"Variables": {"SERVESIM_COLD_NONCE": "1"}})
        assert time.monotonic() - t0 < 1.0  # the update does not wait for the request
        assert _wait_updated(c, gw) < 0.9
        assert [e["state"] for e in gw.status()["environments"]] == ["retiring"]
        t.join(timeout=15)
        body, ferr, rep, _ = out[0]
        assert ferr is None and body["action"] == "sleep" and rep["duration_ms"] >= 2000  # completed normally
        assert gw.status()["environments"] == []  # retired, not made idle
        assert _gone(body["pid"])
        after, ferr, rep, _ = call(c, gw, {"action": "after"})
        assert ferr is None and rep["init_duration_ms"] is not None and after["pid"] != body["pid"]
        counters = gw.status()["counters"]
        assert (counters["retired"], counters["discarded"], counters["cold_starts"]) == (1, 0, 2)


def test_update_refuses_what_the_gateway_cannot_change(rie, tiny_model):
    from botocore.exceptions import ClientError

    def error(fn, **kw):
        with pytest.raises(ClientError) as info:
            fn(**kw)
        return info.value.response["Error"]["Code"], info.value.response["ResponseMetadata"]["HTTPStatusCode"]

    with LocalLambda(tiny_model, memory_mb=1024, timeout_s=30, rie=rie) as gw:
        c = boto_client(gw)
        name = gw.function_name
        before = c.get_function_configuration(FunctionName=name)
        assert error(c.update_function_configuration, FunctionName=name, MemorySize=2048) == \
            ("InvalidParameterValueException", 400)
        assert error(c.update_function_configuration, FunctionName=name, Timeout=60,
                     Environment={"Variables": {"A1": "x"}}) == ("InvalidParameterValueException", 400)
        assert error(c.update_function_configuration, FunctionName=name, Role="arn:aws:iam::1:role/r") == \
            ("InvalidParameterValueException", 400)
        for key in ("PYTHONPATH", "SERVESIM_MODEL", "AWS_REGION", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"):
            assert error(c.update_function_configuration, FunctionName=name,
                         Environment={"Variables": {key: "x"}}) == ("InvalidParameterValueException", 400)
        assert error(c.update_function_configuration, FunctionName=name,
                     Environment={"Variables": {"BIG": "x" * 5000}}) == ("InvalidParameterValueException", 400)
        assert error(c.update_function_configuration, FunctionName=name, RevisionId="stale",
                     Environment={"Variables": {"A1": "x"}}) == ("PreconditionFailedException", 412)
        assert error(c.get_function_configuration, FunctionName="no-such-function") == \
            ("ResourceNotFoundException", 404)
        assert error(c.get_function, FunctionName="no-such-function") == ("ResourceNotFoundException", 404)
        assert error(c.get_function, FunctionName=name, Qualifier="7") == ("ResourceNotFoundException", 404)
        assert error(c.update_function_configuration, FunctionName="no-such-function",
                     Environment={"Variables": {"A1": "x"}}) == ("ResourceNotFoundException", 404)
        after = c.get_function_configuration(FunctionName=name)  # nothing was changed
        assert after["RevisionId"] == before["RevisionId"] and "Environment" not in after
        assert gw.status()["counters"]["config_updates"] == 0
        # Fields equal to the current value are fine; so is the current RevisionId.
        cfg = c.update_function_configuration(FunctionName=name, MemorySize=1024, Timeout=30,
                                              Handler="deploy.handler.handler", RevisionId=before["RevisionId"],
                                              Environment={"Variables": {"A1": "x"}})
        assert cfg["Environment"]["Variables"] == {"A1": "x"} and cfg["MemorySize"] == 1024
    with pytest.raises(ServesimError, match="reserved keys"):
        LocalLambda(tiny_model, rie=rie, env={"PYTHONPATH": "/elsewhere"})


def test_function_variables_reach_the_handler_under_the_gateway_plumbing(rie, tiny_model, handler_dir):
    with LocalLambda(tiny_model, rie=rie, handler="llfn:handler", python_path=[handler_dir], keep_alive_s=60,
                     env={"GREETING": "hi"}) as gw:
        c = boto_client(gw)

        def read(name):
            body, ferr, _, _ = call(c, gw, {"action": "env", "name": name})
            assert ferr is None
            return body["value"]

        assert read("GREETING") == "hi"
        c.update_function_configuration(FunctionName=gw.function_name,
                                        Environment={"Variables": {"GREETING": "bye", "SERVESIM_THREADS": "1"}})
        assert read("GREETING") == "bye" and read("SERVESIM_THREADS") == "1"
        assert read("SERVESIM_MODEL") == str(tiny_model.resolve())  # the plumbing is untouched
        assert str(handler_dir.resolve()) in read("PYTHONPATH").split(os.pathsep)
        assert read("AWS_LAMBDA_FUNCTION_NAME") == gw.function_name
        c.update_function_configuration(FunctionName=gw.function_name, Environment={"Variables": {}})
        assert read("GREETING") is None
        assert "Environment" not in c.get_function_configuration(FunctionName=gw.function_name)
