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

from ..container import state as st
from ..core.linux import procfs
from ..errors import MinidockerError


def in_other_pidns(pid: int) -> bool:
    """True if `pid` lives in a PID namespace other than ours (i.e. it is a container's)."""
    try:
        return os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
    except OSError:
        return False


def thaw_quietly(cid: str) -> None:
    from ..core import cgroups
    try:
        cgroups.driver().thaw(cid)
    except (MinidockerError, OSError):
        pass


def reconcile(rt, rec: dict) -> dict:
    """The record as it truly is now (repaired on disk if its monitor is gone)."""
    if not rec["State"]["Running"] or rt.containers.shim_alive(rec["Id"]):
        return rec
    with rt.containers.update(rec["Id"]) as r:
        s = r["State"]
        if s["Running"] and not rt.containers.shim_alive(r["Id"]):
            pid = s["Pid"]
            if pid > 0 and procfs.start_time(pid) is not None and in_other_pidns(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                if s.get("Paused"):
                    thaw_quietly(r["Id"])
            try:
                from ..core import cgroups
                cgroups.driver().remove(r["Id"])
            except (MinidockerError, OSError):
                pass  # still busy: system prune will retry
            mount_id = rt.images.container_mount_id(r["Id"])
            if mount_id:
                rt.images.driver.unmount(mount_id)
            st.set_exited(s, 255, time.time_ns(), error="the container's monitor died")
        rec = r
    return rec
