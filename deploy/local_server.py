"""local-server: the Flask app of `deploy.app` under gunicorn on this machine, standing for one
EC2 instance (N sync workers, optionally held to K vCPUs).

Gunicorn runs as a `deploy.procs.ManagedProcess`: its own process group, a cgroup CPU quota of
K vCPUs where the host allows it (else CPU affinity to ceil(K) CPUs; `limit` records which),
stopped as a group on `stop()`, on exit, on error and on SIGINT/SIGTERM. Start-up is health
checked: `startup_s` is process start -> first 200 from /health (gunicorn answers as soon as one
worker has loaded the model); `ready_s` is process start -> every worker has loaded the model
(each worker reports through `SERVESIM_READY_DIR`, see `deploy.app`). Binds 127.0.0.1 unless a
`host` is given.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deploy.procs import ManagedProcess, ResourceLimit, free_port, wait_http

REPO_ROOT = Path(__file__).resolve().parents[1]


def resolve(model: str | os.PathLike) -> tuple[Path, str]:
    """The model's file and name: an existing path, else a zoo name (`deploy.models`)."""
    path = Path(model)
    if path.is_file():
        return path.resolve(), path.stem
    try:
        from deploy.models import resolve_model
    except ImportError:
        raise FileNotFoundError(f"model file not found: {model}") from None
    mf = resolve_model(str(model))
    return Path(mf.path).resolve(), mf.name


def _no_control_socket() -> list[str]:
    """gunicorn >= 25.1 opens a control socket at one per-user path; servers side by side would
    fight over it, so it is turned off where it exists."""
    import gunicorn

    return ["--no-control-socket"] if tuple(gunicorn.version_info[:2]) >= (25, 1) else []


class LocalServer:
    """gunicorn + `deploy.app` serving `model` on http://host:port; a context manager.

    `workers`: gunicorn sync workers; `cpus`: vCPUs to hold the whole server to (None: no
    limit); `threads`: onnxruntime intra-op threads per worker; `timeout_s`: gunicorn's worker
    timeout and the start-up deadline; `memory_mb`: a memory limit (cgroup only)."""

    def __init__(self, model: str | os.PathLike, *, workers: int = 2, port: int | None = None,
                 cpus: float | None = None, threads: int = 1, timeout_s: float = 60.0,
                 host: str = "127.0.0.1", memory_mb: int | None = None):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if cpus is not None and cpus <= 0:
            raise ValueError(f"cpus must be > 0, got {cpus}")
        self.model_path, self.model_name = resolve(model)
        self.workers = int(workers)
        self.cpus = cpus
        self.threads = int(threads)
        self.timeout_s = float(timeout_s)
        self.host = host
        self.port = int(port) if port else free_port()
        self.memory_mb = memory_mb
        self.proc: ManagedProcess | None = None
        self.startup_s: float | None = None
        self.ready_s: float | None = None
        self.worker_pids: list[int] = []
        self._ready_dir: str | None = None
        self._log_path: str | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def limit(self) -> ResourceLimit:
        return self.proc.limit if self.proc else ResourceLimit("none")

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "gunicorn", "--workers", str(self.workers), "--worker-class", "sync",
                "--bind", f"{self.host}:{self.port}", "--timeout", str(max(1, int(self.timeout_s))),
                "--graceful-timeout", "5", "--log-level", "warning", *_no_control_socket(),
                "deploy.app:create_app()"]

    def start(self) -> "LocalServer":
        """Start gunicorn and wait until every worker has loaded the model; on failure, stop
        everything and raise RuntimeError with gunicorn's log tail."""
        if self.proc is not None:
            raise RuntimeError("server already started")
        self._ready_dir = tempfile.mkdtemp(prefix="servesim-ready-")
        fd, self._log_path = tempfile.mkstemp(prefix="servesim-gunicorn-", suffix=".log")
        env = dict(os.environ)
        env.update({
            "SERVESIM_MODEL": str(self.model_path), "SERVESIM_MODEL_NAME": self.model_name,
            "SERVESIM_THREADS": str(self.threads), "SERVESIM_READY_DIR": self._ready_dir,
            "OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads),
            "OPENBLAS_NUM_THREADS": str(self.threads),
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])]),
        })
        try:
            t0 = time.monotonic()
            with os.fdopen(fd, "wb") as log:
                self.proc = ManagedProcess(self.command(), name="local-server", env=env, cwd=REPO_ROOT,
                                           vcpus=self.cpus, memory_mb=self.memory_mb,
                                           stdout=log, stderr=subprocess.STDOUT)
            wait_http(self.url + "/health", self.proc, timeout_s=self.timeout_s, what="gunicorn")
            self.startup_s = time.monotonic() - t0
            self._wait_all_workers(t0)
            self.ready_s = time.monotonic() - t0
        except BaseException as exc:
            tail = self.log_tail()
            self.stop()
            if isinstance(exc, Exception):
                raise RuntimeError(f"local-server failed to start: {exc}\n{tail}") from exc
            raise
        return self

    def _wait_all_workers(self, t0: float) -> None:
        ready = Path(self._ready_dir)
        while True:
            pids = sorted(int(p.name) for p in ready.iterdir() if p.name.isdigit())
            if len(pids) >= self.workers:
                self.worker_pids = pids
                return
            if not self.proc.alive():
                raise RuntimeError(f"gunicorn exited with code {self.proc.popen.returncode}")
            if time.monotonic() - t0 > self.timeout_s:
                raise RuntimeError(f"only {len(pids)} of {self.workers} workers loaded the model "
                                   f"within {self.timeout_s:g} s")
            time.sleep(0.01)

    def log_tail(self, n_chars: int = 4000) -> str:
        if not self._log_path or not os.path.exists(self._log_path):
            return ""
        with open(self._log_path, "rb") as f:
            data = f.read()
        return data[-n_chars:].decode("utf-8", "replace")

    def stop(self) -> None:
        """Stop gunicorn's whole process group and remove the temporary files; idempotent."""
        try:
            if self.proc is not None:
                self.proc.stop()
        finally:
            if self._ready_dir:
                shutil.rmtree(self._ready_dir, ignore_errors=True)
                self._ready_dir = None
            if self._log_path:
                try:
                    os.unlink(self._log_path)
                except OSError:
                    pass
                self._log_path = None

    def describe(self) -> dict:
        """What ran, for a measurement's metadata."""
        return {"target": "local-server", "url": self.url, "model": self.model_name,
                "model_path": str(self.model_path), "workers": self.workers, "threads": self.threads,
                "cpus": self.cpus, "limit": self.limit.as_dict(), "startup_s": self.startup_s,
                "ready_s": self.ready_s, "pid": self.pid}

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(model: str, *, workers: int = 2, port: int | None = None, cpus: float | None = None,
          threads: int = 1, host: str = "127.0.0.1", echo=print) -> None:
    """`servesim serve`: start a LocalServer, report it, and keep it up until Ctrl-C/SIGTERM."""
    from deploy.procs import install_signal_handlers

    install_signal_handlers()
    with LocalServer(model, workers=workers, port=port, cpus=cpus, threads=threads, host=host) as server:
        d = server.describe()
        echo(f"serving {d['model']} at {server.url} (POST /predict, GET /health): {workers} worker(s), "
             f"limit {d['limit']['method']}{' ' + d['limit']['detail'] if d['limit']['detail'] else ''}; "
             f"first answer after {server.startup_s:.2f} s, all workers after {server.ready_s:.2f} s. Ctrl-C stops.")
        try:
            while server.proc.alive():
                time.sleep(0.5)
            echo(f"gunicorn exited with code {server.proc.popen.returncode}\n{server.log_tail()}")
        except KeyboardInterrupt:
            pass
