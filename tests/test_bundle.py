"""The OCI bundle is the real format: what minidocker writes, the real runc runs the same way.

Also the spec's rules without root: what engine/oci.py puts in config.json, what
core/bundle.py refuses, and how mount options become mount(2) flags."""
import json
import os
import subprocess
import tempfile

import pytest

from conftest import require_tool
from minidocker.core import bundle
from minidocker.core.linux import syscalls as sc
from minidocker.engine import oci

# What both runtimes must agree on, seen from inside (masked /proc/kcore reads as empty,
# /proc/sys refuses writes; the mount table without the per-hierarchy cgroup mounts, which
# runc makes for every v1 hierarchy and minidocker only for those it puts the container in).
PROBE = ("echo pid=$$; hostname; id; grep -E '^Cap(Eff|Bnd|Prm|Inh)' /proc/self/status; pwd; "
         "echo kcore=$(cat /proc/kcore 2>/dev/null | wc -c); echo env:; env | sort; "
         "echo mounts:; cut -d' ' -f2,3,4 /proc/self/mounts | cut -d, -f1 | grep -v '^/sys/fs/cgroup/' ")


@pytest.mark.root
def test_real_runc_runs_our_bundle_the_same_way(md):
    runc = require_tool("runc")
    out = md.ok("run", "--name", "for-runc", "--network", "none", "-u", "daemon", "-w", "/tmp",
                "-h", "samehost", "-e", "GREETING=hi", "busybox", "sh", "-c", PROBE)
    cid = md.ok("inspect", "-f", "{{.Id}}", "for-runc").strip()
    bundle_dir = os.path.join(md.root, "containers", cid, "bundle")
    spec = json.load(open(os.path.join(bundle_dir, "config.json")))
    assert spec["root"]["path"].endswith("/merged") and spec["process"]["user"]["uid"] == 1
    from minidocker.images.store import ImageStore
    from minidocker.paths import StateRoot
    store = ImageStore(StateRoot(md.root))
    mount_id = store.container_mount_id(cid)
    store.driver.mount(mount_id)  # the rootfs, as the monitor mounts it before the start
    state = tempfile.mkdtemp(prefix="runc-state-")
    try:
        r = subprocess.run([runc, "--root", state, "run", "--bundle", bundle_dir, f"mdtest-{cid[:12]}"],
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    finally:
        store.driver.unmount(mount_id)
        subprocess.run([runc, "--root", state, "delete", "--force", f"mdtest-{cid[:12]}"], capture_output=True)
        os.rmdir(state) if not os.listdir(state) else None
        md("rm", "for-runc")
    assert r.returncode == 0, r.stderr
    assert r.stdout == out
    lines = out.splitlines()
    assert lines[:3] == ["pid=1", "samehost", "uid=1(daemon) gid=1(daemon) groups=1(daemon)"]
    assert "kcore=0" in out and "GREETING=hi" in out and "HOME=/usr/sbin" in out  # daemon's home
    assert "/proc/sys proc ro" in lines and "/sys sysfs ro" in lines and "/ overlay rw" in lines


# ---------------------------------------------------------------- without root
REC = {
    "Id": "c" * 64, "Path": "sh", "Args": ["-c", "echo hi"], "Name": "/web",
    "Config": {"Hostname": "web", "Env": ["PATH=/bin", "A=1"], "Tty": False, "WorkingDir": "/srv", "User": ""},
    "HostConfig": {"NetworkMode": "default", "Memory": 64 << 20, "NanoCpus": 500_000_000, "PidsLimit": 10,
                   "Tmpfs": {"/cache": "size=1m"}, "ReadonlyRootfs": False},
    "Mounts": [{"Type": "bind", "Source": "/host/data", "Destination": "/data", "RW": False,
                "Propagation": "rprivate"}],
    "ResolvConfPath": "/c/resolv.conf", "HostnamePath": "/c/hostname", "HostsPath": "/c/hosts",
}


def test_config_json_from_a_container_record():
    spec = oci.build(REC, "/root/merged", (0, 0, [0, 10]), cgroup_version=2)
    p, lx = spec["process"], spec["linux"]
    assert p["args"] == ["sh", "-c", "echo hi"] and p["cwd"] == "/srv"
    assert p["env"] == ["PATH=/bin", "HOSTNAME=web", "A=1"]  # HOME: the runtime adds it from /etc/passwd
    assert p["user"] == {"uid": 0, "gid": 0, "additionalGids": [0, 10]}
    assert "CAP_MKNOD" in p["capabilities"]["bounding"]  # v2 too: the device rules are an eBPF program
    assert oci.build(REC, "/r", (0, 0, []), cgroup_version=1)["process"]["capabilities"] == p["capabilities"]
    assert [m["destination"] for m in spec["mounts"]][:7] == [
        "/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm"]
    by_dest = {m["destination"]: m for m in spec["mounts"]}
    assert by_dest["/data"] == {"destination": "/data", "type": "bind", "source": "/host/data",
                                "options": ["rbind", "ro", "rprivate"]}
    assert by_dest["/cache"]["options"] == ["noexec", "nosuid", "nodev", "size=1m"]
    assert by_dest["/etc/hosts"]["source"] == "/c/hosts"
    assert {"type": "network"} in lx["namespaces"] and lx["cgroupsPath"] == f"/minidocker/{'c' * 64}"
    assert lx["resources"] == {"memory": {"limit": 64 << 20, "swap": 128 << 20},
                               "cpu": {"quota": 50_000, "period": 100_000}, "pids": {"limit": 10}}
    host = oci.build(dict(REC, HostConfig=dict(REC["HostConfig"], NetworkMode="host")), "/r", (0, 0, []),
                     cgroup_version=1)
    assert not any(ns["type"] == "network" for ns in host["linux"]["namespaces"])
    joined = oci.build(REC, "/r", (0, 0, []), cgroup_version=1, join_netns="/proc/42/ns/net")
    assert {"type": "network", "path": "/proc/42/ns/net"} in joined["linux"]["namespaces"]


def test_bundle_refuses_what_it_cannot_honour(tmp_path):
    spec = oci.build(REC, "/r", (0, 0, []), cgroup_version=1)
    bundle.write(str(tmp_path), spec)
    assert bundle.load(str(tmp_path)) == spec
    assert spec["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"  # Docker's default profile
    with_user = [*spec["linux"]["namespaces"], {"type": "user"}]
    for bad, why in ((dict(spec, linux=dict(spec["linux"], seccomp={"defaultAction": "SCMP_ACT_NOTIFY"})), "seccomp"),
                     (dict(spec, linux=dict(spec["linux"], seccomp={"defaultAction": "SCMP_ACT_ALLOW",
                                                                    "listenerPath": "/x"})), "seccomp"),
                     (dict(spec, linux=dict(spec["linux"], namespaces=[{"type": "time"}])), "'time'"),
                     (dict(spec, linux=dict(spec["linux"], namespaces=with_user)), "no uidMappings"),
                     (dict(spec, process=dict(spec["process"], args=[])), "process.args"),
                     (dict(spec, vm={}), "vm")):
        with pytest.raises(bundle.BundleError, match=why):
            bundle.check(bad)
    with pytest.raises(bundle.BundleError, match="no such file"):
        bundle.load(str(tmp_path / "nothing"))


def test_runc_spec_default_bundle_is_accepted(tmp_path):
    """`runc spec` makes a config.json we can read (rlimits, ambient caps, terminal and all)."""
    runc = require_tool("runc")
    subprocess.run([runc, "spec"], cwd=tmp_path, check=True)
    spec = bundle.load(str(tmp_path))
    assert spec["process"]["args"] == ["sh"] and bundle.root_path(str(tmp_path), spec) == str(tmp_path / "rootfs")


def test_mount_options_as_runc_reads_them():
    assert bundle.parse_mount_options(["nosuid", "strictatime", "mode=755", "size=65536k"]) == (
        sc.MS_NOSUID | sc.MS_STRICTATIME, [], "mode=755,size=65536k")
    assert bundle.parse_mount_options(["rbind", "ro", "rprivate"]) == (
        sc.MS_BIND | sc.MS_REC | sc.MS_RDONLY, [sc.MS_PRIVATE | sc.MS_REC], "")
    assert bundle.parse_mount_options(["ro", "rw"])[0] == 0  # later words win


def test_bundle_refuses_what_it_would_silently_ignore():
    spec = oci.build(REC, "/r", (0, 0, []), cgroup_version=1)
    lx, proc = spec["linux"], spec["process"]
    no_mnt = [ns for ns in lx["namespaces"] if ns["type"] != "mount"]
    cases = [
        (dict(spec, linux=dict(lx, namespaces=no_mnt)), "new mount namespace"),
        (dict(spec, linux=dict(lx, namespaces=no_mnt + [{"type": "mount", "path": "/proc/1/ns/mnt"}])), "mount"),
        (dict(spec, hooks={"prestart": [{"path": "/bin/true"}]}), "hooks"),
        (dict(spec, linux=dict(lx, resources={"blockIO": {"weight": 10}})), "blockIO"),
        (dict(spec, linux=dict(lx, resources={"cpu": {"cpus": "0"}})), "cpu"),
        (dict(spec, mounts=spec["mounts"] + [{"destination": "/x", "type": "bind", "source": "/y",
                                                "options": ["rbind", "nosymfollow"]}]), "nosymfollow"),
        (dict(spec, mounts=spec["mounts"] + [{"destination": "/../x", "type": "tmpfs", "source": "tmpfs"}]), r"\.\."),
        (dict(spec, process=dict(proc, user={"uid": 1000, "gid": 1000},
                                 capabilities=dict(proc["capabilities"], ambient=["CAP_KILL"]))), "ambient"),
    ]
    for bad, why in cases:
        with pytest.raises(bundle.BundleError, match=why):
            bundle.check(bad)
    bundle.check(dict(spec, process=dict(proc, oomScoreAdj=100)))  # applied by core/init.py
