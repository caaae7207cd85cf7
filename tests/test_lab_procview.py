"""minidocker.lab.procview: /proc parsers of notebooks 01-03, on a fake /proc."""
from __future__ import annotations

import os

import pytest

from minidocker.lab import procview as pv

STATUS = """Name:\tsleep
State:\tS (sleeping)
Tgid:\t4242
Pid:\t4242
PPid:\t4241
Uid:\t0\t0\t0\t0
NSpid:\t4242\t1
CapEff:\t00000000a80425fb
"""


def fake_proc(root, procs: dict):
    """procs: pid -> (name, ppid, nspid list, {ns kind: inode}, argv)."""
    for pid, (name, ppid, nspid, ns, argv) in procs.items():
        d = root / str(pid)
        (d / "ns").mkdir(parents=True)
        (d / "status").write_text(f"Name:\t{name}\nPid:\t{pid}\nPPid:\t{ppid}\n"
                                  f"NSpid:\t{chr(9).join(map(str, nspid))}\n")
        (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
        for kind, ino in ns.items():
            os.symlink(f"{kind}:[{ino}]", d / "ns" / kind)
    (root / "self").mkdir()  # not a digit: skipped
    return str(root)


def test_parse_status_and_nspids():
    st = pv.parse_status(STATUS)
    assert st["Name"] == "sleep" and st["State"] == "S (sleeping)" and st["Uid"] == "0\t0\t0\t0"
    assert pv.nspids(st) == [4242, 1]
    assert pv.nspids({"Pid": "7"}) == [7]   # kernels before 4.1 have no NSpid


def test_parse_ns_link():
    assert pv.parse_ns_link("mnt:[4026531841]") == ("mnt", 4026531841)
    assert pv.parse_ns_link("pid_for_children:[4026532249]\n") == ("pid_for_children", 4026532249)
    with pytest.raises(ValueError):
        pv.parse_ns_link("/proc/1/ns/mnt")


def test_compare_namespaces():
    a, b = {"mnt": 1, "uts": 2, "user": 3}, {"mnt": 9, "uts": 2, "net": 4}
    assert pv.compare_namespaces(a, b) == [("mnt", 1, 9, False), ("uts", 2, 2, True)]


def test_readers_on_a_fake_proc(tmp_path):
    proc = fake_proc(tmp_path, {
        1: ("init", 0, [1], {"pid": 10, "mnt": 20}, ["/sbin/init"]),
        50: ("minidocker-shim", 1, [50], {"pid": 10, "mnt": 20}, ["python3", "-m", "minidocker.engine.monitor"]),
        51: ("sleep", 50, [51, 1], {"pid": 11, "mnt": 21}, ["sleep", "1000"]),
        53: ("sh", 51, [53, 3], {"pid": 11, "mnt": 21}, ["sh", "-c", "x"]),
    })
    assert pv.namespaces(51, proc) == {"pid": 11, "mnt": 21}
    assert pv.cmdline(53, proc) == ["sh", "-c", "x"]
    chain = pv.ancestry(53, proc)
    assert [(p["pid"], p["name"], p["nspid"]) for p in chain] == [
        (53, "sh", [53, 3]), (51, "sleep", [51, 1]), (50, "minidocker-shim", [50]), (1, "init", [1])]
    assert [(p["pid"], p["nspid"], p["cmdline"]) for p in pv.processes_in("pid", 11, proc)] == [
        (51, 1, "sleep 1000"), (53, 3, "sh -c x")]
    assert pv.processes_in("pid", 999, proc) == []


def test_namespaces_of_this_process():
    ns = pv.namespaces("self")
    assert {"mnt", "pid", "net", "uts", "ipc", "user"} <= set(ns)
    assert all(isinstance(v, int) and v > 0 for v in ns.values())


MOUNTINFO = """22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
76 27 0:41 / /tmp/r/overlay2/abc/merged rw,relatime - overlay overlay rw,lowerdir=/tmp/r/l/A,upperdir=/tmp/r/abc/diff
77 27 0:42 / /tmp/r2 rw - tmpfs tmpfs rw
78 27 0:43 / /tmp/r rw - tmpfs tmpfs rw,size=1024k"""


def test_mount_lines_and_fields():
    lines = pv.mount_lines(MOUNTINFO, "/tmp/r/")
    assert [pv.mount_fields(line)["target"] for line in lines] == ["/tmp/r/overlay2/abc/merged", "/tmp/r"]
    f = pv.mount_fields(MOUNTINFO.splitlines()[0])
    assert f == {"target": "/", "options": "rw,relatime", "propagation": "shared:1", "fstype": "ext4",
                 "source": "/dev/sda1", "super_options": "rw"}
    assert pv.mount_fields(lines[1])["propagation"] == "private"
