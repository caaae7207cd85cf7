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
import time

from . import fsutil
from .errors import Conflict, InvalidArgument, NotFound
from .paths import PRIVATE_DIR

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


# ---------------------------------------------------------------- parsing (pure)
RW_MODES = ("rw", "ro")
LABEL_MODES = ("z", "Z")
PROPAGATION_MODES = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
CONSISTENCY_MODES = ("consistent", "cached", "delegated")
# What runc lets a mount cover inside /proc: the files lxcfs emulates, nothing else
# (libcontainer's checkProcMount). /proc itself may only be another proc.
PROC_MOUNTS_ALLOWED = ("/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
                       "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev",
                       "/proc/sys/kernel/ns_last_pid")


def clean_path(path: str) -> str:
    """Go's filepath.Clean for an absolute path: "/a//b/../c/" -> "/a/c" (and "//x" -> "/x")."""
    return "/" + os.path.normpath(path).lstrip("/") if path.startswith("/") else os.path.normpath(path)


def check_destination(dest: str, source: str = "") -> None:
    """Refuse what runc refuses to mount over: anything inside /proc (the kernel's knobs there,
    /proc/sys above all, stay read-only and masked as Docker sets them up), and /proc itself.
    (Docker finds out only when the container starts; minidocker says so at once.)"""
    if dest == "/proc":
        raise InvalidArgument(f'error mounting "{source}" to rootfs at "/proc": cannot be mounted '
                              "because it is not of type proc", exit_code=1)
    if dest.startswith("/proc/") and dest not in PROC_MOUNTS_ALLOWED:
        raise InvalidArgument(f'error mounting "{source}" to rootfs at "{dest}": cannot be mounted '
                              "because it is inside /proc", exit_code=1)


def valid_mode(mode: str) -> bool:
    """moby's ValidMountMode: known words only, at most one of each kind ("ro,rw" is not)."""
    if mode == "":
        return True
    counts = [0, 0, 0, 0, 0]
    for o in mode.split(","):
        kinds = [o in RW_MODES, o in LABEL_MODES, o in PROPAGATION_MODES, o == "nocopy", o in CONSISTENCY_MODES]
        if not any(kinds):
            return False
        counts[kinds.index(True)] += 1
    return max(counts) <= 1


def parse_v(spec: str) -> dict:
    """`-v [source:]target[:options]` -> a mount dict with Docker's field names."""
    parts = spec.split(":")
    mode = ""
    if len(parts) == 3:
        source, target, mode = parts
    elif len(parts) == 2:
        if parts[1].startswith("/"):
            source, target = parts
        else:  # "/target:ro"
            source, target, mode = "", parts[0], parts[1]
    elif len(parts) == 1:
        source, target = "", parts[0]
    else:
        raise InvalidArgument(f"invalid volume specification: '{spec}'")
    if not target.startswith("/"):
        raise InvalidArgument(f"invalid volume specification: '{spec}': invalid mount config for type "
                              f"\"volume\": invalid mount path: '{target}' mount path must be absolute")
    target = clean_path(target)
    if target == "/":
        raise InvalidArgument(f"invalid volume specification: '{spec}': invalid mount config: destination can't be '/'")
    if not valid_mode(mode):
        raise InvalidArgument(f"invalid mode: {mode}")
    opts = [o for o in mode.split(",") if o]
    rw = "ro" not in opts
    if source.startswith("/") or source.startswith("."):
        if not source.startswith("/"):
            raise InvalidArgument(f"invalid volume specification: '{spec}': bind source must be an absolute path")
        if "nocopy" in opts:
            raise InvalidArgument(f"invalid mode: {mode}: nocopy only supported for volumes")
        check_destination(target, source)
        # (a propagation word is accepted, but binds stay rprivate: nothing a container mounts
        # may propagate back to the host)
        return {"Type": "bind", "Source": clean_path(source), "Destination": target,
                "Mode": mode, "RW": rw, "Propagation": "rprivate", "create_source": True}
    if source and not NAME_RE.match(source):
        raise InvalidArgument(f'"{source}" includes invalid characters for a local volume name, only '
                              '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
                              "directory, use absolute path")
    check_destination(target, source)
    return {"Type": "volume", "Name": source, "Destination": target,
            "Mode": ",".join(o for o in opts if o != "nocopy") or "z", "RW": rw,
            "nocopy": "nocopy" in opts}


def _csv_fields(text: str) -> list[str]:
    """One record of Go's encoding/csv (what docker/cli reads --mount with): fields split on
    commas, "quoted, fields" with "" for a quote; a stray quote is an error as in Go."""
    if text == "":
        raise ValueError("EOF")
    fields, i, n = [], 0, len(text)
    while True:
        if i < n and text[i] == '"':
            i += 1
            value = []
            while True:
                j = text.find('"', i)
                if j < 0:
                    raise ValueError(f'parse error on line 1, column {n + 1}: extraneous or missing " in quoted-field')
                value.append(text[i:j])
                if text.startswith('""', j):
                    value.append('"')
                    i = j + 2
                    continue
                i = j + 1
                break
            if i < n and text[i] != ",":
                raise ValueError(f'parse error on line 1, column {i + 1}: extraneous or missing " in quoted-field')
            fields.append("".join(value))
        else:
            j = text.find(",", i)
            j = n if j < 0 else j
            field = text[i:j]
            if '"' in field:
                raise ValueError(f'parse error on line 1, column {i + field.index(chr(34)) + 1}: '
                                 'bare " in non-quoted-field')
            fields.append(field)
            i = j
        if i >= n:
            return fields
        i += 1  # the comma


def _parse_bool(text: str) -> bool:
    """Go's strconv.ParseBool."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(text)


def parse_mount(spec: str) -> dict:
    """`--mount type=bind,source=/a,target=/b,readonly` (also volume and tmpfs), read as
    docker/cli reads it (a bad field is a flag error, exit 125), then checked as dockerd
    checks it (an invalid mount config: `create` exits 1, `run` 125)."""
    def flag_error(why: str) -> InvalidArgument:
        return InvalidArgument(f'invalid argument "{spec}" for "--mount" flag: {why}')

    try:
        items = _csv_fields(spec)
    except ValueError as e:
        raise flag_error(str(e)) from None
    kind, source, target, ro, nocopy = "volume", "", "", False, False
    propagation, tmpfs_size, tmpfs_mode = None, None, None
    groups: set[str] = set()   # which type's options were given (volume-*, bind-*, tmpfs-*)
    for item in items:
        key, sep, value = item.partition("=")
        key = key.lower()
        if not sep:
            if key in ("readonly", "ro"):
                ro = True
                continue
            if key == "volume-nocopy":
                nocopy = True
                groups.add("volume")
                continue
            raise flag_error(f"invalid field '{item}' must be a key=value pair")
        if key == "type":
            kind = value.lower()
        elif key in ("source", "src"):
            source = value
        elif key in ("target", "dst", "destination"):
            target = value
        elif key in ("readonly", "ro", "bind-nonrecursive", "volume-nocopy"):
            try:
                flag = _parse_bool(value)
            except ValueError:
                raise flag_error(f"invalid value for {key}: {value}") from None
            if key in ("readonly", "ro"):
                ro = flag
            elif key == "volume-nocopy":
                nocopy = flag
                groups.add("volume")
            else:
                groups.add("bind")
        elif key == "consistency":
            pass  # macOS only: Linux ignores it
        elif key == "bind-propagation":
            propagation = value.lower()
            groups.add("bind")
        elif key in ("volume-driver", "volume-label", "volume-opt"):
            groups.add("volume")
            if key == "volume-driver" and value not in ("", "local"):
                raise InvalidArgument(f'plugin "{value}" not found: minidocker has only the local volume driver',
                                      exit_code=1)
            if key == "volume-opt":
                raise InvalidArgument("volume-opt is not supported: minidocker's local volumes are plain "
                                      "directories", exit_code=1)
        elif key == "tmpfs-size":
            from .container.hostconfig import ram_in_bytes
            try:
                size = ram_in_bytes(value)
            except InvalidArgument:
                raise flag_error(f"invalid value for {key}: {value}") from None
            # the kernel reads 100m itself; other forms (1.5g, 64MB) go as bytes
            tmpfs_size = value if re.fullmatch(r"[0-9]+[kKmMgGtTpP]?", value) else str(size)
            groups.add("tmpfs")
        elif key == "tmpfs-mode":
            if not re.fullmatch(r"[0-7]{1,11}", value) or int(value, 8) > 0xFFFFFFFF:  # ParseUint(v, 8, 32)
                raise flag_error(f"invalid value for {key}: {value}")
            tmpfs_mode = f"{int(value, 8):o}"
            groups.add("tmpfs")
        else:
            raise flag_error(f"unexpected key '{key}' in '{item}'")
    if not kind:
        raise flag_error("type is required")
    if not target:
        raise flag_error("target is required")
    for group in sorted(groups - {kind}):
        raise flag_error(f"cannot mix '{group}-*' options with mount type '{kind}'")

    # dockerd's checks (volume/mounts/validate.go)
    def config_error(why: str) -> InvalidArgument:
        return InvalidArgument(f'invalid mount config for type "{kind}": {why}', exit_code=1)

    if kind not in ("bind", "volume", "tmpfs"):
        raise config_error("mount type unknown")
    if not target.startswith("/"):
        raise config_error(f"invalid mount path: '{target}' mount path must be absolute")
    target = clean_path(target)
    if target == "/":
        raise config_error("invalid specification: destination can't be '/'")
    if kind == "bind":
        if not source:
            raise config_error("field Source must not be empty")
        if not source.startswith("/"):
            raise config_error(f"invalid mount path: '{source}' mount path must be absolute")
        if propagation is not None and propagation not in PROPAGATION_MODES:
            raise config_error(f"invalid propagation mode: {propagation}")
        check_destination(target, source)
        return {"Type": "bind", "Source": clean_path(source), "Destination": target, "Mode": "",
                "RW": not ro, "Propagation": "rprivate", "create_source": False}  # (see parse_v)
    if kind == "volume":
        check_destination(target, source)
        return {"Type": "volume", "Name": source, "Destination": target, "Mode": "z", "RW": not ro,
                "nocopy": nocopy}
    if source:
        raise config_error("field Source must not be specified")
    check_destination(target, "tmpfs")
    opts = [f"size={tmpfs_size}"] if tmpfs_size is not None else []
    opts += [f"mode={tmpfs_mode}"] if tmpfs_mode is not None else []
    return {"Type": "tmpfs", "Source": "", "Destination": target, "Mode": ",".join(opts), "RW": not ro,
            "Propagation": ""}


def parse_tmpfs(spec: str) -> dict:
    """`--tmpfs /app/cache[:rw,size=100m,mode=1777]`."""
    target, _, opts = spec.partition(":")
    if not target.startswith("/"):
        raise InvalidArgument(f"invalid mount path: '{target}' mount path must be absolute")
    target = clean_path(target)
    if target == "/":
        raise InvalidArgument("invalid specification: destination can't be '/'", exit_code=1)
    check_destination(target, "tmpfs")
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
        self.root = root
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

    def lock(self) -> fsutil.FileLock:
        """Held while volumes are made or removed, and by `create` until the new container's
        record names the volumes it uses: so prune never deletes a volume a container is
        being made with (it did: "volume prune -a" racing "run -v vol:/data")."""
        return fsutil.FileLock(self.lock_path)

    def create(self, name: str | None = None, labels: dict | None = None, anonymous: bool = False,
               locked: bool = False, driver: str = "local") -> str:
        """Make volume `name` (a random one if None); `locked`: the caller holds lock().
        `driver`: only "local" is built in; dockerd looks any other up as a plugin."""
        name = name or os.urandom(32).hex()
        if driver != "local":
            raise NotFound(f'create {name}: error looking up volume plugin {driver}: plugin "{driver}" not found')
        if not NAME_RE.match(name):
            raise InvalidArgument(f'create {name}: "{name}" includes invalid characters for a local volume name, '
                                  'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed')
        if not locked:
            with self.lock():
                return self.create(name, labels, anonymous, locked=True)
        if self.exists(name):
            return name  # docker: creating an existing volume is not an error
        os.makedirs(self.path(name), mode=0o755)
        from .storage import shift
        maps = shift.idmaps(os.path.dirname(self.dir))
        if maps:  # --userns-remap: the volume is the mapped root's, as in Docker
            shift.shift_tree(self.path(name), *maps)
        from .gotime import rfc3339nano
        fsutil.write_json(os.path.join(self.dir, name, "metadata.json"),
                          {"CreatedAt": rfc3339nano(time.time_ns()), "Labels": labels or {},
                           "Anonymous": anonymous})
        from . import events
        events.emit(self.root, "volume", "create", name, {"driver": "local"})
        return name

    def anonymous(self, name: str) -> bool:
        try:
            return bool(fsutil.read_json(os.path.join(self.dir, name, "metadata.json")).get("Anonymous"))
        except FileNotFoundError:
            return False

    def remove(self, name: str, users) -> None:
        """Remove `name` unless in use. `users`: the ids of the containers using it, or a
        function name -> ids, asked under the lock (so the answer is still true when we act)."""
        with self.lock():
            if not self.exists(name):
                raise NotFound(f"get {name}: no such volume")
            in_use = users(name) if callable(users) else users
            if in_use:
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(in_use)}]")
            fsutil.rmtree(os.path.join(self.dir, name))
        from . import events
        events.emit(self.root, "volume", "destroy", name, {"driver": "local"})

    def prune(self, users, named_too: bool = False) -> tuple[list[str], int]:
        """Remove the volumes nobody uses (`users(name)` -> container ids): anonymous ones,
        named ones too with `named_too`. Returns (names, bytes freed)."""
        removed, space = [], 0
        with self.lock():
            for name in self.names():
                if (not named_too and not self.anonymous(name)) or users(name):
                    continue
                space += self.size(name)
                fsutil.rmtree(os.path.join(self.dir, name))
                removed.append(name)
        from . import events
        for name in removed:
            events.emit(self.root, "volume", "destroy", name, {"driver": "local"})
        return removed, space

    def size(self, name: str) -> int:
        return fsutil.dir_size(self.path(name))


def copy_image_content(src: str, dest: str) -> None:
    """Fill an empty new volume with what the image has at the mount point (Docker's
    "volume copy-up"), keeping owners, modes and links."""
    if not os.path.isdir(src) or os.listdir(dest):
        return
    import shutil  # (with its bz2/lzma: only when a volume is filled, not at every start)
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
