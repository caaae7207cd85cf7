"""Signals to a container: `docker kill`, `stop`, `restart`, `wait`.

Taught in notebook 01. `stop` sends the StopSignal (SIGTERM unless the image or --stop-signal
says otherwise), waits up to -t seconds (10 by default), then SIGKILL. A PID 1 without a
handler for SIGTERM ignores it -- the kernel protects a namespace's init -- which is why
`docker stop` of such a container takes the full 10 seconds and exits 137.
"""
from __future__ import annotations

import os
import signal as signalmod
import time

from .. import events
from ..container import restart as policies, runconfig
from ..container import state as st
from ..errors import NotFound
from .reconcile import reconcile, thaw_quietly, wait_not_running  # noqa: F401 (remove.py imports it here)

DEFAULT_STOP_TIMEOUT = 10


def send(rt, rec: dict, sig: int) -> None:
    """Signal the container's PID 1, through a pidfd: the signal reaches this very process even
    if its PID had been reused. A frozen (paused) process cannot act on any signal, SIGKILL
    included: kill, then thaw."""
    pid = rec["State"]["Pid"]
    if pid <= 0:
        return
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        if rt.containers.shim_alive(rec["Id"]):
            signalmod.pidfd_send_signal(fd, sig)
    except ProcessLookupError:
        pass
    finally:
        os.close(fd)
    if rec["State"].get("Paused") and sig == signalmod.SIGKILL:
        thaw_quietly(rt, rec["Id"])


def stopped_by_user(rt, cid: str, cancel: bool = True, manual: bool = True) -> dict:
    """Record that the user ends this container (a stop, a kill, rm -f): its restart policy
    no longer applies (container/restart.py) until the user starts it again. A monitor waiting
    out a restart back-off is woken: there is no process to signal then."""
    with rt.containers.update(cid) as r:
        if manual:  # (the host shutting down is no user's stop: see engine/restore.shutdown)
            r["HasBeenManuallyStopped"] = True
        if cancel:
            r["RestartCanceled"] = True
    if r["State"].get("Restarting"):
        pid = rt.containers.monitor_pid(cid)
        if pid:
            try:
                os.kill(pid, signalmod.SIGUSR1)  # see Monitor._back_off
            except ProcessLookupError:
                pass
    return r


def kill(rt, ref: str, sig: str | int = "KILL") -> str:
    signo = runconfig.parse_signal(sig)
    try:
        cid = rt.resolve(ref)
    except NotFound as e:
        raise NotFound(f"Cannot kill container: {ref}: {e}") from None
    rec = reconcile(rt, rt.containers.read(cid))
    st.check_kill(rec["State"], cid, ref)
    configured = rec["Config"].get("StopSignal")
    rec = stopped_by_user(rt, cid, policies.cancels_restart(
        signo, runconfig.parse_signal(configured) if configured else None, signalmod.SIGKILL))
    events.emit(rt.root, "container", "kill", cid, events.container_attributes(rec, signal=signo))
    send(rt, rec, signo)
    if signo == signalmod.SIGKILL:
        wait_not_running(rt, cid, None)
    return cid


def stop(rt, ref: str, timeout: int | None = None, shutting_down: bool = False) -> str:
    cid = rt.resolve(ref)
    rec = reconcile(rt, rt.containers.read(cid))
    if not rec["State"]["Running"]:
        return cid  # docker: stopping a stopped container is not an error
    if timeout is None:
        timeout = rec["Config"].get("StopTimeout") or DEFAULT_STOP_TIMEOUT
    rec = stopped_by_user(rt, cid, manual=not shutting_down)
    stop_signal = runconfig.parse_signal(rec["Config"].get("StopSignal") or "SIGTERM")
    if rec["State"]["Pid"] > 0:
        events.emit(rt.root, "container", "kill", cid, events.container_attributes(rec, signal=stop_signal))
    send(rt, rec, stop_signal)
    if timeout < 0 or not wait_not_running(rt, cid, timeout):
        events.emit(rt.root, "container", "kill", cid, events.container_attributes(rec, signal=9))
        send(rt, rt.containers.read(cid), signalmod.SIGKILL)
        wait_not_running(rt, cid, None)
    events.emit(rt.root, "container", "stop", cid, events.container_attributes(rec))
    return cid


def restart(rt, ref: str, timeout: int | None = None) -> str:
    from .start import start
    cid = stop(rt, ref, timeout)
    start(rt, cid)
    events.emit(rt.root, "container", "restart", cid, events.container_attributes(rt.containers.read(cid)))
    return cid


def wait(rt, ref: str) -> int:
    """Block until the container stops; return its exit code (docker wait)."""
    cid = rt.resolve(ref)
    while True:
        try:
            rec = reconcile(rt, rt.containers.read(cid))
        except NotFound:
            raise NotFound(f"No such container: {ref}") from None
        s = rec["State"]
        # docker waits for "not running": a created container returns at once, and so does
        # one that ended and waits to be restarted (dockerd's SetRestarting wakes the waiters)
        if (not s["Running"] and not rt.containers.shim_alive(cid)) or s.get("Restarting"):
            return s["ExitCode"]
        time.sleep(0.02)
