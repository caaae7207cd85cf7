"""The thin syscall layer: the few Linux calls Python 3.11's `os` module lacks.

Everything in minidocker that needs the kernel beyond `os` goes through here, so a
learner can read in one file which system calls a container runtime really needs:

    unshare, setns        make / join namespaces
    mount, umount2        build the container's filesystem view
    pivot_root            swap the root filesystem (chroot cannot be escaped this way)
    sethostname           the UTS namespace's hostname
    prctl, capget/capset  capabilities and the child-subreaper flag
    prctl(PR_SET_SECCOMP) install a seccomp filter (core/seccomp.py)

Each wrapper turns a -1 return into an OSError carrying errno, the call's name and its
arguments, e.g. ``OSError(22, 'pivot_root(".", "."): Invalid argument')``.
Taught in notebooks 02 (mount, pivot_root) and 03 (unshare, setns).
"""
from __future__ import annotations

import ctypes
import errno
import os

_libc = ctypes.CDLL(None, use_errno=True)

# --- clone(2) / unshare(2) flags: one bit per namespace kind -----------------------
CLONE_NEWNS = 0x00020000      # mount
CLONE_NEWCGROUP = 0x02000000  # cgroup
CLONE_NEWUTS = 0x04000000     # hostname / domainname
CLONE_NEWIPC = 0x08000000     # System V IPC, POSIX message queues
CLONE_NEWUSER = 0x10000000    # user and group ids
CLONE_NEWPID = 0x20000000     # process ids (applies to children only!)
CLONE_NEWNET = 0x40000000     # network stack

# --- mount(2) flags ----------------------------------------------------------------
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24

# --- umount2(2) flags ----------------------------------------------------------------
MNT_DETACH = 2

# --- prctl(2) options ----------------------------------------------------------------
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NAME = 15
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2

# Syscall numbers, only for calls an old libc might not wrap.
_SYS = {
    "x86_64": {"pivot_root": 155},
    "aarch64": {"pivot_root": 41},
}.get(os.uname().machine, {})


def _check(ret: int, call: str) -> int:
    if ret == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{call}: {os.strerror(err)}")
    return ret


def _b(s: str | bytes | None) -> bytes | None:
    if s is None:
        return None
    return os.fsencode(s)


def unshare(flags: int) -> None:
    """Move the calling process into new namespaces of the kinds in `flags`."""
    _check(_libc.unshare(ctypes.c_int(flags)), f"unshare({flags:#x})")


def setns(fd: int, nstype: int = 0) -> None:
    """Join the namespace that `fd` (an open /proc/<pid>/ns/<kind>) refers to."""
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), f"setns({fd}, {nstype:#x})")


def mount(source: str | None, target: str, fstype: str | None = None,
          flags: int = 0, data: str | None = None) -> None:
    """mount(2). `source`/`fstype`/`data` may be None (e.g. for propagation changes)."""
    ret = _libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data))
    _check(ret, f"mount({source!r}, {target!r}, {fstype!r}, {flags:#x}, {data!r})")


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), ctypes.c_int(flags)), f"umount2({target!r}, {flags})")


def pivot_root(new_root: str, put_old: str) -> None:
    """Make `new_root` the root of this mount namespace; the old root moves to `put_old`."""
    call = f"pivot_root({new_root!r}, {put_old!r})"
    if hasattr(_libc, "pivot_root"):
        _check(_libc.pivot_root(_b(new_root), _b(put_old)), call)
    else:  # libc older than 2.36 has no wrapper: use the raw syscall
        _check(_libc.syscall(ctypes.c_long(_SYS["pivot_root"]), _b(new_root), _b(put_old)), call)


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, ctypes.c_size_t(len(raw))), f"sethostname({name!r})")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), ctypes.c_ulong(arg3),
                              ctypes.c_ulong(arg4), ctypes.c_ulong(arg5)), f"prctl({option})")


PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


class _SockFprog(ctypes.Structure):  # struct sock_fprog: the program's length and its instructions
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def seccomp_filter(bpf: bytes) -> None:
    """Install a seccomp filter (classic BPF, 8 bytes per instruction) on the calling thread.
    Needs CAP_SYS_ADMIN or no_new_privs; can never be undone (core/seccomp.py reads and runs one)."""
    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = _SockFprog(len(bpf) // 8, ctypes.cast(buf, ctypes.c_void_p))
    _check(_libc.prctl(ctypes.c_int(PR_SET_SECCOMP), ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(prog),
                       ctypes.c_ulong(0), ctypes.c_ulong(0)), f"prctl(PR_SET_SECCOMP, {len(bpf) // 8} instructions)")


def set_process_name(name: str) -> None:
    """Set the name `ps` shows in its COMM column (15 bytes max)."""
    buf = ctypes.create_string_buffer(name.encode()[:15])
    _check(_libc.prctl(PR_SET_NAME, buf, 0, 0, 0), "prctl(PR_SET_NAME)")


# --- capabilities ------------------------------------------------------------------
# Capability sets are 64-bit masks, passed to capset(2) as two 32-bit halves.
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def capget(pid: int = 0) -> tuple[int, int, int]:
    """Return (effective, permitted, inheritable) capability masks of `pid` (0 = self)."""
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, pid)
    data = (_CapData * 2)()
    _check(_libc.capget(ctypes.byref(hdr), data), "capget")
    join = lambda lo, hi: lo | (hi << 32)  # noqa: E731
    return (join(data[0].effective, data[1].effective),
            join(data[0].permitted, data[1].permitted),
            join(data[0].inheritable, data[1].inheritable))


def capset(effective: int, permitted: int, inheritable: int) -> None:
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i, shift in enumerate((0, 32)):
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_libc.capset(ctypes.byref(hdr), data), "capset")


def cap_last_cap() -> int:
    """Highest capability number this kernel knows."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return 40


def capbset_drop(cap: int) -> None:
    try:
        prctl(PR_CAPBSET_DROP, cap)
    except OSError as e:
        if e.errno != errno.EINVAL:  # EINVAL: the kernel does not know this cap
            raise


def flag_names(flags: int, prefix: str = "MS_") -> str:
    """MS_BIND | MS_REC -> "MS_BIND|MS_REC" (for printouts of what a runtime does)."""
    known = sorted((v, n) for n, v in globals().items() if n.startswith(prefix) and isinstance(v, int))
    names = [n for v, n in known if v and flags & v == v and bin(v).count("1") == 1]
    rest = flags & ~sum(globals()[n] for n in names)
    return "|".join(names + ([hex(rest)] if rest else [])) or "0"


class Linux:
    """The calls that change the kernel's view of a container, as one object.

    core/rootfs.py makes every change through one of these, never directly, so the very same
    code can run against a Recorder (core/linux/recorder.py) that writes the calls down instead
    of making them: a test without root checks their order, a notebook prints them. (youki, a
    runtime in Rust, injects its syscall layer the same way.) Questions about files (does
    /proc/kcore exist? is it a directory?) are asked of the real filesystem in both cases."""

    def mount(self, source, target, fstype=None, flags=0, data=None) -> None:
        mount(source, target, fstype, flags, data)

    def umount2(self, target: str, flags: int = 0) -> None:
        umount2(target, flags)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        pivot_root(new_root, put_old)

    def mknod(self, path: str, mode: int, device: int) -> None:
        os.mknod(path, mode, device)

    def symlink(self, target: str, path: str) -> None:
        os.symlink(target, path)

    def mkdir_p(self, path: str, mode: int = 0o755) -> None:
        os.makedirs(path, mode=mode, exist_ok=True)

    def chmod(self, path: str, mode: int) -> None:
        os.chmod(path, mode)

    def touch(self, path: str) -> None:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))

    def chown(self, path: str, uid: int, gid: int) -> None:
        os.chown(path, uid, gid, follow_symlinks=False)

    def unlink(self, path: str) -> None:
        os.unlink(path)

    def open_dir(self, path: str) -> int:
        return os.open(path, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)

    def fchdir(self, fd: int) -> None:
        os.fchdir(fd)

    def chdir(self, path: str) -> None:
        os.chdir(path)

    def close(self, fd: int) -> None:
        os.close(fd)

    def umask(self, mask: int) -> int:
        return os.umask(mask)

    def sethostname(self, name: str) -> None:
        sethostname(name)


LINUX = Linux()


# rt_sigaction(2) by number: glibc's sigaction() refuses signals 32 and 33 (it keeps them for
# its threads), yet they can arrive ignored from a parent (GNU make leaves them so).
SYS_RT_SIGACTION = {"x86_64": 13, "aarch64": 134}


def default_signal_action(sig: int) -> None:
    """Set `sig` back to SIG_DFL with the raw system call (an all-zero kernel sigaction)."""
    nr = SYS_RT_SIGACTION.get(os.uname().machine)
    if nr is None:
        return
    act = ctypes.create_string_buffer(32)  # handler=SIG_DFL(0), no flags, no restorer, empty mask
    _libc.syscall(ctypes.c_long(nr), ctypes.c_int(sig), act, None, ctypes.c_size_t(8))
