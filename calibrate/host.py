"""Checks of the host a campaign measures on, taken before measuring and recorded with the table.

A measurement is only as good as the machine it ran on. `check_host` answers, in about two
seconds:

- **How many CPUs are usable**: the CPUs this process may run on (``sched_getaffinity``), capped
  by a CFS quota of the cgroup it runs in, if any (cgroup v1 ``cpu.cfs_quota_us`` or v2
  ``cpu.max``).
- **Whether CPUs scale**: the same pure-Python spin loop runs for `scaling_s` seconds in one
  process, then in two processes at once (each its own `deploy.procs.ManagedProcess`, started
  together at an agreed wall-clock instant). On a quiet host with two usable CPUs the two do about
  twice the work of one (ratio ~2); a ratio well below means the CPUs are shared with someone
  else (a noisy neighbour, hyper-threads, a throttled VM) and measured throughput will not scale
  like the instance it stands for. With more than two usable CPUs, all of them are also tested
  (``scaling_all_ratio``, ideally ~usable CPUs).
- **How noisy timings are**: the coefficient of variation (std/mean) of repeated runs of a
  fixed ~10 ms workload in this process. A quiet host stays within a few per cent.
- **Whether cgroup CPU quotas apply**: `deploy.procs.cgroup_available()` (the targets then hold
  servers and Lambda environments to their vCPUs with a CFS quota, else only to whole CPUs by
  affinity), and whether a quota actually holds: a spin loop under a 0.5 vCPU quota must get
  about half a CPU (``quota_vcpus_measured``).
- What ran: hostname, kernel, CPU model, memory, load average, Python and package versions,
  and the time (UTC).

`warnings(host)` turns the figures into the loud messages a campaign prints and records.
"""
from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

NOISY_SCALING_RATIO = 1.7  # two processes on two CPUs must do at least this much of one's work x2
NOISY_CV = 0.10  # coefficient of variation of repeated short timings
QUOTA_TEST_VCPUS = 0.5
QUOTA_TOLERANCE = 0.25  # |measured - asked| / asked for the quota to "hold"

# The keys `check_host` returns (documented; tests check them).
HOST_KEYS = (
    "time_utc", "hostname", "platform", "kernel", "machine", "cpu_model", "python", "versions",
    "os_cpus", "affinity_cpus", "cpu_quota_vcpus", "usable_cpus", "loadavg", "memory_total_mb",
    "memory_available_mb", "scaling_s", "scaling_one_work", "scaling_two_work", "scaling_ratio",
    "scaling_all_procs", "scaling_all_ratio", "noise_cv", "noise_runs", "cgroup_available",
    "quota_vcpus_asked", "quota_vcpus_measured", "quota_holds", "check_s",
)
_PACKAGES = ("numpy", "pandas", "pyarrow", "onnxruntime", "onnx", "gunicorn", "flask", "awslambdaric", "boto3")

# A child that waits for a wall-clock instant, spins for a given time and prints its work (loop
# iterations in thousands), its CPU time and how late it started. Run with python -I -S (no site:
# starts in ~15 ms).
_SPIN = """\
import sys, time
start, dur = float(sys.argv[1]), float(sys.argv[2])
while time.time() < start:
    time.sleep(0.0005)
late = time.time() - start
end = start + dur
c0 = time.process_time()
n = 0
while time.time() < end:
    for _ in range(1000):
        pass
    n += 1
print(n, time.process_time() - c0, late, flush=True)
"""


def _spin(procs: int, seconds: float, vcpus: float | None = None) -> list[tuple[float, float, float]]:
    """Run `procs` spin children at once for `seconds`; [(work, cpu_s, late_s)] per child."""
    from deploy.procs import ManagedProcess

    start = time.time() + 0.25
    children = []
    try:
        for i in range(procs):
            children.append(ManagedProcess([sys.executable, "-I", "-S", "-c", _SPIN, repr(start), repr(seconds)],
                                           name=f"host-check-{i}", vcpus=vcpus,
                                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL))
        out = []
        for child in children:
            text, _ = child.popen.communicate(timeout=seconds + 30.0)
            work, cpu_s, late_s = (float(x) for x in text.split())
            out.append((work, cpu_s, late_s))
        return out
    finally:
        for child in children:
            child.stop()


def _own_cpu_quota() -> float | None:
    """The CFS quota (in vCPUs) of the cgroup this process runs in, or None when unlimited."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        try:
            if "cpu" in controllers.split(","):  # cgroup v1
                base = Path("/sys/fs/cgroup/cpu") / path.lstrip("/")
                quota = int((base / "cpu.cfs_quota_us").read_text())
                period = int((base / "cpu.cfs_period_us").read_text())
                return quota / period if quota > 0 else None
            if controllers == "" and path:  # cgroup v2 (used only if v1 has no cpu controller)
                cpu_max = Path("/sys/fs/cgroup") / path.lstrip("/") / "cpu.max"
                if cpu_max.exists():
                    quota, period = cpu_max.read_text().split()
                    return None if quota == "max" else int(quota) / int(period)
        except (OSError, ValueError):
            continue
    return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_mb() -> tuple[int | None, int | None]:
    try:
        import psutil

        vm = psutil.virtual_memory()
        return vm.total // 2**20, vm.available // 2**20
    except Exception:  # noqa: BLE001 - psutil missing or the platform unsupported: not fatal
        return None, None


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in _PACKAGES:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def _noise_cv(runs: int = 15) -> float:
    """Coefficient of variation of `runs` timings of a fixed ~10 ms workload (after one warm-up)."""
    def work() -> float:
        t0 = time.perf_counter()
        total = 0
        for i in range(150_000):
            total += i * i
        return time.perf_counter() - t0

    work()
    times = [work() for _ in range(runs)]
    return statistics.pstdev(times) / statistics.fmean(times)


def check_host(*, scaling_s: float = 0.5, noise_runs: int = 15, quota_check: bool = True) -> dict:
    """The host's figures (keys: `HOST_KEYS`), JSON-ready. Takes about 4 x `scaling_s` + 1 s."""
    from deploy.procs import cgroup_available

    t0 = time.perf_counter()
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _own_cpu_quota()
    usable = max(1, min(affinity, math.ceil(quota))) if quota else affinity
    total_mb, avail_mb = _memory_mb()
    host: dict = {
        "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "python": sys.version.split()[0],
        "versions": _versions(),
        "os_cpus": os.cpu_count(),
        "affinity_cpus": affinity,
        "cpu_quota_vcpus": quota,
        "usable_cpus": usable,
        "loadavg": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "memory_total_mb": total_mb,
        "memory_available_mb": avail_mb,
        "scaling_s": scaling_s,
    }
    one = _spin(1, scaling_s)[0][0]
    two = sum(w for w, _, _ in _spin(2, scaling_s))
    host["scaling_one_work"] = one
    host["scaling_two_work"] = two
    host["scaling_ratio"] = round(two / one, 3) if one > 0 else None
    if usable > 2:
        all_work = sum(w for w, _, _ in _spin(usable, scaling_s))
        host["scaling_all_procs"] = usable
        host["scaling_all_ratio"] = round(all_work / one, 3) if one > 0 else None
    else:
        host["scaling_all_procs"] = None
        host["scaling_all_ratio"] = None
    host["noise_cv"] = round(_noise_cv(noise_runs), 4)
    host["noise_runs"] = noise_runs
    host["cgroup_available"] = cgroup_available()
    host["quota_vcpus_asked"] = None
    host["quota_vcpus_measured"] = None
    host["quota_holds"] = None
    if quota_check and host["cgroup_available"]:
        _, cpu_s, _ = _spin(1, scaling_s, vcpus=QUOTA_TEST_VCPUS)[0]
        measured = cpu_s / scaling_s
        host["quota_vcpus_asked"] = QUOTA_TEST_VCPUS
        host["quota_vcpus_measured"] = round(measured, 3)
        host["quota_holds"] = abs(measured - QUOTA_TEST_VCPUS) <= QUOTA_TOLERANCE * QUOTA_TEST_VCPUS
    host["check_s"] = round(time.perf_counter() - t0, 3)
    return host


def warnings(host: dict) -> list[str]:
    """What about `host` makes its measurements doubtful, one sentence each (empty: all good)."""
    out = []
    usable = host.get("usable_cpus") or 1
    ratio = host.get("scaling_ratio")
    if usable >= 2 and ratio is not None and ratio < NOISY_SCALING_RATIO:
        out.append(f"NOISY HOST: two processes did only {ratio:.2f}x the work of one on {usable} usable CPUs "
                   f"(expected ~2x; below {NOISY_SCALING_RATIO}x the CPUs are shared or throttled): "
                   "throughput and latency under load will not be those of a dedicated instance")
    all_ratio, all_procs = host.get("scaling_all_ratio"), host.get("scaling_all_procs")
    if all_ratio is not None and all_procs and all_ratio < 0.85 * all_procs:
        out.append(f"NOISY HOST: {all_procs} processes did only {all_ratio:.2f}x the work of one "
                   f"(expected ~{all_procs}x)")
    cv = host.get("noise_cv")
    if cv is not None and cv > NOISY_CV:
        out.append(f"NOISY HOST: repeated short timings vary by {cv:.0%} (coefficient of variation; above "
                   f"{NOISY_CV:.0%} something else is using this machine): latency percentiles will be inflated")
    load = host.get("loadavg")
    if load and load[0] > usable:
        out.append(f"BUSY HOST: the 1-minute load average is {load[0]:.2f} on {usable} usable CPUs")
    if not host.get("cgroup_available"):
        out.append("no cgroup CPU quotas on this host: CPU limits fall back to CPU affinity (whole CPUs), so "
                   "Lambda's fractional CPU share (memory/1769 vCPU) is NOT enforced locally")
    elif host.get("quota_holds") is False:
        out.append(f"cgroup CPU quotas do not hold: a {host['quota_vcpus_asked']} vCPU quota gave "
                   f"{host['quota_vcpus_measured']} vCPU")
    return out
