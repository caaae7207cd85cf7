"""Keeping data past a container's life: volumes, bind mounts and tmpfs (数据持久化).

A container's writable layer goes when the container goes. Three ways around that, all of
them a mount(2) into the container's filesystem before pivot_root:

    -v mydata:/app/data           a named VOLUME: a directory Docker manages,
                                  <root>/volumes/mydata/_data, bind-mounted in
    -v /host/path:/app/data       a BIND mount: any host directory, bind-mounted in
    --tmpfs /app/cache:size=100m  a TMPFS: memory only, gone when the container stops

`-v /app/data` (no source) and a VOLUME line in the Dockerfile make an *anonymous* volume
(named by a random id), removed with `docker rm -v` or `--rm`. The first time an empty
volume is mounted over a directory the image has, the image's files are copied into it.
Parsing is pure (unit-tested); VolumeStore keeps volumes on disk like Docker.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import time

from . import fsutil
from .errors import Conflict, InvalidArgument, NotFound
from .paths import PRIVATE_DIR

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


# ---------------------------------------------------------------- parsing (pure)
def parse_v(spec: str) -> dict:
    """`-v [source:]target[:options]` -> a mount dict with Docker's field names."""
    parts = spec.split(":")
    opts = []
    if len(parts) == 3:
        source, target, opts = parts[0], parts[1], parts[2].split(",")
    elif len(parts) == 2:
        if parts[1].startswith("/"):
            source, target = parts
        else:  # "/target:ro"
            source, target, opts = "", parts[0], parts[1].split(",")
    elif len(parts) == 1:
        source, target = "", parts[0]
    else:
        raise InvalidArgument(f"invalid volume specification: '{spec}'")
    if not target.startswith("/"):
        raise InvalidArgument(f"invalid volume specification: '{spec}': invalid mount config for type "
                              f"\"volume\": invalid mount path: '{target}' mount path must be absolute")
    if target == "/":
        raise InvalidArgument(f"invalid volume specification: '{spec}': invalid mount config: destination can't be '/'")
    for o in opts:
        if o not in ("ro", "rw", "z", "Z", "nocopy", "rprivate", "private", "rshared", "shared", "rslave", "slave"):
            raise InvalidArgument(f"invalid mode: {o}")
    rw = "ro" not in opts
    if source.startswith("/") or source.startswith("."):
        if not source.startswith("/"):
            raise InvalidArgument(f"invalid volume specification: '{spec}': bind source must be an absolute path")
        return {"Type": "bind", "Source": os.path.normpath(source), "Destination": os.path.normpath(target),
                "Mode": ",".join(opts), "RW": rw, "Propagation": "rprivate", "create_source": True}
    if source and not NAME_RE.match(source):
        raise InvalidArgument(f'"{source}" includes invalid characters for a local volume name, only '
                              '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
                              "directory, use absolute path")
    return {"Type": "volume", "Name": source, "Destination": os.path.normpath(target),
            "Mode": ",".join(o for o in opts if o != "nocopy") or "z", "RW": rw,
            "nocopy": "nocopy" in opts}


def parse_mount(spec: str) -> dict:
    """`--mount type=bind,source=/a,target=/b,readonly` (also volume and tmpfs)."""
    fields = {}
    for item in spec.split(","):
        k, sep, v = item.partition("=")
        fields[k.strip().lower()] = v if sep else "true"
    kind = fields.get("type", "volume")
    target = fields.get("target") or fields.get("destination") or fields.get("dst")
    if not target:
        raise InvalidArgument("invalid argument for --mount: target is required")
    ro = fields.get("readonly", fields.get("ro", "false")) in ("true", "1")
    source = fields.get("source") or fields.get("src") or ""
    if kind == "bind":
        if not source.startswith("/"):
            raise InvalidArgument("invalid mount config for type \"bind\": bind source path must be absolute")
        return {"Type": "bind", "Source": os.path.normpath(source), "Destination": target, "Mode": "",
                "RW": not ro, "Propagation": "rprivate", "create_source": False}
    if kind == "volume":
        return {"Type": "volume", "Name": source, "Destination": target, "Mode": "z", "RW": not ro,
                "nocopy": fields.get("volume-nocopy") == "true"}
    if kind == "tmpfs":
        opts = []
        if "tmpfs-size" in fields:
            opts.append(f"size={fields['tmpfs-size']}")
        if "tmpfs-mode" in fields:
            opts.append(f"mode={fields['tmpfs-mode']}")
        return {"Type": "tmpfs", "Source": "", "Destination": target, "Mode": ",".join(opts), "RW": not ro,
                "Propagation": ""}
    raise InvalidArgument(f"invalid mount type: {kind}")


def parse_tmpfs(spec: str) -> dict:
    """`--tmpfs /app/cache[:rw,size=100m,mode=1777]`."""
    target, _, opts = spec.partition(":")
    if not target.startswith("/"):
        raise InvalidArgument(f"invalid mount path: '{target}' mount path must be absolute")
    return {"Type": "tmpfs", "Source": "", "Destination": target, "Mode": opts, "RW": "ro" not in opts.split(","),
            "Propagation": ""}


def tmpfs_options(mode: str) -> list[str]:
    """A tmpfs mount's options in config.json: Docker's defaults noexec,nosuid,nodev, then the
    user's (exec/suid/dev undo a default; size=, mode= go to the filesystem)."""
    opts = ["noexec", "nosuid", "nodev"]
    undo = {"exec": "noexec", "suid": "nosuid", "dev": "nodev"}
    for o in [x for x in mode.split(",") if x]:
        if o in undo:
            opts = [x for x in opts if x != undo[o]]
        elif o not in opts and o != "rw":
            opts.append(o)
    return opts


def oci_mount(m: dict) -> dict:
    """One entry of a container's Mounts (as `docker inspect` shows it) as config.json has it."""
    if m["Type"] == "tmpfs":
        return {"destination": m["Destination"], "type": "tmpfs", "source": "tmpfs",
                "options": tmpfs_options(m.get("Mode") or "")}
    opts = ["rbind"] + ([] if m.get("RW", True) else ["ro"]) + [m.get("Propagation") or "rprivate"]
    return {"destination": m["Destination"], "type": "bind", "source": m["Source"], "options": opts}


# ---------------------------------------------------------------- the store
class VolumeStore:
    def __init__(self, root):
        self.dir = os.path.join(root.root, "volumes")
        os.makedirs(self.dir, mode=PRIVATE_DIR, exist_ok=True)  # (see paths.StateRoot.ensure)
        if os.stat(self.dir).st_mode & 0o7777 != PRIVATE_DIR:
            os.chmod(self.dir, PRIVATE_DIR)
        self.lock_path = os.path.join(self.dir, ".lock")

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name, "_data")

    def exists(self, name: str) -> bool:
        return os.path.isfile(os.path.join(self.dir, name, "metadata.json"))

    def get(self, name: str) -> dict:
        try:
            meta = fsutil.read_json(os.path.join(self.dir, name, "metadata.json"))
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"get {name}: no such volume") from None
        return {"CreatedAt": meta["CreatedAt"], "Driver": "local", "Labels": meta.get("Labels") or None,
                "Mountpoint": self.path(name), "Name": name, "Options": meta.get("Options") or None,
                "Scope": "local"}

    def names(self) -> list[str]:
        return sorted(n for n in os.listdir(self.dir) if self.exists(n))

    def create(self, name: str | None = None, labels: dict | None = None, anonymous: bool = False) -> str:
        name = name or secrets.token_hex(32)
        if not NAME_RE.match(name):
            raise InvalidArgument(f'create {name}: "{name}" includes invalid characters for a local volume name, '
                                  'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed')
        with fsutil.FileLock(self.lock_path):
            if self.exists(name):
                return name  # docker: creating an existing volume is not an error
            os.makedirs(self.path(name), mode=0o755)
            from .gotime import rfc3339nano
            fsutil.write_json(os.path.join(self.dir, name, "metadata.json"),
                              {"CreatedAt": rfc3339nano(time.time_ns()), "Labels": labels or {},
                               "Anonymous": anonymous})
        return name

    def anonymous(self, name: str) -> bool:
        try:
            return bool(fsutil.read_json(os.path.join(self.dir, name, "metadata.json")).get("Anonymous"))
        except FileNotFoundError:
            return False

    def remove(self, name: str, users: list[str]) -> None:
        if not self.exists(name):
            raise NotFound(f"get {name}: no such volume")
        if users:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
        shutil.rmtree(os.path.join(self.dir, name))

    def size(self, name: str) -> int:
        return fsutil.dir_size(self.path(name))


def copy_image_content(src: str, dest: str) -> None:
    """Fill an empty new volume with what the image has at the mount point (Docker's
    "volume copy-up"), keeping owners, modes and links."""
    if not os.path.isdir(src) or os.listdir(dest):
        return
    for name in os.listdir(src):
        s, d = os.path.join(src, name), os.path.join(dest, name)
        if os.path.isdir(s) and not os.path.islink(s):
            shutil.copytree(s, d, symlinks=True)
        else:
            shutil.copy2(s, d, follow_symlinks=False)
        os.lchown(d, os.lstat(s).st_uid, os.lstat(s).st_gid)
    st = os.stat(src)
    os.chmod(dest, st.st_mode & 0o7777)
    os.chown(dest, st.st_uid, st.st_gid)
