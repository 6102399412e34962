"""The EC2 app bundle and user data: the bundle is deterministic and self-contained; the user
data is valid bash that quotes every value exactly, refuses bad input, and, run for real off an
instance (moto's S3 serving presigned URLs, a real venv and pip install, shims only for what
needs root or Amazon Linux: dnf, systemctl, useradd), leaves a systemd unit whose ExecStart
serves real predictions.

No process a test starts may be left (`live_processes()` is empty after each test)."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from awshelp import moto_server  # noqa: F401 - fixture

from deploy.aws.ec2_package import (BUNDLE_MTIME, BUNDLE_NAME, SERVER_REQUIREMENTS, USER_DATA_MAX_BYTES,
                                    build_app_bundle, render_user_data)
from deploy.procs import ManagedProcess, free_port, live_processes, wait_http
from sim.errors import ServesimError

REPO = Path(__file__).resolve().parents[1]
MEMBERS = ["deploy/__init__.py", "deploy/app.py", "deploy/core.py", "requirements.txt"]
SHA_A, SHA_B = "a" * 64, "b" * 64
# What a presigned S3 GET looks like (SigV4 with a session token, as from an assumed role).
TYPICAL_URL = (
    "https://servesim-run-20260101t000000z-1a2b3c.s3.us-east-1.amazonaws.com/run-20260101t000000z-1a2b3c/"
    "servesim-app.tar.gz?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAEXAMPLEEXAMPLE12%2F20260101"
    "%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
    "&X-Amz-Security-Token=" + "IQoJb3JpZ2luX2VjEXAMPLE%2F%2B" * 40 + "&X-Amz-Signature=" + "0123456789abcdef" * 4)


@pytest.fixture(autouse=True)
def no_process_left():
    yield
    assert live_processes() == []


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _render(**overrides) -> str:
    kwargs = dict(bundle_url=TYPICAL_URL, bundle_sha256=SHA_A, model_sha256=SHA_B, model_name="tiny.onnx", workers=2,
                  model_url=TYPICAL_URL.replace("servesim-app.tar.gz", "model.onnx"))
    kwargs.update(overrides)
    return render_user_data(**kwargs)


# -- the bundle -------------------------------------------------------------------------------

def test_bundle_is_deterministic_sorted_and_plain(tmp_path):
    a, b = build_app_bundle(tmp_path / "a"), build_app_bundle(tmp_path / "b")
    assert a.name == b.name == BUNDLE_NAME
    assert a.read_bytes() == b.read_bytes() and _sha256(a) == _sha256(b)
    assert build_app_bundle(tmp_path / "a") == a and _sha256(a) == _sha256(b)  # rebuilt in place
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [BUNDLE_NAME]  # no temporary file left
    assert a.read_bytes()[4:8] == b"\0\0\0\0"  # no time in the gzip header
    with tarfile.open(a) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == MEMBERS
        for m in members:
            assert m.isfile() and m.mode == 0o644 and m.mtime == BUNDLE_MTIME and m.uid == m.gid == 0
        data = {m.name: tar.extractfile(m).read() for m in members}
    assert data["deploy/__init__.py"] == b""
    assert data["deploy/app.py"] == (REPO / "deploy" / "app.py").read_bytes()
    assert data["deploy/core.py"] == (REPO / "deploy" / "core.py").read_bytes()
    assert data["requirements.txt"].decode().splitlines() == list(SERVER_REQUIREMENTS)


def test_server_requirements_are_pyprojects_ranges():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert set(SERVER_REQUIREMENTS) <= set(project["dependencies"]) | set(project["optional-dependencies"]["local"])
    assert sorted(re.match(r"[a-z]+", r).group() for r in SERVER_REQUIREMENTS) == ["flask", "gunicorn", "numpy",
                                                                                  "onnxruntime"]


def test_bundle_alone_is_enough_to_import_the_app(tmp_path):
    pytest.importorskip("flask")
    with tarfile.open(build_app_bundle(tmp_path)) as tar:
        tar.extractall(tmp_path / "app", filter="data")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    code = ("import deploy, deploy.app, sys; print(deploy.__file__); "
            "print(sorted(m for m in sys.modules if m.startswith('deploy')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path / "app", env=env, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    assert Path(out[0]).resolve() == (tmp_path / "app" / "deploy" / "__init__.py").resolve()
    assert out[1] == "['deploy', 'deploy.app', 'deploy.core']"


# -- the user data, checked without running it ------------------------------------------------

def test_user_data_is_bash_under_the_size_limit():
    script = _render()
    assert script.startswith("#!/bin/bash\n") and "\nset -euo pipefail\n" in script
    assert len(TYPICAL_URL) > 1200 and len(script.encode()) < USER_DATA_MAX_BYTES // 2  # room to spare
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    assert 'PREFIX="${SERVESIM_PREFIX:-/opt/servesim}"' in script
    assert 'PREFIX="${SERVESIM_PREFIX:-/srv/x}"' in _render(prefix="/srv/x")


BAD_INPUTS = [
    ("workers", dict(workers=0)), ("workers", dict(workers=1.5)), ("workers", dict(workers=True)),
    ("threads", dict(threads=0)), ("port", dict(port=0)), ("port", dict(port=65536)),
    ("bundle_sha256", dict(bundle_sha256="a" * 63)), ("model_sha256", dict(model_sha256="g" * 64)),
    ("model_sha256", dict(model_sha256=SHA_B + "\n")),
    ("bundle_url", dict(bundle_url="s3://bucket/key")), ("model_url", dict(model_url="ftp://host/model.onnx")),
    ("model_url", dict(model_url="https:///no-host")), ("bundle_url", dict(bundle_url="https://h/a b")),
    ("bundle_url", dict(bundle_url="https://h/a\nrm -rf /")),
    ("model_name", dict(model_name="")), ("model_name", dict(model_name="../x")),
    ("model_name", dict(model_name="a b")), ("model_name", dict(model_name="$(id)")),
    ("prefix", dict(prefix="opt/servesim")), ("prefix", dict(prefix="/opt/serve sim")),
    ("prefix", dict(prefix="/opt/../etc")), ("prefix", dict(prefix="/")),
]


@pytest.mark.parametrize("what,bad", BAD_INPUTS, ids=[f"{w}-{i}" for i, (w, _) in enumerate(BAD_INPUTS)])
def test_user_data_refuses_bad_input(what, bad):
    with pytest.raises(ServesimError, match=what):
        _render(**bad)


def test_user_data_over_the_limit_is_refused():
    long_url = "https://h.example/k?sig=" + "x" * USER_DATA_MAX_BYTES
    with pytest.raises(ServesimError, match="over EC2's limit"):
        _render(model_url=long_url)


# -- running the script off an instance -------------------------------------------------------

RECORDER = """#!{python}
import json, os, sys
name = os.path.basename(sys.argv[0])
with open({calls!r}, "a") as f:
    f.write(json.dumps([name, *sys.argv[1:]]) + "\\n")
if name == "curl":  # a stand-in download: the file is wrong, so the sha256 check fails
    with open(sys.argv[sys.argv.index("-o") + 1], "wb") as f:
        f.write(b"not the file")
"""


@pytest.fixture
def instance(tmp_path):
    """A fake instance root in tmp_path: shims that record dnf, systemctl and useradd (and, on
    request, curl and python3.11), and `run(script)` with the script's paths pointed inside."""
    bin_dir, calls = tmp_path / "shims", tmp_path / "calls.jsonl"
    bin_dir.mkdir()
    root = tmp_path / "root"

    def shim(name: str, text: str | None = None) -> None:
        path = bin_dir / name
        path.write_text(text or RECORDER.format(python=sys.executable, calls=str(calls)))
        path.chmod(0o755)

    for name in ("dnf", "systemctl", "useradd"):
        shim(name)

    def run(script: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess:
        (tmp_path / "user-data.sh").write_text(script)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env.update(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", SERVESIM_PREFIX=str(root / "opt" / "servesim"),
                   SERVESIM_UNIT_DIR=str(root / "etc" / "systemd" / "system"),
                   SERVESIM_SETUP_LOG=str(root / "var" / "log" / "servesim-setup.log"))
        return subprocess.run(["bash", str(tmp_path / "user-data.sh")], cwd=tmp_path, env=env, text=True,
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s)

    def recorded() -> list[list[str]]:
        return [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []

    return SimpleNamespace(shim=shim, run=run, recorded=recorded, root=root, prefix=root / "opt" / "servesim",
                           unit=root / "etc" / "systemd" / "system" / "servesim.service",
                           log=root / "var" / "log" / "servesim-setup.log")


def test_urls_reach_curl_exactly(instance, tmp_path):
    instance.shim("curl")
    bundle_url = ("https://b.example/k%20ey+1?a=1&b=%2F&c=$(touch${IFS}PWNED)&d=`touch${IFS}PWNED`;touch${IFS}PWNED"
                  "&e='\"\\|<>*?!#~{x,y}$HOME%s")
    model_url = "http://m.example:9000/x/model.onnx?X-Amz-Credential=testing%2F20260101%2Fus-east-1&sig=a'b"
    done = instance.run(_render(bundle_url=bundle_url, model_url=model_url))
    curls = [c for c in instance.recorded() if c[0] == "curl"]
    assert [c[-1] for c in curls] == [bundle_url, model_url]
    assert curls[0][1:4] == ["-fsSL", "--retry", "5"]
    assert not list(tmp_path.rglob("PWNED"))
    # the stand-in files fail the sha256 check: the script stops there, nothing installed
    assert done.returncode != 0 and "FAILED" in done.stdout
    assert "FAILED" in instance.log.read_text()
    assert not instance.unit.exists() and not (instance.prefix / "venv").exists()
    assert [c[0] for c in instance.recorded()] == ["dnf", "curl", "curl"]


@pytest.fixture(scope="module")
def s3_url(moto_server):
    """moto's server on 127.0.0.1 (awshelp) for the module's tests."""
    pytest.importorskip("boto3")
    return moto_server


@pytest.fixture(scope="module")
def published(s3_url, tmp_path_factory):
    """The bundle and the tiny model uploaded to a bucket, with presigned GET URLs (SigV4)."""
    pytest.importorskip("onnx")
    import boto3
    from botocore.config import Config
    from modelhelp import write_tiny_model

    from deploy.models import resolve_model

    work = tmp_path_factory.mktemp("published")
    bundle = build_app_bundle(work)
    model = resolve_model(write_tiny_model(work / "tiny.onnx"))
    s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing",
                      config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    s3.create_bucket(Bucket="servesim-test")
    urls = {}
    for key, path in (("run 1/servesim app+bundle.tar.gz", bundle), ("run 1/tiny model.onnx", model.path)):
        s3.upload_file(str(path), "servesim-test", key)
        urls[key] = s3.generate_presigned_url("get_object", Params={"Bucket": "servesim-test", "Key": key},
                                              ExpiresIn=3600)
    bundle_url, model_url = urls.values()
    assert all("&" in u and "%" in u for u in (bundle_url, model_url))
    return SimpleNamespace(bundle=bundle, bundle_sha256=_sha256(bundle), bundle_url=bundle_url, model=model,
                           model_url=model_url)


def test_wrong_model_sha256_stops_before_the_unit(instance, published):
    done = instance.run(render_user_data(
        bundle_url=published.bundle_url, bundle_sha256=published.bundle_sha256, model_url=published.model_url,
        model_sha256="0" * 64, model_name=published.model.name, workers=1))
    assert done.returncode != 0
    assert re.search(r"model\.onnx\.part: FAILED", done.stdout) and "servesim setup: FAILED" in done.stdout
    assert "servesim-app.tar.gz.part: OK" in done.stdout  # the real download did arrive
    assert not instance.unit.exists() and not (instance.unit.parent / ".servesim.service.tmp").exists()
    assert not (instance.prefix / "model" / "model.onnx").exists() and not (instance.prefix / "venv").exists()
    assert [c[0] for c in instance.recorded()] == ["dnf"]


def _host_python311() -> str:
    """The real executable of this host's python3.11 (resolving a pyenv shim), if it can make venvs."""
    exe = shutil.which("python3.11")
    if exe is None:
        pytest.skip("no python3.11 on this host")
    probe = subprocess.run([exe, "-c", "import sys, venv, ensurepip; print(sys.executable)"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"python3.11 cannot make venvs here: {probe.stderr.strip()[-200:]}")
    return probe.stdout.strip()


def _read_unit(path: Path) -> dict[str, list[str]]:
    unit: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            unit.setdefault(key, []).append(value)
    return unit


@pytest.mark.slow
def test_user_data_sets_up_a_server_that_answers(instance, published, tmp_path):
    from deploy.core import decode_outputs, encode_inputs
    from deploy.local_server import LocalServer
    from deploy.models import sample_input

    instance.shim("python3.11", f'#!/bin/sh\nexec {shlex.quote(_host_python311())} "$@"\n')
    model = published.model
    done = instance.run(render_user_data(
        bundle_url=published.bundle_url, bundle_sha256=published.bundle_sha256, model_url=published.model_url,
        model_sha256=model.sha256, model_name=model.name, workers=2), timeout_s=900)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "servesim setup: done" in instance.log.read_text()

    calls = instance.recorded()
    assert calls[0][:3] == ["dnf", "install", "-y"] and {"python3.11", "python3.11-pip"} <= set(calls[0][3:])
    assert [c for c in calls if c[0] == "systemctl"] == [["systemctl", "daemon-reload"],
                                                         ["systemctl", "enable", "--now", "servesim"]]
    assert calls[-1] == ["systemctl", "enable", "--now", "servesim"]
    useradds = [c for c in calls if c[0] == "useradd"]
    if useradds:  # (not called on a host that already has a servesim user)
        assert useradds == [["useradd", "--system", "--no-create-home", "--home-dir", str(instance.prefix),
                             "--shell", "/sbin/nologin", "servesim"]]

    prefix = instance.prefix
    assert _sha256(prefix / "model" / "model.onnx") == model.sha256
    assert _sha256(prefix / "downloads" / BUNDLE_NAME) == published.bundle_sha256
    assert sorted(str(p.relative_to(prefix / "app")) for p in (prefix / "app").rglob("*") if p.is_file()) == MEMBERS
    assert (prefix / "app" / "deploy" / "core.py").read_bytes() == (REPO / "deploy" / "core.py").read_bytes()

    unit = _read_unit(instance.unit)
    assert unit["User"] == unit["Group"] == ["servesim"]
    assert unit["WorkingDirectory"] == [str(prefix / "app")]
    assert unit["Restart"] == ["on-failure"] and unit["WantedBy"] == ["multi-user.target"]
    env = dict(e.split("=", 1) for e in unit["Environment"])
    assert env["SERVESIM_MODEL"] == str(prefix / "model" / "model.onnx")
    assert env["SERVESIM_MODEL_NAME"] == model.name and env["SERVESIM_THREADS"] == "1"
    args = shlex.split(unit["ExecStart"][0])
    assert args[0] == str(prefix / "venv" / "bin" / "gunicorn")
    assert args[args.index("--bind") + 1] == "0.0.0.0:8080"
    # the arguments of local-server, but for the bind; the control socket off where gunicorn has one
    venv_python = prefix / "venv" / "bin" / "python"
    probe = "import gunicorn; print(tuple(gunicorn.version_info[:2]) >= (25, 1))"
    has_ctl = subprocess.run([str(venv_python), "-c", probe], capture_output=True, text=True,
                             check=True).stdout.strip() == "True"
    assert ("--no-control-socket" in args) == has_ctl
    local = LocalServer(model.path, workers=2, port=8080, host="0.0.0.0").command()[3:]
    assert [a for a in args[1:] if a != "--no-control-socket"] == [a for a in local if a != "--no-control-socket"]

    # start the unit's command as systemd would (but on 127.0.0.1 and a free port) and use it
    port = free_port()
    args[args.index("--bind") + 1] = f"127.0.0.1:{port}"
    url = f"http://127.0.0.1:{port}"
    with open(tmp_path / "gunicorn.log", "wb") as log:
        proc = ManagedProcess(args, name="ec2-unit", env={"PATH": "/usr/bin:/bin", **env},
                              cwd=unit["WorkingDirectory"][0], stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            wait_http(url + "/health", proc, timeout_s=60, what="the unit's gunicorn")
        except RuntimeError as exc:
            raise AssertionError(f"{exc}\n{(tmp_path / 'gunicorn.log').read_text()[-4000:]}") from None
        with urllib.request.urlopen(url + "/health", timeout=10) as r:
            health = json.loads(r.read())
        assert health["model"] == model.name and health["sha256"] == model.sha256 and health["threads"] == 1
        body = encode_inputs(sample_input(model, np.random.default_rng(0)))
        req = urllib.request.Request(url + "/predict", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200 and r.headers["X-Model-Sha256"] == model.sha256
            probs = decode_outputs(r.read())["probs"]
        assert probs.shape == (1, 4) and abs(float(probs.sum()) - 1.0) < 1e-5
    finally:
        proc.stop()
    assert not proc.alive()

