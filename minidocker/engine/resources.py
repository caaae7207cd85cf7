"""The cgroup verbs: `docker pause`, `unpause`, `update`, and the numbers behind `docker stats`.

Taught in notebook 04 (cgroups). A running container's limits are files in its cgroup
(core/cgroups): `update` rewrites them on the fly; `pause` freezes every process in it.
"""
from __future__ import annotations

from .. import events
from ..container import hostconfig
from ..container import state as st
from ..errors import InvalidState
from .reconcile import reconcile


def pause(rt, ref: str) -> str:
    """Freeze every process of the container (cgroup freezer): they stay in memory, get no
    CPU time, and cannot even see signals until unpaused."""
    cid = rt.resolve(ref)
    reconcile(rt, rt.containers.read(cid))  # (takes the record's lock itself)
    with rt.containers.update(cid) as rec:
        st.check_pause(rec["State"], cid)
        rt.cgroups().freeze(cid)
        rec["State"].update(Paused=True, Status=st.PAUSED)
    events.emit(rt.root, "container", "pause", cid, events.container_attributes(rec))
    return cid


def unpause(rt, ref: str) -> str:
    cid = rt.resolve(ref)
    with rt.containers.update(cid) as rec:
        st.check_unpause(rec["State"], cid)
        rt.cgroups().thaw(cid)
        rec["State"].update(Paused=False, Status=st.RUNNING)
    events.emit(rt.root, "container", "unpause", cid, events.container_attributes(rec))
    return cid


def update(rt, ref: str, resources: dict) -> str:
    """Change limits (HostConfig keys) now if running, and for every later start; a new
    RestartPolicy applies from the container's next exit (its monitor reads it then)."""
    cid = rt.resolve(ref)
    if rt.cgroups().version == 0 and set(resources) - {"RestartPolicy"}:  # (rootless: core/cgroups/none.py)
        raise InvalidState(f"Cannot update container {cid}: rootless mode runs without cgroups, "
                           "so there are no limits to change")
    with rt.containers.update(cid) as rec:
        new = hostconfig.check_update(rec["HostConfig"], resources, cid)
        s = rec["State"]
        if s["Running"] and not s.get("Restarting") and set(resources) - {"RestartPolicy"}:
            rt.cgroups().apply(cid, hostconfig.oci_resources(new))
        rec["HostConfig"].update(new)
    events.emit(rt.root, "container", "update", cid, events.container_attributes(rec))
    return cid


def stats_sample(rt, ref: str) -> dict:
    """One raw measurement (cgroup counters + machine CPU clock) of a running container."""
    from ..core.cgroups import stats
    cid = rt.resolve(ref)
    rec = reconcile(rt, rt.containers.read(cid))
    if not rec["State"]["Running"]:
        raise InvalidState(f"Container {cid} is not running")
    return stats.sample(rt.cgroups(), cid, rec["State"]["Pid"])
