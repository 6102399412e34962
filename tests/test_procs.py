"""Process groups and resource limits of the processes servesim starts (real processes)."""
from __future__ import annotations

import os
import sys
import time

import psutil
import pytest

from deploy import procs
from deploy.procs import ManagedProcess, live_processes

BURN = "import os, time\nos.fork()\nwhile True: pass"          # two busy processes
SLEEPY = "import os, time\nos.fork(); os.fork()\ntime.sleep(600)"  # four sleeping processes


def cpu_seconds(pids):
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def group_members(pgid):
    out = []
    for p in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(p.info["pid"]) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                out.append(p.info["pid"])
        except (ProcessLookupError, psutil.Error):
            pass
    return out


@pytest.fixture(autouse=True)
def no_leaks():
    yield
    assert live_processes() == []


def test_stop_ends_the_whole_group_including_forked_children():
    p = ManagedProcess([sys.executable, "-c", SLEEPY], name="sleepy")
    deadline = time.monotonic() + 5
    while len(group_members(p.pid)) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(group_members(p.pid)) == 4
    p.stop(timeout_s=2)
    assert group_members(p.pid) == []


@pytest.mark.skipif(not procs.cgroup_available(), reason="cgroup v1 CPU quotas are not writable here")
def test_cgroup_quota_holds_a_process_tree_to_its_share():
    p = ManagedProcess([sys.executable, "-c", BURN], name="burn", vcpus=0.5, memory_mb=128)
    try:
        assert p.limit.method == "cgroup" and p.limit.vcpus == 0.5
        time.sleep(0.3)
        pids = group_members(p.pid)
        assert len(pids) == 2  # the fork happened after the limit applied: both are inside
        for pid in pids:
            assert "/servesim/burn-" in open(f"/proc/{pid}/cgroup").read()
        t0 = cpu_seconds(pids)
        time.sleep(2.0)
        share = (cpu_seconds(pids) - t0) / 2.0
        assert share == pytest.approx(0.5, abs=0.08)  # two busy loops would take 2 CPUs unlimited
    finally:
        p.stop()
    assert not list((procs.CGROUP_ROOT / "cpu").glob("servesim/burn-*"))  # cgroup removed


def test_without_cgroups_the_limit_falls_back_to_affinity(monkeypatch):
    monkeypatch.setattr(procs, "cgroup_available", lambda: False)
    p = ManagedProcess([sys.executable, "-c", "import time; time.sleep(60)"], name="aff", vcpus=0.6)
    try:
        assert p.limit.method == "affinity" and "not enforced" in p.limit.detail
        assert len(os.sched_getaffinity(p.pid)) == 1
    finally:
        p.stop()


def test_tree_rss_counts_children():
    p = ManagedProcess([sys.executable, "-c", "import os, time\nx = bytearray(64 << 20)\nos.fork()\ntime.sleep(60)"],
                       name="rss")
    try:
        time.sleep(0.5)
        assert p.tree_rss_bytes() > 64 << 20
    finally:
        p.stop()
    assert p.tree_rss_bytes() == 0
