"""Confinement for real, as root, beside the private real dockerd: a battery of probes run in a
default container of each (busybox commands, and one-system-call programs from
minidocker/lab/sysprobe.py for the calls busybox cannot make) must end the same way, and the
flags (--cap-add, --cap-drop, --security-opt seccomp=/no-new-privileges, --read-only) must
change exactly what they change in Docker. Every probe is harmless if it succeeds (no host
state changes: a wrong reboot magic, swapoff of a missing file, a sysctl written with the value
it has), so a runtime that confined nothing could not hurt the host running this test."""
from __future__ import annotations

import errno
import json
import os

import pytest

from minidocker.container import confinement
from minidocker.core import seccomp, security
from minidocker.lab import sysprobe

from conftest import require

pytestmark = [pytest.mark.root]

N = ["--network", "none"]

# name -> (syscall number, args): x86_64 numbers
CALLS = {
    "keyctl": (250, 0, -4, 0),                  # KEYCTL_GET_KEYRING_ID of the user keyring: the host's keys
    "perf_event_open": (298, 0, 0, -1, -1, 0),
    "userfaultfd": (323, 0),
    "bpf": (321, 0, 0, 0),
    "reboot": (169, 0, 0, 0, 0),                # wrong magic: EINVAL if it got through, nothing happens
    "settimeofday": (164, 0, 0),                # NULL, NULL: changes nothing if it got through
    "personality_query": (135, 0xFFFFFFFF),
    "personality_norandom": (135, 0x0040000),   # ADDR_NO_RANDOMIZE: not in Docker's list
    "unshare_user": (272, 0x10000000),
    "getpid": (39,),
    "newer_than_profile": (452, -1, 0, 0, 0),  # fchmodat2 (Linux 6.6): runc answers ENOSYS (38), not EPERM
}

SHELL = {
    "mount": "mount -t tmpfs none /mnt",
    "unshare_U": "unshare -U true",
    "unshare_m": "unshare -m true",
    "unshare_n": "unshare -n true",
    "sysrq": "echo h > /proc/sysrq-trigger",
    "proc_sys": "v=$(cat /proc/sys/kernel/printk_ratelimit) && echo $v > /proc/sys/kernel/printk_ratelimit",
    # masked (an empty /dev/null in its place) or refused by an AppArmor profile: nothing to read either way
    "kcore_empty": "test -z \"$(head -c1 /proc/kcore 2>/dev/null | od -An)\"",
    "keys_empty": "test -z \"$(head -c1 /proc/keys 2>/dev/null | od -An)\"",
    "mknod_c": "mknod /tmp/c c 1 3",
    "open_block": "mknod /tmp/b b 7 0 && head -c1 /tmp/b",
    "hostname": "hostname probe",
    "swapoff": "swapoff /no-such-swap",
    "raw_socket": "ping -c1 -W1 127.0.0.1",
    "chown": "touch /tmp/f && chown 1000:1000 /tmp/f",
    "cgroup_write": "touch /sys/fs/cgroup/probe",
    "chroot": "chroot / true",
    "write_root": "touch /probe-file",
    "write_shm": "touch /dev/shm/x",
    "mkdir": "mkdir /tmp/d",
}


@pytest.fixture(scope="module")
def probes(tmp_path_factory):
    require(sysprobe.supported(), "the probe programs are x86_64")
    d = tmp_path_factory.mktemp("probes")
    for name, (nr, *args) in CALLS.items():
        path = d / name
        path.write_bytes(sysprobe.elf(nr, *args))
        os.chmod(path, 0o755)
    lines = [f"/p/{n}; echo {n}=$?" for n in CALLS]
    lines += [f"({cmd}) >/dev/null 2>&1; echo {n}=$?" for n, cmd in SHELL.items()]
    lines.append("grep -E '^(Seccomp|NoNewPrivs|CapEff|CapBnd):' /proc/self/status | tr -d '\\t' | tr : =")
    return str(d), "; ".join(lines)


def results(rt, probes, *flags) -> dict[str, str]:
    d, script = probes
    p = rt("run", "--rm", *N, "-v", f"{d}:/p:ro", *flags, "busybox", "sh", "-c", script)
    assert p.returncode == 0, p.stderr
    return dict(line.split("=", 1) for line in p.stdout.split())


def test_every_probe_ends_as_in_docker_with_the_default_profile(md, docker, probes):
    ours, theirs = results(md, probes), results(docker.docker, probes)
    assert ours == theirs
    assert theirs["Seccomp"] == "2" and theirs["keyctl"] == "1" and theirs["unshare_U"] != "0"


@pytest.mark.parametrize("flags", [
    ["--cap-add", "SYS_ADMIN"],
    ["--cap-add", "sys_time", "--cap-drop", "net_raw"],
    ["--cap-drop", "ALL", "--cap-add", "CHOWN"],
    ["--security-opt", "seccomp=unconfined"],
    ["--security-opt", "no-new-privileges"],
    ["--read-only"],
    ["--read-only", "--tmpfs", "/tmp"],
], ids=lambda f: " ".join(f))
def test_each_flag_changes_what_it_changes_in_docker(md, docker, probes, flags):
    ours, theirs = results(md, probes, *flags), results(docker.docker, probes, *flags)
    assert ours == theirs


def test_a_profile_of_your_own(md, docker, probes, tmp_path):
    profile = tmp_path / "no-mkdir.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}))
    flags = ["--security-opt", f"seccomp={profile}"]
    ours, theirs = results(md, probes, *flags), results(docker.docker, probes, *flags)
    assert ours == theirs and ours["mkdir"] == "1" and ours["chown"] == "0"
    for rt in (md, lambda *a: docker.docker(*a, check=False)):
        p = rt("run", "--rm", *N, *flags, "busybox", "mkdir", "/x")
        assert p.returncode == 1 and "Permission denied" in p.stderr  # errnoRet 13: EACCES


def test_inspect_shows_the_flags_as_docker_does(both):
    md, dk, made = both
    made.append("confined")
    flags = ["--cap-add", "net_admin", "--cap-drop", "CAP_CHOWN", "--read-only",
             "--security-opt", "no-new-privileges", "--security-opt", "seccomp=unconfined"]
    for rt in (md, dk):
        assert rt("create", "--name", "confined", *flags, "busybox", "true").returncode == 0
    keys = ("CapAdd", "CapDrop", "ReadonlyRootfs", "SecurityOpt", "Privileged")
    ours = json.loads(md.ok("inspect", "confined"))[0]["HostConfig"]
    theirs = json.loads(dk("inspect", "confined").stdout)[0]["HostConfig"]
    assert {k: ours[k] for k in keys} == {k: theirs[k] for k in keys}


@pytest.mark.parametrize("flags", [
    ["--group-add", "mail", "--group-add", "4242"],
    ["-u", "nobody", "--group-add", "wheel"],
    ["--userns", "host", "--group-add", "0"],
], ids=lambda f: " ".join(f))
def test_group_add_and_userns_host(md, docker, flags):
    ours = md("run", "--rm", *N, *flags, "busybox", "sh", "-c", "id; grep Groups /proc/self/status")
    theirs = docker.docker("run", "--rm", *N, *flags, "busybox", "sh", "-c", "id; grep Groups /proc/self/status")
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout
    ex = md.ok("run", "-d", *N, *flags, "busybox", "sleep", "30").strip()
    try:  # exec gets the same groups
        assert md.ok("exec", ex, "grep", "Groups", "/proc/self/status") == theirs.stdout.splitlines()[-1] + "\n"
    finally:
        md("rm", "-f", ex)


@pytest.mark.parametrize("flags", [
    ["--group-add", "audio"], ["--userns", "private"],
    ["--cap-add", "FOO"], ["--cap-drop", "cap_nothing"], ["--security-opt", "foo"],
    ["--security-opt", "label"], ["--security-opt", "no-new-privileges=maybe"],
    ["--security-opt", "seccomp=/no/such/profile.json"],
], ids=lambda f: " ".join(f))
def test_bad_flags_fail_like_docker(md, docker, flags):
    before = md.ok("ps", "-aq")
    ours = md("run", "--rm", *N, *flags, "busybox", "true")
    theirs = docker.docker("run", "--rm", *N, *flags, "busybox", "true", check=False)
    assert ours.returncode == theirs.returncode == 125
    assert len(ours.stderr.strip().splitlines()) == 1 and "Traceback" not in ours.stderr
    assert md.ok("ps", "-aq") == before  # nothing half-made


def test_privileged_gets_everything_the_host_can_give(md, docker):
    """This machine's root lacks CAP_SYS_RESOURCE in its bounding set: then both runtimes fail
    to apply all capabilities. Where root has them all (the lab VM), both run."""
    ours = md("run", "--rm", *N, "--privileged", "busybox", "sh", "-c",
              "grep -E '^(Seccomp|CapEff):' /proc/self/status; grep ' /sys ' /proc/mounts; "
              "test -c /dev/kmsg && echo host devices; head -c 16 /proc/kcore | wc -c")
    theirs = docker.docker("run", "--rm", *N, "--privileged", "busybox", "true", check=False)
    assert ours.returncode == theirs.returncode
    if ours.returncode == 125:
        assert "unable to apply caps: operation not permitted" in ours.stderr
        assert "unable to apply caps: operation not permitted" in theirs.stderr
    else:
        assert "Seccomp:\t0" in ours.stdout and " rw," in ours.stdout.split("sysfs /sys sysfs")[1]
        assert ours.stdout.split()[-1] == "16"   # /proc/kcore not masked
        assert "host devices" in ours.stdout     # the host's /dev/kmsg is there (and opens: allow-all)


def test_the_filter_simulated_agrees_with_the_kernel(md, probes):
    """core/seccomp.run() on the BPF program libseccomp made says what the kernel then did."""
    spec = confinement.seccomp_spec({}, [f"CAP_{c}" for c in security.DEFAULT_CAPS])
    bpf = seccomp.compile(spec)
    arch = seccomp.AUDIT_ARCH["SCMP_ARCH_X86_64"]
    real = results(md, probes)
    for name, (nr, *args) in CALLS.items():
        verdict = seccomp.action_name(seccomp.run(bpf, nr, arch, tuple(args)))
        if verdict.startswith("ERRNO("):  # EPERM (1), or ENOSYS (38) from runc's stub
            assert real[name] == str(getattr(errno, verdict[6:-1])), name
        else:
            assert verdict == "ALLOW", (name, verdict)
    text = "\n".join(seccomp.disassemble(bpf))
    assert "ret ERRNO(EPERM)" in text and "ret ALLOW" in text and "(x86_64)" in text
