"""Processes the tool starts: each in its own process group, limited in CPU and memory where the
host allows it, and always stopped (on exit, on error, on SIGINT/SIGTERM).

CPU and memory limits (to stand for an instance size or Lambda's memory-proportional CPU share):
- cgroup v1 where `/sys/fs/cgroup/cpu` (and `/sys/fs/cgroup/memory`) are writable: a CFS quota
  of `vcpus` x period (fractional shares are enforced), and a memory limit. The child joins its
  cgroup *before* it executes the command (a shell writes its own pid into the cgroup and then
  execs), so every process it forks later inherits the limit.
- otherwise CPU affinity to ceil(vcpus) CPUs (a fractional share is then not enforced) and no
  memory limit.
What was applied is recorded in `ManagedProcess.limit` so measurements can state it.
"""
from __future__ import annotations

import atexit
import os
import shlex
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

CGROUP_ROOT = Path("/sys/fs/cgroup")
CFS_PERIOD_US = 100_000


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class ResourceLimit:
    """What limit a process runs under: method is 'cgroup', 'affinity' or 'none'."""

    method: str
    vcpus: float | None = None
    memory_mb: int | None = None
    detail: str = ""

    def as_dict(self) -> dict:
        return {"method": self.method, "vcpus": self.vcpus, "memory_mb": self.memory_mb, "detail": self.detail}


def _writable(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK)


def cgroup_available() -> bool:
    """True where cgroup v1 CPU quotas can be set here."""
    return _writable(CGROUP_ROOT / "cpu") and (CGROUP_ROOT / "cpu" / "cpu.cfs_quota_us").exists()


class _Cgroup:
    """A pair of cgroup v1 folders (cpu, memory) for one process tree."""

    def __init__(self, name: str, vcpus: float | None, memory_mb: int | None):
        self.dirs: list[Path] = []
        tag = f"servesim/{name}-{uuid.uuid4().hex[:8]}"
        if vcpus is not None:
            d = CGROUP_ROOT / "cpu" / tag
            d.mkdir(parents=True)
            self.dirs.append(d)
            (d / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
            (d / "cpu.cfs_quota_us").write_text(str(max(1000, int(round(vcpus * CFS_PERIOD_US)))))
        self.memory_applied = False
        if memory_mb is not None and _writable(CGROUP_ROOT / "memory"):
            d = CGROUP_ROOT / "memory" / tag
            d.mkdir(parents=True)
            self.dirs.append(d)
            (d / "memory.limit_in_bytes").write_text(str(int(memory_mb) * 1024 * 1024))
            self.memory_applied = True

    def wrap(self, args: Sequence[str]) -> list[str]:
        """The command, run by a shell that first moves itself into the cgroups."""
        joins = " ".join(f"echo $$ > {shlex.quote(str(d / 'cgroup.procs'))};" for d in self.dirs)
        return ["/bin/sh", "-c", f'{joins} exec "$@"', "servesim-cgroup", *args]

    def remove(self) -> None:
        for d in reversed(self.dirs):
            for _ in range(50):  # the kernel frees the cgroup once its last task has exited
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
            parent = d.parent
            try:
                parent.rmdir()  # servesim/, if it is now empty
            except OSError:
                pass


class ManagedProcess:
    """A command in its own process group, optionally limited; `stop` ends the whole group."""

    def __init__(self, args: Sequence[str], *, name: str = "proc", env: Mapping[str, str] | None = None,
                 cwd: str | Path | None = None, vcpus: float | None = None, memory_mb: int | None = None,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
        self.args = list(args)
        self.name = name
        self._cgroup: _Cgroup | None = None
        cmd = self.args
        if vcpus is not None or memory_mb is not None:
            if cgroup_available():
                self._cgroup = _Cgroup(name, vcpus, memory_mb)
                cmd = self._cgroup.wrap(self.args)
                mem = memory_mb if self._cgroup.memory_applied else None
                self.limit = ResourceLimit("cgroup", vcpus, mem,
                                           f"cgroup v1 CFS quota {vcpus:g} vCPU" if vcpus else "cgroup v1")
            elif vcpus is not None and hasattr(os, "sched_setaffinity"):
                self.limit = ResourceLimit("affinity", float(max(1, -(-vcpus // 1))), None,
                                           f"CPU affinity to {max(1, int(-(-vcpus // 1)))} CPU(s); "
                                           f"a share of {vcpus:g} vCPU is not enforced")
            else:
                self.limit = ResourceLimit("none", None, None, "no CPU or memory limit available on this host")
        else:
            self.limit = ResourceLimit("none")
        try:
            self.popen = subprocess.Popen(cmd, env=dict(env) if env is not None else None, cwd=cwd,
                                          stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                          start_new_session=True)
        except BaseException:
            if self._cgroup:
                self._cgroup.remove()
            raise
        if self.limit.method == "affinity":
            cpus = sorted(os.sched_getaffinity(0))[: int(self.limit.vcpus)]
            try:
                os.sched_setaffinity(self.popen.pid, cpus)
            except OSError:
                pass
        _REGISTRY.add(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM to the whole group, then SIGKILL after `timeout_s`; idempotent."""
        try:
            if self.popen.poll() is None or _group_alive(self.popen.pid):
                _signal_group(self.popen.pid, signal.SIGTERM)
                deadline = time.monotonic() + timeout_s
                while time.monotonic() < deadline and (self.popen.poll() is None or _group_alive(self.popen.pid)):
                    time.sleep(0.02)
                if self.popen.poll() is None or _group_alive(self.popen.pid):
                    _signal_group(self.popen.pid, signal.SIGKILL)
                    self.popen.wait(timeout=timeout_s)
                    deadline = time.monotonic() + timeout_s
                    while time.monotonic() < deadline and _group_alive(self.popen.pid):
                        time.sleep(0.02)
        finally:
            if self._cgroup:
                self._cgroup.remove()
                self._cgroup = None
            _REGISTRY.discard(self)

    def tree_rss_bytes(self) -> int:
        """Resident memory of the process and all its descendants (0 when it has ended)."""
        import psutil

        try:
            root = psutil.Process(self.popen.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    def __enter__(self) -> "ManagedProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group is still there (zombies of other parents aside)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    import psutil

    for p in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(p.info["pid"]) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return False


class _Registry:
    """Every live ManagedProcess, stopped at interpreter exit."""

    def __init__(self):
        self._procs: set[ManagedProcess] = set()
        self._lock = threading.Lock()
        atexit.register(self.stop_all)

    def add(self, p: ManagedProcess) -> None:
        with self._lock:
            self._procs.add(p)

    def discard(self, p: ManagedProcess) -> None:
        with self._lock:
            self._procs.discard(p)

    def live(self) -> list[ManagedProcess]:
        with self._lock:
            return list(self._procs)

    def stop_all(self) -> None:
        for p in self.live():
            p.stop(timeout_s=2.0)


_REGISTRY = _Registry()


def live_processes() -> list[ManagedProcess]:
    """ManagedProcesses not yet stopped (tests assert this is empty)."""
    return _REGISTRY.live()


def install_signal_handlers() -> None:
    """Make SIGTERM and SIGHUP exit like Ctrl-C does (running `finally` blocks and atexit), so
    every started process is stopped. Call from a command's entry point, not on import."""
    def handler(signum, frame):
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def wait_http(url: str, proc: ManagedProcess, timeout_s: float = 30.0, what: str = "server") -> float:
    """Poll `url` until it answers 200 (start-up health check); returns the seconds it took.

    Raises RuntimeError if the process dies or the time runs out (the caller stops it)."""
    import urllib.error
    import urllib.request

    t0 = time.monotonic()
    while True:
        if not proc.alive():
            raise RuntimeError(f"{what} exited with code {proc.popen.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        if time.monotonic() - t0 > timeout_s:
            raise RuntimeError(f"{what} did not answer {url} within {timeout_s:g} s")
        time.sleep(0.01)
