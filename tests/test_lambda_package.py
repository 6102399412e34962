"""The Lambda deployment zip, the handler's model in S3, and the container-image context.

Real pip installs of the Lambda wheels, the extracted zip run by an isolated interpreter (no
site-packages, so nothing of the venv can stand in for what the zip lacks), a real S3 API (moto's
server) for the handler's download. There is no Docker engine here: the docker steps run against
a stand-in `docker` script that records what it is given.

A zip can only be run by the Python it was built for, and AWS Lambda's Python runtimes are 3.12
to 3.14: the zip tests use this interpreter if it is one of those, else another found on the
machine (PATH, pyenv), and skip if there is none.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from modelhelp import write_tiny_model  # noqa: E402

from deploy.aws import lambda_package as lp  # noqa: E402
from deploy.core import InferenceCore, encode_inputs  # noqa: E402
from deploy.models import resolve_model, sample_input  # noqa: E402
from deploy.rie import host_arch  # noqa: E402
from sim.errors import ServesimError  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


def _version_of(python: str) -> str | None:
    try:
        out = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@pytest.fixture(scope="session")
def lambda_python() -> tuple[str, str]:
    """(X.Y, interpreter) for a Python that AWS Lambda has a runtime for."""
    here = "%d.%d" % sys.version_info[:2]
    if here in lp.LAMBDA_PYTHON_VERSIONS:
        return here, sys.executable
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for version in lp.LAMBDA_PYTHON_VERSIONS:
        pyenv_pythons = glob.glob(str(pyenv / f"{version}.*" / "bin" / f"python{version}"))
        found = [shutil.which(f"python{version}")] + sorted(pyenv_pythons)
        for python in filter(None, found):
            if _version_of(python) == version:
                return version, python
    pytest.skip(f"no Python {'/'.join(lp.LAMBDA_PYTHON_VERSIONS)} here to run a Lambda zip with")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("models") / "tiny.onnx")


@pytest.fixture(scope="session")
def wheel_cache(tmp_path_factory) -> Path:
    """One install of the Lambda wheels per (architecture, Python) for the whole run."""
    return tmp_path_factory.mktemp("lambda-wheels")


@pytest.fixture(scope="module")
def built(tiny_model, lambda_python, wheel_cache, tmp_path_factory):
    """The zip of the tiny model for this host's architecture, and what the build echoed."""
    lines: list[str] = []
    pkg = lp.build_lambda_zip(tiny_model, architecture=host_arch(), python_version=lambda_python[0],
                              out_dir=tmp_path_factory.mktemp("zip"), cache_dir=wheel_cache, echo=lines.append)
    return pkg, lines


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _request(model_path: Path, batch: int = 3) -> bytes:
    return encode_inputs(sample_input(resolve_model(model_path), np.random.default_rng(7), batch=batch))


def _expected(model_path: Path, body: bytes) -> dict[str, np.ndarray]:
    response = InferenceCore(model_path).predict_request(json.loads(body))
    return {k: np.asarray(v) for k, v in response["outputs"].items()}


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SERVESIM_", "AWS_", "PYTHON"))}
    return {**env, **extra}


# -- the zip ----------------------------------------------------------------------------------

# Run in the extracted zip by an isolated interpreter: import the handler, serve the request,
# and list every module loaded from outside the zip and the standard library (there must be none).
ZIP_SCRIPT = textwrap.dedent("""\
    import json, sys
    root, request = sys.argv[1], sys.argv[2]
    sys.path.insert(0, root)
    import deploy.handler as h
    with open(request, "rb") as f:
        response = h.handler(json.load(f))
    outside = sorted(m.__file__ for n, m in list(sys.modules.items()) if n != "__main__"
                     and getattr(m, "__file__", None) and not m.__file__.startswith((root, sys.base_prefix)))
    print(json.dumps({"init_error": h.INIT_ERROR, "model_path": str(h.CORE.path), "sha256": h.CORE.sha256,
                      "response": response, "outside": outside, "boto3": "boto3" in sys.modules,
                      "sys_path": sys.path}))
    """)


@pytest.mark.slow
def test_zip_runs_in_an_isolated_interpreter(built, tiny_model, lambda_python, tmp_path):
    pkg, _ = built
    root = tmp_path / "unzipped"
    with zipfile.ZipFile(pkg.zip_path) as zf:
        zf.extractall(root)
    body = _request(tiny_model)
    (tmp_path / "request.json").write_bytes(body)
    (tmp_path / "run.py").write_text(ZIP_SCRIPT)
    argv = [lambda_python[1], "-I", "-S", str(tmp_path / "run.py"), str(root), str(tmp_path / "request.json")]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, env=_clean_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["init_error"] is None
    assert not any("site-packages" in p for p in got["sys_path"]), got["sys_path"]
    assert got["outside"] == [], "modules loaded from outside the zip and the standard library"
    assert got["boto3"] is False  # imported only for a model in S3
    assert Path(got["model_path"]) == root / "deploy" / "model.onnx" and got["sha256"] == pkg.model_sha256
    want = _expected(tiny_model, body)
    outputs = got["response"]["outputs"]
    assert set(outputs) == set(want)
    for name, value in want.items():
        np.testing.assert_allclose(np.asarray(outputs[name]), value, rtol=0, atol=1e-5)


@pytest.mark.slow
def test_zip_layout_sizes_and_modes(built, tiny_model, lambda_python, wheel_cache):
    pkg, lines = built
    arch, version = host_arch(), lambda_python[0]
    site = wheel_cache / f"{arch}-py{version}" / "python"
    assert pkg.zip_path.name == f"servesim-tiny-{arch}-py{version}.zip"
    assert (pkg.runtime, pkg.architecture, pkg.handler) == (f"python{version}", arch, "deploy.handler.handler")
    assert (pkg.model_name, pkg.model_sha256) == ("tiny.onnx", _sha256(tiny_model))
    assert pkg.model_bytes == tiny_model.stat().st_size and pkg.model_in_zip and not pkg.upload_via_s3
    with zipfile.ZipFile(pkg.zip_path) as zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        read = zf.read
        assert names == sorted(names) and len(names) == len(set(names))
        assert read("deploy/__init__.py") == b""
        assert read("deploy/core.py") == (REPO / "deploy" / "core.py").read_bytes()
        assert read("deploy/handler.py") == (REPO / "deploy" / "handler.py").read_bytes()
        assert read("deploy/model.onnx") == tiny_model.read_bytes()
    assert pkg.zipped_bytes == pkg.zip_path.stat().st_size
    assert pkg.unzipped_bytes == sum(i.file_size for i in infos)
    assert {"onnxruntime/__init__.py", "numpy/__init__.py"} <= set(names)
    # left out: console scripts, bytecode, stubs, numpy's tests, onnxruntime's offline tools
    assert not [n for n in names if n.startswith("bin/") or "__pycache__" in n or n.endswith((".pyc", ".pyi"))]
    assert not [n for n in names if n.startswith("numpy/") and "/tests/" in n]
    assert not [n for n in names if n.startswith(("onnxruntime/transformers/", "onnxruntime/tools/"))]
    for info in infos:
        mode = info.external_attr >> 16
        assert info.date_time == (1980, 1, 1, 0, 0, 0) and info.create_system == 3
        if info.is_dir():
            assert mode == stat.S_IFDIR | 0o755, info.filename
        elif info.filename.startswith("deploy/"):
            assert mode == stat.S_IFREG | 0o644, info.filename
        else:  # 0755 exactly for what pip installed executable
            executable = (site / info.filename).stat().st_mode & 0o111
            assert mode == stat.S_IFREG | (0o755 if executable else 0o644), info.filename
    summary = lines[-1]
    assert f"{pkg.zipped_bytes / MB:.1f} MB zipped, {pkg.unzipped_bytes / MB:.1f} MB unzipped" in summary
    assert "in the zip" in summary


@pytest.mark.slow
def test_zip_is_deterministic_and_reuses_the_wheel_cache(built, tiny_model, lambda_python, wheel_cache, tmp_path):
    pkg, _ = built
    lines: list[str] = []
    again = lp.build_lambda_zip(tiny_model, architecture=host_arch(), python_version=lambda_python[0],
                                out_dir=tmp_path, cache_dir=wheel_cache, echo=lines.append)
    assert again.zip_path != pkg.zip_path
    assert _sha256(again.zip_path) == _sha256(pkg.zip_path)
    assert not [line for line in lines if "installing" in line]  # pip did not run again
    stamp = json.loads((wheel_cache / f"{host_arch()}-py{lambda_python[0]}" / "stamp.json").read_text())
    assert stamp["requirements"] == list(lp.RUNTIME_REQUIREMENTS)


@pytest.mark.slow
def test_model_goes_to_s3_exactly_when_the_package_would_be_too_big(built, tiny_model, lambda_python,
                                                                    wheel_cache, tmp_path, monkeypatch):
    pkg, _ = built
    code_bytes = pkg.unzipped_bytes - pkg.model_bytes

    def build(limit: int, out: str, lines: list[str]):
        monkeypatch.setattr(lp, "LAMBDA_UNZIPPED_BYTES", limit)
        return lp.build_lambda_zip(tiny_model, architecture=host_arch(), python_version=lambda_python[0],
                                   out_dir=tmp_path / out, cache_dir=wheel_cache, echo=lines.append)

    at_limit = build(code_bytes + pkg.model_bytes, "fits", [])
    assert at_limit.model_in_zip and at_limit.unzipped_bytes == pkg.unzipped_bytes
    lines: list[str] = []
    out = build(code_bytes + pkg.model_bytes - 1, "s3", lines)
    assert not out.model_in_zip
    with zipfile.ZipFile(out.zip_path) as zf:
        assert "deploy/model.onnx" not in zf.namelist() and "deploy/handler.py" in zf.namelist()
        assert out.unzipped_bytes == code_bytes == sum(i.file_size for i in zf.infolist())
    assert (out.model_path, out.model_sha256) == (Path(tiny_model), pkg.model_sha256)
    assert "to S3" in lines[-1]


@pytest.mark.slow
def test_packages_too_big_even_without_the_model_are_refused(built, tiny_model, lambda_python, wheel_cache,
                                                             tmp_path, monkeypatch):
    pkg, _ = built
    monkeypatch.setattr(lp, "LAMBDA_UNZIPPED_BYTES", pkg.unzipped_bytes - pkg.model_bytes - 1)
    with pytest.raises(ServesimError, match="container image"):
        lp.build_lambda_zip(tiny_model, architecture=host_arch(), python_version=lambda_python[0],
                            out_dir=tmp_path, cache_dir=wheel_cache, echo=lambda _: None)
    assert list(tmp_path.iterdir()) == []


def test_pip_failure_is_a_clear_error_and_leaves_no_cache(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setattr(lp, "RUNTIME_REQUIREMENTS", ("numpy==0.0.1",))  # no such release
    cache = tmp_path / "cache"
    with pytest.raises(ServesimError) as err:
        lp.build_lambda_zip(tiny_model, python_version="3.12", out_dir=tmp_path / "out", cache_dir=cache,
                            echo=lambda _: None)
    message = str(err.value)
    assert message.startswith("pip could not install numpy==0.0.1 for python3.12 on x86_64")
    assert "No matching distribution found for numpy==0.0.1" in message  # pip's own last lines
    assert "Traceback" not in message
    assert not cache.exists() or list(cache.iterdir()) == []
    assert not (tmp_path / "out").exists()


def test_lambda_runtime_names_and_refusals():
    assert [lp.lambda_runtime(v) for v in ("3.12", "3.13", "3.14")] == ["python3.12", "python3.13", "python3.14"]
    for version in ("3.10", "3.11", "3.9"):
        with pytest.raises(ServesimError, match="deprecated"):
            lp.lambda_runtime(version)
    for version in ("3.15", "2.7", "3", "python3.12", ""):
        with pytest.raises(ServesimError, match="no runtime"):
            lp.lambda_runtime(version)


def test_bad_architecture_is_refused_before_any_install(tiny_model, tmp_path):
    with pytest.raises(ServesimError, match="x86_64, arm64"):
        lp.build_lambda_zip(tiny_model, architecture="amd64", out_dir=tmp_path, cache_dir=tmp_path / "c")
    assert list(tmp_path.iterdir()) == []


# -- the handler's model in S3 ----------------------------------------------------------------

@pytest.fixture(scope="module")
def s3(tiny_model):
    """A moto S3 server with the tiny model at s3://servesim-test/models/tiny.onnx; yields its URL."""
    boto3 = pytest.importorskip("boto3")
    server_mod = pytest.importorskip("moto.server")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        client = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        client.create_bucket(Bucket="servesim-test")
        client.upload_file(str(tiny_model), "servesim-test", "models/tiny.onnx")
        yield url, client
    finally:
        server.stop()


S3_SCRIPT = textwrap.dedent("""\
    import json, sys
    import deploy.handler as h
    with open(sys.argv[1], "rb") as f:
        event = json.load(f)
    try:
        response = h.handler(event)
    except Exception as exc:
        response = {"raised": f"{type(exc).__name__}: {exc}"}
    print(json.dumps({"init_error": h.INIT_ERROR, "init_ms": h.INIT_MS, "response": response,
                      "model_path": str(h.CORE.path) if h.CORE else None}))
    """)


def _run_s3_handler(tmp_path: Path, url: str, model_url: str, sha256: str | None) -> dict:
    env = _clean_env(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                     AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"),
                     AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-aws-credentials"),
                     TMPDIR=str(tmp_path), SERVESIM_MODEL=model_url, PYTHONPATH=str(REPO))
    if sha256 is not None:
        env["SERVESIM_MODEL_SHA256"] = sha256
    proc = subprocess.run([sys.executable, str(tmp_path / "run.py"), str(tmp_path / "request.json")],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def s3_run(tiny_model, tmp_path):
    body = _request(tiny_model)
    (tmp_path / "request.json").write_bytes(body)
    (tmp_path / "run.py").write_text(S3_SCRIPT)
    return body


def test_handler_downloads_its_model_from_s3_once(s3, s3_run, tiny_model, tmp_path):
    url, client = s3
    sha = _sha256(tiny_model)
    got = _run_s3_handler(tmp_path, url, "s3://servesim-test/models/tiny.onnx", sha)
    assert got["init_error"] is None and got["init_ms"] > 0
    local = tmp_path / f"servesim-model-{sha}.onnx"
    assert Path(got["model_path"]) == local and local.read_bytes() == tiny_model.read_bytes()
    response = got["response"]
    assert response["model"] == "tiny"  # the key's name: SERVESIM_MODEL_NAME is not set
    for name, value in _expected(tiny_model, s3_run).items():
        np.testing.assert_allclose(np.asarray(response["outputs"][name]), value, rtol=0, atol=1e-5)
    # a second init in the same environment reuses the verified file: it works with the object gone
    client.copy_object(Bucket="servesim-test", Key="models/moved.onnx",
                       CopySource={"Bucket": "servesim-test", "Key": "models/tiny.onnx"})
    client.delete_object(Bucket="servesim-test", Key="models/tiny.onnx")
    try:
        again = _run_s3_handler(tmp_path, url, "s3://servesim-test/models/tiny.onnx", sha)
        assert again["init_error"] is None and again["model_path"] == got["model_path"]
        # without a sha256 to check against, nothing is reused: the missing object is an init error
        missing = _run_s3_handler(tmp_path, url, "s3://servesim-test/models/tiny.onnx", None)
        assert missing["init_error"].startswith("cannot download the model s3://servesim-test/models/tiny.onnx")
        assert "no model" in missing["response"]["raised"]
    finally:
        client.copy_object(Bucket="servesim-test", Key="models/tiny.onnx",
                           CopySource={"Bucket": "servesim-test", "Key": "models/moved.onnx"})
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".servesim", "servesim"))) == [local.name]


def test_handler_refuses_an_s3_model_with_the_wrong_sha256(s3, s3_run, tiny_model, tmp_path):
    url, _ = s3
    wrong = "0" * 64
    got = _run_s3_handler(tmp_path, url, "s3://servesim-test/models/tiny.onnx", wrong)
    raised = got["response"]["raised"]
    assert raised.startswith("RuntimeError: servesim handler has no model")
    assert wrong in raised and _sha256(tiny_model) in raised
    assert got["model_path"] is None
    assert not [p for p in tmp_path.iterdir() if "servesim-model" in p.name]  # nothing kept


def test_handler_refuses_an_s3_url_without_a_key(s3, s3_run, tmp_path):
    url, _ = s3
    got = _run_s3_handler(tmp_path, url, "s3://servesim-test", None)
    assert "not an S3 object URL" in got["init_error"]


# -- the container image ----------------------------------------------------------------------

@pytest.mark.parametrize("architecture, platform, version", [("x86_64", "linux/amd64", "3.12"),
                                                              ("arm64", "linux/arm64", "3.13")])
def test_image_context_has_the_dockerfile_and_the_files(tiny_model, tmp_path, architecture, platform, version):
    context = lp.build_image_context(tiny_model, architecture=architecture, python_version=version, out_dir=tmp_path)
    assert context == tmp_path / f"servesim-tiny-{architecture}-py{version}-image"
    dockerfile = (context / "Dockerfile").read_text()
    lines = dockerfile.splitlines()
    assert f"FROM --platform={platform} public.ecr.aws/lambda/python:{version}" in lines
    assert f"# Build: docker build --platform {platform} --provenance=false -t IMAGE ." in lines
    assert ("COPY deploy/__init__.py deploy/core.py deploy/handler.py deploy/model.onnx "
            "${LAMBDA_TASK_ROOT}/deploy/") in lines
    assert lines[-1] == 'CMD ["deploy.handler.handler"]'
    assert 'ENV SERVESIM_MODEL_NAME="tiny.onnx"' in lines
    assert (context / "requirements.txt").read_text().split() == list(lp.RUNTIME_REQUIREMENTS)
    assert (context / "deploy" / "__init__.py").read_bytes() == b""
    for name in ("core.py", "handler.py"):
        assert (context / "deploy" / name).read_bytes() == (REPO / "deploy" / name).read_bytes()
    assert (context / "deploy" / "model.onnx").read_bytes() == tiny_model.read_bytes()
    (context / "stale.txt").write_text("from an earlier build")
    assert lp.build_image_context(tiny_model, architecture=architecture, python_version=version,
                                  out_dir=tmp_path) == context
    assert not (context / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [context.name]


def test_image_context_refuses_a_python_lambda_has_no_runtime_for(tiny_model, tmp_path):
    with pytest.raises(ServesimError, match="deprecated"):
        lp.build_image_context(tiny_model, python_version="3.11", out_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


# A stand-in for docker: records argv and stdin, answers `info` per FAKE_DOCKER_INFO, and fails
# the step named in FAKE_DOCKER_FAIL, echoing its stdin (as a leaky tool might) in the error.
FAKE_DOCKER = textwrap.dedent("""\
    #!{python}
    import json, os, sys
    step = sys.argv[1]
    data = sys.stdin.read() if step == "login" else ""
    with open(os.environ["FAKE_DOCKER_LOG"], "a") as f:
        f.write(json.dumps({{"argv": sys.argv[1:], "stdin": data}}) + "\\n")
    if step == "info":
        sys.exit(int(os.environ.get("FAKE_DOCKER_INFO", "0")))
    print(f"{{step}} progress")
    if os.environ.get("FAKE_DOCKER_FAIL") == step:
        print(f"error: {{step}} denied for secret {{os.environ.get('FAKE_DOCKER_SECRET', '')}}", file=sys.stderr)
        sys.exit(7)
    """)


@pytest.fixture
def fake_docker(tmp_path, monkeypatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER.format(python=sys.executable))
    docker.chmod(0o755)
    log = tmp_path / "docker.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(log))
    return log


def _calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_docker_available_asks_the_engine(fake_docker, monkeypatch, tmp_path):
    monkeypatch.setenv("FAKE_DOCKER_INFO", "0")
    assert lp.docker_available() is True
    monkeypatch.setenv("FAKE_DOCKER_INFO", "1")  # a client without a running engine
    assert lp.docker_available() is False
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert lp.docker_available() is False


def test_docker_build_push_sends_the_password_only_on_stdin(fake_docker, tmp_path):
    password = "ecr-token-s3cr3t"
    lines: list[str] = []
    lp.docker_build_push(tmp_path / "ctx", "123.dkr.ecr.us-east-1.amazonaws.com/r:abc", architecture="arm64",
                         registry="https://123.dkr.ecr.us-east-1.amazonaws.com", username="AWS",
                         password=password, echo=lines.append)
    calls = _calls(fake_docker)
    assert [c["argv"][0] for c in calls] == ["login", "build", "push"]
    login, build, push = calls
    assert login["argv"] == ["login", "--username", "AWS", "--password-stdin",
                             "https://123.dkr.ecr.us-east-1.amazonaws.com"]
    assert login["stdin"] == password
    assert build["argv"] == ["build", "--platform", "linux/arm64", "--provenance=false", "--tag",
                             "123.dkr.ecr.us-east-1.amazonaws.com/r:abc", str(tmp_path / "ctx")]
    assert push["argv"] == ["push", "123.dkr.ecr.us-east-1.amazonaws.com/r:abc"]
    assert not [c for c in calls if password in " ".join(c["argv"])]
    assert not [line for line in lines if password in line]
    assert "  build progress" in lines


@pytest.mark.parametrize("step", ["login", "build", "push"])
def test_a_failing_docker_step_is_named_without_the_password(fake_docker, tmp_path, monkeypatch, step):
    password = "ecr-token-s3cr3t"
    monkeypatch.setenv("FAKE_DOCKER_FAIL", step)
    monkeypatch.setenv("FAKE_DOCKER_SECRET", password)
    lines: list[str] = []
    with pytest.raises(ServesimError) as err:
        lp.docker_build_push(tmp_path, "r:abc", architecture="x86_64", registry="reg", username="AWS",
                             password=password, echo=lines.append)
    message = str(err.value)
    assert message.startswith(f"docker {step} failed (exit 7)")
    assert f"{step} denied for secret ***" in message and password not in message
    assert not [line for line in lines if password in line]
    assert [c["argv"][0] for c in _calls(fake_docker)][-1] == step  # nothing ran after the failing step
