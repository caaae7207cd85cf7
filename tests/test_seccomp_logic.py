"""The pure parts of confinement, without root: Docker's seccomp profile resolved for a
container's capabilities and architecture (moby's setupSeccomp), a classic-BPF program read
and run as the kernel runs it, the capability flags (moby's TweakCapabilities) and
--security-opt as the docker CLI and dockerd read it."""
from __future__ import annotations

import errno
import json

import pytest

from minidocker.container import confinement
from minidocker.core import seccomp, security
from minidocker.errors import MinidockerError

DEFAULT = [f"CAP_{c}" for c in security.DEFAULT_CAPS]
VALID = confinement.known_caps(40)


def allowed_names(spec: dict) -> set[str]:
    return {n for c in spec["syscalls"] if c["action"] == "SCMP_ACT_ALLOW" and not c.get("args") for n in c["names"]}


def test_the_default_profile_for_dockers_capabilities_on_amd64():
    spec = seccomp.resolve(seccomp.default_profile(), DEFAULT, arch="amd64", kernel=(6, 1))
    assert spec["defaultAction"] == "SCMP_ACT_ERRNO"
    assert spec["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    names = allowed_names(spec)
    assert {"read", "write", "execve", "arch_prctl", "ptrace"} <= names          # ptrace: minKernel 4.8
    assert not {"unshare", "mount", "setns", "keyctl", "add_key", "perf_event_open", "userfaultfd",
                "reboot", "settimeofday", "init_module", "bpf", "chroot"} & names - {"chroot"}
    assert "chroot" in names                                                     # CAP_SYS_CHROOT is Docker's
    clone = [c for c in spec["syscalls"] if c["names"] == ["clone"]]
    assert clone == [{"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}]}]
    clone3 = [c for c in spec["syscalls"] if c["names"] == ["clone3"]]
    assert clone3 == [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS}]
    personalities = sorted(c["args"][0]["value"] for c in spec["syscalls"] if c["names"] == ["personality"])
    assert personalities == [0, 8, 131072, 131080, 4294967295]


def test_capabilities_open_their_system_calls():
    spec = seccomp.resolve(seccomp.default_profile(), DEFAULT + ["CAP_SYS_ADMIN", "CAP_SYS_TIME"], arch="amd64")
    names = allowed_names(spec)
    assert {"mount", "unshare", "setns", "clone", "bpf", "settimeofday", "clock_settime"} <= names
    assert not [c for c in spec["syscalls"] if c["names"] == ["clone3"]]   # excluded with CAP_SYS_ADMIN
    assert all(not c.get("args") for c in spec["syscalls"] if c["names"] == ["clone"])


def test_arches_and_kernel_versions_select_rules():
    arm = seccomp.resolve(seccomp.default_profile(), DEFAULT, arch="arm64", kernel=(6, 1))
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert "arch_prctl" not in allowed_names(arm) and "arm_fadvise64_64" in allowed_names(arm)
    old = seccomp.resolve(seccomp.default_profile(), DEFAULT, arch="amd64", kernel=(4, 4))
    assert "ptrace" not in allowed_names(old)
    assert seccomp.kernel_version("6.18.44-fc-v657") == (6, 18)
    assert seccomp.kernel_version("3.12-rc5") == (3, 12)


def test_profiles_docker_refuses():
    assert seccomp.resolve({}, DEFAULT) is None
    with pytest.raises(seccomp.ProfileError, match="use either 'architectures' or 'archMap'"):
        seccomp.resolve({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["x"], "archMap": [{}]}, DEFAULT)
    with pytest.raises(seccomp.ProfileError, match="use either 'name' or 'names'"):
        seccomp.resolve({"defaultAction": "SCMP_ACT_ALLOW",
                         "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ERRNO"}]}, DEFAULT)
    with pytest.raises(seccomp.ProfileError, match="invalid kernel version"):
        seccomp.resolve({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["a"], "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "4"}}]}, DEFAULT)
    with pytest.raises(seccomp.ProfileError, match="Decoding seccomp profile failed"):
        seccomp.load_profile_text("{not json")


def test_actions_and_their_values():
    assert seccomp.action_value("SCMP_ACT_ERRNO") == 0x00050001                     # EPERM, as runc
    assert seccomp.action_value("SCMP_ACT_ERRNO", errno.ENOSYS) == 0x00050000 | 38
    assert seccomp.action_name(0x00050026) == "ERRNO(ENOSYS)"
    assert seccomp.action_name(seccomp.RET_ALLOW) == "ALLOW"
    assert seccomp.action_name(seccomp.RET_KILL_PROCESS) == "KILL_PROCESS"
    with pytest.raises(seccomp.ProfileError):
        seccomp.action_value("SCMP_ACT_NOTIFY")


# A hand-written filter: allow everything on x86_64 but unshare, which fails with EPERM;
# other architectures are killed.
HAND = [
    (0x20, 0, 0, 4),                      # ld  [arch]
    (0x15, 1, 0, 0xC000003E),             # jeq x86_64 -> +1
    (0x06, 0, 0, seccomp.RET_KILL_PROCESS),
    (0x20, 0, 0, 0),                      # ld  [nr]
    (0x15, 0, 1, 272),                    # jeq unshare
    (0x06, 0, 0, seccomp.RET_ERRNO | errno.EPERM),
    (0x20, 0, 0, 16),                     # ld  [args[0]_lo]
    (0x45, 0, 1, 0x10000000),             # jset CLONE_NEWUSER (only reached for other calls)
    (0x06, 0, 0, seccomp.RET_ERRNO | errno.EACCES),
    (0x06, 0, 0, seccomp.RET_ALLOW),
]


def test_a_hand_written_filter_runs_and_reads_back():
    bpf = seccomp.assemble(HAND)
    x86_64 = seccomp.AUDIT_ARCH["SCMP_ARCH_X86_64"]
    assert seccomp.action_name(seccomp.run(bpf, 272, x86_64)) == "ERRNO(EPERM)"
    assert seccomp.action_name(seccomp.run(bpf, 0, x86_64)) == "ALLOW"
    assert seccomp.action_name(seccomp.run(bpf, 56, x86_64, (0x10000000,))) == "ERRNO(EACCES)"
    assert seccomp.action_name(seccomp.run(bpf, 0, 0x40000028)) == "KILL_PROCESS"
    text = seccomp.disassemble(bpf, {272: "unshare"})
    assert text[0] == "0000: ld  [arch]"
    assert text[1] == "0001: jeq #0xc000003e (x86_64) -> 0003 else 0002"
    assert text[4] == "0004: jeq #272 (unshare) -> 0005 else 0006"
    assert text[6] == "0006: ld  [args[0]_lo]" and text[7].startswith("0007: jset #0x10000000")
    assert text[-1] == "0009: ret ALLOW"
    with pytest.raises(ValueError):
        seccomp.instructions(b"\0" * 7)


def test_runcs_enosys_stub_answers_calls_newer_than_the_profile():
    """Prepended to the hand-written filter: above the profile's last call, ENOSYS; the rest,
    other architectures and x86_64's x32 calls go on to the filter unchanged."""
    x86_64 = seccomp.AUDIT_ARCH["SCMP_ARCH_X86_64"]
    stub = seccomp.enosys_stub(x86_64, 300, x32=True)
    bpf = seccomp.assemble(stub + HAND)
    assert seccomp.action_name(seccomp.run(bpf, 452, x86_64)) == "ERRNO(ENOSYS)"
    assert seccomp.action_name(seccomp.run(bpf, 301, x86_64)) == "ERRNO(ENOSYS)"
    assert seccomp.action_name(seccomp.run(bpf, 300, x86_64)) == "ALLOW"
    assert seccomp.action_name(seccomp.run(bpf, 272, x86_64)) == "ERRNO(EPERM)"  # the filter's own answer
    assert seccomp.action_name(seccomp.run(bpf, 0x40000000 | 500, x86_64)) == "ALLOW"  # x32: the filter's
    assert seccomp.action_name(seccomp.run(bpf, 452, 0x40000028)) == "KILL_PROCESS"    # another arch: the filter's
    text = seccomp.disassemble(seccomp.assemble(stub))
    assert text[-2:] == ["0004: jgt #300 -> 0005 else 0006", "0005: ret ERRNO(ENOSYS)"]


# ---------------------------------------------------------------- capabilities and --security-opt
@pytest.mark.parametrize("add, drop, want_in, want_out", [
    (["net_admin"], [], ["CAP_NET_ADMIN"], []),
    (["CAP_SYS_ADMIN"], ["chown"], ["CAP_SYS_ADMIN"], ["CAP_CHOWN"]),
    ([], ["ALL"], [], DEFAULT),
    (["ALL"], ["sys_admin"], ["CAP_SYS_MODULE", "CAP_NET_ADMIN"], ["CAP_SYS_ADMIN"]),
    (["chown"], ["all"], ["CAP_CHOWN"], ["CAP_KILL"]),
])
def test_cap_add_and_cap_drop_as_moby_tweaks_them(add, drop, want_in, want_out):
    caps = confinement.capabilities(DEFAULT, add, drop, False, VALID)
    assert set(want_in) <= set(caps) and not set(want_out) & set(caps)
    assert len(caps) == len(set(caps))


def test_privileged_gets_every_capability_the_kernel_knows():
    assert confinement.capabilities(DEFAULT, [], ["ALL"], True, VALID) == VALID
    assert len(confinement.known_caps(37)) == 38


def test_unknown_capabilities_are_refused_with_dockers_message():
    with pytest.raises(MinidockerError, match='invalid CapAdd: unknown capability: "CAP_FOO"'):
        confinement.check_caps({"CapAdd": ["foo"]}, VALID)
    with pytest.raises(MinidockerError, match='invalid CapDrop: unknown capability: "CAP_BAR"'):
        confinement.check_caps({"CapDrop": ["CAP_bar"]}, VALID)
    confinement.check_caps({"CapAdd": ["all", "Net_Admin"], "CapDrop": None}, VALID)


@pytest.mark.parametrize("opt, message", [
    ("foo", 'invalid --security-opt 1: "foo"'),
    ("foo=bar", 'invalid --security-opt 2: "foo=bar"'),
    ("no-new-privileges=maybe", 'invalid --security-opt 2: "no-new-privileges=maybe"'),
    ('seccomp={"defaultAction":"SCMP_ACT_NOPE"}', "unknown seccomp action"),
    ('seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_ERRNO",'
     '"args":[{"index":0,"value":1,"op":"SCMP_CMP_ALMOST"}]}]}', "unknown seccomp comparison"),
])
def test_security_opts_dockerd_refuses(opt, message):
    with pytest.raises(MinidockerError, match=message.replace("{", r"\{")):
        confinement.parse_security_opts([opt])


def test_security_opts_dockerd_accepts():
    p = confinement.parse_security_opts(["no-new-privileges", "seccomp=unconfined", "apparmor=unconfined"])
    assert p["no_new_privileges"] and p["seccomp"] == "unconfined" and p["apparmor"] == "unconfined"
    assert confinement.parse_security_opts(["no-new-privileges=false"])["no_new_privileges"] is False
    assert confinement.parse_security_opts(["no-new-privileges:true"])["no_new_privileges"] is True


def test_the_cli_sends_a_profile_files_compacted_json(tmp_path):
    f = tmp_path / "p.json"
    f.write_text('{\n  "defaultAction": "SCMP_ACT_ALLOW",\n  "syscalls": []\n}\n')
    assert confinement.cli_security_opts([f"seccomp={f}", "seccomp=unconfined"]) == \
        ['seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[]}', "seccomp=unconfined"]
    with pytest.raises(MinidockerError, match=r"opening seccomp profile \(/nope\) failed: open /nope: no such file"):
        confinement.cli_security_opts(["seccomp=/nope"])
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(MinidockerError, match="compacting json for seccomp profile"):
        confinement.cli_security_opts([f"seccomp={tmp_path / 'bad.json'}"])


def test_which_filter_a_container_gets():
    assert confinement.seccomp_spec({"Privileged": True}, DEFAULT) is None
    assert confinement.seccomp_spec({"SecurityOpt": ["seccomp=unconfined"]}, DEFAULT) is None
    default = confinement.seccomp_spec({}, DEFAULT)
    assert default["defaultAction"] == "SCMP_ACT_ERRNO" and len(default["syscalls"]) > 5
    mine = json.dumps({"defaultAction": "SCMP_ACT_ALLOW",
                       "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]})
    spec = confinement.seccomp_spec({"SecurityOpt": [f"seccomp={mine}"]}, DEFAULT)
    assert spec == {"defaultAction": "SCMP_ACT_ALLOW", "architectures": [],
                    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}


def test_rules_for_libseccomp():
    spec = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                         {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"},          # = default: left out
                         {"names": ["personality"], "action": "SCMP_ACT_ALLOW",      # same index: OR
                          "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                                   {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                         {"names": ["clone"], "action": "SCMP_ACT_ALLOW",            # different: AND
                          "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_MASKED_EQ"},
                                   {"index": 1, "value": 2, "valueTwo": 3, "op": "SCMP_CMP_GT"}]}]}
    default, arches, calls = seccomp.rules(spec)
    assert default == 0x00050001 and arches == ["x86_64", "x86"]
    assert calls == [("read", seccomp.RET_ALLOW, []), ("write", seccomp.RET_ALLOW, []),
                     ("personality", seccomp.RET_ALLOW, [(0, 4, 0, 0)]),
                     ("personality", seccomp.RET_ALLOW, [(0, 4, 8, 0)]),
                     ("clone", seccomp.RET_ALLOW, [(0, 7, 1, 0), (1, 6, 2, 3)])]


def test_group_add_reads_the_containers_group_file():
    from minidocker.container import runconfig
    group = "root:x:0:\nwheel:x:10:root\nmail:x:12:\n"
    assert runconfig.additional_groups(["mail", "4242", "10", "wheel"], group) == [12, 4242, 10]
    with pytest.raises(MinidockerError, match="Unable to find group audio"):
        runconfig.additional_groups(["audio"], group)
    with pytest.raises(MinidockerError, match="must be in range"):
        runconfig.additional_groups(["99999999999"], group)
