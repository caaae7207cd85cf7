"""`docker start`: hand the container to a monitor process of its own, and wait until its
program runs (or could not be started).

Taught in notebook 01. The monitor (engine/monitor.py, then core/shim.py) is a fresh Python
process, never a fork of the caller: a Jupyter kernel is multi-threaded, and fork() of a
threaded process can deadlock the child. It reports back on a status pipe, one JSON event
per line: {"event": "started", "pid": ...}, {"event": "error", "code": 127, "message": ...},
later {"event": "exited", "code": ...} for a caller that stays attached.

`run` spawns the monitor before it even creates the container (EarlyMonitor, with the id the
container will get): starting Python and importing what a monitor needs takes ~40 ms, which then
overlaps the create on the other CPU. That monitor waits for "go" on its stdin.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from ..container import state as st
from ..core import steps
from ..network import netlink_helper
from ..errors import MinidockerError, RuntimeFailure
from .reconcile import reconcile, wait_not_running

# The directory that holds the `minidocker` package: it goes first on the monitor's path
# (an editable install is found through a .pth hook that `python -S` skips).
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def helper_env() -> dict:
    """The environment of a helper process (monitor, exec): our own import path, carried over."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([PACKAGE_PARENT] + [p for p in sys.path if p]))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # let Python cache compiled modules
    return env


class StatusPipe:
    """The read end of the monitor's status pipe."""

    def __init__(self, fd: int):
        self.f = os.fdopen(fd, "rb", buffering=0)
        self.buf = b""

    def next_event(self) -> dict | None:
        while b"\n" not in self.buf:
            chunk = self.f.read(4096)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def close(self) -> None:
        self.f.close()


class StartedContainer:
    """What `start` returns: the PID of the container's init, and a way to wait for its exit."""

    def __init__(self, pid: int, status: StatusPipe | None = None):
        self.pid = pid
        self._status = status
        self.detached = False

    def wait_exit(self) -> int | None:
        """Block until the monitor reports the exit code (None if it died without saying)."""
        if self._status is None:
            return None
        ev = self._status.next_event()
        self._status.close()
        self._status = None
        if ev and ev.get("event") == "detached":
            self.detached = True  # ctrl-p ctrl-q: the container runs on without us
            return 0
        return ev.get("code") if ev and ev.get("event") == "exited" else None


class EarlyMonitor:
    """A container's monitor, spawned before the container exists (`run`): it starts Python and
    does its imports while the caller creates the container under the id chosen here, then
    waits for "go" on its stdin. Its command line is a monitor's (root, id, fds): `ps` and
    `system prune` know it as one. If the create fails, it reads EOF and exits."""

    def __init__(self, root: str, cid: str, attach: tuple[int, int, int] | None,
                 netlink: netlink_helper.NetlinkHelper | None = None):
        self.cid, self.attach = cid, attach
        control_r, self.control = os.pipe()         # "go", on its stdin
        try:
            # (stderr: not ours, which a caller of `run -d` may read to its end; the monitor takes
            # the container's shim.log once the container exists)
            self.proc, self.r = _spawn_monitor(root, cid, attach, netlink, stdin=control_r,
                                               stderr=subprocess.DEVNULL, early=True)
        except BaseException:
            os.close(self.control)
            raise
        finally:
            os.close(control_r)

    def go(self) -> StatusPipe:
        """The container exists: the monitor goes on as one spawned by _start would."""
        os.write(self.control, b"go\n")
        os.close(self.control)
        self.control = -1
        self.proc.wait()  # it daemonizes once it may go: this reaps its parent
        status, self.r = StatusPipe(self.r), -1
        return status

    def close(self) -> None:
        """Not needed (the create failed, or the start did not use it): EOF, and it exits."""
        if self.control >= 0:
            os.close(self.control)
            self.control = -1
            self.proc.wait()
        if self.r >= 0:
            os.close(self.r)
            self.r = -1


def start(rt, ref: str, attach: tuple[int, int, int] | None = None,
          netlink: netlink_helper.NetlinkHelper | None = None,
          early: EarlyMonitor | None = None) -> StartedContainer | None:
    """Start the container; return None if it was already running.

    `attach` = (stdin, stdout, stderr) fds of a caller that wants the output live
    (`run` without -d, `start -a`); use -1 for "not attached". `netlink`: a netlink helper the
    caller spawned earlier (`run` does, before it creates the container); it is used or closed.
    `early`: a monitor the caller spawned earlier (`run`), used or closed."""
    try:
        cid = rt.resolve(ref)
        lock = rt.containers.op_lock(cid)  # no rm or prune until the monitor holds the container
        try:
            return _start(rt, cid, attach, netlink, early)
        finally:
            lock.release()
    finally:
        if netlink is not None:
            netlink.close()  # (the monitor has its own copies)
        if early is not None:
            early.close()


def _start(rt, cid: str, attach: tuple[int, int, int] | None,
           netlink: netlink_helper.NetlinkHelper | None = None,
           early: EarlyMonitor | None = None) -> StartedContainer | None:
    rec = reconcile(rt, rt.containers.read(cid))  # (NotFound if it was removed meanwhile)
    if not st.check_start(rec["State"], cid):
        return None
    if rt.containers.shim_alive(cid):
        # The last run's monitor recorded the exit and is still finishing up (unmounting, removing
        # the cgroup): for Docker the container is exited and may be started now, so wait for it
        # rather than fail with "already running".
        wait_not_running(rt, cid, 10)
    if rec.get("HasBeenManuallyStopped") or rec.get("RestartCanceled") or rec.get("RestartCount"):
        with rt.containers.update(cid) as r:  # started by the user: its restart policy counts afresh
            r.pop("HasBeenManuallyStopped", None)
            r.pop("RestartCanceled", None)
            r["RestartCount"] = 0
    steps.replacements()  # a MINIDOCKER_STEPS file that cannot be used fails here, in one line
    if attach:
        from .. import events
        events.emit(rt.root, "container", "attach", cid, events.container_attributes(rec))
    log = os.path.join(rt.containers.dir(cid), "shim.log")
    if early is not None and (early.cid, early.attach) == (cid, attach):
        return _started(early.go(), log, attach)
    if netlink is not None and not netlink_helper.needed(rec):
        netlink.close()
        netlink = None
    try:
        with open(log, "ab") as errlog:
            if netlink is None and netlink_helper.needed(rec):
                # first: it imports pyroute2 (~0.1 s) while the monitor starts (network/netlink_helper.py)
                netlink = netlink_helper.NetlinkHelper.spawn(helper_env(), stderr=errlog)
            proc, r = _spawn_monitor(rt.root.root, cid, attach, netlink, stdin=subprocess.DEVNULL, stderr=errlog)
    finally:
        if netlink is not None:
            netlink.close()  # (the monitor has its own copies)
    proc.wait()  # the monitor daemonizes at once: this only reaps its short-lived parent
    return _started(StatusPipe(r), log, attach)


def _spawn_monitor(root: str, cid: str, attach: tuple[int, int, int] | None,
                   netlink: netlink_helper.NetlinkHelper | None, *, stdin, stderr, early: bool = False):
    """Spawn `python -S -m minidocker.engine.monitor [--early] ROOT ID STATUS_FD [IN OUT ERR CALLER]`;
    return it and the read end of its status pipe. (-S skips site-packages' .pth processing:
    tens of ms at every start.) The caller's stdio is passed under new numbers: the monitor's own
    0/1/2 are `stdin`, /dev/null and `stderr` (its error log), so that a detached monitor holds no
    terminal."""
    r, w = os.pipe()
    attach_fds = [os.dup(fd) if fd >= 0 else -1 for fd in attach] if attach else []
    argv = [sys.executable, "-S", "-m", "minidocker.engine.monitor", *(["--early"] if early else []),
            root, cid, str(w)]
    if attach:
        argv += [str(fd) for fd in attach_fds] + [str(os.getpid())]
    env = helper_env()
    if netlink is not None:
        env[netlink_helper.HELPER_ENV] = "{},{}".format(*netlink.fds())
    try:
        proc = subprocess.Popen(argv, pass_fds=[w] + [fd for fd in attach_fds if fd >= 0]
                                + (list(netlink.fds()) if netlink else []),
                                start_new_session=True, stdin=stdin, env=env,
                                stdout=subprocess.DEVNULL, stderr=stderr, close_fds=True)
    except BaseException:
        os.close(r)
        raise
    finally:
        for fd in [w] + attach_fds:  # (the monitor has its own copies)
            if fd >= 0:
                os.close(fd)
    return proc, r


def _started(status: StatusPipe, log: str, attach) -> StartedContainer:
    """The monitor's first word: the container runs, or why it does not."""
    ev = status.next_event()
    if ev is None or ev.get("event") != "started":
        status.close()
        if ev is None:
            raise RuntimeFailure(f"the container monitor died while starting; see {log}")
        raise MinidockerError(ev.get("message", "failed to start"), exit_code=ev.get("code", 125))
    if attach:
        return StartedContainer(ev["pid"], status)
    status.close()
    return StartedContainer(ev["pid"])
