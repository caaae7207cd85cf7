"""AppArmor as Docker applies it (core/apparmor.py): on a host whose kernel has AppArmor, every
container runs under `minidocker-default` (Docker: docker-default, from the same template),
`--security-opt apparmor=NAME` picks a loaded profile, `apparmor=unconfined` and `--privileged`
none; `exec` processes get the container's profile; inspect and info say so.

The first half is pure and runs everywhere. The second needs a host with AppArmor (the lab VM:
Debian 12, kernel 6.1): it skips elsewhere, since a kernel without AppArmor is not a missing
prerequisite but a different host (where Docker, too, confines with seccomp alone)."""
from __future__ import annotations

import errno
import json
import subprocess

import pytest

from minidocker.container import confinement
from minidocker.core import apparmor, bundle
from minidocker.engine import exec as exec_mod
from minidocker.engine import oci
from minidocker.errors import MinidockerError

from conftest import require_tool

N = ["--network", "none"]

# Every rule of moby's profiles/apparmor/template.go that confines something (its deny rules
# and the peers of its signal and ptrace rules), as docker-default has them.
DOCKER_RULES = [
    "network,", "capability,", "file,", "umount,",
    "signal (receive) peer=unconfined,",
    "signal (send,receive) peer=minidocker-default,",
    "deny @{PROC}/* w,",
    "deny @{PROC}/sys/[^k]** w,",
    "deny @{PROC}/sys/kernel/{?,??,[^s][^h][^m]**} w,",
    "deny @{PROC}/sysrq-trigger rwklx,",
    "deny @{PROC}/kcore rwklx,",
    "deny mount,",
    "deny /sys/[^f]*/** wklx,",
    "deny /sys/f[^s]*/** wklx,",
    "deny /sys/fs/[^c]*/** wklx,",
    "deny /sys/fs/c[^g]*/** wklx,",
    "deny /sys/fs/cg[^r]*/** wklx,",
    "deny /sys/firmware/** rwklx,",
    "deny /sys/kernel/security/** rwklx,",
    "ptrace (trace,read,tracedby,readby) peer=minidocker-default,",
]


def rules(text: str) -> list[str]:
    return [line.split("#")[0].strip() for line in text.splitlines() if line.split("#")[0].strip()]


# ---------------------------------------------------------------- pure: everywhere
def test_the_default_profile_has_docker_defaults_rules():
    text = apparmor.default_profile()
    got = rules(text)
    assert text.startswith("#include <tunables/global>")
    assert "profile minidocker-default flags=(attach_disconnected,mediate_deleted) {" in got
    assert "#include <abstractions/base>" in text
    missing = [r for r in DOCKER_RULES if r not in got]
    assert not missing, missing
    # writes under /proc: only /proc/<pid>/** and /proc/sys/kernel/shm* stay writable
    assert any(r.startswith("deny @{PROC}/{[^1-9") and r.endswith("}/** w,") for r in got)
    assert got[-1] == "}"


def test_the_profile_without_etc_apparmor_d_and_under_another_runtime_profile():
    text = apparmor.default_profile("other", daemon_profile="runtime-x", tunables=False, base=False)
    assert rules(text)[0] == "@{PROC}=/proc/" and "#include" not in text
    assert "signal (receive) peer=runtime-x," in rules(text)
    assert "ptrace (trace,read,tracedby,readby) peer=other," in rules(text)


def host(*opts: str, privileged: bool = False) -> dict:
    return {"SecurityOpt": list(opts), "Privileged": privileged}


@pytest.mark.parametrize("hc, spec, shown", [
    (host(), "minidocker-default", "minidocker-default"),
    (host("apparmor=unconfined"), None, "unconfined"),
    (host("apparmor=my-profile"), "my-profile", "my-profile"),
    (host("apparmor:my-profile"), "my-profile", "my-profile"),   # the old separator
    (host(privileged=True), None, "unconfined"),
    # moby: the given profile wins in the spec, while inspect says unconfined (saveAppArmorConfig)
    (host("apparmor=my-profile", privileged=True), "my-profile", "unconfined"),
    (host("seccomp=unconfined", "no-new-privileges"), "minidocker-default", "minidocker-default"),
], ids=["default", "unconfined", "given", "colon", "privileged", "privileged+given", "other-opts"])
def test_the_profile_for_each_flag_on_a_host_with_apparmor(hc, spec, shown):
    assert confinement.apparmor_spec(hc, True) == spec
    assert confinement.apparmor_profile(hc, True) == shown


@pytest.mark.parametrize("hc", [host(), host("apparmor=my-profile"), host(privileged=True)])
def test_a_host_without_apparmor_ignores_the_option_as_dockerd_does(hc):
    assert confinement.apparmor_spec(hc, False) is None
    assert confinement.apparmor_profile(hc, False) == ""


REC = {
    "Id": "a" * 64, "Path": "true", "Args": [], "Name": "/aa",
    "Config": {"Hostname": "aa", "Env": ["PATH=/bin"], "Tty": False, "WorkingDir": "", "User": ""},
    "HostConfig": {"NetworkMode": "none", "SecurityOpt": []},
}


@pytest.mark.parametrize("enabled", [True, False])
def test_config_json_and_the_exec_process_carry_the_profile(monkeypatch, tmp_path, enabled):
    monkeypatch.setattr(apparmor, "enabled", lambda: enabled)
    spec = oci.build(REC, "/r", (0, 0, []), cgroup_version=2)
    assert spec["process"].get("apparmorProfile") == ("minidocker-default" if enabled else None)
    bundle.check(spec)  # accepted now (it was "not supported by minidocker yet")
    process = exec_mod.exec_process(spec, str(tmp_path), REC, ["id"], None, None, None, False)
    assert process.get("apparmorProfile") == spec["process"].get("apparmorProfile")
    unconfined = dict(REC, HostConfig=dict(REC["HostConfig"], SecurityOpt=["apparmor=unconfined"]))
    assert "apparmorProfile" not in oci.build(unconfined, "/r", (0, 0, []), cgroup_version=2)["process"]


def test_where_the_profile_is_written_and_what():
    assert apparmor.exec_attr(lambda p: True) == "/proc/self/attr/apparmor/exec"  # kernel 5.8+
    assert apparmor.exec_attr(lambda p: False) == "/proc/self/attr/exec"           # older kernels
    e = apparmor._failed("write", "/proc/self/attr/apparmor/exec", OSError(errno.ENOENT, "x"))
    assert (e.code, str(e)) == (127, "apparmor failed to apply profile: write /proc/self/attr/apparmor/exec: "
                                     "no such file or directory")  # runc's words; docker run's 127
    assert apparmor._failed("write", "/x", OSError(errno.EACCES, "x")).code == 126
    assert apparmor._failed("write", "/x", OSError(errno.EINVAL, "x")).code == 125


def test_apply_on_exec_writes_exec_and_the_name(monkeypatch, tmp_path):
    attr = tmp_path / "exec"
    attr.write_text("")
    monkeypatch.setattr(apparmor, "EXEC_ATTR", str(attr))
    apparmor.apply_on_exec(None)  # no profile: nothing written
    assert attr.read_text() == ""
    apparmor.apply_on_exec("minidocker-default")
    assert attr.read_text() == "exec minidocker-default"
    monkeypatch.setattr(apparmor, "EXEC_ATTR", str(tmp_path / "none"))
    monkeypatch.setattr(apparmor, "OLD_EXEC_ATTR", str(tmp_path / "none"))
    with pytest.raises(apparmor.ApplyError, match=r"^apparmor failed to apply profile: open .*: no such file"):
        apparmor.apply_on_exec("x")


def test_change_profile_writes_changeprofile_and_the_name(monkeypatch, tmp_path):
    attr = tmp_path / "current"
    attr.write_text("")
    monkeypatch.setattr(apparmor, "CURRENT_ATTRS", (str(tmp_path / "none"), str(attr)))
    assert apparmor.change_profile(None) is False and apparmor.change_profile("unconfined") is False
    assert attr.read_text() == ""
    assert apparmor.change_profile("minidocker-default") is True
    assert attr.read_text() == "changeprofile minidocker-default"


def test_ensure_default_loads_the_profile_once(monkeypatch, tmp_path):
    calls = []

    def fake_run(argv, **kw):
        calls.append((argv, open(argv[-1]).read()))
        return subprocess.CompletedProcess(argv, 0, "", "")
    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr(apparmor, "loaded", lambda name: True)
    apparmor.ensure_default()
    assert calls == []  # loaded already: nothing to do
    monkeypatch.setattr(apparmor, "loaded", lambda name: False)
    apparmor.ensure_default()
    (argv, text), = calls
    assert argv[:2] == ["apparmor_parser", "-Kr"] and "profile minidocker-default flags=" in text

    def failing(argv, **kw):
        return subprocess.CompletedProcess(argv, 1, "", "AppArmor parser error: line 3\nsyntax error\n")
    monkeypatch.setattr(subprocess, "run", failing)
    with pytest.raises(MinidockerError) as e:
        apparmor.ensure_default()
    assert e.value.exit_code == 125 and "\n" not in str(e.value)
    assert str(e.value).startswith("AppArmor enabled on system but the minidocker-default profile could not be loaded")


@pytest.mark.parametrize("enabled", [True, False])
def test_info_lists_apparmor_only_where_the_host_has_it(monkeypatch, enabled, tmp_path):
    from minidocker.compat.cli import system
    monkeypatch.setattr(apparmor, "enabled", lambda: enabled)
    opts = system._security_options(str(tmp_path))
    assert ("name=apparmor" in opts) == enabled and opts[-1] == "name=cgroupns"
    if enabled:
        assert opts[0] == "name=apparmor"  # first, as dockerd lists it


# ---------------------------------------------------------------- real: a host with AppArmor
def needs_apparmor():
    if not apparmor.enabled():  # a host property, not a missing prerequisite: skip even under STRICT
        pytest.skip("this kernel has no AppArmor (the lab VM has it)")
    require_tool("apparmor_parser")


def attr_current(md, *flags: str, cmd: str = "cat /proc/self/attr/current") -> str:
    return md.ok("run", "--rm", *N, *flags, "busybox", "sh", "-c", cmd).strip()


@pytest.mark.root
def test_the_default_profile_is_loaded_when_missing_and_confines_the_container(md):
    needs_apparmor()
    parser = require_tool("apparmor_parser")
    if apparmor.loaded(apparmor.DEFAULT):  # unload it: the next start must load it again
        text = apparmor.default_profile()
        subprocess.run([parser, "-R"], input=text, text=True, capture_output=True, check=True)
    assert not apparmor.loaded(apparmor.DEFAULT)
    assert attr_current(md) == "minidocker-default (enforce)"
    assert apparmor.loaded(apparmor.DEFAULT)
    # the program itself, whatever the way to it: another user, no_new_privs, --init
    assert attr_current(md, "-u", "nobody") == "minidocker-default (enforce)"
    assert attr_current(md, "--security-opt", "no-new-privileges") == "minidocker-default (enforce)"
    assert attr_current(md, "--init") == "minidocker-default (enforce)"
    assert attr_current(md, "--security-opt", "apparmor=unconfined") == "unconfined"
    # --init's PID 1 itself (Docker's tini is exec'd under the profile), seen from the host
    cid = md.ok("run", "-d", *N, "--init", "busybox", "sleep", "30").strip()
    try:
        pid = int(md.ok("inspect", "-f", "{{.State.Pid}}", cid))
        with open(f"/proc/{pid}/attr/current") as f:
            assert f.read().strip("\0\n") == "minidocker-default (enforce)"
    finally:
        md("rm", "-f", cid)


@pytest.mark.root
def test_what_the_profile_refuses_and_unconfined_allows(md):
    needs_apparmor()
    kcore = "cat /proc/kcore >/dev/null 2>&1; echo kcore=$?"
    mount = "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m 2>&1; echo mount=$?"
    confined = md.ok("run", "--rm", *N, "--cap-add", "SYS_ADMIN", "busybox", "sh", "-c", f"{kcore}; {mount}")
    assert "kcore=1" in confined  # /proc/kcore is masked (/dev/null over it) and, here, refused
    assert "mount=0" not in confined and "permission denied" in confined.lower()  # even with CAP_SYS_ADMIN
    free = md.ok("run", "--rm", *N, "--cap-add", "SYS_ADMIN", "--security-opt", "apparmor=unconfined",
                 "busybox", "sh", "-c", f"{kcore}; {mount}")
    assert "kcore=0" in free and "mount=0" in free  # the masked file reads empty; the mount is made


@pytest.mark.root
def test_exec_runs_under_the_containers_profile(md):
    needs_apparmor()
    ids = [md.ok("run", "-d", *N, *flags, "busybox", "sleep", "60").strip()
           for flags in ([], ["--security-opt", "apparmor=unconfined"])]
    try:
        assert md.ok("exec", ids[0], "cat", "/proc/self/attr/current").strip() == "minidocker-default (enforce)"
        assert md.ok("exec", "-u", "nobody", ids[0], "cat", "/proc/self/attr/current").strip() \
            == "minidocker-default (enforce)"
        assert md.ok("exec", ids[1], "cat", "/proc/self/attr/current").strip() == "unconfined"
        p = md("exec", ids[0], "cat", "/proc/kcore")
        assert p.returncode == 1 and "Permission denied" in p.stderr
    finally:
        md("rm", "-f", *ids)


@pytest.mark.root
def test_an_unknown_profile_fails_the_start_as_in_docker(md):
    needs_apparmor()
    before = md.ok("ps", "-aq")
    p = md("run", "--rm", *N, "--security-opt", "apparmor=no-such-profile-here", "busybox", "true")
    assert p.returncode == 127, p.stderr  # docker run: the message says "no such file or directory"
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    assert ("apparmor failed to apply profile: write /proc/self/attr/apparmor/exec: no such file or directory"
            in p.stderr)
    assert md.ok("ps", "-aq") == before  # nothing half-made (--rm)


@pytest.mark.root
def test_inspect_and_info_as_docker_shows_them(md):
    needs_apparmor()
    names = {"aa-default": [], "aa-given": ["--security-opt", "apparmor=unconfined"],
             "aa-priv": ["--privileged"]}
    try:
        for name, flags in names.items():
            md.ok("create", "--name", name, *N, *flags, "busybox", "true")
        shown = lambda n: md.ok("inspect", "-f", "{{.AppArmorProfile}}", n).strip()  # noqa: E731
        assert [shown(n) for n in names] == ["", "unconfined", ""]  # before the first start: the given one
        for name in names:
            md("start", "-a", name)  # (--privileged may fail where root lacks a capability: still recorded)
        assert [shown(n) for n in names] == ["minidocker-default", "unconfined", "unconfined"]
    finally:
        md("rm", "-f", *names)
    info = md.ok("info")
    security = info.split("Security Options:")[1].split("Kernel Version")[0].split()
    assert security[0] == "apparmor" and "seccomp" in security
    assert "name=apparmor" in json.loads(md.ok("info", "--format", "{{json .SecurityOptions}}"))
