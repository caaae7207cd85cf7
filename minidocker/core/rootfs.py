"""The container's root filesystem, as runc builds it (libcontainer/rootfs_linux.go).

Taught in notebook 02 (rootfs); the order of the calls below is printed there, and asserted
by tests/test_rootfs_order.py without root (through a recording syscall layer). pivot_root()
is a step a learner replaces in notebook 99 (core/steps.py).

Runs inside the container's new mount namespace, before the user's command:

 1. make every mount under / a *slave* (rslave): our mounts must not propagate back to
    the host, and pivot_root refuses (EINVAL) a root whose mounts are shared;
 2. bind the rootfs (the overlay `merged` dir) onto itself: pivot_root needs a mount point;
 3. mount what config.json's `mounts` list, in its order: /proc, /dev (a small tmpfs),
    /dev/pts, /sys (read-only), /sys/fs/cgroup, /dev/mqueue, /dev/shm, then the volumes, and
    the container's own /etc/hosts, /etc/hostname and /etc/resolv.conf (bind mounts);
 4. create the few device nodes every program expects (null, zero, full, random,
    urandom, tty) and the /dev/fd, /dev/std* symlinks;
 5. pivot_root into it and detach the old root, so the host's files are gone for good
    (chroot only changes the starting point of path lookups, and can be escaped);
 6. make read-only and mask the dangerous parts of /proc and /sys (linux.readonlyPaths,
    linux.maskedPaths), and the root itself read-only if root.readonly says so.

Every change goes through `linux` (core/linux/syscalls.Linux); only questions about files go
to the filesystem directly.
"""
from __future__ import annotations

import os
import stat

from ..fsutil import scoped_path
from .bundle import is_bind, parse_mount_options
from .userns import running_in_user_namespace
from . import steps
from .linux import syscalls as sc
from .linux.syscalls import LINUX

# (name, major, minor) with mode 0666 -- runc's default devices
DEVICES = [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
           ("urandom", 1, 9), ("tty", 5, 0)]
DEV_SYMLINKS = [("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"),
                ("/proc/self/fd/1", "stdout"), ("/proc/self/fd/2", "stderr"),
                ("pts/ptmx", "ptmx")]
NOSUID_NODEV_NOEXEC = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC


def target(rootfs: str, destination: str, kind: str = "bind", linux=LINUX) -> str:
    """Where `destination` is on the host: resolved as if rootfs were "/", so a symlink the
    image planted (/data -> /etc) leads to the container's /etc, never the host's (runc's
    securejoin). Only a bind mount follows a symlink in the last place; a new filesystem
    (proc, /dev's tmpfs, ...) replaces it by a directory (an image's /dev -> /etc would
    otherwise get /dev's device nodes)."""
    if kind == "bind":
        return scoped_path(rootfs, destination)
    parent, name = os.path.split(destination.rstrip("/") or "/")
    path = os.path.join(scoped_path(rootfs, parent), name) if name else rootfs
    if os.path.islink(path):
        linux.unlink(path)
    return path


def make_mounts_private(propagation: str = "rslave", linux=LINUX) -> None:
    """Step 1: / and everything below it becomes a slave (or private) mount in *this* namespace."""
    linux.mount(None, "/", None, (parse_mount_options([propagation])[1] or [sc.MS_SLAVE | sc.MS_REC])[0])


def mount_entry(rootfs: str, m: dict, cgroup_mounts: list[tuple], linux=LINUX) -> None:
    """One entry of config.json's `mounts`."""
    flags, propagation, data = parse_mount_options(m.get("options") or [])
    kind, source = m.get("type") or "", m.get("source") or ""
    if flags & sc.MS_BIND:
        kind = "bind"
    dest = target(rootfs, m["destination"], kind, linux)
    if kind == "cgroup":
        mount_cgroups(rootfs, dest, flags, cgroup_mounts, linux)
    elif kind == "bind":
        if os.path.isdir(source):
            linux.mkdir_p(dest)
        elif not os.path.exists(dest):
            linux.mkdir_p(os.path.dirname(dest))
            linux.touch(dest)
        linux.mount(source, dest, None, sc.MS_BIND | (flags & sc.MS_REC))
        extra = flags & ~(sc.MS_BIND | sc.MS_REC)
        if extra:  # a bind mount ignores ro, nosuid, ... at first: a second, remount call sets
            # them (on this mount only: MS_REC does nothing here, submounts stay as they were)
            linux.mount(None, dest, None, sc.MS_BIND | sc.MS_REMOUNT | (flags & sc.MS_REC) | extra)
    else:
        linux.mkdir_p(dest)
        try:
            linux.mount(source or kind, dest, kind, flags, data or None)
        except PermissionError:
            if kind != "sysfs":
                raise
            # In a user namespace with the host's network namespace, a new sysfs is refused
            # (it belongs to that network namespace's owner): bind the host's, read-only (runc too).
            linux.mount("/sys", dest, None, sc.MS_BIND | sc.MS_REC)
            linux.mount(None, dest, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_REC | flags)
    for change in propagation:
        linux.mount(None, dest, None, change)


def mount_cgroups(rootfs: str, dest: str, flags: int, mounts: list[tuple], linux=LINUX) -> None:
    """/sys/fs/cgroup, read-only: the container may look at its limits, not change them.
    `mounts` (from core/cgroups: one cgroup2 mount on v2; a tmpfs and one mount per v1
    hierarchy on v1) replace config.json's single "cgroup" entry, as runc expands it."""
    for source, tgt, fstype, extra, data in mounts:
        where = os.path.join(rootfs, tgt.lstrip("/")) if tgt != "/sys/fs/cgroup" else dest
        linux.mkdir_p(where)
        ro = 0 if fstype == "tmpfs" else flags & sc.MS_RDONLY
        if fstype == "bind":  # (core/runc.py's v1 binds, in a user namespace)
            linux.mount(source, where, None, sc.MS_BIND)
            linux.mount(None, where, None, sc.MS_BIND | sc.MS_REMOUNT | NOSUID_NODEV_NOEXEC | ro)
            continue
        linux.mount(source, where, fstype, NOSUID_NODEV_NOEXEC | ro | extra, data)
    if flags & sc.MS_RDONLY and any(fstype == "tmpfs" for _, _, fstype, _, _ in mounts):
        # v1: the tmpfs holding the hierarchies stays a writable mount, but its root becomes
        # r-x for everyone, as runc leaves it (dr-xr-xr-x: only CAP_DAC_OVERRIDE writes there)
        linux.chmod(dest, 0o555)


def create_devices(rootfs: str, linux=LINUX, *, userns: bool = False) -> None:
    """Step 4: the device nodes (mode 0666, whatever the umask) and the /dev symlinks, in the
    container's /dev (resolved inside the rootfs: never through a symlink out of it).
    In a user namespace mknod(2) is refused (a device node is a door to the host's hardware):
    the host's own nodes are bind-mounted instead, as runc does."""
    dev = target(rootfs, "/dev", "tmpfs", linux)
    old = linux.umask(0)
    try:
        for name, major, minor in DEVICES:
            if userns:
                linux.touch(os.path.join(dev, name))
                linux.mount(f"/dev/{name}", os.path.join(dev, name), None, sc.MS_BIND)
            else:
                linux.mknod(os.path.join(dev, name), 0o666 | stat.S_IFCHR, os.makedev(major, minor))
    finally:
        linux.umask(old)
    for tgt, name in DEV_SYMLINKS:
        linux.symlink(tgt, os.path.join(dev, name))


DEVICE_MODES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def create_spec_devices(rootfs: str, devices: list[dict], linux=LINUX, *, userns: bool = False) -> None:
    """linux.devices (--privileged: every node of the host's /dev), after the default ones.
    In a user namespace, the host's node at the same path is bound instead (as runc does)."""
    dev = target(rootfs, "/dev", "tmpfs", linux)
    old = linux.umask(0)
    try:
        for d in devices:
            path = os.path.join(dev, os.path.relpath(d["path"], "/dev"))
            linux.mkdir_p(os.path.dirname(path))
            if os.path.lexists(path):
                linux.unlink(path)  # (the spec's node wins over a default one)
            if userns:
                linux.touch(path)
                linux.mount(d["path"], path, None, sc.MS_BIND)
                continue
            mode = int(d.get("fileMode", 0o666)) & 0o7777
            linux.mknod(path, mode | DEVICE_MODES[d["type"]], os.makedev(d.get("major", 0), d.get("minor", 0)))
            linux.chown(path, int(d.get("uid", 0)), int(d.get("gid", 0)))
    finally:
        linux.umask(old)


def dev_is_bound(spec: dict) -> bool:
    return any(m.get("destination") == "/dev" and is_bind(m) for m in spec.get("mounts") or [])


def pivot_root(rootfs: str, linux=LINUX) -> None:
    """Step 5, runc's way: pivot_root(".", ".") stacks the old root on top of the new one;
    then we detach it. No temporary "put_old" directory is left in the container."""
    old_root = linux.open_dir("/")
    new_root = linux.open_dir(rootfs)
    try:
        linux.fchdir(new_root)
        linux.pivot_root(".", ".")
        linux.fchdir(old_root)  # we are now "inside" the old root, mounted over "/"
        linux.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC)  # never propagate the unmount
        linux.umount2(".", sc.MNT_DETACH)
        linux.chdir("/")
    finally:
        linux.close(old_root)
        linux.close(new_root)


def readonly_paths(paths: list[str], linux=LINUX) -> None:
    for p in paths:
        if not os.path.exists(p):
            continue
        linux.mount(p, p, None, sc.MS_BIND | sc.MS_REC)
        linux.mount(None, p, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_REC | NOSUID_NODEV_NOEXEC)


def mask_paths(paths: list[str], linux=LINUX) -> None:
    """Hide files behind /dev/null and directories behind an empty read-only tmpfs."""
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            linux.mount("tmpfs", p, "tmpfs", sc.MS_RDONLY, None)
        else:
            linux.mount("/dev/null", p, None, sc.MS_BIND)


def setup(rootfs: str, spec: dict, cgroup_mounts: list[tuple] = (), linux=LINUX) -> None:
    """Steps 1-6 for the OCI spec `spec`: after this call, "/" is the container's root."""
    lx = spec.get("linux") or {}
    rootfs = os.path.realpath(rootfs)
    make_mounts_private(lx.get("rootfsPropagation") or "rslave", linux)
    linux.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC)
    for m in spec.get("mounts") or []:
        mount_entry(rootfs, m, list(cgroup_mounts), linux)
    if not dev_is_bound(spec):  # (never into a /dev bound from the host: runc's needsSetupDev)
        # (in a user namespace of the spec's, or already in one: rootless mode, core/rootless.py)
        userns = any(ns.get("type") == "user" for ns in lx.get("namespaces") or []) or running_in_user_namespace()
        create_devices(rootfs, linux, userns=userns)
        if lx.get("devices"):
            create_spec_devices(rootfs, lx["devices"], linux, userns=userns)
    steps.get("pivot_root", pivot_root)(rootfs, linux)  # (a learner's, in notebook 99)
    for key, value in (lx.get("sysctl") or {}).items():  # (checked: the container's namespaces only)
        with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
            f.write(str(value))
    readonly_paths(lx.get("readonlyPaths") or [], linux)
    mask_paths(lx.get("maskedPaths") or [], linux)
    if (spec.get("root") or {}).get("readonly"):
        linux.mount(None, "/", None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY)
