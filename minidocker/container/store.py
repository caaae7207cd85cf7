"""Containers on disk: one directory per container, as Docker keeps them.

    containers/<id>/config.v2.json   the record `inspect` shows (Id, Name, Config, State, ...)
    containers/<id>/hostconfig.json  how to run it (AutoRemove, NetworkMode, limits, ...)
    containers/<id>/<id>-json.log    its output (logs.py)
    containers/<id>/hostname, hosts, resolv.conf   bind-mounted over the container's /etc files
    containers/<id>/bundle/config.json  the OCI runtime spec of its last start (engine/oci.py)
    containers/<id>/.lock            held while the record is being changed
    containers/<id>/shim.lock        held by the container's monitor for as long as it lives

There is no daemon: any `minidocker` process may read and change a record, so every
read-modify-write holds the record's lock, and names are reserved under the store-wide lock.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

from .. import fsutil
from ..errors import Conflict, InvalidArgument, NotFound
from ..paths import StateRoot

CONFIG = "config.v2.json"
HOSTCONFIG = "hostconfig.json"


class ContainerStore:
    def __init__(self, root: StateRoot):
        self.root = root.ensure()

    # --- paths ---
    def dir(self, cid: str) -> str:
        return self.root.container_dir(cid)

    def path(self, cid: str, name: str) -> str:
        return os.path.join(self.dir(cid), name)

    def log_path(self, cid: str) -> str:
        return self.path(cid, f"{cid}-json.log")

    def shim_lock_path(self, cid: str) -> str:
        return self.path(cid, "shim.lock")

    def init_identity_path(self, cid: str) -> str:
        """"<pid> <start time>" of the running container's PID 1, written by its monitor."""
        return self.path(cid, "init.pid")

    # --- listing and lookup ---
    def ids(self) -> list[str]:
        try:
            return sorted(x for x in os.listdir(self.root.containers)
                          if os.path.isfile(os.path.join(self.root.containers, x, CONFIG)))
        except FileNotFoundError:
            return []

    def read(self, cid: str) -> dict:
        try:
            rec = fsutil.read_json(self.path(cid, CONFIG))
        except FileNotFoundError:
            raise NotFound(f"No such container: {cid}") from None
        try:
            rec["HostConfig"] = fsutil.read_json(self.path(cid, HOSTCONFIG))
        except FileNotFoundError:
            rec["HostConfig"] = {}
        return rec

    def all(self) -> list[dict]:
        out = []
        for cid in self.ids():
            try:
                out.append(self.read(cid))
            except (NotFound, ValueError):
                continue  # removed or half-written while we listed
        return out

    def resolve(self, ref: str) -> str:
        """Full id, then exact name, then unique id prefix -- docker's lookup order."""
        if not ref:
            raise NotFound("No such container: ")
        ids = self.ids()
        if ref in ids:
            return ref
        name = "/" + ref.lstrip("/")
        for cid in ids:
            try:
                if fsutil.read_json(self.path(cid, CONFIG)).get("Name") == name:
                    return cid
            except (FileNotFoundError, ValueError):
                continue
        hits = [c for c in ids if c.startswith(ref)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise NotFound(f"Multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}")

    def name_in_use(self, name: str) -> str | None:
        for cid in self.ids():
            try:
                if fsutil.read_json(self.path(cid, CONFIG)).get("Name") == "/" + name:
                    return cid
            except (FileNotFoundError, ValueError):
                continue
        return None

    # --- writing ---
    def write(self, rec: dict) -> None:
        rec = dict(rec)
        host = rec.pop("HostConfig", {})
        fsutil.write_json(self.path(rec["Id"], HOSTCONFIG), host, durable=False)
        fsutil.write_json(self.path(rec["Id"], CONFIG), rec, mode=0o600)

    def create(self, rec: dict) -> None:
        """Reserve the name and write the new record, atomically with respect to other CLIs."""
        with fsutil.FileLock(self.root.lock):
            name = rec["Name"].lstrip("/")
            other = self.name_in_use(name)
            if other:
                raise Conflict(f'Conflict. The container name "/{name}" is already in use by '
                               f'container "{other}". You have to remove (or rename) that '
                               "container to be able to reuse that name.")
            os.makedirs(self.dir(rec["Id"]), mode=0o710)
            self.write(rec)

    def rename(self, cid: str, new: str) -> None:
        """`docker rename`: the new name is taken (or refused) under the same lock as create's."""
        with fsutil.FileLock(self.root.lock):
            with self.update(cid) as rec:
                if rec["Name"] == "/" + new:
                    raise InvalidArgument("Renaming a container with the same name as its current name",
                                          exit_code=1)
                other = self.name_in_use(new)
                if other:
                    raise Conflict(f'Error when allocating new name: Conflict. The container name "/{new}" '
                                   f'is already in use by container "{other}". You have to remove (or '
                                   "rename) that container to be able to reuse that name.")
                old, rec["Name"] = rec["Name"], "/" + new
        from .. import events
        events.emit(self.root, "container", "rename", cid, events.container_attributes(rec, oldName=old))

    @contextmanager
    def update(self, cid: str):
        """with store.update(cid) as rec: ... -- the record is saved when the block ends."""
        with fsutil.FileLock(self.path(cid, ".lock")):
            rec = self.read(cid)
            yield rec
            self.write(rec)

    def delete(self, cid: str) -> None:
        fsutil.rmtree(self.dir(cid), ignore_errors=True)
        try:
            os.unlink(self.op_lock_path(cid))  # last: whoever waited on it finds no record now
        except FileNotFoundError:
            pass

    def op_lock(self, cid: str, blocking: bool = True) -> fsutil.FileLock | None:
        """Held by `start` until the container's monitor runs, and by `rm` until the record is
        marked for removal: never both at once, so prune cannot delete a container that is
        being started (a ghost: running with no record), and a removal that was killed half-way
        can be taken up again. Returns None if busy and not `blocking`."""
        # (outside the container's directory: a lock file deleted while held would let the
        # next one open a fresh file of the same name and "hold" it at the same time)
        lock = fsutil.FileLock(self.op_lock_path(cid))
        if lock.acquire(blocking=blocking):
            return lock
        lock.release()
        return None

    def op_lock_path(self, cid: str) -> str:
        return os.path.join(self.root.containers, ".op", cid)

    # --- the monitor ---
    def shim_alive(self, cid: str) -> bool:
        return fsutil.is_locked(self.shim_lock_path(cid))

    def monitor_pid(self, cid: str) -> int | None:
        """The PID of the container's monitor, while it holds shim.lock (it wrote its PID there)."""
        if not self.shim_alive(cid):
            return None
        try:
            return int(fsutil.read_text(self.shim_lock_path(cid), "") or 0) or None
        except ValueError:
            return None
