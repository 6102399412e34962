"""What an EC2 instance needs to serve a model: the app bundle, and the user data that sets it up.

The bundle (`build_app_bundle`) is a deterministic .tar.gz of the serving app alone:
``deploy/__init__.py`` (empty), ``deploy/core.py``, ``deploy/app.py`` and ``requirements.txt``
(`SERVER_REQUIREMENTS`, with the version ranges pyproject.toml gives them). Members are sorted,
with a fixed mtime, uid/gid 0 and mode 0644, and the gzip header carries no time or name, so the
same sources give the same sha256.

The user data (`render_user_data`) is a bash script for Amazon Linux 2023 that, logging to
``/var/log/servesim-setup.log`` (and to cloud-init's own log):

1. installs Python 3.11 and pip with dnf;
2. downloads the bundle and the model with curl from their (presigned) URLs and checks both
   sha256 sums, failing before anything is installed if either differs; unpacks the bundle into
   ``$PREFIX/app`` and puts the model at ``$PREFIX/model/model.onnx``;
3. creates a venv at ``$PREFIX/venv`` and pip-installs the bundle's requirements.txt (wheels only);
4. creates a system user ``servesim`` and writes ``/etc/systemd/system/servesim.service``:
   gunicorn with the arguments `deploy.local_server.LocalServer.command` uses (sync workers,
   ``--timeout 60``, ``--graceful-timeout 5``, ``--no-control-socket`` on gunicorn >= 25.1),
   bound to ``0.0.0.0:PORT`` (the security group decides who reaches it), restarted on failure;
5. reloads systemd and enables and starts the service.

Every value is quoted with `shlex.quote` (presigned URLs hold ``&`` and ``%``). The only way to
change where the script writes is through the variables at its top, which read
``SERVESIM_PREFIX``, ``SERVESIM_UNIT_DIR`` and ``SERVESIM_SETUP_LOG`` from the environment
(unset on an instance), so the script can also be run off an instance.
"""
from __future__ import annotations

import gzip
import io
import re
import shlex
import tarfile
from pathlib import Path
from urllib.parse import urlsplit

from sim.atomic import atomic_path
from sim.errors import ServesimError

USER_DATA_MAX_BYTES = 16 * 1024  # EC2's limit on raw user data (before base64)
SERVER_REQUIREMENTS = ("onnxruntime>=1.17,<2", "numpy>=1.26,<3", "flask>=3,<4", "gunicorn>=22,<28")

BUNDLE_NAME = "servesim-app.tar.gz"
BUNDLE_MTIME = 315532800  # 1980-01-01T00:00:00Z, the fixed mtime of every member
GUNICORN_TIMEOUT_S = 60  # gunicorn's worker timeout, as LocalServer's default timeout_s
DEFAULT_PREFIX = "/opt/servesim"

_DEPLOY_DIR = Path(__file__).resolve().parents[1]
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_PREFIX = re.compile(r"(/[A-Za-z0-9._-]+)+")


def _bundle_members() -> list[tuple[str, bytes]]:
    """(name, content) of every member of the bundle, sorted by name."""
    members = {
        "deploy/__init__.py": b"",
        "deploy/app.py": (_DEPLOY_DIR / "app.py").read_bytes(),
        "deploy/core.py": (_DEPLOY_DIR / "core.py").read_bytes(),
        "requirements.txt": "".join(f"{r}\n" for r in SERVER_REQUIREMENTS).encode(),
    }
    return sorted(members.items())


def build_app_bundle(out_dir: str | Path) -> Path:
    """Write ``out_dir/servesim-app.tar.gz`` (atomically) and return its path: the app, its
    inference core and requirements.txt; the same sources give the same bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for name, data in _bundle_members():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mtime = BUNDLE_MTIME
                info.mode = 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                tar.addfile(info, io.BytesIO(data))
    path = Path(out_dir) / BUNDLE_NAME
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())
    return path


def _check_url(what: str, url: str) -> str:
    ok = isinstance(url, str) and not any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url)
    if ok:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    if not ok:
        shown = url[:60] + "..." if isinstance(url, str) and len(url) > 60 else url  # a signature is not shown whole
        raise ServesimError(f"user data: {what} must be an http(s) URL without spaces or control characters, "
                            f"got {shown!r}")
    return url


def _check_sha256(what: str, value: str) -> str:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise ServesimError(f"user data: {what} must be 64 hex digits, got {value!r}")
    return value.lower()


def _check_int(what: str, value: int, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f"{low}-{high}" if high is not None else f">= {low}"
        raise ServesimError(f"user data: {what} must be an integer {bound}, got {value!r}")
    return value


def render_user_data(*, bundle_url: str, bundle_sha256: str, model_url: str, model_sha256: str, model_name: str,
                     workers: int, threads: int = 1, port: int = 8080, prefix: str = DEFAULT_PREFIX) -> str:
    """The instance's user data: a bash script for Amazon Linux 2023 (see the module docstring).

    `bundle_url`, `model_url`: http(s) URLs (presigned S3 GETs) of `build_app_bundle`'s file and
    the ONNX model, with their sha256 (hex); `model_name`: the name in responses (letters,
    digits, ``.``, ``_``, ``-``); `workers`: gunicorn sync workers; `threads`: onnxruntime
    intra-op threads per worker; `port`: the TCP port served on every interface; `prefix`: where
    the app, model and venv go. ServesimError for an invalid value or a script over
    `USER_DATA_MAX_BYTES`."""
    if not isinstance(model_name, str) or not _MODEL_NAME.fullmatch(model_name):
        raise ServesimError(f"user data: model_name must be 1-128 letters, digits, '.', '_' or '-' "
                            f"(starting with a letter or digit), got {model_name!r}")
    if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix) or any(p in (".", "..") for p in prefix.split("/")):
        raise ServesimError(f"user data: prefix must be an absolute path of letters, digits, '.', '_', '-', "
                            f"without '.' or '..' parts, got {prefix!r}")
    values = {
        "BUNDLE_URL": _check_url("bundle_url", bundle_url),
        "BUNDLE_SHA256": _check_sha256("bundle_sha256", bundle_sha256),
        "MODEL_URL": _check_url("model_url", model_url),
        "MODEL_SHA256": _check_sha256("model_sha256", model_sha256),
        "MODEL_NAME": model_name,
        "WORKERS": str(_check_int("workers", workers, 1)),
        "THREADS": str(_check_int("threads", threads, 1)),
        "PORT": str(_check_int("port", port, 1, 65535)),
        "TIMEOUT_S": str(GUNICORN_TIMEOUT_S),
    }
    assignments = "".join(f"{k}={shlex.quote(v)}\n" for k, v in values.items())
    script = _HEAD.replace("@PREFIX@", prefix) + assignments + _BODY
    size = len(script.encode("utf-8"))
    if size > USER_DATA_MAX_BYTES:
        raise ServesimError(f"user data is {size} bytes, over EC2's limit of {USER_DATA_MAX_BYTES} bytes "
                            f"(the URLs take {len(bundle_url) + len(model_url)}): use shorter URLs")
    return script


# The script: a head whose variables are the only knobs, the values, then a body that reads them.
_HEAD = r"""#!/bin/bash
# servesim: set up this Amazon Linux 2023 instance to serve one ONNX model with gunicorn + deploy.app.
# Rendered by deploy/aws/ec2_package.py.
set -euo pipefail

# Where everything goes (the environment may override these to run the script elsewhere).
PREFIX="${SERVESIM_PREFIX:-@PREFIX@}"
UNIT_DIR="${SERVESIM_UNIT_DIR:-/etc/systemd/system}"
SETUP_LOG="${SERVESIM_SETUP_LOG:-/var/log/servesim-setup.log}"
PYTHON=python3.11
SERVICE=servesim
SERVICE_USER=servesim

"""

_BODY = r"""
mkdir -p "$(dirname "$SETUP_LOG")"
exec > >(tee -a "$SETUP_LOG") 2>&1
trap 'echo "servesim setup: FAILED (exit $?) at line $LINENO"' ERR
echo "servesim setup: start $(date -u +%Y-%m-%dT%H:%M:%SZ)"
case "$PREFIX" in
  /*) ;;
  *) echo "servesim setup: PREFIX must be an absolute path, got $PREFIX"; exit 1 ;;
esac
case "$PREFIX" in
  *[!A-Za-z0-9._/-]*) echo "servesim setup: PREFIX may hold only letters, digits and . _ / -, got $PREFIX"; exit 1 ;;
esac
umask 022

echo "servesim setup: 1/5 installing Python 3.11"
dnf install -y python3.11 python3.11-pip tar gzip

echo "servesim setup: 2/5 downloading and checking the app bundle and the model"
mkdir -p "$PREFIX/downloads" "$PREFIX/model"
BUNDLE="$PREFIX/downloads/servesim-app.tar.gz"
MODEL="$PREFIX/model/model.onnx"
curl -fsSL --retry 5 --retry-connrefused -o "$BUNDLE.part" "$BUNDLE_URL"
curl -fsSL --retry 5 --retry-connrefused -o "$MODEL.part" "$MODEL_URL"
printf '%s  %s\n' "$BUNDLE_SHA256" "$BUNDLE.part" "$MODEL_SHA256" "$MODEL.part" | sha256sum -c -
mv -f "$BUNDLE.part" "$BUNDLE"
mv -f "$MODEL.part" "$MODEL"
rm -rf "$PREFIX/app"
mkdir -p "$PREFIX/app"
tar -xzf "$BUNDLE" -C "$PREFIX/app" --no-same-owner

echo "servesim setup: 3/5 creating the venv and installing the requirements"
"$PYTHON" -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/python" -m pip install --no-input --no-cache-dir --disable-pip-version-check \
  --only-binary=:all: -r "$PREFIX/app/requirements.txt"

echo "servesim setup: 4/5 writing $UNIT_DIR/$SERVICE.service"
if ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
  useradd --system --no-create-home --home-dir "$PREFIX" --shell /sbin/nologin "$SERVICE_USER"
fi
GUNICORN_ARGS="--workers $WORKERS --worker-class sync --bind 0.0.0.0:$PORT"
GUNICORN_ARGS="$GUNICORN_ARGS --timeout $TIMEOUT_S --graceful-timeout 5 --log-level warning"
if "$PREFIX/venv/bin/python" -c 'import sys, gunicorn; sys.exit(tuple(gunicorn.version_info[:2]) < (25, 1))'; then
  GUNICORN_ARGS="$GUNICORN_ARGS --no-control-socket"
fi
mkdir -p "$UNIT_DIR"
cat > "$UNIT_DIR/.$SERVICE.service.tmp" <<EOF
[Unit]
Description=servesim model server (gunicorn + deploy.app)
Wants=network-online.target
After=network-online.target

[Service]
User=$SERVICE_USER
Group=$SERVICE_USER
WorkingDirectory=$PREFIX/app
Environment=PYTHONPATH=$PREFIX/app
Environment=SERVESIM_MODEL=$MODEL
Environment=SERVESIM_MODEL_NAME=$MODEL_NAME
Environment=SERVESIM_THREADS=$THREADS
Environment=OMP_NUM_THREADS=$THREADS
Environment=MKL_NUM_THREADS=$THREADS
Environment=OPENBLAS_NUM_THREADS=$THREADS
ExecStart=$PREFIX/venv/bin/gunicorn $GUNICORN_ARGS 'deploy.app:create_app()'
Restart=on-failure
RestartSec=2

[Install]
WantedBy=multi-user.target
EOF
mv -f "$UNIT_DIR/.$SERVICE.service.tmp" "$UNIT_DIR/$SERVICE.service"

echo "servesim setup: 5/5 starting $SERVICE"
systemctl daemon-reload
systemctl enable --now "$SERVICE"
echo "servesim setup: done $(date -u +%Y-%m-%dT%H:%M:%SZ); serving on port $PORT"
"""
