"""`docker exec`: one more process inside a running container.

There is nothing to create: the container's namespaces and cgroup already exist. We join
them, the way `nsenter` does:

    open /proc/<pid 1>/ns/{ipc,uts,net,cgroup,pid,mnt}   (all first: after joining the mount
                                                          namespace, the host's /proc is gone)
    write our PID into the container's cgroups           (its limits apply to us too)
    setns() into each namespace                           (the PID namespace applies to
    fork()                                                 children only: hence the fork)
    the child: user, capabilities, working dir, execve   (like the container's own init)

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
import sys
import termios

from . import cgroups
from .linux import syscalls as sc
from . import init as initmod
from ..container import runconfig as specmod
from ..container.state import exit_code_from_wait_status

PR_SET_DUMPABLE = 4
NS_ORDER = ["ipc", "uts", "net", "cgroup", "pid", "mnt"]  # mnt last: it changes our root


def run(req: dict, err_fd: int) -> int:
    """In the helper: join, fork, exec; return the command's exit code (the helper's parent
    gets it as our exit status). Start errors go to err_fd as JSON."""
    def fail(code: int, message: str) -> int:
        os.write(err_fd, json.dumps({"code": code, "message": message}).encode())
        return code

    pid = req["pid"]
    sc.prctl(PR_SET_DUMPABLE, 0)
    try:
        fds = {kind: os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY) for kind in NS_ORDER}
    except FileNotFoundError:
        return fail(1, f"Container {req['cid']} is not running")
    try:
        cgroups.driver().add_process(req["cid"], os.getpid())
    except Exception as e:  # the container may have no cgroup (a v2 host without controllers)
        print(f"minidocker exec: not joining the container's cgroup: {e}", file=sys.stderr)
    for kind in NS_ORDER:
        sc.setns(fds.pop(kind), 0)
    master = slave = -1
    if req.get("tty"):
        master, slave = os.openpty()  # the terminal of the exec'd command
        _copy_winsize(0, master)
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
            _child(req, w)
        finally:
            os._exit(126)
    os.close(w)
    if slave >= 0:
        os.close(slave)
    failure = os.read(r, 65536)
    os.close(r)
    if failure:
        os.waitpid(child, 0)
        err = json.loads(failure)
        return fail(err["code"], err["message"])
    os.close(err_fd)  # EOF = "started": a detached exec's caller may go now
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # forward to the command
        signal.signal(s, lambda signo, frame: os.kill(child, signo))
    if master >= 0:
        _relay(master, req.get("interactive", False))
    _, status = os.waitpid(child, 0)
    return exit_code_from_wait_status(status)


def _copy_winsize(src: int, dst: int) -> None:
    try:
        fcntl.ioctl(dst, termios.TIOCSWINSZ, fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        pass


def _relay(master: int, interactive: bool) -> None:
    """Copy our stdin to the terminal and the terminal to our stdout until it closes."""
    sel = selectors.DefaultSelector()
    sel.register(master, selectors.EVENT_READ)
    if interactive:
        sel.register(0, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
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


def _child(req: dict, err_fd: int) -> None:
    try:
        for s in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_DFL)

        try:
            uid, gid, groups, home = initmod.user_from_etc(req.get("user", ""))
        except Exception as e:
            raise initmod.StartError(126, str(e)) from None
        env = specmod.process_env(req["env"], req["hostname"], req.get("tty", False), home)
        cwd = req.get("cwd") or "/"
        try:
            os.chdir(cwd)
        except OSError as e:
            raise initmod.StartError(126, f'chdir to cwd ("{cwd}") set in config.json failed: '
                                          f"{os.strerror(e.errno).lower()}") from None
        initmod.drop_privileges(uid, gid, groups, req.get("drop_caps", []))
        path_env = next((e[5:] for e in env if e.startswith("PATH=")), specmod.DEFAULT_PATH)
        exe = initmod.find_executable(req["argv"][0], path_env)
        os.execve(exe, req["argv"], dict(e.split("=", 1) for e in env if "=" in e))
    except initmod.StartError as e:
        # docker exec reports every start failure with 126 (runc exec's "exec failed")
        # worded as docker's CLI prints runc's failure (": unknown" is the gRPC status it ends with)
        os.write(err_fd, json.dumps({"code": 126, "message": f"OCI runtime exec failed: exec failed: "
                                                             f"unable to start container process: {e}: unknown"}).encode())
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
