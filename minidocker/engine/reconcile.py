"""Repairing a record whose monitor died: the daemonless runtime's crash recovery.

There is no daemon holding the truth in memory: each command reads the on-disk record. A
record that says "running" while no monitor holds its shim.lock is stale (the monitor was
killed, or the machine rebooted). Before anyone acts on it, kill what is left of the
container, free its cgroup and rootfs, and record the exit (255, as Docker does for a lost
container).
"""
from __future__ import annotations

import os
import signal
import time

from .. import fsutil, gotime
from ..container import state as st
from ..core.linux import procfs
from ..errors import MinidockerError, NotFound


def in_other_pidns(pid: int) -> bool:
    """True if `pid` lives in a PID namespace other than ours (i.e. it is a container's)."""
    try:
        return os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
    except OSError:
        return False


def thaw_quietly(rt, cid: str) -> None:
    try:
        rt.cgroups().thaw(cid)
    except (MinidockerError, OSError):
        pass


def same_process(recorded: str | None, pid: int, start_time: int | None) -> bool:
    """Is `pid` (now started at `start_time`) still the process the monitor recorded as
    "<pid> <start time>"? PIDs are recycled; a PID plus its start time is not. (Pure.)"""
    if start_time is None or not recorded:
        return False
    try:
        rpid, rstart = (int(x) for x in recorded.split())
    except ValueError:
        return False
    return rpid == pid and rstart == start_time


def last_sign_of_life(started: float | None, log_mtime: float | None, boot: float, now: float) -> float:
    """When did a container whose monitor died (and whose process is gone) stop? Not when we
    noticed: no later than the machine's boot if it started before it, else the last thing
    it did that left a trace (its last log line), at the earliest its start. (Pure.)"""
    started = started or now
    if started < boot:
        return boot
    return max(started, min(log_mtime or started, now))


def reconcile(rt, rec: dict) -> dict:
    """The record as it truly is now (repaired on disk if its monitor is gone)."""
    if not rec["State"]["Running"] or rt.containers.shim_alive(rec["Id"]):
        return rec
    with rt.containers.update(rec["Id"]) as r:
        s = r["State"]
        if s["Running"] and not rt.containers.shim_alive(r["Id"]):
            pid = s["Pid"]
            recorded = fsutil.read_text(rt.containers.init_identity_path(r["Id"]))
            died = None
            if pid > 0 and same_process(recorded, pid, procfs.start_time(pid)) and in_other_pidns(pid):
                try:
                    os.kill(pid, signal.SIGKILL)  # still running without its monitor: it ends now
                except ProcessLookupError:
                    pass
                if s.get("Paused"):
                    thaw_quietly(rt, r["Id"])
                died = time.time()
            else:
                log = r.get("LogPath") or ""
                died = last_sign_of_life(gotime.parse_rfc3339(s.get("StartedAt", "")),
                                         os.stat(log).st_mtime if os.path.exists(log) else None,
                                         procfs.boot_time(), time.time())
            try:
                rt.cgroups().remove(r["Id"])
            except (MinidockerError, OSError):
                pass  # still busy: system prune will retry
            mount_id = rt.images.container_mount_id(r["Id"])
            if mount_id:
                rt.images.driver.unmount(mount_id)
            st.set_exited(s, 255, int(died * 1e9), error="the container's monitor died")
        rec = r
    return rec


def wait_not_running(rt, cid: str, timeout: float | None) -> bool:
    """Until the container has stopped and its monitor is gone (True), or `timeout` seconds
    passed (False). start, stop, kill and rm all wait this way."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            rec = reconcile(rt, rt.containers.read(cid))
        except NotFound:
            return True  # --rm containers are gone once stopped
        if not rec["State"]["Running"] and not rt.containers.shim_alive(cid):
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
