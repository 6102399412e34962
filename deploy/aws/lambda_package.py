"""Packaging the Lambda handler: a deployment zip for a managed Python runtime, or a container
image build context for users with Docker.

The zip (`build_lambda_zip`) holds, at its root, the runtime packages (`RUNTIME_REQUIREMENTS`,
onnxruntime and numpy with their dependencies) installed by pip from manylinux wheels for
Lambda's platform, then ``deploy/__init__.py`` (empty), ``deploy/core.py`` and
``deploy/handler.py`` from this repository (the handler imports only `deploy.core`), and the
model at ``deploy/model.onnx``, where the handler looks by default. A model that would take the
unzipped package over Lambda's 250 MB limit is left out (`LambdaPackage.model_in_zip` False):
the deployer puts it in S3 and sets ``SERVESIM_MODEL=s3://bucket/key`` and
``SERVESIM_MODEL_SHA256``, and the handler downloads it at init. A zip over 50 MB must itself be
uploaded through S3 (`LambdaPackage.upload_via_s3`).

Assumptions and choices
-----------------------
- Runtimes: python3.12, python3.13 and python3.14, the Lambda Python runtimes that run on Amazon
  Linux 2023 (glibc 2.34), so wheels tagged manylinux_2_17 up to manylinux_2_34 are taken.
  python3.10 and python3.11 run on Amazon Linux 2 (glibc 2.26), for which onnxruntime>=1.17
  has no wheels, and AWS deprecated them on 2026-06-30 (no new functions from 2026-07-31, no
  updates from 2026-08-31): they are refused, as is python3.9 (deprecated 2025-12-15).
- The wheels are installed once per (architecture, Python) into ``<cache>/lambda/<arch>-py<X.Y>``
  (cache = `deploy.models.cache_dir()`: ``$SERVESIM_CACHE`` or ``~/.cache/servesim``), with a
  stamp naming the requirements and platform tags; a stamp that differs means a fresh install.
- Left out of the zip, as never imported for inference: pip's console scripts (``bin/``),
  bytecode (``__pycache__``, ``*.pyc``), type stubs (``*.pyi``), numpy's test suites,
  onnxruntime's offline tools (``transformers``, ``quantization``, ``tools``), and
  onnxruntime's C-API library ``capi/libonnxruntime.so.*`` when no other onnxruntime binary
  names it (the Python binding has the runtime built in; 35 MB unzipped in onnxruntime 1.32).
  tests/test_lambda_package.py runs an extracted zip in an isolated interpreter (no
  site-packages) to prove that inference works without them.
- The zip is deterministic: entries sorted, timestamps fixed (1980-01-01), modes 0644 for files
  and 0755 for folders and executables. The same wheels and model give the same bytes.

The image context (`build_image_context`) is a folder with a Dockerfile on AWS's Lambda Python
base image; `docker_build_push` builds it for one platform and pushes it to a registry (ECR).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
import zipfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from deploy.models import ModelFile, resolve_model
from deploy.models.cache import cache_dir as servesim_cache_dir
from sim.atomic import atomic_path, write_text
from sim.errors import ServesimError

LAMBDA_DIRECT_UPLOAD_BYTES = 50 * 1024 * 1024  # zipped, direct upload (aws-facts §2.3: 50 MB)
LAMBDA_UNZIPPED_BYTES = 250 * 1024 * 1024  # unzipped, including layers (aws-facts §2.3: 250 MB)
HANDLER = "deploy.handler.handler"
RUNTIME_REQUIREMENTS = ("onnxruntime>=1.17,<2", "numpy>=1.26,<3")

LAMBDA_PYTHON_VERSIONS = ("3.12", "3.13", "3.14")  # the Amazon Linux 2023 runtimes
_DEPRECATED = {"3.9": "2025-12-15", "3.10": "2026-06-30", "3.11": "2026-06-30"}
_GLIBC_MINOR = 34  # Amazon Linux 2023's glibc is 2.34
_MACHINE = {"x86_64": "x86_64", "arm64": "aarch64"}  # Lambda's names -> the manylinux tags'
_DOCKER_PLATFORM = {"x86_64": "linux/amd64", "arm64": "linux/arm64"}
_DEPLOY_DIR = Path(__file__).resolve().parent.parent  # this repository's deploy/
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_ONNXRUNTIME_TOOLS = ("transformers", "quantization", "tools")
MB = 1024 * 1024


@dataclass(frozen=True)
class LambdaPackage:
    """A built deployment zip. Sizes in bytes: `zipped_bytes` is the file's, `unzipped_bytes`
    the sum of its entries'. `model_in_zip` is False when the package with the model would be
    over Lambda's unzipped limit: the model then goes to S3. `runtime`: Lambda's identifier
    (``python3.12``); `architecture`: ``x86_64`` or ``arm64``."""

    zip_path: Path
    zipped_bytes: int
    unzipped_bytes: int
    model_in_zip: bool
    model_name: str
    model_path: Path
    model_sha256: str
    model_bytes: int
    runtime: str
    architecture: str
    handler: str = HANDLER

    @property
    def upload_via_s3(self) -> bool:
        """Whether the zip is over Lambda's direct-upload limit (the deployer uploads it to S3)."""
        return self.zipped_bytes > LAMBDA_DIRECT_UPLOAD_BYTES


def lambda_runtime(python_version: str) -> str:
    """Lambda's runtime identifier for a Python version: "3.12" -> "python3.12".
    ServesimError for a version Lambda has no (or no longer a) runtime for."""
    version = str(python_version).strip()
    if version in LAMBDA_PYTHON_VERSIONS:
        return f"python{version}"
    supported = ", ".join(LAMBDA_PYTHON_VERSIONS)
    if version in _DEPRECATED:
        raise ServesimError(f"Python {version}: AWS Lambda deprecated its python{version} runtime on "
                            f"{_DEPRECATED[version]} and no longer lets functions be created on it; "
                            f"use Python {supported}")
    raise ServesimError(f"AWS Lambda has no runtime for Python {version!r}: use {supported}")


def _machine(architecture: str) -> str:
    try:
        return _MACHINE[architecture]
    except KeyError:
        raise ServesimError(f"Lambda architecture must be one of {', '.join(_MACHINE)}, "
                            f"got {architecture!r}") from None


def _platform_tags(architecture: str) -> list[str]:
    """The wheel platforms that run on Amazon Linux 2023 for `architecture`, newest first."""
    machine = _machine(architecture)
    return [f"manylinux_2_{m}_{machine}" for m in range(_GLIBC_MINOR, 16, -1)] + [f"manylinux2014_{machine}"]


def _slug(name: str) -> str:
    stem = name[:-len(".onnx")] if name.endswith(".onnx") else name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.") or "model"


def _model_file(model: str | os.PathLike | ModelFile) -> ModelFile:
    return model if isinstance(model, ModelFile) else resolve_model(model)


def _tail(text: str, lines: int = 12) -> str:
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


# -- the runtime packages ---------------------------------------------------------------------

def _install_runtime(architecture: str, python_version: str, cache_dir: str | os.PathLike | None,
                     echo: Callable[[str], None]) -> Path:
    """The folder of the runtime packages for (architecture, Python), installed by pip on first
    use and reused while its stamp matches."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else servesim_cache_dir() / "lambda"
    target = root / f"{architecture}-py{python_version}"
    tags = _platform_tags(architecture)
    stamp = {"requirements": list(RUNTIME_REQUIREMENTS), "python": python_version,
             "architecture": architecture, "platforms": tags}
    if _read_stamp(target) == stamp:
        return target / "python"
    abi = "cp" + python_version.replace(".", "")
    echo(f"installing {', '.join(RUNTIME_REQUIREMENTS)} for python{python_version} on {architecture} "
         f"(manylinux wheels) into {target}")
    staging = root / f".{target.name}.{uuid.uuid4().hex[:12]}.tmp"
    argv = [sys.executable, "-m", "pip", "install", "--target", str(staging / "python"), "--no-compile",
            "--only-binary=:all:", "--implementation", "cp", "--python-version", python_version, "--abi", abi,
            "--disable-pip-version-check", "--no-input", "--quiet"]
    for tag in tags:
        argv += ["--platform", tag]
    argv += list(RUNTIME_REQUIREMENTS)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise ServesimError(
                f"pip could not install {', '.join(RUNTIME_REQUIREMENTS)} for python{python_version} on "
                f"{architecture} (exit {proc.returncode}):\n{_tail(proc.stderr or proc.stdout)}\n"
                "Check that pip reaches the package index (network, proxy, pip.conf) and that these versions "
                f"have manylinux wheels (glibc <= 2.{_GLIBC_MINOR}) for this Python and architecture.")
        write_text(staging / "stamp.json", json.dumps(stamp, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        try:
            os.replace(staging, target)
        except OSError:
            if _read_stamp(target) != stamp:  # not another build's identical install either
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target / "python"


def _read_stamp(target: Path) -> dict | None:
    try:
        stamp = json.loads((target / "stamp.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return stamp if (target / "python").is_dir() else None


def _left_out(rel: str) -> bool:
    """Whether a path of the installed packages (relative, '/'-separated) stays out of the zip."""
    parts = rel.split("/")
    return (parts[0] == "bin" or "__pycache__" in parts or rel.endswith((".pyc", ".pyi"))
            or (parts[0] == "numpy" and "tests" in parts)
            or (parts[0] == "onnxruntime" and len(parts) > 1 and parts[1] in _ONNXRUNTIME_TOOLS))


def _package_entries(site: Path) -> list[tuple[str, Path | bytes]]:
    entries: list[tuple[str, Path | bytes]] = []
    for dirpath, dirnames, filenames in os.walk(site):
        rel = Path(dirpath).relative_to(site).as_posix()
        prefix = "" if rel == "." else rel + "/"
        dirnames[:] = sorted(d for d in dirnames if not _left_out(prefix + d))
        entries += [(prefix + f, Path(dirpath) / f) for f in sorted(filenames) if not _left_out(prefix + f)]
    unused = _unused_onnxruntime_library(entries)
    return [(name, source) for name, source in entries if name not in unused]


def _unused_onnxruntime_library(entries: list[tuple[str, Path | bytes]]) -> set[str]:
    """onnxruntime's C-API library (``capi/libonnxruntime.so.*``, a third of the package), when
    no other binary of onnxruntime names it: the Python binding has the runtime built in."""
    capi = [(name, source) for name, source in entries
            if name.startswith("onnxruntime/capi/") and ".so" in name and isinstance(source, Path)]
    library = {name for name, _ in capi if name.rsplit("/", 1)[-1].startswith("libonnxruntime.so")}
    for name, source in capi:
        if name not in library and b"libonnxruntime.so" in source.read_bytes():
            return set()
    return library


def _handler_entries() -> list[tuple[str, Path | bytes]]:
    return [("deploy/__init__.py", b""), ("deploy/core.py", _DEPLOY_DIR / "core.py"),
            ("deploy/handler.py", _DEPLOY_DIR / "handler.py")]


def _size(source: Path | bytes) -> int:
    return len(source) if isinstance(source, bytes) else source.stat().st_size


# -- the zip ----------------------------------------------------------------------------------

def _write_zip(path: Path, entries: Iterable[tuple[str, Path | bytes]]) -> None:
    """A deterministic zip of `entries` (name in the zip, file or bytes), with a folder entry
    for every folder: sorted, fixed timestamps, Unix modes 0644/0755."""
    files = dict(entries)
    folders = {name.rsplit("/", i)[0] + "/" for name in files for i in range(1, name.count("/") + 1)}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(folders | set(files)):
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.create_system = 3  # Unix: external_attr carries the mode
            if name in folders:
                info.external_attr = (0o40755 << 16) | 0x10  # plus the MS-DOS directory bit
                zf.writestr(info, b"")
                continue
            source = files[name]
            executable = isinstance(source, Path) and source.stat().st_mode & 0o111
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            if isinstance(source, bytes):
                zf.writestr(info, source)
            else:
                with open(source, "rb") as src, zf.open(info, "w") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)


def build_lambda_zip(model: str | os.PathLike | ModelFile, *, architecture: str = "x86_64",
                     python_version: str = "3.12", out_dir: str | os.PathLike,
                     cache_dir: str | os.PathLike | None = None,
                     echo: Callable[[str], None] = print) -> LambdaPackage:
    """Build the deployment zip for `model` (a zoo name, an .onnx path or a ModelFile) at
    ``out_dir/servesim-<model>-<arch>-py<X.Y>.zip``, atomically; see the module docstring.

    `cache_dir`: where the per-(architecture, Python) package installs live (default
    ``<servesim cache>/lambda``). ServesimError for an unsupported runtime or architecture, a
    failing pip, or runtime packages that alone exceed Lambda's unzipped limit."""
    runtime = lambda_runtime(python_version)
    _machine(architecture)
    mf = _model_file(model)
    site = _install_runtime(architecture, python_version, cache_dir, echo)
    entries = _package_entries(site) + _handler_entries()
    code_bytes = sum(_size(source) for _, source in entries)
    model_bytes = mf.path.stat().st_size
    limit_mb = LAMBDA_UNZIPPED_BYTES / MB
    if code_bytes > LAMBDA_UNZIPPED_BYTES:
        raise ServesimError(f"the Lambda runtime packages alone are {code_bytes / MB:.1f} MB unzipped, over Lambda's "
                            f"{limit_mb:.0f} MB limit for a zip: package as a container image instead "
                            "(--package image, up to 10 GB)")
    model_in_zip = code_bytes + model_bytes <= LAMBDA_UNZIPPED_BYTES
    if model_in_zip:
        entries.append(("deploy/model.onnx", mf.path))
    zip_path = Path(out_dir) / f"servesim-{_slug(mf.name)}-{architecture}-py{python_version}.zip"
    with atomic_path(zip_path) as tmp:
        _write_zip(tmp, entries)
    unzipped = code_bytes + (model_bytes if model_in_zip else 0)
    pkg = LambdaPackage(zip_path=zip_path, zipped_bytes=zip_path.stat().st_size, unzipped_bytes=unzipped,
                        model_in_zip=model_in_zip, model_name=mf.name, model_path=Path(mf.path),
                        model_sha256=mf.sha256, model_bytes=model_bytes, runtime=runtime,
                        architecture=architecture)
    where = (f"model {mf.name} ({model_bytes / MB:.1f} MB) in the zip" if model_in_zip else
             f"model {mf.name} ({model_bytes / MB:.1f} MB) to S3 (with it the package would be "
             f"{(code_bytes + model_bytes) / MB:.1f} MB unzipped, over {limit_mb:.0f} MB)")
    upload = (f"; over {LAMBDA_DIRECT_UPLOAD_BYTES / MB:.0f} MB zipped, so uploaded via S3"
              if pkg.upload_via_s3 else "")
    echo(f"{zip_path.name}: {pkg.zipped_bytes / MB:.1f} MB zipped, {unzipped / MB:.1f} MB unzipped "
         f"({runtime}, {architecture}); {where}{upload}")
    return pkg


# -- the container image ----------------------------------------------------------------------

def docker_available() -> bool:
    """Whether `docker` is on PATH and its engine answers `docker info` within a few seconds."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        return subprocess.run([docker, "info"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=5.0).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _dockerfile(mf: ModelFile, runtime: str, python_version: str, architecture: str) -> str:
    platform = _DOCKER_PLATFORM[architecture]
    return "\n".join([
        f"# servesim: the Lambda handler serving {mf.name} (sha256 {mf.sha256}), {runtime} on {architecture}.",
        f"# Build: docker build --platform {platform} --provenance=false -t IMAGE .",
        "# (--provenance=false: Lambda takes a single-platform image manifest, not an index with attestations)",
        f"FROM --platform={platform} public.ecr.aws/lambda/python:{python_version}",
        "COPY requirements.txt ${LAMBDA_TASK_ROOT}/",
        "RUN pip install --no-cache-dir -r ${LAMBDA_TASK_ROOT}/requirements.txt",
        "COPY deploy/__init__.py deploy/core.py deploy/handler.py deploy/model.onnx ${LAMBDA_TASK_ROOT}/deploy/",
        f"ENV SERVESIM_MODEL_NAME={json.dumps(mf.name)}",
        f'CMD ["{HANDLER}"]',
        ""])


def build_image_context(model: str | os.PathLike | ModelFile, *, architecture: str = "x86_64",
                        python_version: str = "3.12", out_dir: str | os.PathLike) -> Path:
    """A Docker build context for `model` at ``out_dir/servesim-<model>-<arch>-py<X.Y>-image``:
    a Dockerfile on ``public.ecr.aws/lambda/python:<X.Y>`` for ``linux/amd64`` or ``linux/arm64``,
    requirements.txt (`RUNTIME_REQUIREMENTS`), and ``deploy/`` with the handler and the model.
    Replaces a context already there."""
    runtime = lambda_runtime(python_version)
    _machine(architecture)
    mf = _model_file(model)
    context = Path(out_dir) / f"servesim-{_slug(mf.name)}-{architecture}-py{python_version}-image"
    staging = context.with_name(f".{context.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        (staging / "deploy").mkdir(parents=True)
        for name, source in _handler_entries() + [("deploy/model.onnx", Path(mf.path))]:
            if isinstance(source, bytes):
                (staging / name).write_bytes(source)
            else:
                shutil.copyfile(source, staging / name)
        (staging / "requirements.txt").write_text("\n".join(RUNTIME_REQUIREMENTS) + "\n", encoding="utf-8")
        (staging / "Dockerfile").write_text(_dockerfile(mf, runtime, python_version, architecture), encoding="utf-8")
        if context.exists():
            shutil.rmtree(context)
        os.replace(staging, context)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return context


def _docker(step: str, argv: list[str], echo: Callable[[str], None], *, stdin: str | None = None,
            secret: str | None = None) -> None:
    """Run one docker command, its output (merged, `secret` masked) echoed and kept for the error."""
    def clean(line: str) -> str:
        return line.replace(secret, "***") if secret else line

    last: deque[str] = deque(maxlen=15)
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except OSError as exc:
        raise ServesimError(f"docker {step}: cannot run docker ({exc})") from None
    with proc:
        if stdin is not None:
            try:
                proc.stdin.write(stdin)
                proc.stdin.close()
            except BrokenPipeError:
                pass
        for line in proc.stdout:
            line = clean(line.rstrip("\n"))
            if line.strip():
                last.append(line)
                echo(f"  {line}")
    if proc.returncode != 0:
        output = "\n".join(last) or "(no output)"
        raise ServesimError(f"docker {step} failed (exit {proc.returncode}):\n{output}")


def docker_build_push(context_dir: str | os.PathLike, image_uri: str, *, architecture: str, registry: str,
                      username: str, password: str, echo: Callable[[str], None] = print) -> None:
    """Log in to `registry` (the password through stdin, never in argv or a log), build
    `context_dir` for the Lambda `architecture` as `image_uri`, and push it. ServesimError
    naming the failing step with docker's last lines of output."""
    _machine(architecture)
    platform = _DOCKER_PLATFORM[architecture]
    echo(f"docker login {registry}")
    _docker("login", ["docker", "login", "--username", username, "--password-stdin", registry], echo,
            stdin=password, secret=password)
    echo(f"docker build --platform {platform} {image_uri}")
    _docker("build", ["docker", "build", "--platform", platform, "--provenance=false", "--tag", image_uri,
                      str(context_dir)], echo, secret=password)
    echo(f"docker push {image_uri}")
    _docker("push", ["docker", "push", image_uri], echo, secret=password)
