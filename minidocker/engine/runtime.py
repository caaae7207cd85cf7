"""The engine: every `docker` verb on containers, on one state root (what dockerd serves).

Used by the CLI (compat/cli), the Engine API's handlers (compat/server: the Python API,
compat/api/, goes through them too) and the builder. Each verb lives in a module of its own,
named after it; this class only holds the stores and reads well:

    create.py     resolve the image, decide the command, reserve the name, make the layers
    start.py      spawn the container's monitor (monitor.py -> core/shim.py -> core/runc.py)
    stop.py       kill, stop, restart, wait
    resources.py  pause, unpause, update, stats
    exec.py       exec
    connect.py    network connect / disconnect
    remove.py     rm, container prune
    changes.py    diff, export, commit
    cleanup.py    what system prune adds: the host left clean
    reconcile.py  a record whose monitor died is repaired before anyone acts on it

There is no daemon: every method reads the on-disk record (container/store.py).
"""
from __future__ import annotations

from ..container.store import ContainerStore
from ..errors import NotFound
from ..images.store import Image, ImageStore
from ..paths import StateRoot

INSPECT_ORDER = ["Id", "Created", "Path", "Args", "State", "Image", "ResolvConfPath", "HostnamePath",
                 "HostsPath", "LogPath", "Name", "RestartCount", "Driver", "Platform", "MountLabel",
                 "ProcessLabel", "AppArmorProfile", "ExecIDs", "HostConfig", "GraphDriver", "Mounts",
                 "Config", "NetworkSettings"]

# kept in the record (as in Docker's config.v2.json) but not shown by inspect
PRIVATE_KEYS = {"HasBeenManuallyStopped", "RestartCanceled"}


class Runtime:
    """All lifecycle operations on one state root. Cheap to create; holds no open files.
    (The verb modules are imported when first used: `minidocker ps` needs none of them.)"""

    def __init__(self, root: StateRoot | str | None = None):
        self.root = root if isinstance(root, StateRoot) else StateRoot.from_env(root)
        self.images = ImageStore(self.root)
        self.containers = ContainerStore(self.root)

    @property
    def cgroup_parent(self) -> str:
        """This state root's cgroup parent: `minidocker` (Docker: `docker`) for the default root,
        `minidocker-<tag>` for any other, so one root's prune never touches another's."""
        from .oci import cgroup_parent
        return cgroup_parent(self.root)

    def cgroups(self):
        """The cgroup driver (v1 or v2) for this state root's containers."""
        from ..core import cgroups
        return cgroups.driver(self.cgroup_parent)

    # --- lookup ---
    def image(self, name: str, pull: bool = True) -> Image:
        try:
            return self.images.resolve(name)  # (an image we have needs none of create.py's imports)
        except NotFound:
            from .create import resolve_image  # built (busybox) or pulled
            return resolve_image(self, name, pull)

    def resolve(self, ref: str) -> str:
        return self.containers.resolve(ref)

    def inspect(self, ref: str) -> dict:
        from .reconcile import reconcile
        rec = reconcile(self, self.containers.read(self.resolve(ref)))
        return {k: rec[k] for k in INSPECT_ORDER if k in rec} | {
            k: v for k, v in rec.items() if k not in INSPECT_ORDER and k not in PRIVATE_KEYS}

    def list(self, all: bool = False) -> list[dict]:
        from .reconcile import reconcile
        recs = [reconcile(self, r) for r in self.containers.all()]
        if not all:
            recs = [r for r in recs if r["State"]["Running"]]
        return sorted(recs, key=lambda r: r["Created"], reverse=True)

    # --- the verbs ---
    def create(self, image: str, command: list[str] | None = None, **kw) -> str:
        from .create import create
        return create(self, image, command, **kw)

    def start(self, ref: str, attach: tuple[int, int, int] | None = None, early=None):
        from .start import start
        return start(self, ref, attach, early)

    def kill(self, ref: str, sig: str | int = "KILL") -> str:
        from .stop import kill
        return kill(self, ref, sig)

    def stop(self, ref: str, timeout: int | None = None) -> str:
        from .stop import stop
        return stop(self, ref, timeout)

    def restart(self, ref: str, timeout: int | None = None) -> str:
        from .stop import restart
        return restart(self, ref, timeout)

    def wait(self, ref: str) -> int:
        from .stop import wait
        return wait(self, ref)

    def pause(self, ref: str) -> str:
        from .resources import pause
        return pause(self, ref)

    def unpause(self, ref: str) -> str:
        from .resources import unpause
        return unpause(self, ref)

    def update(self, ref: str, resources: dict) -> str:
        from .resources import update
        return update(self, ref, resources)

    def stats_sample(self, ref: str) -> dict:
        from .resources import stats_sample
        return stats_sample(self, ref)

    def exec_start(self, ref: str, argv: list[str], **kw):
        from .exec import exec_start
        return exec_start(self, ref, argv, **kw)

    def exec_run(self, ref: str, argv: list[str], **kw) -> tuple[int, bytes, bytes]:
        from .exec import exec_run
        return exec_run(self, ref, argv, **kw)

    def connect(self, ref: str, network: str, aliases: list[str] | None = None, ip: str | None = None) -> str:
        from .connect import connect
        return connect(self, ref, network, aliases, ip)

    def disconnect(self, ref: str, network: str, force: bool = False) -> str:
        from .connect import disconnect
        return disconnect(self, ref, network, force)

    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> str:
        from .remove import remove
        return remove(self, ref, force, volumes)

    def prune(self) -> tuple[list[str], int]:
        from .remove import prune
        return prune(self)

    def cleanup_leftovers(self) -> list[str]:
        from .cleanup import cleanup_leftovers
        return cleanup_leftovers(self)
