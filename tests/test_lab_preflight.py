"""minidocker.lab.preflight: the host checks of notebook 00, on sample hosts (no root needed)."""
from __future__ import annotations

import os

import pytest

from minidocker.core.linux.procfs import parse_mountinfo
from minidocker.lab import preflight as pf

V2 = "35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate"
ROOT_EXT4 = "25 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw"
HYBRID = "\n".join(
    [f"{32 + i} 31 0:{29 + i} / /sys/fs/cgroup/{c} rw,relatime - cgroup cgroup rw,{c}"
     for i, c in enumerate(["cpu", "cpuacct", "memory", "pids", "freezer"])]
    + ["40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd",
       "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw"])
V1 = "\n".join(line for line in HYBRID.splitlines() if "cgroup2" not in line)


def facts(**kw) -> pf.HostFacts:
    base = dict(euid=0, kernel_release="6.1.0-18-amd64", python_version=(3, 11),
                mountinfo=ROOT_EXT4 + "\n" + V2, filesystems="nodev\tcgroup2\nnodev\toverlay\n",
                state_dir="/var/lib/minidocker", cgroup2_controllers="cpuset cpu io memory pids",
                overlay_probe="", busybox_path="/usr/bin/busybox", busybox_static=True,
                sysctls={"user.max_user_namespaces": "63457"})
    base.update(kw)
    return pf.HostFacts(**base)


def status(check, **kw) -> str:
    return check(facts(**kw)).status


# ---------------------------------------------------------------- parsers
@pytest.mark.parametrize("release, want", [
    ("6.1.0-18-amd64", (6, 1, 0)), ("5.15.0-91-generic", (5, 15, 0)), ("6.8", (6, 8, 0)),
    ("4.19.0-26-amd64", (4, 19, 0)), ("6.18.44-fc-v595", (6, 18, 44)),
])
def test_parse_kernel_release(release, want):
    assert pf.parse_kernel_release(release) == want


def test_parse_kernel_release_rejects_garbage():
    with pytest.raises(ValueError):
        pf.parse_kernel_release("linux")


def test_parse_mountinfo_unescapes_and_skips_bad_lines():
    text = ("36 25 0:31 / /mnt/with\\040space rw - tmpfs none rw,size=4k\n"
            "garbage\n"
            "37 25 0:32 / /proc rw shared:5 - proc proc rw")
    ms = parse_mountinfo(text)
    assert [m["target"] for m in ms] == ["/mnt/with space", "/proc"]
    assert ms[0]["fstype"] == "tmpfs" and ms[0]["super_options"] == "rw,size=4k"


@pytest.mark.parametrize("text, layout, v1, v2_at", [
    (V2, "v2", [], "/sys/fs/cgroup"),
    (HYBRID, "hybrid", ["cpu", "cpuacct", "freezer", "memory", "pids"], "/sys/fs/cgroup/unified"),
    (V1, "v1", ["cpu", "cpuacct", "freezer", "memory", "pids"], None),
    (ROOT_EXT4, "none", [], None),
    ("30 24 0:26 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct", "v1", ["cpu", "cpuacct"], None),
])
def test_cgroup_layout(text, layout, v1, v2_at):
    assert pf.cgroup_layout(text) == (layout, v1, v2_at)


def test_fs_type_of_takes_the_longest_mount_point():
    mi = "\n".join([ROOT_EXT4,
                    "30 25 0:40 / /var/lib rw - xfs /dev/sdb rw",
                    "31 25 0:41 / /var/lib2 rw - btrfs /dev/sdc rw",
                    "32 30 0:42 / /var/lib/docker rw - tmpfs tmpfs rw"])
    assert pf.fs_type_of("/var/lib/minidocker", mi) == ("xfs", "/var/lib")
    assert pf.fs_type_of("/var/lib2/x", mi) == ("btrfs", "/var/lib2")
    assert pf.fs_type_of("/var/lib/docker", mi) == ("tmpfs", "/var/lib/docker")
    assert pf.fs_type_of("/home/u", mi) == ("ext4", "/")


def test_fs_type_of_the_last_mount_on_a_path_wins():
    mi = ROOT_EXT4 + "\n30 25 0:40 / /mnt rw - ext4 /dev/sdb rw\n31 30 0:41 / /mnt rw - vboxsf share rw"
    assert pf.fs_type_of("/mnt/state", mi)[0] == "vboxsf"


def test_overlay_in_kernel():
    assert pf.overlay_in_kernel("nodev\tproc\nnodev\toverlay\n\text4\n")
    assert not pf.overlay_in_kernel("nodev\tproc\n\text4\nnodev\toverlayfoo\n")


# ---------------------------------------------------------------- checks
def test_root():
    assert status(pf.check_root) == pf.OK
    c = pf.check_root(facts(euid=1000))
    assert c.status == pf.FAIL and "sudo" in c.fix


def test_python_and_kernel():
    assert status(pf.check_python, python_version=(3, 10)) == pf.FAIL
    assert status(pf.check_kernel) == pf.OK
    assert status(pf.check_kernel, kernel_release="5.3.0") == pf.OK
    assert status(pf.check_kernel, kernel_release="4.19.0-26-amd64") == pf.FAIL
    assert status(pf.check_kernel, kernel_release="weird") == pf.WARN


def test_cgroups():
    assert status(pf.check_cgroups) == pf.OK
    assert status(pf.check_cgroups, mountinfo=HYBRID) == pf.OK
    assert status(pf.check_cgroups, mountinfo=V1) == pf.OK
    no_mem = pf.check_cgroups(facts(cgroup2_controllers="cpu io pids"))
    assert no_mem.status == pf.WARN and "cgroup_enable=memory" in no_mem.fix
    no_freezer = "\n".join(line for line in V1.splitlines() if "freezer" not in line)
    c = pf.check_cgroups(facts(mountinfo=no_freezer))
    assert c.status == pf.WARN and "freezer" in c.detail and "mount -t cgroup -o freezer" in c.fix
    none = pf.check_cgroups(facts(mountinfo=ROOT_EXT4))
    assert none.status == pf.FAIL and "cgroup2" in none.fix


@pytest.mark.parametrize("fstype", ["vboxsf", "nfs4", "overlay", "fuse.sshfs", "9p"])
def test_overlay_refuses_file_systems_that_cannot_hold_upper_dirs(fstype):
    mi = ROOT_EXT4 + f"\n90 25 0:50 / /vagrant rw - {fstype} share rw"
    c = pf.check_overlay(facts(mountinfo=mi, state_dir="/vagrant/state", overlay_probe=None))
    assert c.status == pf.FAIL and "MINIDOCKER_ROOT" in c.fix and fstype in c.detail


def test_overlay_probe_and_proc_filesystems():
    assert status(pf.check_overlay) == pf.OK
    failed = pf.check_overlay(facts(overlay_probe="mount(...): Invalid argument"))
    assert failed.status == pf.FAIL and "Invalid argument" in failed.detail
    assert status(pf.check_overlay, overlay_probe=None) == pf.OK
    c = pf.check_overlay(facts(overlay_probe=None, filesystems="nodev\tproc\n"))
    assert c.status == pf.WARN and "modprobe overlay" in c.fix


def test_busybox():
    assert status(pf.check_busybox) == pf.OK
    missing = pf.check_busybox(facts(busybox_path=None))
    assert missing.status == pf.FAIL and "busybox-static" in missing.fix
    dynamic = pf.check_busybox(facts(busybox_static=False))
    assert dynamic.status == pf.FAIL and "dynamically linked" in dynamic.detail


def test_user_namespaces():
    assert status(pf.check_userns) == pf.OK
    aa = pf.check_userns(facts(sysctls={"kernel.apparmor_restrict_unprivileged_userns": "1"}))
    assert aa.status == pf.WARN and "apparmor_restrict_unprivileged_userns=0" in aa.fix
    assert status(pf.check_userns, sysctls={"kernel.apparmor_restrict_unprivileged_userns": "0"}) == pf.OK
    assert status(pf.check_userns, sysctls={"kernel.unprivileged_userns_clone": "0"}) == pf.WARN
    assert status(pf.check_userns, sysctls={"user.max_user_namespaces": "0"}) == pf.WARN


# ---------------------------------------------------------------- report
def test_report_and_blocking():
    good = pf.evaluate(facts())
    assert pf.blocking(good) == [] and pf.report(good).endswith("=> ready")
    bad = pf.evaluate(facts(euid=1000, busybox_static=False,
                            sysctls={"kernel.apparmor_restrict_unprivileged_userns": "1"}))
    assert [c.name for c in pf.blocking(bad)] == ["root", "busybox"]
    text = pf.report(bad)
    assert "[FAIL] root" in text and "[WARN] user namespaces" in text
    assert text.count("fix: ") == 3
    assert text.splitlines()[-1] == "=> 2 problem(s) to fix before the course can run: root, busybox"
    warn_only = pf.evaluate(facts(sysctls={"kernel.unprivileged_userns_clone": "0"}))
    assert pf.report(warn_only).endswith("=> ready (1 warning(s))")


# ---------------------------------------------------------------- readers
def test_read_sysctl(tmp_path):
    (tmp_path / "kernel").mkdir()
    (tmp_path / "kernel" / "apparmor_restrict_unprivileged_userns").write_text("1\n")
    assert pf.read_sysctl("kernel.apparmor_restrict_unprivileged_userns", str(tmp_path)) == "1"
    assert pf.read_sysctl("kernel.nope", str(tmp_path)) is None


def test_existing_parent(tmp_path):
    assert pf.existing_parent(str(tmp_path / "a" / "b")) == str(tmp_path)
    assert pf.existing_parent(str(tmp_path)) == str(tmp_path)


def test_gather_without_probe_reads_this_host(tmp_path):
    f = pf.gather(str(tmp_path / "state"), probe=False)
    assert f.overlay_probe is None and f.state_dir == str(tmp_path / "state")
    assert f.euid == os.geteuid() and "/" in f.mountinfo and f.python_version >= (3, 11)
    assert set(f.sysctls) == set(pf.USERNS_SYSCTLS)
    assert [c.name for c in pf.evaluate(f)] == ["root", "python", "kernel", "cgroups", "overlay",
                                                "busybox", "user namespaces"]


@pytest.mark.root
def test_probe_overlay_mounts_and_leaves_nothing(tmp_path):
    state = tmp_path / "not" / "yet"
    assert pf.probe_overlay(str(state)) == ""
    assert os.listdir(tmp_path) == []   # no scratch dir left, nothing made where the state will go
    with open("/proc/self/mountinfo") as mi:
        assert str(tmp_path) not in mi.read()
