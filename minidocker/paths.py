"""Where minidocker keeps its state: the same tree Docker keeps under /var/lib/docker.

    <root>/
      overlay2/<cache-id>/{diff,link,lower,work,merged}   layers (core/overlay2.py)
      overlay2/l/<short-id> -> ../<cache-id>/diff          short names for mount options
      image/overlay2/imagedb/content/sha256/<image-id>     image config JSON
      image/overlay2/layerdb/sha256/<chain-id>/            layer metadata (diff, size, cache-id, parent)
      image/overlay2/layerdb/mounts/<container-id>/        a container's layers (mount-id, init-id, parent)
      image/overlay2/repositories.json                     tags -> image ids
      containers/<id>/config.v2.json, hostconfig.json      container record and its settings
      containers/<id>/<id>-json.log                        its stdout/stderr (json-file log driver)
      containers/<id>/bundle/config.json                   the OCI bundle its monitor runs (engine/oci.py)
      tmp/                                                 scratch space on the same filesystem

The root defaults to /var/lib/minidocker; MINIDOCKER_ROOT or `minidocker --root DIR`
moves it (tests use a temporary directory so they never touch a learner's containers).
"""
from __future__ import annotations

import os

DEFAULT_ROOT = "/var/lib/minidocker"
PRIVATE_DIR = 0o710  # rwx for root, x for root's group, nothing for others (Docker's data root)


def default_root() -> str:
    return os.environ.get("MINIDOCKER_ROOT") or DEFAULT_ROOT


def sha256_hex(data: bytes) -> str:
    """sha256 through the interpreter's built-in module: hashlib would load OpenSSL (~3 ms),
    which the start path (the state root's tag, the firewall's digest) need not pay."""
    try:
        from _sha256 import sha256
    except ImportError:  # (Python 3.12 renamed it)
        from hashlib import sha256
    return sha256(data).hexdigest()


class StateRoot:
    """All the paths of one state root. (A plain class: `dataclasses` costs an import that
    every container start would pay.)"""

    def __init__(self, root: str):
        self.root = root

    def __repr__(self) -> str:
        return f"StateRoot({self.root!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, StateRoot) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    @property
    def tag(self) -> str:
        """"" for the default state root; else a short hash of its path, so that a second state
        root (tests, a notebook, a second course) gets its own bridge, firewall table and cgroup
        parent instead of fighting over (or pruning) the default root's."""
        if os.path.abspath(self.root) == DEFAULT_ROOT:
            return ""
        return sha256_hex(self.root.encode())[:6]

    @classmethod
    def from_env(cls, root: str | None = None) -> "StateRoot":
        return cls(os.path.abspath(root or default_root()))

    # --- storage ---
    @property
    def overlay2(self) -> str:
        return os.path.join(self.root, "overlay2")

    @property
    def image_dir(self) -> str:
        return os.path.join(self.root, "image", "overlay2")

    @property
    def imagedb(self) -> str:
        return os.path.join(self.image_dir, "imagedb", "content", "sha256")

    @property
    def layerdb(self) -> str:
        return os.path.join(self.image_dir, "layerdb", "sha256")

    @property
    def mountsdb(self) -> str:
        return os.path.join(self.image_dir, "layerdb", "mounts")

    @property
    def repositories(self) -> str:
        return os.path.join(self.image_dir, "repositories.json")

    # --- containers ---
    @property
    def containers(self) -> str:
        return os.path.join(self.root, "containers")

    def container_dir(self, cid: str) -> str:
        return os.path.join(self.containers, cid)

    @property
    def tmp(self) -> str:
        return os.path.join(self.root, "tmp")

    @property
    def lock(self) -> str:
        """One lock file serialises changes to names, tags and layers across CLI calls."""
        return os.path.join(self.root, ".lock")

    def ensure(self) -> "StateRoot":
        for d in (self.overlay2, os.path.join(self.overlay2, "l"), self.imagedb, self.layerdb,
                  self.mountsdb, self.containers, os.path.join(self.containers, ".op"), self.tmp):
            os.makedirs(d, mode=0o755, exist_ok=True)
        # Containers write into overlay2/<id>/diff and volumes/<name>/_data as root: a setuid-root
        # program one of them leaves there must not be reachable by the host's other users
        # (CVE-2021-41091). Like Docker's /var/lib/docker: no way in for anyone but root.
        for d in (self.root, self.overlay2, self.containers):
            if os.stat(d).st_mode & 0o7777 != PRIVATE_DIR:
                os.chmod(d, PRIVATE_DIR)
        return self
