"""The inference core, the Flask app under a real gunicorn, local-server's CPU limit and clean
stop, and the Lambda handler: real onnxruntime, real processes, no mocks.

Every test checks on the way out that no process it started is left (`live_processes()` is
empty and no gunicorn pid seen during the test is alive)."""
from __future__ import annotations

import base64
import concurrent.futures as cf
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
psutil = pytest.importorskip("psutil")
requests = pytest.importorskip("requests")
pytest.importorskip("gunicorn")
pytest.importorskip("flask")

from modelhelp import write_tiny_model  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from deploy import procs  # noqa: E402
from deploy.core import InferenceCore, RequestError, decode_outputs, encode_inputs, encode_tensor  # noqa: E402
from deploy.local_server import LocalServer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


# -- test models ------------------------------------------------------------------------------

def _save(graph, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("models") / "tiny.onnx")


@pytest.fixture(scope="module")
def pool_model(tmp_path_factory) -> Path:
    """Masked embedding sum: ids, mask int64 [batch, seq] -> pooled float32 [batch, 4]
    (two inputs sharing symbolic dimensions; ids index a 10-row table)."""
    table = np.arange(40, dtype=np.float32).reshape(10, 4)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["E", "ids"], ["emb"]),
         helper.make_node("Cast", ["mask"], ["maskf"], to=TensorProto.FLOAT),
         helper.make_node("Unsqueeze", ["maskf", "last"], ["mask3"]),
         helper.make_node("Mul", ["emb", "mask3"], ["masked"]),
         helper.make_node("ReduceSum", ["masked", "one"], ["pooled"], keepdims=0)],
        "pool",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"]),
         helper.make_tensor_value_info("mask", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", 4])],
        [numpy_helper.from_array(table, "E"), numpy_helper.from_array(np.array([-1], np.int64), "last"),
         numpy_helper.from_array(np.array([1], np.int64), "one")])
    return _save(graph, tmp_path_factory.mktemp("models") / "pool.onnx")


def _reference(model: Path, feeds: dict) -> dict:
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


# -- no process left behind -------------------------------------------------------------------

_SEEN_PIDS: list[int] = []


def _remember_tree(pid: int) -> list[int]:
    """Record a process and its descendants as ours (checked dead after the test)."""
    try:
        root = psutil.Process(pid)
        pids = [pid, *(c.pid for c in root.children(recursive=True))]
    except psutil.Error:
        pids = [pid]
    _SEEN_PIDS.extend(pids)
    return pids


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _cmdline(p) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


@pytest.fixture(autouse=True)
def no_leaks():
    _SEEN_PIDS.clear()
    yield
    left = procs.live_processes()
    for p in left:
        p.stop()
    assert left == [], f"processes left running: {[p.args for p in left]}"
    survivors = [pid for pid in _SEEN_PIDS if _alive(pid)]
    assert survivors == [], f"processes survived: {survivors}"
    ours = [p for p in psutil.Process().children(recursive=True) if _alive(p.pid)]
    assert not [p.pid for p in ours if "gunicorn" in " ".join(_cmdline(p))], "a gunicorn child is alive"


# -- the core ---------------------------------------------------------------------------------

def _body(obj) -> bytes:
    return json.dumps(obj).encode()


def _row(values) -> list:
    return [list(values)]


TINY_BAD = [
    (b"", 400, "empty"),
    (b"{", 400, "malformed JSON"),
    (b"\xff\xfe\xfa\x00garbage", 400, "malformed JSON"),
    (b"[" * 50_000 + b"]" * 50_000, 400, "malformed JSON"),
    (_body([1, 2]), 400, "JSON object"),
    (_body({"input": [[0.0] * 16]}), 400, "no 'inputs'"),
    (_body({"inputs": [[0.0] * 16]}), 400, "'inputs' must be an object"),
    (_body({"inputs": {}}), 400, "missing input"),
    (_body({"inputs": {"input": [[0.0] * 16], "extra": [1]}}), 400, "unknown input"),
    (_body({"inputs": {"input": "zeros"}}), 400, "nested list"),
    (_body({"inputs": {"input": [0.0] * 16}}), 400, "rank 2"),
    (_body({"inputs": {"input": [[[0.0] * 16]]}}), 400, "rank 2"),
    (_body({"inputs": {"input": [[0.0] * 15]}}), 400, "dimension 1 must be 16"),
    (_body({"inputs": {"input": [[0.0] * 16, [0.0] * 15]}}), 400, "rectangular"),
    (_body({"inputs": {"input": [["a"] * 16]}}), 400, "expected float32, got strings"),
    (_body({"inputs": {"input": [[True] * 16]}}), 400, "expected float32, got booleans"),
    (_body({"inputs": {"input": [[None] * 16]}}), 400, "expected float32"),
    (_body({"inputs": {"input": [[10 ** 400] + [0] * 15]}}), 400, "expected float32"),
    (_body({"inputs": {"input": []}}), 400, "empty tensor"),
    (b'{"inputs": {"input": [[NaN' + b", 0" * 15 + b"]]}}", 400, "non-finite"),
    (b'{"inputs": {"input": [[Infinity' + b", 0" * 15 + b"]]}}", 400, "non-finite"),
    (_body({"inputs": {"input": [[1e39] + [0.0] * 15]}}), 400, "non-finite"),  # overflows float32
    (_body({"inputs": {"input": {"dtype": "float64", "shape": [1, 16], "b64": ""}}}), 400, "expected dtype"),
    (_body({"inputs": {"input": {"dtype": "float32", "shape": [1, 16], "b64": "AAAA"}}}), 400, "needs 64"),
    (_body({"inputs": {"input": {"dtype": "float32", "shape": [1, 16], "b64": "A" * 400}}}), 400, "longer"),
    (_body({"inputs": {"input": {"dtype": "float32", "shape": [1, 16], "b64": "!!notbase64!!"}}}), 400, "base64"),
    (_body({"inputs": {"input": {"dtype": "float32", "shape": [1, 15], "b64": ""}}}), 400, "dimension 1"),
    (_body({"inputs": {"input": {"dtype": "float32", "shape": [1, "16"], "b64": ""}}}), 400, "shape must be"),
    (_body({"inputs": {"input": {"dtype": "float32", "shape": [10 ** 12, 16], "b64": "AAAA"}}}), 400, "needs"),
    (_body({"inputs": {"input": {"dtype": "float32", "shape": [1, 16]}}}), 400, "exactly the keys"),
    (_body({"inputs": {"input": encode_tensor(np.full((1, 16), np.nan, np.float32))}}), 400, "non-finite"),
]


@pytest.mark.parametrize("body,status,words", TINY_BAD, ids=range(len(TINY_BAD)))
def test_core_rejects_bad_requests(tiny_model, body, status, words):
    core = InferenceCore(tiny_model)
    with pytest.raises(RequestError) as info:
        core.predict_body(body)
    assert info.value.status == status
    assert words in info.value.message
    assert json.loads(json.dumps(info.value.as_dict())) == {"error": info.value.message, "status": status}


def test_core_body_limit_is_413(tiny_model):
    core = InferenceCore(tiny_model, max_body_bytes=1000)
    small = _body({"inputs": {"input": [[0.5] * 16]}})
    assert len(small) < 1000
    core.predict_body(small)
    with pytest.raises(RequestError) as info:
        core.predict_body(_body({"inputs": {"input": [[0.5] * 16] * 100}}))
    assert info.value.status == 413
    assert InferenceCore(tiny_model).max_body_bytes == 6 * 1024 * 1024


def test_core_matches_onnxruntime(tiny_model):
    core = InferenceCore(tiny_model)
    assert [(s.name, s.dtype.name, s.shape) for s in core.inputs] == [("input", "float32", ("N", 16))]
    x = np.random.default_rng(2).standard_normal((3, 16)).astype(np.float32)
    want = _reference(tiny_model, {"input": x})["probs"]
    as_list = core.predict_body(_body({"inputs": {"input": x.tolist()}}))
    as_b64 = core.predict_body(encode_inputs({"input": x}))
    for pred in (as_list, as_b64):
        doc = json.loads(pred.body)
        assert doc["model"] == "tiny" and doc["inference_ms"] == pred.inference_ms > 0
        got = decode_outputs(pred.body)["probs"]
        assert got.shape == (3, 4)
        np.testing.assert_array_equal(got.astype(np.float32), want)  # float32 survives JSON exactly
    ints = core.predict_body(_body({"inputs": {"input": [list(range(16))]}}))  # integers for a float input
    np.testing.assert_array_equal(decode_outputs(ints.body)["probs"].astype(np.float32),
                                  _reference(tiny_model, {"input": np.arange(16, dtype=np.float32)[None]})["probs"])


def test_core_integer_inputs_and_shared_dimensions(pool_model):
    core = InferenceCore(pool_model)
    ids, mask = np.array([[1, 2, 3]]), np.array([[1, 1, 0]])
    want = _reference(pool_model, {"ids": ids, "mask": mask})["pooled"]
    got = core.predict_request({"inputs": {"ids": ids.tolist(), "mask": mask.tolist()}})
    np.testing.assert_array_equal(np.asarray(got["outputs"]["pooled"], np.float32), want)
    bad = [
        ({"ids": [[1.5, 2, 3]], "mask": [[1, 1, 0]]}, "expected int64, got floating"),
        ({"ids": [[1, 2, 3]], "mask": [[1, 1]]}, "dimension 'seq'"),
        ({"ids": [[1, 2, 3]], "mask": [[1, 1, 0]] * 2}, "dimension 'batch'"),
        ({"ids": [[2 ** 63] * 3], "mask": [[1, 1, 0]]}, "out of the range"),
        ({"ids": [[11, 2, 3]], "mask": [[1, 1, 0]]}, "rejected the input"),  # onnxruntime's own check
        ({"ids": encode_tensor(ids.astype(np.int32)), "mask": mask.tolist()}, "expected dtype 'int64'"),
    ]
    for inputs, words in bad:
        with pytest.raises(RequestError) as info:
            core.predict_request({"inputs": inputs})
        assert info.value.status == 400 and words in info.value.message, info.value.message


# -- the app under gunicorn -------------------------------------------------------------------

def _server(model, **kw) -> LocalServer:
    server = LocalServer(model, **kw).start()
    _remember_tree(server.pid)
    return server


def _post(url, body, content_type="application/json", **kw):
    headers = {"Content-Type": content_type} if content_type else {}
    return requests.post(url + "/predict", data=body, headers=headers, timeout=20, **kw)


def test_app_under_gunicorn_answers_correctly_and_concurrently(tiny_model):
    server = _server(tiny_model, workers=2)
    try:
        assert server.url.startswith("http://127.0.0.1:")
        assert len(server.worker_pids) == 2 and 0 < server.startup_s <= server.ready_s
        master = psutil.Process(server.pid)
        assert sorted(c.pid for c in master.children()) == server.worker_pids
        health = requests.get(server.url + "/health", timeout=5)
        assert health.status_code == 200 and health.json()["model"] == "tiny"
        sha = health.json()["sha256"]

        rng = np.random.default_rng(3)
        xs = [rng.standard_normal((2, 16)).astype(np.float32) for _ in range(48)]

        def call(x):
            r = _post(server.url, encode_inputs({"input": x}))
            return x, r

        with cf.ThreadPoolExecutor(12) as pool:
            results = list(pool.map(call, xs))
        pids = set()
        for x, r in results:
            assert r.status_code == 200, r.text
            assert r.headers["Content-Type"] == "application/json"
            assert float(r.headers["X-Inference-Ms"]) > 0
            assert r.headers["X-Model-Sha256"] == sha
            pids.add(int(r.headers["X-Worker-Pid"]))
            np.testing.assert_array_equal(decode_outputs(r.content)["probs"].astype(np.float32),
                                          _reference(tiny_model, {"input": x})["probs"])
        assert pids == set(server.worker_pids)  # both workers served
    finally:
        server.stop()
    assert not server.proc.alive()


def test_app_rejects_bad_bodies_with_json_never_500(tiny_model):
    server = _server(tiny_model, workers=1)
    try:
        url = server.url
        cases = [
            (b"", "application/json", 400),
            (b"\x00\x01garbage\xff", "application/json", 400),
            (b"\xc3\x28\xa0\xa1", "application/json", 400),  # not UTF-8
            (b'{"inputs": {"input": [[1, 2]]}}', "application/json", 400),
            (b'{"inputs": {"input": [[1, 2]]}}', None, 400),  # no Content-Type: taken as JSON
            (_body({"inputs": {"input": [[0.0] * 16]}}), "text/plain", 415),
            (b"a=1&b=2", "application/x-www-form-urlencoded", 415),
            (b"--x\r\n\r\n--x--", "multipart/form-data; boundary=x", 415),
            (b"{" + b" " * (7 * 1024 * 1024) + b"}", "application/json", 413),  # over 6 MB
        ]
        for body, ctype, status in cases:
            r = _post(url, body, ctype)
            assert r.status_code == status, (body[:30], ctype, r.status_code, r.text[:200])
            assert r.headers["Content-Type"] == "application/json"
            assert r.json()["status"] == status and r.json()["error"]
        # a chunked body (no Content-Length) over the limit is cut off at the limit: 413
        chunks = (b" " * 65536 for _ in range(120))
        r = requests.post(url + "/predict", data=chunks, headers={"Content-Type": "application/json"}, timeout=20)
        assert r.status_code == 413 and r.json()["status"] == 413
        for method, path, status in [("GET", "/predict", 405), ("GET", "/nope", 404), ("POST", "/health", 405)]:
            r = requests.request(method, url + path, timeout=5)
            assert r.status_code == status and r.json()["status"] == status
        ok = _post(url, _body({"inputs": {"input": [[0.25] * 16]}}), "application/json; charset=utf-8")
        assert ok.status_code == 200 and len(ok.json()["outputs"]["probs"][0]) == 4
    finally:
        server.stop()


def test_cpu_limit_is_recorded_and_holds_every_gunicorn_process(tiny_model):
    server = _server(tiny_model, workers=2, cpus=0.5)
    try:
        limit = server.limit
        if not procs.cgroup_available():
            assert limit.method == "affinity"
            return
        assert limit.method == "cgroup" and limit.vcpus == 0.5
        tree = [server.pid, *server.worker_pids]
        cpu_paths = set()
        for pid in tree:
            lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
            cpu = [ln.split(":", 2)[2] for ln in lines if "cpu" in ln.split(":", 2)[1].split(",")]
            assert cpu and "/servesim/local-server-" in cpu[0], lines
            cpu_paths.add(cpu[0])
        assert len(cpu_paths) == 1
        quota = procs.CGROUP_ROOT / "cpu" / cpu_paths.pop().lstrip("/") / "cpu.cfs_quota_us"
        assert int(quota.read_text()) == procs.CFS_PERIOD_US // 2
        r = _post(server.url, _body({"inputs": {"input": [[0.1] * 16]}}))
        assert r.status_code == 200
    finally:
        server.stop()
    assert not quota.parent.exists()  # the cgroup is removed with the server


def test_failed_start_stops_everything(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"this is not an onnx model")
    with pytest.raises(RuntimeError, match="local-server failed to start"):
        LocalServer(broken, workers=2, timeout_s=20).start()
    assert procs.live_processes() == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_its_gunicorn_on_signal(tiny_model, tmp_path, sig):
    out = tmp_path / "serve.out"
    code = ("import sys; from deploy.local_server import serve; "
            f"serve({str(tiny_model)!r}, workers=2, echo=lambda s: print(s, flush=True))")
    with open(out, "wb") as f:
        parent = procs.ManagedProcess([sys.executable, "-c", code], name="serve-test", cwd=REPO,
                                      env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=f, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while "serving tiny at" not in out.read_text():
            assert parent.alive() and time.monotonic() < deadline, out.read_text()
            time.sleep(0.05)
        tree = _remember_tree(parent.pid)
        assert len(tree) >= 4  # serve, gunicorn master, 2 workers
        os.kill(parent.pid, sig)  # only the parent: it must take its gunicorn group down itself
        parent.popen.wait(timeout=20)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in tree) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        parent.stop()


# -- the Lambda handler -----------------------------------------------------------------------

@pytest.fixture()
def handler_module(tiny_model):
    import deploy.handler as h

    saved = (h.CORE, h.INIT_MS, h.INIT_ERROR)
    h.load(tiny_model)
    yield h
    h.CORE, h.INIT_MS, h.INIT_ERROR = saved


def _url_event(body: str, *, b64: bool = False, method: str = "POST", ctype: str = "application/json") -> dict:
    """A function-URL (payload v2.0) event."""
    return {"version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
            "headers": {"content-type": ctype, "host": "abc.lambda-url.us-east-1.on.aws"},
            "requestContext": {"http": {"method": method, "path": "/", "protocol": "HTTP/1.1"},
                               "requestId": "r1", "stage": "$default"},
            "body": body, "isBase64Encoded": b64}


def test_handler_event_shapes_give_the_same_outputs(handler_module, tiny_model):
    h = handler_module
    assert h.INIT_MS > 0
    x = np.random.default_rng(4).standard_normal((2, 16)).astype(np.float32)
    want = _reference(tiny_model, {"input": x})["probs"]
    request = {"inputs": {"input": x.tolist()}}
    body = json.dumps(request)

    direct = h.handler(request, None)
    direct_b64 = h.handler(json.loads(encode_inputs({"input": x})), None)
    url = h.handler(_url_event(body), None)
    url_b64 = h.handler(_url_event(base64.b64encode(body.encode()).decode(), b64=True), None)
    v1 = h.handler({"resource": "/predict", "path": "/predict", "httpMethod": "POST",
                    "headers": {"Content-Type": "application/json"}, "multiValueHeaders": {},
                    "requestContext": {"resourcePath": "/predict"}, "body": body, "isBase64Encoded": False}, None)
    outs = [decode_outputs(direct), decode_outputs(direct_b64)]
    for resp in (url, url_b64, v1):
        assert resp["statusCode"] == 200 and resp["headers"]["content-type"] == "application/json"
        assert float(resp["headers"]["x-inference-ms"]) > 0
        outs.append(decode_outputs(resp["body"]))
    for out in outs:
        np.testing.assert_array_equal(out["probs"].astype(np.float32), want)
    json.dumps(direct)  # what Lambda serialises must be plain JSON


def test_handler_bad_requests_are_answers_not_function_errors(handler_module):
    h = handler_module
    assert h.handler({"inputs": {"input": [[1, 2]]}}, None)["status"] == 400
    assert h.handler({"inputs": {}}, None)["status"] == 400
    assert h.handler(["not", "a", "mapping"], None)["status"] == 400
    assert h.handler({"something": "else"}, None)["status"] == 400
    cases = [
        (_url_event("{"), 400),
        (_url_event(""), 400),
        (_url_event("!!!", b64=True), 400),
        (_url_event(base64.b64encode(b"\xff\xfe\xfa").decode(), b64=True), 400),
        (_url_event(json.dumps({"inputs": {"input": [[0.0] * 16]}}), ctype="text/plain"), 415),
        (_url_event("{" + " " * (7 * 1024 * 1024) + "}"), 413),
        (_url_event("", method="DELETE"), 405),
    ]
    for event, status in cases:
        resp = h.handler(event, None)
        assert resp["statusCode"] == status, (status, resp["body"][:200])
        assert json.loads(resp["body"])["status"] == status
    health = h.handler(_url_event("", method="GET"), None)
    assert health["statusCode"] == 200 and json.loads(health["body"])["model"] == "tiny"


def test_handler_without_model_is_a_function_error(handler_module):
    h = handler_module
    h.CORE, h.INIT_ERROR = None, "model file not found: model.onnx"
    with pytest.raises(RuntimeError, match="no model"):
        h.handler({"inputs": {}}, None)


def test_handler_loads_at_init_and_imports_the_way_awslambdaric_does(tiny_model, tmp_path):
    """A fresh interpreter: the module loads the model at import (env SERVESIM_MODEL), and
    awslambdaric's own loader finds the handler."""
    x = [[0.5] * 16]
    code = ("import json, awslambdaric.bootstrap as b; import deploy.handler as m; "
            "fn = b._get_handler('deploy.handler.handler'); "
            f"r = fn({{'inputs': {{'input': {x}}}}}, None); "
            "print(json.dumps({'init_ms': m.INIT_MS, 'response': r}))")
    out = tmp_path / "out.json"
    with open(out, "wb") as f:
        child = procs.ManagedProcess([sys.executable, "-c", code], name="handler-test", cwd=REPO,
                                     env={**os.environ, "SERVESIM_MODEL": str(tiny_model), "PYTHONPATH": str(REPO)},
                                     stdout=f, stderr=subprocess.DEVNULL)
    try:
        assert child.popen.wait(timeout=30) == 0
    finally:
        child.stop()
    doc = json.loads(out.read_text().strip().splitlines()[-1])
    assert doc["init_ms"] > 0
    np.testing.assert_array_equal(np.asarray(doc["response"]["outputs"]["probs"], np.float32),
                                  _reference(tiny_model, {"input": np.asarray(x, np.float32)})["probs"])
