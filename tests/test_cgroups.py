"""Resource limits for real, as root: OOM kills, CPU quota, pids limit, pause, update, stats.

Runs on whatever layout this host has (the project's CI machine: hybrid, i.e. the v1
driver; the lab VM: pure v2). Bounds on measured CPU are deliberately tolerant.
"""
import json
import os
import time

import pytest

from minidocker.core import cgroups

pytestmark = pytest.mark.root


def inspect(md, ref):
    return json.loads(md.ok("inspect", ref))[0]


@pytest.fixture(scope="module")
def cg(state_root):
    from minidocker.engine.runtime import Runtime
    return Runtime(state_root).cgroups()  # this state root's own cgroup parent


def cpu_ns(cg, cid):
    return cg.sample(cid)["cpu_usage_ns"]


def test_cgroup_created_with_limits_and_removed(md, cg):
    cid = md.ok("run", "-d", "-m", "64m", "--cpus", "0.5", "--pids-limit", "20", "-c", "512",
                "busybox", "sleep", "100").strip()
    try:
        host = inspect(md, cid)["HostConfig"]
        assert (host["Memory"], host["NanoCpus"], host["PidsLimit"], host["CpuShares"]) == \
            (64 << 20, 500_000_000, 20, 512)
        pid = inspect(md, cid)["State"]["Pid"]
        assert pid in cg.processes(cid)
        if cg.version == 1:
            assert open(f"{cg.cpath('memory', cid)}/memory.limit_in_bytes").read().strip() == str(64 << 20)
            assert open(f"{cg.cpath('cpu', cid)}/cpu.cfs_quota_us").read().strip() == "50000"
            assert open(f"{cg.cpath('pids', cid)}/pids.max").read().strip() == "20"
            assert "c 1:3 rwm" in open(f"{cg.cpath('devices', cid)}/devices.list").read()
            assert f"/{cg.parent}/{cid}" in open(f"/proc/{pid}/cgroup").read()
        else:
            p = cg.path(cid)
            assert open(f"{p}/memory.max").read().strip() == str(64 << 20)
            assert open(f"{p}/cpu.max").read().strip() == "50000 100000"
        # inside, the cgroup namespace makes the container's cgroup the root
        out = md.ok("run", "--rm", "-m", "64m", "busybox", "sh", "-c", "cat /proc/self/cgroup; ls /sys/fs/cgroup")
        assert all(line.endswith(":/") for line in out.splitlines() if ":" in line)
    finally:
        md.ok("rm", "-f", cid)
    assert cid not in cg.ids()


def test_memory_hog_is_oom_killed(md):
    r = md("run", "--name", "hog", "-m", "16m", "busybox", "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
    try:
        assert r.returncode == 137
        st = inspect(md, "hog")["State"]
        assert st["OOMKilled"] is True and st["ExitCode"] == 137
        # the same program fits without the limit
        assert md("run", "--rm", "busybox", "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1").returncode == 0
    finally:
        md("rm", "-f", "hog")


def test_cpu_quota_halves_a_burner(md, cg):
    """A busy loop under --cpus 0.5 gets at most half a CPU (the quota is a ceiling: on a
    loaded machine it may get less, never more); raising the quota live lets it use more."""
    cid = md.ok("run", "-d", "--cpus", "0.5", "busybox", "sh", "-c", "while :; do :; done").strip()
    try:
        def usage(seconds=2.0):
            time.sleep(0.3)
            t0, c0 = time.monotonic(), cpu_ns(cg, cid)
            time.sleep(seconds)
            return (cpu_ns(cg, cid) - c0) / 1e9 / (time.monotonic() - t0)
        half = usage()
        assert 0.2 < half < 0.6, f"used {half:.2f} of a CPU under --cpus 0.5"
        md.ok("update", "--cpus", "1.5", cid)  # live: the quota changes under the running loop
        assert inspect(md, cid)["HostConfig"]["NanoCpus"] == 1_500_000_000
        if cg.version == 1:
            assert open(f"{cg.cpath('cpu', cid)}/cpu.cfs_quota_us").read().strip() == "150000"
        more = usage()
        assert more > 0.8 or more > half + 0.1, f"{half:.2f} -> {more:.2f} of a CPU after update --cpus 1.5"
    finally:
        md.ok("rm", "-f", cid)


def test_pids_limit_stops_a_fork_loop(md, cg):
    # an inner shell forks sleeps until the kernel refuses (busybox sh then gives up);
    # the sleeps it started live on under PID 1
    cid = md.ok("run", "-d", "--pids-limit", "10", "busybox", "sh", "-c",
                "sh -c 'for i in $(seq 1 40); do sleep 30 & done'; exec sleep 30").strip()
    try:
        time.sleep(1.0)
        s = cg.sample(cid)
        assert s["pids_limit"] == 10 and 8 <= s["pids_current"] <= 10
        assert inspect(md, cid)["State"]["Running"]
        assert "can't fork: Resource temporarily unavailable" in md("logs", cid).stderr
    finally:
        md.ok("rm", "-f", cid)


def test_pause_freezes_and_unpause_resumes(md, cg):
    cid = md.ok("run", "-d", "busybox", "sh", "-c", "while :; do :; done").strip()
    try:
        pid = inspect(md, cid)["State"]["Pid"]
        md.ok("pause", cid)
        st = inspect(md, cid)["State"]
        assert (st["Status"], st["Paused"], st["Running"]) == ("paused", True, True)
        assert "(Paused)" in md.ok("ps", "--filter", f"id={cid}")
        assert cg.frozen(cid)
        if cg.version == 1:
            assert open(f"/proc/{pid}/status").read().split("State:\t")[1].startswith("D")
        c0 = cpu_ns(cg, cid)
        time.sleep(0.5)
        assert cpu_ns(cg, cid) == c0  # frozen: not one more nanosecond of CPU
        r = md("pause", cid)
        assert r.returncode == 1 and "is already paused" in r.stderr
        r = md("start", cid)
        assert r.returncode == 1 and "cannot start a paused container, try unpause instead" in r.stderr
        md.ok("unpause", cid)
        time.sleep(0.3)
        assert cpu_ns(cg, cid) > c0 and not cg.frozen(cid)
        r = md("unpause", cid)
        assert r.returncode == 1 and "is not paused" in r.stderr
        md.ok("pause", cid)
        md.ok("stop", "-t", "0", cid)  # a paused container can still be stopped
        assert inspect(md, cid)["State"]["ExitCode"] == 137
    finally:
        md.ok("rm", "-f", cid)
    r = md("pause", cid)
    assert r.returncode == 1 and "No such container" in r.stderr


def test_update_memory_live(md, cg):
    cid = md.ok("run", "-d", "-m", "32m", "busybox", "sleep", "100").strip()
    try:
        md.ok("update", "-m", "48m", cid)
        assert cg.sample(cid)["memory_limit"] == 48 << 20
        assert inspect(md, cid)["HostConfig"]["Memory"] == 48 << 20
        # a program that needs 40 MiB now fits
        assert md("run", "--rm", "-m", "48m", "busybox", "dd", "if=/dev/zero", "of=/dev/null",
                  "bs=40M", "count=1").returncode == 0
        r = md("update", "-m", "2m", cid)
        assert r.returncode in (1, 125) and "Minimum memory limit allowed is 6MB" in r.stderr
        r = md("update", cid)
        assert r.returncode == 1 and "one or more flags" in r.stderr
    finally:
        md.ok("rm", "-f", cid)


def test_stats_columns_and_api(md, state_root):
    import minidocker
    cid = md.ok("run", "-d", "--name", "stat1", "-m", "64m", "busybox", "sh", "-c", "while :; do :; done").strip()
    try:
        out = md.ok("stats", "--no-stream", "stat1").splitlines()
        import re
        assert re.split(r"\s{2,}", out[0]) == ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT",
                                              "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]
        cells = out[1].split()
        assert cells[0] == cid[:12] and cells[1] == "stat1"
        assert float(cells[2].rstrip("%")) > 50  # one busy loop
        assert cells[5] == "64MiB"
        c = minidocker.from_env(state_root).containers.get("stat1")
        series = c.stats_series(seconds=1.0, interval=0.25)
        assert len(series) >= 3 and all(s["cpu_percent"] > 20 for s in series[1:])
        assert all(s["mem_limit"] == 64 << 20 for s in series)
    finally:
        md.ok("rm", "-f", cid)


def test_bad_limits_are_one_line_errors(md):
    for args, msg in ((["-m", "4m"], "Minimum memory limit allowed is 6MB"),
                      (["--cpus", "99"], "Range of CPUs"),
                      (["--memory-swap", "1g"], "always set the Memory limit"),
                      (["-m", "64m", "--memory-swap", "32m"], "larger than memory limit"),
                      (["-m", "lots"], "invalid size")):
        r = md("run", "--rm", *args, "busybox", "true")
        assert r.returncode == 125 and msg in r.stderr and len(r.stderr.splitlines()) == 1, (args, r.stderr)


@pytest.mark.skipif(cgroups.layout() != "v2", reason="a pure cgroup v2 host is needed (the lab VM is one)")
def test_v2_driver_for_real(md, cg):
    cid = md.ok("run", "-d", "-m", "64m", "--memory-swap", "96m", "busybox", "sleep", "100").strip()
    try:
        p = cg.path(cid)
        assert open(f"{p}/memory.swap.max").read().strip() == str(32 << 20)
        assert "memory" in open(os.path.join(cg.root, cg.parent, "cgroup.subtree_control")).read()
        r = md("run", "--rm", "busybox", "sh", "-c", "mknod /x b 8 0 && head -c1 /x")  # the eBPF device rules
        assert r.returncode != 0 and "Operation not permitted" in r.stderr
        from minidocker.core.linux import bpf
        assert len(bpf.device_programs(cg.path(cid))) == 1
    finally:
        md.ok("rm", "-f", cid)


def test_container_root_cannot_open_host_disks(md, cg):
    """CAP_MKNOD lets root create a node for the host's disk; the devices cgroup (v1) or the
    eBPF device program (v2) stops it from opening it."""
    r = md("run", "--rm", "busybox", "sh", "-c", "mknod /tmp/disk b 8 0 && head -c 1 /tmp/disk")
    assert r.returncode != 0
    assert "Operation not permitted" in r.stderr
    assert md("run", "--rm", "busybox", "sh", "-c", "head -c 1 /dev/zero | wc -c").stdout.strip() == "1"
