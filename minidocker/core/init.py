"""Inside the container: the child side, from new namespaces to execve() of the user's command.

The monitor (shim.py) has already called unshare(CLONE_NEWPID) and fork()ed us, so this
process is PID 1 of a new PID namespace. From here (runc calls this "init"):

    unshare(mount, UTS, IPC, network)  new namespaces for the rest
    tell the monitor "ready", wait for "go"  (it may configure cgroups and network now)
    rootfs.setup()                      mounts, /dev, pivot_root
    sethostname()                       in our own UTS namespace only
    [-t] make a terminal inside the container and hand its master to the monitor
    capabilities, groups, gid, uid      drop privileges, in that order
    chdir(WorkingDir), close stray fds  (CVE-2024-21626: no host fd may leak in)
    execve(argv)                        from here on, PID 1 is the user's program

Any failure before execve is reported on `err_fd` (closed automatically by a successful
execve thanks to O_CLOEXEC), so the monitor can tell "could not start" (exit 125/126/127)
from "started, then exited".
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import socket
import stat
import struct
import termios

from . import rootfs, security
from .linux import netdev
from .linux import syscalls as sc
from ..container import runconfig as specmod

NEW_NAMESPACES = sc.CLONE_NEWNS | sc.CLONE_NEWUTS | sc.CLONE_NEWIPC
TIOCSPTLCK = getattr(termios, "TIOCSPTLCK", 0x40045431)
TIOCGPTN = getattr(termios, "TIOCGPTN", 0x80045430)


class StartError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def find_executable(name: str, path_env: str) -> str:
    """Go's exec.LookPath, as runc uses it, evaluated inside the new root."""
    def check(p: str) -> None:
        try:
            st = os.stat(p)
        except FileNotFoundError:
            raise StartError(127, f'exec: "{name}": stat {p}: no such file or directory') from None
        except NotADirectoryError:
            raise StartError(127, f'exec: "{name}": stat {p}: not a directory') from None
        if stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o111:
            raise StartError(126, f'exec: "{name}": permission denied')

    if "/" in name:
        check(name)
        return name
    for d in path_env.split(":"):
        candidate = os.path.join(d or ".", name)
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            return candidate
    raise StartError(127, f'exec: "{name}": executable file not found in $PATH')


def _make_terminal(console_sock: int) -> None:
    """Open a pty pair on the container's own /dev/pts (as runc does with --console-socket),
    make the slave our controlling terminal and stdio, and pass the master to the monitor."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    n = struct.unpack("i", fcntl.ioctl(master, TIOCGPTN, struct.pack("i", 0)))[0]
    slave_path = f"/dev/pts/{n}"
    slave = os.open(slave_path, os.O_RDWR | os.O_NOCTTY)
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)
    # /dev/console is the container's terminal too
    if not os.path.exists("/dev/console"):
        open("/dev/console", "a").close()
    sc.mount(slave_path, "/dev/console", None, sc.MS_BIND)
    sock = socket.socket(fileno=console_sock)
    try:
        socket.send_fds(sock, [b"pty"], [master])
    finally:
        sock.close()  # closes console_sock too
    os.close(master)


def drop_privileges(uid: int, gid: int, groups: list[int], drop: list[str]) -> None:
    keep = security.cap_mask([c for c in security.DEFAULT_CAPS if c not in drop])
    for cap in range(sc.cap_last_cap() + 1):
        if not keep >> cap & 1:
            sc.capbset_drop(cap)  # gone for good, even across setuid binaries
    os.setgroups(groups)
    os.setgid(gid)
    os.setuid(uid)  # a non-root uid loses all remaining capabilities here
    if uid == 0:
        sc.capset(keep, keep, 0)  # inheritable stays empty, as in Docker


def _close_fds(keep: set[int]) -> None:
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _report(err_fd: int, code: int, message: str) -> None:
    try:
        os.write(err_fd, json.dumps({"code": code, "message": message}).encode())
    except OSError:
        pass


def user_from_etc(user: str) -> tuple[int, int, list[int], str]:
    """Resolve `-u user[:group]` against /etc/passwd and /etc/group of the root we are in now
    (the container's, after pivot_root): uid, gid, supplementary groups, home."""
    def read(p: str) -> str:
        try:
            with open(p) as f:
                return f.read()
        except OSError:
            return ""
    return specmod.resolve_user(user, read("/etc/passwd"), read("/etc/group"))

def run(spec: dict, sync_r: int, sync_w: int, err_fd: int, console_sock: int | None) -> None:
    """Never returns: execve()s the user's command or exits with the error code."""
    try:
        for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)  # ignored signals would survive execve
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        sc.unshare(NEW_NAMESPACES)
        net = spec.get("net", {"kind": "none"})
        if net["kind"] == "container":      # --network container:x  -> x's namespace
            sc.setns(net["join_fd"], sc.CLONE_NEWNET)
            os.close(net["join_fd"])
        elif net["kind"] != "host":         # --network host -> stay in the host's namespace
            sc.unshare(sc.CLONE_NEWNET)
            netdev.link_up("lo")  # a new network namespace's loopback starts down
        os.write(sync_w, b"R")
        if os.read(sync_r, 1) != b"G":
            os._exit(1)  # the monitor gave up on us
        os.close(sync_r)
        os.close(sync_w)
        # Now that the monitor has put us in our cgroup, a new cgroup namespace makes that
        # cgroup look like the root ("/") from inside, as /proc/self/cgroup will show.
        sc.unshare(sc.CLONE_NEWCGROUP)

        rootfs.setup(spec["rootfs"], spec["etc_files"], spec.get("cgroup_mounts", []), spec.get("mounts", []))
        sc.sethostname(spec["hostname"])

        try:
            uid, gid, groups, home = user_from_etc(spec.get("user", ""))
        except Exception as e:  # docker checks the user before starting: exit 125
            raise StartError(125, str(e)) from None
        env = specmod.process_env(spec["env"], spec["hostname"], spec.get("tty", False), home)
        cwd = spec.get("cwd") or "/"
        os.makedirs(cwd, mode=0o755, exist_ok=True)  # docker creates a missing WORKDIR
        os.chdir(cwd)
        if console_sock is not None:
            _make_terminal(console_sock)
        drop_privileges(uid, gid, groups, spec.get("drop_caps", []))
        try:
            os.chdir(cwd)  # again, as the user: fails if they may not enter it
        except PermissionError:
            raise StartError(126, f"chdir to cwd (\"{cwd}\") set in config.json failed: "
                                  "permission denied") from None
        path_env = next((e[5:] for e in env if e.startswith("PATH=")), specmod.DEFAULT_PATH)
        exe = find_executable(spec["argv"][0], path_env)
        _close_fds({err_fd})
        try:
            os.execve(exe, spec["argv"], dict(e.split("=", 1) for e in env if "=" in e))
        except OSError as e:
            code = 127 if e.errno == errno.ENOENT else 126
            raise StartError(code, f'exec: "{spec["argv"][0]}": {os.strerror(e.errno).lower()}')
    except StartError as e:
        msg = str(e) if e.code == 125 else f"unable to start container process: {e}"
        _report(err_fd, e.code, msg)
        os._exit(e.code)
    except BaseException as e:  # noqa: BLE001 -- nothing may escape a forked child
        _report(err_fd, 125, f"{type(e).__name__}: {e}")
        os._exit(125)
