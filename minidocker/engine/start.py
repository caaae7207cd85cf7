"""`docker start`: hand the container to a monitor process of its own, and wait until its
program runs (or could not be started).

Taught in notebook 01. The monitor (engine/monitor.py, then core/shim.py) is a fresh Python
process, never a fork of the caller: a Jupyter kernel is multi-threaded, and fork() of a
threaded process can deadlock the child. It reports back on a status pipe, one JSON event
per line: {"event": "started", "pid": ...}, {"event": "error", "code": 127, "message": ...},
later {"event": "exited", "code": ...} for a caller that stays attached.

`run` spawns the monitor before it even creates the container, before it has even parsed its
command line (engine/spawn_monitor.py, EarlyMonitor): starting Python and importing what a
monitor needs takes ~40 ms, which then overlaps all that on the other CPU.
"""
from __future__ import annotations

import json
import os

from ..container import state as st
from ..core import steps
from ..network import netlink_helper
from ..errors import MinidockerError, RuntimeFailure
from ..spawn import helper_env
from .reconcile import reconcile, wait_not_running
from .spawn_monitor import EarlyMonitor, spawn_monitor


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


def start(rt, ref: str, attach: tuple[int, int, int] | None = None,
          early: EarlyMonitor | None = None) -> StartedContainer | None:
    """Start the container; return None if it was already running.

    `attach` = (stdin, stdout, stderr) fds of a caller that wants the output live
    (`run` without -d, `start -a`); use -1 for "not attached".
    `early`: a monitor the caller spawned earlier (`run`), used or closed."""
    try:
        cid = rt.resolve(ref)
        lock = rt.containers.op_lock(cid)  # no rm or prune until the monitor holds the container
        try:
            return _start(rt, cid, attach, early)
        finally:
            lock.release()
    finally:
        if early is not None:
            early.close()


def _start(rt, cid: str, attach: tuple[int, int, int] | None,
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
    if early is not None and early.cid == cid:
        return _started(StatusPipe(early.go(attach)), log, attach)
    netlink = None
    try:
        with open(log, "ab") as errlog:
            if netlink_helper.needed(rec):
                # first: it imports pyroute2 (~0.1 s) while the monitor starts (network/netlink_helper.py)
                netlink = netlink_helper.NetlinkHelper.spawn(helper_env(), stderr=errlog.fileno())
            pid, r = spawn_monitor(rt.root.root, cid, attach, netlink, stdin=None, stderr=errlog.fileno())
    finally:
        if netlink is not None:
            netlink.close()  # (the monitor has its own copies)
    os.waitpid(pid, 0)  # the monitor daemonizes at once: this only reaps its short-lived parent
    return _started(StatusPipe(r), log, attach)


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
