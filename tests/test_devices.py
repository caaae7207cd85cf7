"""Docker's device rules as cgroup v2 enforces them: an eBPF program (core/cgroups/devices.py)
checked by its own interpreter without root, then loaded into the kernel, attached to a real
cgroup v2 directory and met by a real process: /dev/null opens, a block device node can be made
but not opened, /dev/kmsg cannot be opened. The same rules as v1's devices.allow."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from minidocker.core.cgroups import devices, v1, v2
from minidocker.core.linux import procfs

PROG = devices.program(devices.DEFAULT_RULES)


@pytest.mark.parametrize("kind, major, minor, access, allowed", [
    ("c", 1, 3, "rw", True), ("c", 1, 3, "rwm", True), ("c", 1, 9, "r", True),   # null, urandom
    ("c", 136, 7, "rw", True), ("c", 5, 2, "rw", True), ("c", 10, 200, "rw", True),  # pts, ptmx, tun
    ("b", 8, 0, "m", True), ("c", 4, 1, "m", True),                             # mknod of anything
    ("b", 8, 0, "r", False), ("b", 8, 0, "rw", False), ("c", 1, 11, "w", False),  # a disk, /dev/kmsg
    ("c", 1, 1, "r", False), ("c", 10, 237, "rw", False),                       # /dev/mem, loop-control
])
def test_the_program_answers_as_the_rules_say(kind, major, minor, access, allowed):
    assert devices.run(PROG, kind, major, minor, access) is allowed


def test_rules_parse_and_the_program_reads_back():
    assert devices.parse_rule("c 136:* rwm") == (2, 136, devices.WILDCARD, 7)
    assert devices.parse_rule("b *:* m") == (1, devices.WILDCARD, devices.WILDCARD, 1)
    with pytest.raises(ValueError, match="bad device rule"):
        devices.parse_rule("x 1:3 rwm")
    text = devices.disassemble(PROG)
    assert text[0].endswith("r2 = ctx->access_type") and text[-1].endswith("exit (return r0)")
    assert len(devices.encode(PROG)) == 8 * len(PROG)
    assert v1.DEVICE_RULES == devices.DEFAULT_RULES   # one list for v1 and v2


def unified_mount() -> str | None:
    for m in procfs.mountinfo():
        if m["fstype"] == "cgroup2":
            return m["target"]
    return None


PROBE = r'''
import os, sys
with open(os.path.join(sys.argv[1], "cgroup.procs"), "w") as f:
    f.write(str(os.getpid()))
def attempt(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return e.strerror
node = os.path.join(sys.argv[2], "disk")
print(attempt(lambda: open("/dev/null", "w").write("x")), attempt(lambda: open("/dev/kmsg").close()),
      attempt(lambda: os.mknod(node, 0o600 | 0o060000, os.makedev(7, 0))), attempt(lambda: open(node, "rb").close()),
      sep="|")
'''


@pytest.mark.root
def test_the_kernel_enforces_it_on_a_v2_cgroup(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    root = unified_mount()
    if root is None:
        pytest.skip("no cgroup2 mount")
    from minidocker.core.linux import bpf
    cg = os.path.join(root, f"md-devtest-{os.getpid()}")
    os.mkdir(cg)
    try:
        v2.restrict_devices(cg)
        assert len(bpf.device_programs(cg)) == 1
        out = subprocess.run([sys.executable, "-c", PROBE, cg, str(tmp_path)], capture_output=True, text=True,
                             check=True).stdout.strip()
        assert out == "ok|Operation not permitted|ok|Operation not permitted"
        # the same process outside the cgroup may open both (what the program took away)
        assert open("/dev/null", "w").write("x") == 1
    finally:
        os.rmdir(cg)  # (the process has exited; the kernel detaches the program with the cgroup)


def test_allow_all_is_what_privileged_gets():
    """--privileged: linux.resources.devices ends with allow-all; the program then lets anything by."""
    from minidocker.core import bundle
    assert bundle.device_rules({"linux": {"resources": {"devices": [{"allow": True, "access": "rwm"}]}}}) == \
        devices.ALLOW_ALL
    assert bundle.device_rules({"linux": {"resources": {"devices": [{"allow": False, "access": "rwm"}]}}}) is None
    assert bundle.device_rules({}) is None
    prog = devices.program(devices.ALLOW_ALL)
    assert devices.run(prog, "b", 8, 0, "rw") and devices.run(prog, "c", 1, 11, "rw")
    assert prog[-2:] == [devices.insn(devices.MOV32, 0, imm=1), devices.insn(devices.EXIT)]  # no dead code
    if os.geteuid() == 0:  # the kernel's verifier takes it (it refused unreachable instructions)
        from minidocker.core.linux import bpf
        os.close(bpf.load_device_program(devices.encode(prog)))
    from minidocker.engine import oci
    spec = oci.build({**REC_PRIVILEGED}, "/r", (0, 0, []), cgroup_version=2)
    paths = {d["path"] for d in spec["linux"]["devices"]}
    assert "/dev/null" in paths and "/dev/kmsg" in paths and "/dev/console" not in paths
    assert not any(p.startswith(("/dev/pts/", "/dev/shm/")) for p in paths)
    assert spec["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    bundle.check(spec)


REC_PRIVILEGED = {
    "Id": "d" * 64, "Path": "sh", "Args": [], "Name": "/p",
    "Config": {"Hostname": "p", "Env": [], "Tty": False, "WorkingDir": "", "User": ""},
    "HostConfig": {"NetworkMode": "none", "Privileged": True},
}

DEV_PROBE = ("stat -c '%n %F %t,%T %a' /dev/kmsg 2>&1; "  # (count=0: opened for writing, nothing written)
             "dd if=/dev/null of=/dev/kmsg bs=1 count=0 2>/dev/null && echo kmsg opens || echo kmsg refused")


@pytest.mark.root
def test_spec_devices_and_allow_all_as_under_runc(tmp_path):
    """A bundle listing host devices (linux.devices) with the allow-all rule: both runtimes make
    the nodes and let them be opened; without the rule, ours refuses the open (Docker's rules)."""
    import json
    import time
    from conftest import REPO, require_tool
    from minidocker.engine import oci
    from minidocker.images import busybox
    runc = require_tool("runc")
    busybox.build_rootfs(str(tmp_path / "rootfs"), busybox.find_busybox(), time.time())
    subprocess.run([runc, "spec"], cwd=tmp_path, check=True)
    spec = json.load(open(tmp_path / "config.json"))
    wanted = [d for d in oci.host_devices() if d["path"] == "/dev/kmsg"]
    assert len(wanted) == 1
    spec["process"].update(terminal=False, args=["sh", "-c", DEV_PROBE])
    spec["linux"].update(devices=wanted, cgroupsPath="/mdtest/devs")
    spec["linux"]["resources"]["devices"] = [{"allow": False, "access": "rwm"}, {"allow": True, "access": "rwm"}]
    json.dump(spec, open(tmp_path / "config.json", "w"))
    run_ours = ("import os, sys\nfrom minidocker.core import bundle, runc\n"
                "pid = runc.start(sys.argv[1], 'mdtest-devs', (0, 1, 2))\n_, st = os.waitpid(pid, 0)\n"
                "runc.delete(bundle.load(sys.argv[1]), 'mdtest-devs')\nsys.exit(runc.exit_status(st))\n")
    env = dict(os.environ, PYTHONPATH=REPO)
    ours = subprocess.run([sys.executable, "-c", run_ours, str(tmp_path)], capture_output=True, text=True,
                          timeout=60, env=env, stdin=subprocess.DEVNULL)
    state = str(tmp_path / "runc-state")
    try:
        theirs = subprocess.run([runc, "--root", state, "run", "-b", str(tmp_path), "mdtest-devs-runc"],
                                capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    finally:
        subprocess.run([runc, "--root", state, "delete", "--force", "mdtest-devs-runc"], capture_output=True)
    assert ours.returncode == theirs.returncode == 0, ours.stderr + theirs.stderr
    assert ours.stdout == theirs.stdout
    assert "/dev/kmsg character special file 1,b" in ours.stdout and "kmsg opens" in ours.stdout
    spec["linux"]["resources"]["devices"] = [{"allow": False, "access": "rwm"}]  # Docker's default rules
    json.dump(spec, open(tmp_path / "config.json", "w"))
    ours = subprocess.run([sys.executable, "-c", run_ours, str(tmp_path)], capture_output=True, text=True,
                          timeout=60, env=env, stdin=subprocess.DEVNULL)
    from minidocker.core import cgroups
    cgroups.driver("mdtest").remove_parent()  # (both runtimes leave the bundle's parent cgroup)
    assert "kmsg refused" in ours.stdout, ours.stdout + ours.stderr
