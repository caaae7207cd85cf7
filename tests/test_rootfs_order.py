"""The root filesystem sequence, checked without root: core/rootfs.py makes every change
through an injected syscall layer; a Recorder writes the calls down instead (youki does the
same with its Syscall trait). The order is the lesson of notebook 02."""
import os

from minidocker.core import rootfs
from minidocker.core.linux import syscalls as sc
from minidocker.core.linux.recorder import Recorder
from minidocker.engine import oci

REC = {"Id": "c" * 64, "Path": "sh", "Args": [], "Name": "/x",
       "Config": {"Hostname": "x", "Env": [], "Tty": False},
       "HostConfig": {"NetworkMode": "none"}, "Mounts": [],
       "ResolvConfPath": "/c/resolv.conf", "HostnamePath": "/c/hostname", "HostsPath": "/c/hosts"}
CGROUP_V2 = [("cgroup", "/sys/fs/cgroup", "cgroup2", 0, None)]


def record(tmp_path, **changes):
    root = tmp_path / "merged"
    (root / "etc").mkdir(parents=True, exist_ok=True)
    spec = oci.build({**REC, **changes}, str(root), (0, 0, [0]), cgroup_version=2)
    rec = Recorder()
    rootfs.setup(str(root), spec, CGROUP_V2, linux=rec)
    return rec, str(root)


def test_the_order_of_the_calls(tmp_path):
    rec, root = record(tmp_path)
    names = rec.names()
    mounts = rec.mounts()
    # 1. nothing we mount may propagate to the host: / becomes a slave first
    assert rec.calls[0] == ("mount", None, "/", None, sc.MS_SLAVE | sc.MS_REC, None)
    # 2. pivot_root needs the new root to be a mount point: bind it onto itself
    assert mounts[1] == (root, root, None, sc.MS_BIND | sc.MS_REC, None)
    # 3. the pseudo filesystems, in config.json's order, then /etc files
    targets = [m[1] for m in mounts]
    order = [f"{root}/proc", f"{root}/dev", f"{root}/dev/pts", f"{root}/sys", f"{root}/sys/fs/cgroup",
             f"{root}/dev/mqueue", f"{root}/dev/shm", f"{root}/etc/hosts"]
    assert list(dict.fromkeys(t for t in targets if t in order)) == order
    assert mounts[targets.index(f"{root}/sys")][3] & sc.MS_RDONLY
    # 4. device nodes only once /dev is a fresh tmpfs, before the switch
    first_mknod, pivot = names.index("mknod"), names.index("pivot_root")
    assert targets.index(f"{root}/dev") < len([c for c in rec.calls[:first_mknod] if c[0] == "mount"])
    assert first_mknod < pivot
    assert [c[1] for c in rec.calls if c[0] == "mknod"] == [f"{root}/dev/{n}" for n, _, _ in rootfs.DEVICES]
    # 5. pivot_root(".", "."), then the old root is made a slave and detached
    assert rec.calls[pivot] == ("pivot_root", ".", ".")
    assert rec.calls[pivot + 2:pivot + 4] == [("mount", None, ".", None, sc.MS_SLAVE | sc.MS_REC, None),
                                              ("umount2", ".", sc.MNT_DETACH)]
    # 6. only after the switch: read-only /proc/sys & co, masked /proc/kcore & co
    after = [m for m in rec.calls[pivot:] if m[0] == "mount"]
    assert ("mount", "/proc/sys", "/proc/sys", None, sc.MS_BIND | sc.MS_REC, None) in after
    if os.path.exists("/proc/kcore"):
        assert ("mount", "/dev/null", "/proc/kcore", None, sc.MS_BIND, None) in after
    ro = [c for c in after if c[2] == "/proc/sys" and c[4] & sc.MS_RDONLY]
    assert ro and rec.calls.index(ro[0]) < rec.calls.index(("mount", "/dev/null", "/proc/kcore", None,
                                                            sc.MS_BIND, None)) if os.path.exists("/proc/kcore") else ro
    # nothing touched the real filesystem
    assert os.listdir(root) == ["etc"]


def test_a_printout_a_learner_can_read(tmp_path):
    rec, root = record(tmp_path)
    lines = rec.lines(strip=root)
    assert lines[0] == 'mount(None, "/", None, MS_REC|MS_SLAVE)'
    assert 'mount("proc", "…/proc", "proc", MS_NOSUID|MS_NODEV|MS_NOEXEC)' in lines
    assert 'mknod("…/dev/null", 0o666, 1:3)' in lines
    assert 'pivot_root(".", ".")' in lines and 'umount2(".", MNT_DETACH)' in lines


def test_read_only_root_is_remounted_last(tmp_path):
    rec, _ = record(tmp_path, HostConfig={"NetworkMode": "none", "ReadonlyRootfs": True})
    assert rec.calls[-1] == ("mount", None, "/", None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY, None)


def test_an_image_symlink_cannot_move_proc_or_a_volume_out(tmp_path):
    root = tmp_path / "merged"
    (root / "etc").mkdir(parents=True)
    os.symlink("/etc", root / "proc")   # an image's /proc -> /etc
    os.symlink("/etc", root / "data")   # an image's /data -> /etc
    spec = oci.build(dict(REC, Mounts=[{"Type": "bind", "Source": "/host", "Destination": "/data", "RW": True}]),
                     str(root), (0, 0, [0]), cgroup_version=2)
    rec = Recorder()
    rootfs.setup(str(root), spec, CGROUP_V2, linux=rec)
    assert ("unlink", f"{root}/proc") in rec.calls       # replaced by a directory, never mounted through
    assert any(c[:3] == ("mount", "/host", f"{root}/etc") for c in rec.calls)  # the container's /etc


def test_an_image_dev_symlink_cannot_send_device_nodes_to_the_host(tmp_path):
    root = tmp_path / "merged"
    (root / "etc").mkdir(parents=True)
    os.symlink("/etc", root / "dev")   # an image's /dev -> /etc: before pivot_root that is the host's /etc
    rec, _ = Recorder(), None
    spec = oci.build(REC, str(root), (0, 0, [0]), cgroup_version=2)
    rootfs.setup(str(root), spec, CGROUP_V2, linux=rec)
    assert ("unlink", f"{root}/dev") in rec.calls
    mknods = [c[1] for c in rec.calls if c[0] == "mknod"]
    assert mknods and all(p.startswith(f"{root}/dev/") for p in mknods)
    assert ("mount", "tmpfs", f"{root}/dev", "tmpfs", sc.MS_NOSUID | sc.MS_STRICTATIME, "mode=755,size=65536k") \
        in rec.calls


def test_no_device_nodes_into_a_dev_bound_from_the_host(tmp_path):
    rec, root = record(tmp_path, Mounts=[{"Type": "bind", "Source": "/dev", "Destination": "/dev", "RW": True}])
    assert "mknod" not in rec.names()
