"""`docker rm` and `docker container prune`: a container and everything that is only its.

Taught in notebook 05 (its writable layer goes with it). Removed: the `-init` and writable
overlay layers, containers/<id>/ (record, logs, /etc files, bundle), and with -v (or --rm)
its anonymous volumes. Named volumes stay: they outlive containers on purpose.
"""
from __future__ import annotations

import os
import signal

from .. import events, fsutil
from ..container import state as st
from ..container.store import ContainerStore
from ..errors import MinidockerError
from ..images.store import ImageStore
from ..paths import StateRoot
from .reconcile import reconcile
from .stop import send, stopped_by_user, wait_not_running


def remove_anonymous_volumes(root: StateRoot, rec: dict) -> None:
    from .. import volumes as volmod
    vs = volmod.VolumeStore(root)
    for m in rec.get("Mounts") or []:
        if m.get("Type") == "volume" and vs.anonymous(m["Name"]):
            try:
                vs.remove(m["Name"], [])
            except MinidockerError:
                pass


def remove_files(root: StateRoot, cid: str, rec: dict | None = None) -> None:
    """Delete a stopped container's layers and directory; with `rec`, its anonymous volumes too."""
    ImageStore(root).remove_container_layers(cid)
    ContainerStore(root).delete(cid)
    if rec is not None:
        remove_anonymous_volumes(root, rec)


def remove(rt, ref: str, force: bool = False, volumes: bool = False) -> str:
    cid = rt.resolve(ref)
    lock = rt.containers.op_lock(cid)  # (waits for a start under way to finish)
    try:
        return _remove(rt, cid, force, volumes)
    finally:
        lock.release()


def _remove(rt, cid: str, force: bool, volumes: bool) -> str:
    """With the container's op lock held: a "Removal In Progress" left by a killed `rm` is
    simply taken up again (nobody else can be removing it now)."""
    rec = reconcile(rt, rt.containers.read(cid))
    st.check_remove(rec["State"], rec["Name"].lstrip("/"), force)
    if rec["State"]["Running"]:
        rec = stopped_by_user(rt, cid)  # (a restart policy must not bring it back)
        events.emit(rt.root, "container", "kill", cid, events.container_attributes(rec, signal=9))
        send(rt, rec, signal.SIGKILL)
        wait_not_running(rt, cid, None)
    elif rt.containers.shim_alive(cid):
        wait_not_running(rt, cid, 5)  # a monitor still finishing up (writing state)
    with rt.containers.update(cid) as r:
        r["State"]["Status"] = st.REMOVING
    remove_files(rt.root, cid, rec if volumes else None)  # -v: anonymous volumes go too
    events.emit(rt.root, "container", "destroy", cid, events.container_attributes(rec))
    return cid


def prune(rt) -> tuple[list[str], int]:
    """Remove every stopped container; return (ids, bytes reclaimed)."""
    removed, space = [], 0
    for rec in rt.list(all=True):
        if rec["State"]["Running"]:
            continue
        upper = ((rec.get("GraphDriver") or {}).get("Data") or {}).get("UpperDir")
        size = fsutil.dir_size(upper) if upper and os.path.isdir(upper) else 0
        try:
            lock = rt.containers.op_lock(rec["Id"], blocking=False)
            if lock is None:
                continue  # being started (or removed) right now: not a stopped container
            try:
                _remove(rt, rec["Id"], force=False, volumes=False)
            finally:
                lock.release()
        except MinidockerError:
            continue
        removed.append(rec["Id"])
        space += size
    return removed, space
