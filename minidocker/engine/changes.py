"""What a container changed, and keeping it: `docker diff`, `export` and `commit`.

A container's changes are exactly its writable overlay layer (the upper dir):
  * a file there that the image also has           -> C (changed, copied up)
  * a file there the image does not have           -> A (added)
  * a character device 0/0 (an overlay whiteout)    -> D (deleted)
  * a directory with trusted.overlay.opaque=y       -> C, and what was below it is gone
`commit` turns that upper dir into a layer tar (whiteouts become `.wh.` files) on top of
the image's layers, with the container's configuration as the new image's config.
`export` flattens everything (image + changes) into one plain root filesystem tar.
"""
from __future__ import annotations

import json
import os
import stat
import time

from ..errors import MinidockerError
from ..images import reference as refmod
from ..core.overlay2 import is_opaque, is_whiteout, visible_in_layers
from .. import gotime
from .. import fsutil
from . import remap


def _upper_and_lowers(runtime, cid: str) -> tuple[str, list[str]]:
    d = runtime.images.driver
    mount_id = runtime.images.container_mount_id(cid)
    if not mount_id:
        raise MinidockerError(f"container {cid} has no layers")
    lowers = [os.path.join(d.home, x) for x in d.lower_chain(mount_id)]
    return d.diff(mount_id), lowers


def diff(runtime, ref: str) -> list[tuple[str, str]]:
    """[("C", "/etc"), ("A", "/etc/new"), ("D", "/bin/vi"), ...] in path order, like docker."""
    cid = runtime.resolve(ref)
    upper, lowers = _upper_and_lowers(runtime, cid)
    out = []
    for dirpath, dirnames, filenames in fsutil.walk(upper):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, upper)
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            st_ = os.lstat(path)
            if is_whiteout(st_):
                out.append(("D", "/" + rel))
            elif visible_in_layers(lowers, rel):
                out.append(("C", "/" + rel))
            else:
                out.append(("A", "/" + rel))
            if stat.S_ISDIR(st_.st_mode) and is_opaque(path):
                # everything the image had below an opaque dir is gone
                below = [p for p in _lower_children(lowers, rel)
                         if not os.path.lexists(os.path.join(upper, rel, p))]
                out += [("D", "/" + os.path.join(rel, p)) for p in below]
    return sorted(out, key=lambda x: x[1])


def _lower_children(lowers: list[str], rel: str) -> list[str]:
    names = set()
    for lower in lowers:
        try:
            names.update(os.listdir(os.path.join(lower, rel)))
        except OSError:
            pass
    return sorted(names)


def export(runtime, ref: str, out) -> None:
    """The container's whole filesystem as one tar (docker export), read through its overlay."""
    from ..storage import archive
    cid = runtime.resolve(ref)
    d = runtime.images.driver
    mount_id = runtime.images.container_mount_id(cid)
    was_mounted = os.path.ismount(d.merged(mount_id))
    merged = d.mount(mount_id)
    try:
        archive.export_dir(merged, out, overlay=False, idmaps=remap.idmaps(runtime.root.root))
    finally:
        if not was_mounted:
            d.unmount(mount_id)


def commit(runtime, ref: str, *args, **kwargs) -> str:
    """`docker commit` (see _commit), while holding ImageStore.working()."""
    with runtime.images.working():
        return _commit(runtime, ref, *args, **kwargs)


def _commit(runtime, ref: str, repo: str | None = None, message: str = "", author: str = "",
           changes: dict | None = None, pause: bool = True) -> str:
    """A new image: the container's image + one layer with its changes; returns the image id."""
    import tempfile
    from ..storage import archive
    cid = runtime.resolve(ref)
    rec = runtime.inspect(cid)
    img = runtime.images.get(rec["Image"])
    upper, _ = _upper_and_lowers(runtime, cid)
    paused_here = False
    if pause and rec["State"]["Running"] and not rec["State"]["Paused"]:
        try:
            runtime.pause(cid)  # a consistent snapshot: nothing writes while we read
            paused_here = True
        except MinidockerError:
            if runtime.inspect(cid)["State"]["Running"]:
                raise
            # it exited meanwhile: nothing writes any more, the snapshot is consistent as it is
    try:
        fd, tar = tempfile.mkstemp(prefix="commit-", suffix=".tar", dir=runtime.root.tmp)
        try:
            with os.fdopen(fd, "wb") as f:
                archive.export_dir(upper, f, overlay=True, idmaps=remap.idmaps(runtime.root.root))
            top = img.top_chain_id
            chain = runtime.images.register_layer(tar, top)
        finally:
            os.unlink(tar)
    finally:
        if paused_here:
            runtime.unpause(cid)
    diff_id = runtime.images.layer_diff_id(chain)
    config = commit_config(img.config, rec, diff_id, message, author, changes or {},
                           gotime.rfc3339nano(time.time_ns()))
    new = runtime.images.put_image(json.dumps(config, separators=(",", ":")).encode())
    runtime.images.set_parent(new.id, img.id)  # (as dockerd records it: `inspect`'s Parent, rmi's checks)
    if repo:
        runtime.images.tag(refmod.parse(repo), new.id)
    return new.id


def commit_config(image_cfg: dict, rec: dict, diff_id: str, message: str, author: str,
                  changes: dict, created: str) -> dict:
    """The new image config: the container's settings over the image's (pure)."""
    ccfg = rec["Config"]
    cfg = dict(image_cfg.get("config") or {})
    for key in ("User", "Env", "Cmd", "Entrypoint", "WorkingDir", "Labels", "ExposedPorts",
                "Volumes", "StopSignal", "OnBuild"):
        if ccfg.get(key) is not None:
            cfg[key] = ccfg[key]
    cfg.update(changes)
    cmd = " ".join([rec["Path"]] + list(rec["Args"]))
    history = list(image_cfg.get("history") or []) + [{"created": created, "created_by": cmd}]
    if message:
        history[-1]["comment"] = message
    out = {"architecture": image_cfg.get("architecture", ""), "author": author, "config": cfg,
           "container": rec["Id"], "created": created, "docker_version": "minidocker",
           "history": history, "os": image_cfg.get("os", "linux"),
           "rootfs": {"type": "layers", "diff_ids": list(image_cfg.get("rootfs", {}).get("diff_ids", [])) + [diff_id]}}
    if message:
        out["comment"] = message
    return out
