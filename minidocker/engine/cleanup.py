"""What `docker system prune` adds to the prunes: the host left clean after any crash.

Taught in notebook 05. A daemonless runtime can be killed at any point (kill -9 of a monitor,
a power cut). Nothing may stay behind for good: every kernel object and file minidocker makes
is found again here and removed when nothing uses it -- mounts under the state root, layers
of half-made containers, half-registered layers, cgroups nobody is in, bridges and firewall
tables (network/modes.py), temporary files of crashed pulls and builds, build-cache entries
of deleted images.
"""
from __future__ import annotations

import os
import time

from .. import fsutil
from ..core.linux import procfs
from ..errors import MinidockerError

TMP_GRACE = 300  # seconds: younger temporary files may belong to a pull or build in progress


def cleanup_leftovers(rt) -> list[str]:
    """What `system prune` adds to container prune: kernel objects and files nothing uses.

    Returns a description of each thing cleaned."""
    cleaned = []
    live_mounts = set()
    for rec in rt.list(all=True):
        if rec["State"]["Running"]:
            mid = rt.images.container_mount_id(rec["Id"])
            if mid:
                live_mounts.add(rt.images.driver.merged(mid))
    for target in procfs.mounts_under(rt.root.root):
        if target not in live_mounts:
            try:
                from ..core.linux import syscalls as sc
                sc.umount2(target, sc.MNT_DETACH)
                cleaned.append(f"mount {target}")
            except OSError:
                pass
    # layer directories that no image layer and no container refers to (crash mid-create)
    for cid in rt.images.containers_using_layers():
        if not os.path.isdir(rt.containers.dir(cid)):
            rt.images.remove_container_layers(cid)
            cleaned.append(f"layers of removed container {cid[:12]}")
    with rt.images.lock():  # (layers are made under this lock: none is half-made now)
        if not rt.images.work_under_way():
            cleaned += unused_layers(rt)  # a killed build's or pull's layers
        used = set()
        for chain in os.listdir(rt.root.layerdb):
            cid_file = os.path.join(rt.root.layerdb, chain, "cache-id")
            if chain.startswith(".tmp-"):
                fsutil.rmtree(os.path.join(rt.root.layerdb, chain), ignore_errors=True)
                cleaned.append(f"half-registered layer {chain[5:17]}")
            elif os.path.isfile(cid_file):
                used.add(fsutil.read_text(cid_file).strip())
        for cid in rt.images.containers_using_layers():
            mid = rt.images.container_mount_id(cid)
            if mid:
                used.update({mid, f"{mid}-init"})
        for layer in rt.images.driver.layers():
            if layer not in used:
                rt.images.driver.remove(layer)
                cleaned.append(f"orphaned layer {layer}")
        for name in os.listdir(rt.images.driver.home + "/l"):
            link = os.path.join(rt.images.driver.home, "l", name)
            if not os.path.exists(link):
                os.unlink(link)
                cleaned.append(f"dangling link l/{name}")
    try:
        cg = rt.cgroups()
        running = {r["Id"] for r in rt.list(all=True) if r["State"]["Running"]}
        for cid in cg.ids():
            # (a cgroup younger than 10 s may belong to a container starting right now,
            # possibly from another state root: leave it alone)
            young = time.time() - os.stat(cg.path(cid)).st_mtime < 10 if os.path.exists(cg.path(cid)) else False
            if cid not in running and not cg.processes(cid) and not young:
                cg.remove(cid)  # a cgroup nobody is in, left by a crash
                cleaned.append(f"cgroup {cid[:12]}")
        if cg.remove_parent():
            cleaned.append(f"empty cgroup parent '{cg.parent}'")
    except (MinidockerError, OSError):
        pass
    cleaned += cgroups_of_deleted_roots(rt.root.tag)
    try:
        from ..network.modes import Networking
        cleaned += Networking(rt.root).cleanup()
    except (MinidockerError, OSError) as e:
        cleaned.append(f"(network clean-up incomplete: {e})")
    # op locks of containers that are gone (an `rm` killed between its last two steps)
    opdir = os.path.dirname(rt.containers.op_lock_path("x"))
    for cid in os.listdir(opdir) if os.path.isdir(opdir) else []:
        if not os.path.isdir(rt.containers.dir(cid)) and not fsutil.is_locked(os.path.join(opdir, cid)):
            os.unlink(os.path.join(opdir, cid))
            cleaned.append(f"lock of removed container {cid[:12]}")
    # temporary files: a crash's leftovers, but not what a running pull or build is
    # writing right now (those were touched recently)
    for name in os.listdir(rt.root.tmp):
        path = os.path.join(rt.root.tmp, name)
        try:
            if time.time() - os.lstat(path).st_mtime < TMP_GRACE:
                continue
        except FileNotFoundError:
            continue
        fsutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.unlink(path)
        cleaned.append(f"temporary {name}")
    prune_build_cache(rt, cleaned)
    from ..core import rootless
    if rootless.active() and not any(r["State"]["Running"] or rt.containers.shim_alive(r["Id"])
                                     for r in rt.list(all=True)) and rootless.stop():
        # (rootless mode: no container runs, nor waits to restart, so the namespaces' holder may
        # go; the next command makes new ones)
        cleaned.append("the rootless namespaces (their holder and parent processes)")
    return cleaned

def prune_build_cache(rt, cleaned: list[str]) -> None:
    """Build-cache entries whose image is gone."""
    d = os.path.join(rt.root.image_dir, "buildcache")
    if not os.path.isdir(d):
        return
    n = 0
    for name in os.listdir(d):
        image_id = (fsutil.read_text(os.path.join(d, name)) or "").strip()
        if not os.path.exists(os.path.join(rt.root.imagedb, image_id.split(":")[-1])):
            os.unlink(os.path.join(d, name))
            n += 1
    if n:
        cleaned.append(f"{n} build cache entries of deleted images")


def cgroups_of_deleted_roots(own_tag: str) -> list[str]:
    """The cgroup parents (minidocker-<tag>) of state roots that are gone (rm -rf of a test's or
    a notebook's root while a container's cgroup was still being removed): whatever holds no
    process any more goes. A root is alive if the host registry knows it and it exists; every
    root that starts a container registers itself (engine/monitor.py)."""
    from ..core import cgroups
    from ..network.store import registered_roots
    cleaned = []
    alive = {tag for tag, path in registered_roots().items() if os.path.isdir(path)} | {own_tag}
    for tag in sorted(tagged_cgroup_parents() - alive):
        path = registered_roots().get(tag, "(unregistered)")
        try:
            cg = cgroups.driver(f"{cgroups.PARENT}-{tag}")
            for cid in cg.ids():
                young = os.path.exists(cg.path(cid)) and time.time() - os.stat(cg.path(cid)).st_mtime < 10
                if not _has_tasks(cg, cid) and not young:
                    cg.remove(cid)
            if cg.remove_parent():
                cleaned.append(f"cgroup parent {cg.parent} of deleted state root {path}")
        except (MinidockerError, OSError):
            pass
    return cleaned


def _has_tasks(cg, cid: str) -> bool:
    """Whether anything runs in a container's cgroup. cgroup.procs lists only the processes of
    our own PID namespace: another container sharing this cgroup tree (a second grader in
    labs/grader, say) would look empty, and lose its cgroups. pids.current counts them all."""
    if cg.processes(cid):
        return True
    try:
        where = cg.cpath("pids", cid) if cg.version == 1 else cg.path(cid)
        with open(os.path.join(where, "pids.current")) as f:
            return int(f.read()) > 0
    except (OSError, ValueError, KeyError):
        return False


def unused_layers(rt) -> list[str]:
    """Registered layers that no image and no container stands on: what a build, pull or
    load killed between registering its layers and storing its image leaves. (Called with
    the image store locked and no such work under way.)"""
    from ..images.store import chain_ids
    keep: set[str] = set()
    for image_id in rt.images.image_ids():
        try:
            keep.update(chain_ids(rt.images.get(image_id).diff_ids))
        except MinidockerError:
            return []  # an image we cannot read: unsure what is used, remove nothing
    for cid in rt.images.containers_using_layers():
        chain = rt.images.container_parent(cid)
        while chain and chain not in keep:  # (its image may be gone: `rmi -f`)
            keep.add(chain)
            chain = rt.images.layer_parent(chain)
    cleaned = []
    for name in os.listdir(rt.root.layerdb):
        chain = "sha256:" + name
        if name.startswith(".") or chain in keep or not rt.images.has_layer(chain):
            continue
        cache = rt.images.layer_cache_id(chain)
        fsutil.rmtree(rt.images.layer_dir(chain), ignore_errors=True)
        rt.images.driver.remove(cache)
        cleaned.append(f"unused layer {name[:12]}")
    return cleaned


def tagged_cgroup_parents() -> set[str]:
    """The tags of every `minidocker-<tag>` cgroup parent on this host, in any tree."""
    from ..core import cgroups
    prefix = cgroups.PARENT + "-"
    try:
        cg = cgroups.driver()
    except (MinidockerError, OSError):
        return set()
    trees = set(getattr(cg, "hierarchies", {}).values()) or {getattr(cg, "root", "/sys/fs/cgroup")}
    tags = set()
    for tree in trees:
        try:
            tags |= {n[len(prefix):] for n in os.listdir(tree) if n.startswith(prefix)}
        except OSError:
            pass
    return tags
