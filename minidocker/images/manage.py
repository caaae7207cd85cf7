"""Managing local images: tag, rmi, history, image prune -- and freeing layers nobody uses.

Images and layers are separate things. An image is a small config JSON naming its layers
(by DiffID); a layer may serve many images. So deleting an image deletes only its config
and tags, then every layer that no other image and no container still stands on.
"""
from __future__ import annotations

import os

from ..errors import Conflict, NotFound
from .. import fsutil
from . import reference as refmod
from .store import Image, ImageStore, chain_ids


def tag(store: ImageStore, source: str, target: str) -> None:
    img = store.resolve(source)
    store.tag(refmod.parse(target), img.id)


def _containers_using(runtime, image_id: str) -> list[dict]:
    return [r for r in runtime.list(all=True) if r["Image"] == image_id]


def _in_use(runtime) -> set[str]:
    return {r["Image"] for r in runtime.list(all=True)}


def referenced_chains(store: ImageStore, keep_image: str | None = None) -> set[str]:
    """Every ChainID some image or some container still needs."""
    needed: set[str] = set()
    for iid in store.image_ids():
        if iid == keep_image:
            continue
        try:
            needed.update(chain_ids(store.get(iid).diff_ids))
        except (NotFound, ValueError):
            continue
    for cid in store.containers_using_layers():
        parent = store.container_parent(cid)
        while parent:
            needed.add(parent)
            parent = store.layer_parent(parent)
    return needed


def delete_unused_layers(store: ImageStore, chains: list[str]) -> list[str]:
    """Remove the given layers (top first) if nothing needs them; return those removed."""
    needed = referenced_chains(store)
    removed = []
    with store.lock():
        for chain in reversed(chains):
            if chain in needed or not store.has_layer(chain):
                continue
            store.driver.remove(store.layer_cache_id(chain))
            fsutil.rmtree(store.layer_dir(chain), ignore_errors=True)
            removed.append(chain)
    return removed


def _delete_image(store: ImageStore, img: Image, in_use: set[str] = frozenset()) -> list[str]:
    out = []
    for t in store.tags_of(img.id):
        store.untag(t)
        out.append(f"Untagged: {t}")
    parent = store.parent_of(img.id)
    os.unlink(os.path.join(store.root.imagedb, img.id.split(":", 1)[1]))
    fsutil.rmtree(os.path.join(store.root.image_dir, "imagedb", "metadata", "sha256", img.id.split(":", 1)[1]),
                  ignore_errors=True)
    out.append(f"Deleted: {img.id}")
    from .. import events
    events.emit(store.root, "image", "delete", img.id, {"name": img.id})
    out += [f"Deleted: {c}" for c in delete_unused_layers(store, chain_ids(img.diff_ids))]
    # a build's intermediate images go with the last image built on them
    if parent and parent not in in_use and not store.tags_of(parent) and not store.children_of(parent):
        try:
            out += _delete_image(store, store.get(parent), in_use)
        except NotFound:
            pass
    return out


def remove(runtime, ref: str, force: bool = False) -> list[str]:
    """`docker rmi`: untag a name; delete the image when its last name goes. Returns the
    lines docker prints (Untagged: ... / Deleted: sha256:...)."""
    store = runtime.images
    img = store.resolve(ref)
    short = img.short_id
    tags = store.tags_of(img.id)
    by_name = not refmod.looks_like_id(ref) or ref in tags
    users = _containers_using(runtime, img.id)
    running = [r for r in users if r["State"]["Running"]]
    if by_name:
        name = str(refmod.parse(ref))
        if len(tags) > 1:  # other names remain: only this name goes
            store.untag(name)
            return [f"Untagged: {name}"]
        if users and not force:
            raise Conflict(f'conflict: unable to remove repository reference "{ref}" (must force) - '
                           f"container {users[0]['Id'][:12]} is using its referenced image {short}")
        if running or store.children_of(img.id):  # the name goes, the image stays for its users
            store.untag(name)
            return [f"Untagged: {name}"]
        return _delete_image(store, img, _in_use(runtime))
    if len(tags) > 1 and not force:
        raise Conflict(f"conflict: unable to delete {short} (must be forced) - image is referenced "
                       "in multiple repositories")
    if running:
        raise Conflict(f"conflict: unable to delete {short} (cannot be forced) - image is being used "
                       f"by running container {running[0]['Id'][:12]}")
    if users and not force:
        raise Conflict(f"conflict: unable to delete {short} (must be forced) - image is being used "
                       f"by stopped container {users[0]['Id'][:12]}")
    if store.children_of(img.id) and not force:
        raise Conflict(f"conflict: unable to delete {short} (cannot be forced) - image has dependent child images")
    return _delete_image(store, img, _in_use(runtime))


def history(store: ImageStore, ref: str) -> list[dict]:
    """One row per history entry, newest first: created, created_by, size, comment, id."""
    img = store.resolve(ref)
    chains = chain_ids(img.diff_ids)
    entries = img.config.get("history") or [{"created": img.config.get("created", ""), "created_by": ""}
                                            for _ in img.diff_ids]
    rows, layer = [], 0
    for e in entries:
        size = 0
        if not e.get("empty_layer"):
            if layer < len(chains):
                size = store.layer_size(chains[layer])
            layer += 1
        rows.append({"created": e.get("created", ""), "created_by": e.get("created_by", ""),
                     "comment": e.get("comment", ""), "size": size, "id": "<missing>"})
    rows.reverse()
    # locally built images know their parents: each step's image names its history row
    current = img.id
    for row in rows:
        if current is None:
            break
        row["id"] = current
        current = store.parent_of(current)
    return rows


def prune(runtime, all_images: bool = False) -> tuple[list[str], int]:
    """Remove dangling images (no tag), or with all_images every image no container uses."""
    store = runtime.images
    used = _in_use(runtime)
    lines, space = [], 0
    removed, tried = True, set()
    while removed:  # a parent becomes prunable once its last child is gone: go round again
        removed = False
        for iid in store.image_ids():
            gone = not os.path.exists(os.path.join(store.root.imagedb, iid.split(":", 1)[1]))
            if iid in tried or iid in used or gone:
                continue
            if store.children_of(iid) or (not all_images and store.tags_of(iid)):
                continue  # dangling = no name and nothing built on it
            tried.add(iid)
            img = store.get(iid)
            before = {c: store.layer_size(c) for c in chain_ids(img.diff_ids)}
            out = _delete_image(store, img, used)
            removed = removed or bool(out)
            space += sum(size for c, size in before.items() if f"Deleted: {c}" in out)
            lines += [line.replace("Untagged:", "untagged:").replace("Deleted:", "deleted:") for line in out]
    return lines, space


def import_rootfs(store: ImageStore, source, *args, **kwargs) -> str:
    """`docker import` (see _import_rootfs), while holding ImageStore.working()."""
    with store.working():
        return _import_rootfs(store, source, *args, **kwargs)


def _import_rootfs(store: ImageStore, source, repo: str | None, config: dict | None = None,
                  message: str = "", source_name: str = "-") -> str:
    """`docker import`: one tarball of a root filesystem becomes a one-layer image."""
    import json
    from .platform import host_architecture
    import time
    from ..gotime import rfc3339nano
    ref = refmod.parse(repo) if repo else None  # a bad name fails before anything is stored
    chain = store.register_layer(source, None)
    diff_id = store.layer_diff_id(chain)
    now = rfc3339nano(time.time_ns())
    arch = host_architecture()
    cfg = {"architecture": arch, "comment": message or f"Imported from {source_name}",
           "config": config or {}, "created": now,
           "history": [{"created": now, "comment": message or f"Imported from {source_name}"}],
           "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    img = store.put_image(json.dumps(cfg, separators=(",", ":")).encode())
    if ref is not None:
        store.tag(ref, img.id)
    return img.id
