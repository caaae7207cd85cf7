"""The container's root filesystem, as runc builds it (libcontainer/rootfs_linux.go).

Runs inside the container's new mount namespace, before the user's command:

 1. make every mount under / a *slave* (rslave): our mounts must not propagate back to
    the host, and pivot_root refuses (EINVAL) a root whose mounts are shared;
 2. bind the rootfs (the overlay `merged` dir) onto itself: pivot_root needs a mount point;
 3. mount the pseudo filesystems: /proc, /dev (a small tmpfs), /dev/pts, /dev/shm,
    /dev/mqueue, /sys (read-only);
 4. create the few device nodes every program expects (null, zero, full, random,
    urandom, tty) and the /dev/fd, /dev/std* symlinks;
 5. bind /etc/hostname, /etc/hosts and /etc/resolv.conf from the container's directory;
 6. pivot_root into it and detach the old root, so the host's files are gone for good
    (chroot only changes the starting point of path lookups, and can be escaped);
 7. mask and make read-only the dangerous parts of /proc and /sys (security.py).
"""
from __future__ import annotations

import os
import stat

from . import security
from ..fsutil import scoped_path
from .linux import syscalls as sc
from ..volumes import tmpfs_data

# (name, major, minor) with mode 0666 -- runc's default devices
DEVICES = [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
           ("urandom", 1, 9), ("tty", 5, 0)]
DEV_SYMLINKS = [("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"),
                ("/proc/self/fd/1", "stdout"), ("/proc/self/fd/2", "stderr"),
                ("pts/ptmx", "ptmx")]

NOSUID_NODEV_NOEXEC = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC
# (source, target, fstype, flags, data) -- mounted in this order
PSEUDO_MOUNTS = [
    ("proc", "/proc", "proc", NOSUID_NODEV_NOEXEC, None),
    ("tmpfs", "/dev", "tmpfs", sc.MS_NOSUID | sc.MS_STRICTATIME, "mode=755,size=65536k"),
    ("devpts", "/dev/pts", "devpts", sc.MS_NOSUID | sc.MS_NOEXEC,
     "newinstance,ptmxmode=0666,mode=0620,gid=5"),
    ("shm", "/dev/shm", "tmpfs", NOSUID_NODEV_NOEXEC, "mode=1777,size=65536k"),
    ("mqueue", "/dev/mqueue", "mqueue", NOSUID_NODEV_NOEXEC, None),
    ("sysfs", "/sys", "sysfs", NOSUID_NODEV_NOEXEC | sc.MS_RDONLY, None),
]


def make_mounts_private() -> None:
    """Step 1: / and everything below it becomes a slave mount in *this* namespace."""
    sc.mount(None, "/", None, sc.MS_SLAVE | sc.MS_REC)


def _inside(rootfs: str, path: str) -> str:
    return os.path.join(rootfs, path.lstrip("/"))


def _mkdir_p(path: str) -> None:
    # Refuse to follow a symlink planted by the image (e.g. /proc -> /etc): that would
    # mount over a directory of the host's choosing... or of the image author's.
    if os.path.islink(path):
        os.unlink(path)
    os.makedirs(path, mode=0o755, exist_ok=True)


def mount_pseudo_filesystems(rootfs: str) -> None:
    for source, target, fstype, flags, data in PSEUDO_MOUNTS:
        dest = _inside(rootfs, target)
        _mkdir_p(dest)
        sc.mount(source, dest, fstype, flags, data)


def create_devices(rootfs: str) -> None:
    dev = _inside(rootfs, "/dev")
    old = os.umask(0)
    try:
        for name, major, minor in DEVICES:
            os.mknod(os.path.join(dev, name), 0o666 | stat.S_IFCHR, os.makedev(major, minor))
    finally:
        os.umask(old)
    for target, name in DEV_SYMLINKS:
        os.symlink(target, os.path.join(dev, name))


def bind_file(host_path: str, rootfs: str, target: str, readonly: bool = False) -> None:
    """Bind one host file over a file in the container (docker's /etc/hosts trick)."""
    dest = _inside(rootfs, target)
    if os.path.islink(dest) or not os.path.exists(dest):
        if os.path.lexists(dest):
            os.unlink(dest)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        open(dest, "a").close()
    sc.mount(host_path, dest, None, sc.MS_BIND)
    if readonly:
        sc.mount(None, dest, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY)


def pivot_root(rootfs: str) -> None:
    """Step 6, runc's way: pivot_root(".", ".") stacks the old root on top of the new one;
    then we detach it. No temporary "put_old" directory is left in the container."""
    old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY)
    new_root = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY)
    try:
        os.fchdir(new_root)
        sc.pivot_root(".", ".")
        os.fchdir(old_root)  # we are now "inside" the old root, mounted over "/"
        sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC)  # never propagate the unmount
        sc.umount2(".", sc.MNT_DETACH)
        os.chdir("/")
    finally:
        os.close(old_root)
        os.close(new_root)


def mask_paths(paths: list[str] = security.MASKED_PATHS) -> None:
    """Hide files behind /dev/null and directories behind an empty read-only tmpfs."""
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            sc.mount("tmpfs", p, "tmpfs", sc.MS_RDONLY, None)
        else:
            sc.mount("/dev/null", p, None, sc.MS_BIND)


def readonly_paths(paths: list[str] = security.READONLY_PATHS) -> None:
    for p in paths:
        if not os.path.exists(p):
            continue
        sc.mount(p, p, None, sc.MS_BIND | sc.MS_REC)
        sc.mount(None, p, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | NOSUID_NODEV_NOEXEC)


def mount_cgroups(rootfs: str, mounts: list[tuple]) -> None:
    """/sys/fs/cgroup, read-only: the container may look at its limits, not change them."""
    for source, target, fstype, flags, data in mounts:
        dest = _inside(rootfs, target)
        os.makedirs(dest, exist_ok=True)
        ro = 0 if fstype == "tmpfs" else sc.MS_RDONLY
        sc.mount(source, dest, fstype, NOSUID_NODEV_NOEXEC | ro | flags, data)


def mount_volumes(rootfs: str, mounts: list[dict]) -> None:
    """Volumes and bind mounts (a bind of a host path) and tmpfs mounts (-v, --mount, --tmpfs).
    Read-only ones need a second, remount call: a bind mount ignores MS_RDONLY at first."""
    for m in mounts:
        # resolve the target as if rootfs were "/": a symlink the image planted on the way
        # (/data -> /etc) must not send the mount out to the host's files
        dest = scoped_path(os.path.realpath(rootfs), m["Destination"])
        if m["Type"] == "tmpfs":
            _mkdir_p(dest)
            flags, data = tmpfs_data(m.get("Mode") or "")
            sc.mount("tmpfs", dest, "tmpfs", flags, data or None)
            continue
        src = m["Source"]
        if os.path.isdir(src):
            _mkdir_p(dest)
        elif not os.path.exists(dest):
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            open(dest, "a").close()
        sc.mount(src, dest, None, sc.MS_BIND | sc.MS_REC)
        if not m.get("RW", True):
            sc.mount(None, dest, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_REC)


def setup(rootfs: str, etc_files: dict[str, str], cgroup_mounts: list[tuple] = (),
          mounts: list[dict] = ()) -> None:
    """Steps 1-6: after this call, "/" is the container's root."""
    make_mounts_private()
    sc.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC)
    mount_pseudo_filesystems(rootfs)
    mount_cgroups(rootfs, list(cgroup_mounts))
    create_devices(rootfs)
    for target, host_path in etc_files.items():
        bind_file(host_path, rootfs, target)
    mount_volumes(rootfs, list(mounts))
    pivot_root(rootfs)
    mask_paths()
    readonly_paths()
