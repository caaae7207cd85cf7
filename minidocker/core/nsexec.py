"""`docker exec` (`runc exec`): one more process inside a running container.

Taught in notebook 03 (namespaces).

There is nothing to create: the container's namespaces and cgroup already exist. We join
them, the way `nsenter` does:

    open /proc/<pid 1>/ns/{[user],ipc,uts,net,cgroup,pid,mnt}  (all first: after joining the mount
                                                          namespace, the host's /proc is gone)
    write our PID into the container's cgroups           (its limits apply to us too)
    setns() into each namespace                           (the PID namespace applies to
    fork()                                                 children only: hence the fork)
    the child: init.finalize(process), execve            (the same tail as the container's init)

Everything is imported before joining: after setns() into the mount namespace the host's
files, Python's own modules included, are out of reach.

This runs in a fresh helper process (never in the caller: a Jupyter kernel is
multi-threaded). Before joining, the helper makes itself non-dumpable: a process in the
container could otherwise open /proc/<our pid>/exe -- the host's Python -- and overwrite it
(runc's CVE-2019-5736).
"""
from __future__ import annotations

import fcntl
import json
import os
import selectors
import signal
import struct
import sys
import termios

from . import cgroups
from . import init as initmod
from .linux import syscalls as sc
from .runc import exit_status
from .stdio import StdinFeeder

NS_ORDER = ["ipc", "uts", "net", "cgroup", "pid", "mnt"]  # mnt last: it changes our root


def run(req: dict, err_fd: int) -> int:
    """In the helper: join, fork, exec; return the command's exit code (the helper's parent
    gets it as our exit status). Start errors go to err_fd as JSON."""
    def fail(code: int, message: str) -> int:
        os.write(err_fd, json.dumps({"code": code, "message": message}).encode())
        return code

    pid = req["pid"]
    sc.prctl(sc.PR_SET_DUMPABLE, 0)
    # the container's seccomp filter, compiled while the host's libseccomp is reachable
    bpf = initmod.compile_seccomp({"linux": {"seccomp": req.get("seccomp")}})
    os.set_inheritable(err_fd, False)  # the command must never get the pipe to our caller
    order = list(NS_ORDER)
    try:
        if os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user"):
            # a user namespace first: its root is who may enter the other namespaces, which it owns
            order.insert(0, "user")
        fds = {kind: os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC) for kind in order}
    except FileNotFoundError:
        return fail(1, f"Container {req['cid']} is not running")
    try:
        cgroups.driver(req["cgroup_parent"]).add_process(req["cid"], os.getpid())
    except Exception as e:  # the container may have no cgroup (a v2 host without controllers)
        print(f"minidocker exec: not joining the container's cgroup: {e}", file=sys.stderr)
    for kind in order:
        fd = fds.pop(kind)
        sc.setns(fd, 0)
        os.close(fd)
    master = slave = -1
    pipes: dict[str, tuple[int, int]] = {}
    console_fd = req.get("console_fd")  # (minidocker-runc exec --console-socket: the master goes there)
    if req.get("tty"):
        master, slave = os.openpty()  # the terminal of the exec'd command (on the container's devpts)
        _copy_winsize(0, master)
    elif console_fd is not None or req.get("inherit_stdio"):
        pass  # the command gets our own stdio (runc exec without -t: the caller's pipes)
    else:  # pipes, never our caller's own terminal (core/stdio.py)
        if req.get("interactive"):
            pipes["in"] = os.pipe()
        pipes["out"], pipes["err"] = os.pipe(), os.pipe()
    r, w = os.pipe2(os.O_CLOEXEC)
    child = os.fork()
    if child == 0:
        os.close(r)
        try:
            if slave >= 0:
                os.close(master)
                os.setsid()
                fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
                for fd in (0, 1, 2):
                    os.dup2(slave, fd)
            elif pipes:
                devnull = os.open("/dev/null", os.O_RDWR)
                os.dup2(pipes["in"][0] if "in" in pipes else devnull, 0)
                os.dup2(pipes["out"][1], 1)
                os.dup2(pipes["err"][1], 2)
            _child(req, w, bpf)
        finally:
            os._exit(126)
    os.close(w)
    if slave >= 0:
        os.close(slave)
    for name, (pr, pw) in pipes.items():
        os.close(pr if name == "in" else pw)  # keep our ends: the write end of "in", the read ends
    failure = os.read(r, 65536)
    os.close(r)
    if failure:
        os.waitpid(child, 0)
        err = json.loads(failure)
        return fail(err["code"], err["message"])
    os.close(err_fd)  # EOF = "started": a detached exec's caller may go now
    if req.get("pid_fd") is not None:  # (runc exec --pid-file: the command's host PID)
        os.write(req["pid_fd"], str(child).encode())
        os.close(req["pid_fd"])
    if console_fd is not None and master >= 0:  # runc's --console-socket: the caller relays
        import socket
        with socket.socket(fileno=console_fd) as sock:
            socket.send_fds(sock, [b"pty"], [master])
        os.close(master)
        master = -1
    if req.get("detach"):
        return 0  # the command runs on, re-parented to the caller's subreaper (containerd's shim)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # forward to the command
        signal.signal(s, lambda signo, frame: os.kill(child, signo))
    if req.get("kill_after"):  # a health probe's timeout: the command is killed, as dockerd kills it
        signal.signal(signal.SIGALRM, lambda signo, frame: os.kill(child, signal.SIGKILL))
        signal.setitimer(signal.ITIMER_REAL, float(req["kill_after"]))
    if master >= 0:
        if os.isatty(0):  # our caller's terminal changed size (exec -it): the command's follows
            signal.signal(signal.SIGWINCH, lambda signo, frame: _copy_winsize(0, master))
        relay(master, req.get("interactive", False), req.get("resize_fd"))
    elif pipes:
        _copy_pipes(pipes)
    _, status = os.waitpid(child, 0)
    return exit_status(status)


def _copy_pipes(pipes: dict[str, tuple[int, int]]) -> None:
    """Our stdin into the command's stdin pipe (with -i), its stdout and stderr pipes to ours."""
    sel = selectors.PollSelector()  # (poll: our stdin may be a regular file)
    feeder = None
    if "in" in pipes:
        feeder = StdinFeeder(0, pipes["in"][1])
        feeder.register(sel)
    outputs = {pipes["out"][0]: 1, pipes["err"][0]: 2}
    for fd in outputs:
        sel.register(fd, selectors.EVENT_READ, ("out", None))
    while outputs:
        for key, _ in sel.select():
            kind, obj = key.data
            if kind == "stdin-feed":
                obj.handle(key.fd)
                continue
            data = os.read(key.fd, 65536)
            if not data:
                sel.unregister(key.fd)
                os.close(key.fd)
                del outputs[key.fd]
                continue
            try:
                os.write(outputs[key.fd], data)
            except OSError:
                pass  # our caller stopped reading; the command runs on
    if feeder is not None:
        feeder.close()


def _copy_winsize(src: int, dst: int) -> None:
    try:
        fcntl.ioctl(dst, termios.TIOCSWINSZ, fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        pass


def relay(master: int, interactive: bool, resize_fd: int | None = None) -> None:
    """Copy our stdin to the terminal and the terminal to our stdout until it closes.
    `resize_fd`: a pipe of "rows cols" lines, the sizes a caller without a terminal asks for
    (POST /exec/{id}/resize)."""
    sel = selectors.DefaultSelector()
    sel.register(master, selectors.EVENT_READ)
    if interactive:
        sel.register(0, selectors.EVENT_READ)
    if resize_fd is not None:
        sel.register(resize_fd, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            if key.fd == resize_fd:
                _resize_from(resize_fd, master, sel)
                continue
            try:
                data = os.read(key.fd, 65536)
            except OSError:  # EIO: the command (and everything holding the terminal) ended
                data = b""
            if key.fd == master:
                if not data:
                    os.close(master)
                    return
                os.write(1, data)
            elif data:
                os.write(master, data)
            else:
                sel.unregister(0)


def _resize_from(fd: int, master: int, sel) -> None:
    data = os.read(fd, 4096)
    if not data:
        sel.unregister(fd)
        return
    try:
        rows, cols = (int(x) for x in data.split(b"\n")[-2].split()[:2])  # (the latest size sent)
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    except (ValueError, IndexError, OSError):
        pass


def _child(req: dict, err_fd: int, bpf: bytes | None = None) -> None:
    try:
        initmod.reset_signals()
        initmod.close_fds({err_fd})  # stdio only, as in the container's own init
        exe, argv, env = initmod.finalize(req["process"], bpf)
        initmod.execve(exe, argv, env)
    except initmod.StartError as e:
        # docker exec reports every start failure with 126 (runc exec's "exec failed"),
        # worded as docker's CLI prints runc's failure (": unknown" is the gRPC status it ends with)
        message = f"OCI runtime exec failed: exec failed: unable to start container process: {e}: unknown"
        os.write(err_fd, json.dumps({"code": 126, "message": message}).encode())
        os._exit(126)
    except BaseException as e:  # noqa: BLE001
        os.write(err_fd, json.dumps({"code": 126, "message": f"{type(e).__name__}: {e}"}).encode())
        os._exit(126)


def main() -> int:
    req = json.loads(sys.argv[1])
    err_fd = int(sys.argv[2])
    return run(req, err_fd)


if __name__ == "__main__":
    sys.exit(main())
