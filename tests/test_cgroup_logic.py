"""cgroups without root: limit parsing, Docker's formulas, layout detection, and the v2
driver's file logic on a fake cgroup tree."""
import errno
import os
import threading
import time

import pytest

from minidocker.core import cgroups
from minidocker.container import hostconfig as hc
from minidocker.core.cgroups import base, limits, stats
from minidocker.core.cgroups.v1 import V1Driver
from minidocker.core.cgroups.v2 import V2Driver
from minidocker.errors import InvalidArgument

M = 1 << 20


@pytest.mark.parametrize("text,n", [("512m", 512 * M), ("1g", 1 << 30), ("1.5g", 3 << 29), ("64MB", 64 * M),
                                    ("100", 100), ("10k", 10240), ("2GiB", 2 << 30), ("1T", 1 << 40)])
def test_ram_in_bytes(text, n):
    assert hc.ram_in_bytes(text) == n


def test_memory_validation():
    with pytest.raises(InvalidArgument, match="Minimum memory limit allowed is 6MB"):
        hc.parse_memory("4m")
    with pytest.raises(InvalidArgument, match="invalid size"):
        hc.parse_memory("lots")
    assert hc.parse_memory_swap("-1", 64 * M) == -1
    assert hc.parse_memory_swap(None, 64 * M) == 0
    with pytest.raises(InvalidArgument, match="larger than memory limit"):
        hc.parse_memory_swap("32m", 64 * M)
    with pytest.raises(InvalidArgument, match="always set the Memory limit"):
        hc.parse_memory_swap("32m", 0)


def test_cpus_to_cfs_quota():
    assert hc.parse_cpus("1.5", 2) == 1_500_000_000
    assert limits.cfs_quota(1_500_000_000) == 150_000
    assert limits.cfs_quota(500_000_000) == 50_000
    with pytest.raises(InvalidArgument, match="Range of CPUs is from 0.01 to 2.00"):
        hc.parse_cpus("3", 2)
    with pytest.raises(InvalidArgument, match="rational number"):
        hc.parse_cpus("half", 2)


def test_shares_to_weight_and_swap():
    assert limits.shares_to_weight(1024) == 39  # runc: 1 + (1022*9999)/262142
    assert limits.shares_to_weight(2) == 1 and limits.shares_to_weight(262144) == 10000
    assert hc.default_swap(64 * M, 0) == 128 * M      # docker default: swap = memory
    assert hc.default_swap(64 * M, 100 * M) == 100 * M
    assert hc.default_swap(64 * M, -1) == -1 and hc.default_swap(0, 0) is None
    assert limits.v2_swap_max(64 * M, 100 * M) == str(36 * M)  # v2 counts swap alone
    assert limits.v2_swap_max(64 * M, -1) == "max"
    assert hc.parse_pids_limit(-1) is None and hc.parse_pids_limit(0) is None
    assert hc.parse_pids_limit("20") == 20


def test_docker_stats_formulas():
    prev = {"cpu_usage_ns": 1_000_000_000, "system_cpu_ns": 100_000_000_000}
    cur = {"cpu_usage_ns": 1_500_000_000, "system_cpu_ns": 102_000_000_000, "online_cpus": 2}
    assert stats.cpu_percent(prev, cur) == pytest.approx(50.0)  # half a CPU on a 2-CPU machine
    s = {"memory_usage": 10 * M, "memory_inactive_file": 4 * M, "memory_limit": 64 * M, "host_memory": 1 << 34}
    assert stats.memory_used(s) == 6 * M
    assert stats.memory_percent(s) == pytest.approx(6 / 64 * 100)
    s["memory_limit"] = -1
    assert stats.memory_limit(s) == 1 << 34
    assert stats.system_cpu_ns("cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1 2\n") == \
        1000 * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


V2_INFO = "30 1 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
V1_INFO = ("31 25 0:27 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n"
           "32 31 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
           "33 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
           "34 31 0:30 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n")
HYBRID_INFO = V1_INFO + "35 31 0:31 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n"


def test_detect_layout():
    assert cgroups.detect_layout(V2_INFO) == "v2"
    assert cgroups.detect_layout(V1_INFO) == "v1"
    assert cgroups.detect_layout(HYBRID_INFO) == "hybrid"
    assert cgroups.detect_layout("") == "none"
    h = cgroups.v1_hierarchies(V1_INFO)
    assert h["cpu"] == h["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct"
    assert h["memory"] == "/sys/fs/cgroup/memory" and h["name=systemd"] == "/sys/fs/cgroup/systemd"


def test_v1_paths_share_co_mounted_dirs_and_container_mounts():
    d = V1Driver(cgroups.v1_hierarchies(V1_INFO))
    assert d.cpath("cpuacct", "abc") == "/sys/fs/cgroup/cpu,cpuacct/minidocker/abc"
    assert d._dirs("abc") == ["/sys/fs/cgroup/cpu,cpuacct/minidocker/abc", "/sys/fs/cgroup/memory/minidocker/abc"]
    mounts = d.container_mounts()
    assert mounts[0][:3] == ("tmpfs", "/sys/fs/cgroup", "tmpfs")
    assert ("cgroup", "/sys/fs/cgroup/cpu,cpuacct", "cgroup", 0, "cpu,cpuacct") in mounts
    assert not any("systemd" in m[1] for m in mounts)  # we are not in that tree: not shown
    with pytest.raises(cgroups.CgroupError, match="pids controller is not mounted"):
        d.create("abc")


# ---------------------------------------------------------------- v2 on a fake tree
@pytest.fixture
def fake_v2(tmp_path):
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (root / "cgroup.subtree_control").write_text("")
    return root


def _prepare_child(root, cid):
    """What the kernel would create in a new cgroup directory: its interface files."""
    p = root / "minidocker" / cid
    for name in ("cgroup.procs", "memory.max", "memory.swap.max", "cpu.max", "cpu.weight", "pids.max",
                 "cgroup.freeze", "cgroup.subtree_control"):
        (p / name).write_text("")
    (p / "cgroup.events").write_text("populated 1\nfrozen 0\n")
    return p


def test_v2_create_enables_controllers_top_down(fake_v2):
    restricted = []
    d = V2Driver(str(fake_v2), restrict=restricted.append)
    (fake_v2 / "minidocker").mkdir()
    (fake_v2 / "minidocker" / "cgroup.subtree_control").write_text("")
    d.create("c1")
    # a real cgroupfs would show the resulting set; a plain file keeps what we wrote
    assert (fake_v2 / "cgroup.subtree_control").read_text() == "+cpu +memory +pids +io"
    assert (fake_v2 / "minidocker" / "cgroup.subtree_control").read_text() == "+cpu +memory +pids +io"
    assert (fake_v2 / "minidocker" / "c1").is_dir()
    assert d.ids() == ["c1"]
    assert restricted == [str(fake_v2 / "minidocker" / "c1")]  # the device program goes on the new cgroup


def test_v2_missing_controller_is_named(fake_v2):
    (fake_v2 / "cgroup.controllers").write_text("cpu io\n")
    with pytest.raises(cgroups.CgroupError, match="memory, pids controller"):
        V2Driver(str(fake_v2)).create("c1")


def test_v2_apply_writes_docker_values(fake_v2):
    d = V2Driver(str(fake_v2))
    (fake_v2 / "minidocker" / "c1").mkdir(parents=True)
    p = _prepare_child(fake_v2, "c1")
    d.apply("c1", hc.oci_resources({"Memory": 64 * M, "MemorySwap": 100 * M, "NanoCpus": 1_500_000_000,
                                    "CpuShares": 512, "PidsLimit": 20}))
    assert (p / "memory.max").read_text() == str(64 * M)
    assert (p / "memory.swap.max").read_text() == str(36 * M)
    assert (p / "cpu.max").read_text() == "150000 100000"
    assert (p / "cpu.weight").read_text() == str(limits.shares_to_weight(512))
    assert (p / "pids.max").read_text() == "20"
    d.apply("c1", {})  # no limits: the kernel's words for "unlimited"
    assert [(p / f).read_text() for f in ("memory.max", "cpu.max", "pids.max")] == \
        ["max", "max 100000", "max"]
    d.add_process("c1", 4242)
    assert (p / "cgroup.procs").read_text() == "4242"


def test_v2_freeze_waits_for_the_kernel(fake_v2):
    d = V2Driver(str(fake_v2))
    (fake_v2 / "minidocker" / "c1").mkdir(parents=True)
    p = _prepare_child(fake_v2, "c1")

    def kernel():  # the kernel reports "frozen 1" a little after the write
        time.sleep(0.05)
        (p / "cgroup.events").write_text("populated 1\nfrozen 1\n")
    t = threading.Thread(target=kernel)
    t.start()
    d.freeze("c1")
    t.join()
    assert (p / "cgroup.freeze").read_text() == "1" and d.frozen("c1")


def test_v2_sample_reads_counters(fake_v2):
    d = V2Driver(str(fake_v2))
    (fake_v2 / "minidocker" / "c1").mkdir(parents=True)
    p = fake_v2 / "minidocker" / "c1"
    (p / "cpu.stat").write_text("usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")
    (p / "memory.current").write_text("1048576\n")
    (p / "memory.max").write_text("max\n")
    (p / "memory.stat").write_text("anon 100\ninactive_file 4096\n")
    (p / "pids.current").write_text("3\n")
    (p / "pids.max").write_text("20\n")
    (p / "io.stat").write_text("8:0 rbytes=100 wbytes=50 rios=1 wios=1\n8:16 rbytes=1 wbytes=2\n")
    (p / "memory.events").write_text("low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n")
    s = d.sample("c1")
    assert s == {"cpu_usage_ns": 1_500_000, "memory_usage": 1048576, "memory_limit": -1,
                 "memory_inactive_file": 4096, "pids_current": 3, "pids_limit": 20,
                 "blkio_read": 101, "blkio_write": 52, "oom_kills": 1}


def test_write_errors_name_the_fix(tmp_path, monkeypatch):
    target = tmp_path / "cgroup.subtree_control"
    target.write_text("")
    real_open = open

    def busy_open(path, mode="r", *a, **kw):
        if str(path) == str(target) and "w" in mode:
            raise OSError(errno.EBUSY, "Device or resource busy")
        return real_open(path, mode, *a, **kw)
    monkeypatch.setattr("builtins.open", busy_open)
    with pytest.raises(cgroups.CgroupError, match="no internal processes"):
        base.write(str(target), "+memory")
    with pytest.raises(cgroups.CgroupError, match="does not exist"):
        base.write(str(tmp_path / "nope" / "memory.max"), 1)


def test_hostconfig_to_oci_resources():
    """What Docker puts in config.json's linux.resources (moby daemon/oci_linux.go)."""
    assert hc.oci_resources({}) == {}
    assert hc.oci_resources({"Memory": 64 * M, "NanoCpus": 1_500_000_000, "CpuShares": 512, "PidsLimit": 20}) == {
        "memory": {"limit": 64 * M, "swap": 128 * M},  # unset swap: as much swap as memory
        "cpu": {"shares": 512, "quota": 150_000, "period": 100_000}, "pids": {"limit": 20}}
    assert hc.oci_resources({"Memory": 64 * M, "MemorySwap": -1})["memory"] == {"limit": 64 * M, "swap": -1}
    assert limits.file_values({}) == {"memory": None, "memory_swap": None, "cpu_quota": None,
                                      "cpu_period": 100_000, "cpu_shares": None, "pids": None}


def test_update_is_refused_as_dockerd_refuses_it():
    with pytest.raises(InvalidArgument, match="Memory limit should be smaller than already set memoryswap"):
        hc.check_update({"Memory": 64 * M, "MemorySwap": 100 * M}, {"Memory": 200 * M})
    with pytest.raises(InvalidArgument, match="Minimum memoryswap limit should be larger"):
        hc.check_update({"Memory": 64 * M}, {"MemorySwap": 32 * M})
    assert hc.check_update({"Memory": 64 * M}, {"PidsLimit": 5})["PidsLimit"] == 5
