"""The OCI bundle: a directory with a `config.json`, the whole contract between Docker and runc.

    dockerd  --config.json-->  containerd  -->  shim  -->  runc create/start  -->  init  -->  execve
    (images, names, networks, volumes)        (this file is all the low-level part gets)

Docker turns a container (image, -e, -v, -m, --network, ...) into an OCI runtime spec
(github.com/opencontainers/runtime-spec); runc reads nothing else: it knows no images, no
names, no Docker. minidocker keeps the same split: engine/oci.py writes the spec into
containers/<id>/bundle/config.json, and core/runc.py runs it. Because the file is the real
format, the real runc runs our bundles too (tests/test_bundle.py), and `runc spec` makes
one you can hold next to ours.

What minidocker implements of the spec (anything else in a config.json is refused, never
silently ignored):

    process     args env cwd terminal user{uid gid additionalGids} capabilities{bounding
                effective permitted inheritable, ambient for root} noNewPrivileges rlimits oomScoreAdj
                apparmorProfile (core/apparmor.py)
    root        path readonly
    hostname
    mounts      destination type source options (flags like runc's parseMountOptions)
    linux       namespaces (type, path; a new mount namespace is required) cgroupsPath
                resources{memory{limit swap} cpu{shares quota period} pids{limit}}
                maskedPaths readonlyPaths rootfsPropagation seccomp (core/seccomp.py)
                devices (nodes made in /dev); linux.resources.devices: Docker's default rules, or
                all devices when the list ends with an allow-all entry (--privileged)
                (hooks, sysctl, SELinux labels: refused)
                uidMappings gidMappings (a new user namespace: core/userns.py)

Pure functions: reading, checking and writing the file; option parsing. Tested without root.
Taught in notebook 01 (a container is a process: its config.json, run by the real runc too).
"""
from __future__ import annotations

import json
import os

from ..errors import MinidockerError
from .linux import syscalls as sc

OCI_VERSION = "1.0.2"
CONFIG = "config.json"

# namespace type in the spec -> the clone flag (the order runc creates them in does not matter
# for us: core/init.py unshares them all at once, joins the ones with a path)
NAMESPACES = {"pid": sc.CLONE_NEWPID, "network": sc.CLONE_NEWNET, "mount": sc.CLONE_NEWNS,
              "ipc": sc.CLONE_NEWIPC, "uts": sc.CLONE_NEWUTS, "user": sc.CLONE_NEWUSER,
              "cgroup": sc.CLONE_NEWCGROUP}
SUPPORTED_NAMESPACES = {"pid", "network", "mount", "ipc", "uts", "cgroup", "user"}

# mount(2) option words, as runc's parseMountOptions reads them: (set, clear) flags
MOUNT_FLAGS = {
    "ro": (sc.MS_RDONLY, 0), "rw": (0, sc.MS_RDONLY),
    "nosuid": (sc.MS_NOSUID, 0), "suid": (0, sc.MS_NOSUID),
    "nodev": (sc.MS_NODEV, 0), "dev": (0, sc.MS_NODEV),
    "noexec": (sc.MS_NOEXEC, 0), "exec": (0, sc.MS_NOEXEC),
    "bind": (sc.MS_BIND, 0), "rbind": (sc.MS_BIND | sc.MS_REC, 0),
    "remount": (sc.MS_REMOUNT, 0),
    "relatime": (sc.MS_RELATIME, 0), "strictatime": (sc.MS_STRICTATIME, 0),
    "noatime": (sc.MS_NOATIME, 0), "nodiratime": (sc.MS_NODIRATIME, 0),
    "sync": (sc.MS_SYNCHRONOUS, 0), "async": (0, sc.MS_SYNCHRONOUS),
    "defaults": (0, 0),
}
PROPAGATION = {
    "private": sc.MS_PRIVATE, "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "slave": sc.MS_SLAVE, "rslave": sc.MS_SLAVE | sc.MS_REC,
    "shared": sc.MS_SHARED, "rshared": sc.MS_SHARED | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE, "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}

RLIMITS = {f"RLIMIT_{n}": i for i, n in enumerate(
    ["CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE", "MEMLOCK", "AS", "LOCKS",
     "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME"])}

KNOWN = {  # what may appear; what is listed but not honoured is refused in check() when set
    "": {"ociVersion", "process", "root", "hostname", "mounts", "linux", "annotations", "hooks", "domainname"},
    "process": {"terminal", "user", "args", "env", "cwd", "capabilities", "noNewPrivileges", "rlimits",
                "oomScoreAdj", "consoleSize", "apparmorProfile", "selinuxLabel"},
    "linux": {"namespaces", "cgroupsPath", "resources", "maskedPaths", "readonlyPaths", "rootfsPropagation",
              "devices", "uidMappings", "gidMappings", "sysctl", "seccomp", "mountLabel"},
}
# --init (docker-init, tini): PID 1 stays a small init of ours that starts the program (core/init.py)
INIT_ANNOTATION = "org.minidocker.init"

NOT_YET = {"": ["hooks", "domainname"], "process": ["selinuxLabel"],
           "linux": ["mountLabel"]}
# linux.sysctl: only the settings that belong to a namespace of the container's own (runc's list)
SYSCTL_NAMESPACED = {"kernel.msgmax": "ipc", "kernel.msgmnb": "ipc", "kernel.msgmni": "ipc",
                     "kernel.sem": "ipc", "kernel.shmall": "ipc", "kernel.shmmax": "ipc",
                     "kernel.shmmni": "ipc", "kernel.shm_rmid_forced": "ipc", "kernel.hostname": "uts",
                     "kernel.domainname": "uts"}
RESOURCES = {"memory": {"limit", "swap"}, "cpu": {"shares", "quota", "period"}, "pids": {"limit"},
             "devices": None}  # devices: the cgroup rules are always Docker's defaults


class BundleError(MinidockerError, ValueError):
    """A config.json this runtime cannot run (the message names the field)."""

    exit_code = 125


def parse_mount_options(options: list[str]) -> tuple[int, list[int], str]:
    """["nosuid", "rbind", "ro", "rprivate", "size=64k"] -> (mount flags, propagation changes, data).

    Words runc knows become flags; propagation words become changes made after the mount, in
    order; the rest (size=, mode=, gid=, newinstance, ...) is the filesystem's own data string,
    passed to mount(2) as is."""
    flags, propagation, data = 0, [], []
    for o in options or []:
        if o in MOUNT_FLAGS:
            set_, clear = MOUNT_FLAGS[o]
            flags = (flags | set_) & ~clear
        elif o in PROPAGATION:
            propagation.append(PROPAGATION[o])
        else:
            data.append(o)
    return flags, propagation, ",".join(data)


def is_bind(m: dict) -> bool:
    """A bind mount: type "bind" or a bind/rbind option (runc reads both)."""
    return m.get("type") == "bind" or bool({"bind", "rbind"} & set(m.get("options") or []))


def namespaces(spec: dict) -> tuple[int, dict[str, str]]:
    """(clone flags of the namespaces to create, {type: path} of those to join)."""
    new, join = 0, {}
    for ns in (spec.get("linux") or {}).get("namespaces") or []:
        kind = ns.get("type")
        if kind not in SUPPORTED_NAMESPACES:
            raise BundleError(f"linux.namespaces: type {kind!r} is not supported by minidocker")
        if ns.get("path"):
            join[kind] = ns["path"]
        else:
            new |= NAMESPACES[kind]
    return new, join


def check(spec: dict, runs_hooks: bool = False) -> dict:
    """Refuse what minidocker cannot honour: better a clear error than a container that is
    less isolated than its config.json says. (`runs_hooks`: the caller runs the spec's OCI
    hooks, as minidocker-runc does; minidocker's own runtime passes functions instead.)"""
    for where, known in KNOWN.items():
        section = spec if not where else spec.get(where) or {}
        unknown = sorted(set(section) - known)
        if unknown:
            raise BundleError(f"config.json: {where + '.' if where else ''}{unknown[0]} is not supported by minidocker")
    proc = spec.get("process") or {}
    if not proc.get("args"):
        raise BundleError("config.json: process.args must not be empty")
    if not (spec.get("root") or {}).get("path"):
        raise BundleError("config.json: root.path is required")
    linux = spec.get("linux") or {}
    for where, keys in NOT_YET.items():
        section = spec if not where else spec.get(where) or {}
        for key in keys:
            if section.get(key) and not (runs_hooks and key == "hooks"):
                name = f"{where}.{key}" if where else key
                raise BundleError(f"config.json: {name} is not supported by minidocker yet")
    for kind, value in (linux.get("resources") or {}).items():
        if RESOURCES.get(kind, ()) is None:
            continue
        # (settings at their zero value are unset: dockerd sends {"blockIO": {"weight": 0}}, ...)
        given = {k for k, v in (value or {}).items() if v not in (None, 0, False, "", [], {})}
        if given - set(RESOURCES.get(kind, ())):
            raise BundleError(f"config.json: linux.resources.{kind}: only "
                              f"{', '.join(f'{k}.{f}' for k, fs in RESOURCES.items() if fs for f in sorted(fs))} "
                              "are supported by minidocker")
    for r in proc.get("rlimits") or []:
        if r.get("type") not in RLIMITS:
            raise BundleError(f"config.json: process.rlimits: unknown type {r.get('type')!r}")
    caps = proc.get("capabilities") or {}
    if caps.get("ambient") and int((proc.get("user") or {}).get("uid", 0)) != 0:
        raise BundleError("config.json: ambient capabilities for a non-root user are not supported by minidocker")
    for m in spec.get("mounts") or []:
        dest = str(m.get("destination", ""))
        if not dest.startswith("/") or ".." in dest.split("/"):
            raise BundleError(f"config.json: mount destination {dest!r} must be absolute, without ..")
        unknown = [o for o in m.get("options") or [] if o not in MOUNT_FLAGS and o not in PROPAGATION]
        if is_bind(m) and unknown:  # a bind mount has no data string: these would vanish silently
            raise BundleError(f"config.json: mount {dest}: option {unknown[0]!r} is not supported by minidocker")
    check_seccomp(linux.get("seccomp"))
    new, join = namespaces(spec)
    if not new & sc.CLONE_NEWNS:  # rootfs.setup would pivot the host's own root
        raise BundleError("config.json: linux.namespaces must have a new mount namespace (no path)")
    check_user_namespace(linux, new, join)
    check_devices(linux.get("devices") or [])
    check_sysctl(linux.get("sysctl") or {}, new)
    return spec


def check_sysctl(sysctl: dict, new: int) -> None:
    """A sysctl is written inside the container (/proc/sys): only those of its own namespaces,
    or it would change the host's (runc refuses the same)."""
    for key in sysctl:
        ns = SYSCTL_NAMESPACED.get(key) or ("ipc" if key.startswith("fs.mqueue.") else
                                            "network" if key.startswith("net.") else None)
        if ns is None:
            raise BundleError(f"config.json: sysctl {key!r} is not in a separate kernel namespace")
        if not new & NAMESPACES[ns]:
            raise BundleError(f"config.json: sysctl {key!r} is not allowed in the host's {ns} namespace")


DEVICE_TYPES = {"c", "b", "u", "p"}  # char, block, char (unbuffered), fifo


def check_devices(devices: list[dict]) -> None:
    """linux.devices: nodes to make in the container's /dev (--privileged lists the host's)."""
    for d in devices:
        path = str(d.get("path", ""))
        if not path.startswith("/dev/") or ".." in path.split("/"):
            raise BundleError(f"config.json: linux.devices: path {path!r} must be under /dev, without ..")
        if d.get("type") not in DEVICE_TYPES:
            raise BundleError(f"config.json: linux.devices {path}: type {d.get('type')!r} is not one of c, b, u, p")
        if d["type"] != "p" and not all(isinstance(d.get(k), int) for k in ("major", "minor")):
            raise BundleError(f"config.json: linux.devices {path}: major and minor must be numbers")


def device_rules(spec: dict) -> list[str] | None:
    """The cgroup device rules of linux.resources.devices: None (Docker's defaults) unless the
    list ends with an allow-everything entry ({"allow": true, "access": "rwm"}: --privileged)."""
    rules = ((spec.get("linux") or {}).get("resources") or {}).get("devices") or []
    if rules:
        last = rules[-1]
        if last.get("allow") and set(last.get("access") or "rwm") == set("rwm") and \
                last.get("type", "a") == "a" and last.get("major") is None and last.get("minor") is None:
            from .cgroups import devices
            return list(devices.ALLOW_ALL)
    return None


def check_user_namespace(linux: dict, new: int, join: dict) -> None:
    """A new user namespace needs both maps (runc's wording); maps need the namespace."""
    has_maps = bool(linux.get("uidMappings")) or bool(linux.get("gidMappings"))
    if "user" in join:
        raise BundleError("config.json: joining a user namespace (a path) is not supported by minidocker")
    if not new & sc.CLONE_NEWUSER:
        if has_maps:
            raise BundleError("config.json: user namespaces are not enabled, but uidMappings/gidMappings are set")
        return
    if not linux.get("uidMappings") or not linux.get("gidMappings"):
        raise BundleError("config.json: user namespaces enabled, but no uidMappings/gidMappings")
    for key in ("uidMappings", "gidMappings"):
        for m in linux[key]:
            if not all(isinstance(m.get(k), int) and m[k] >= 0 for k in ("containerID", "hostID", "size")):
                raise BundleError(f"config.json: linux.{key}: containerID, hostID and size must be numbers")
    others = sorted(set(join) - {"network"})
    if others:  # (they would belong to the host's user namespace: init could not use them)
        raise BundleError(f"config.json: with a new user namespace, minidocker joins only a network namespace, "
                          f"not {others[0]}")


SECCOMP_KEYS = {"defaultAction", "defaultErrnoRet", "architectures", "flags", "syscalls"}


def check_seccomp(section: dict | None) -> None:
    """linux.seccomp: actions and comparisons this runtime can compile (core/seccomp.py)."""
    if not section:
        return
    from . import seccomp
    unknown = sorted(set(section) - SECCOMP_KEYS)
    if unknown or section.get("flags") or section.get("listenerPath"):
        raise BundleError(f"config.json: linux.seccomp.{(unknown or ['flags'])[0]} is not supported by minidocker")
    try:
        seccomp.action_value(section.get("defaultAction") or "", section.get("defaultErrnoRet"))
        for call in section.get("syscalls") or []:
            seccomp.action_value(call.get("action") or "", call.get("errnoRet"))
            for arg in call.get("args") or []:
                if arg.get("op") not in seccomp.OPS:
                    raise seccomp.ProfileError(f"unknown comparison {arg.get('op')!r}")
    except seccomp.ProfileError as e:
        raise BundleError(f"config.json: linux.seccomp: {e}") from None


def root_path(bundle: str, spec: dict) -> str:
    """root.path, relative to the bundle directory unless absolute (as runc reads it)."""
    path = spec["root"]["path"]
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(bundle, path))


def load(bundle: str, runs_hooks: bool = False) -> dict:
    try:
        with open(os.path.join(bundle, CONFIG), "rb") as f:
            spec = json.load(f)
    except FileNotFoundError:
        raise BundleError(f"{os.path.join(bundle, CONFIG)}: no such file (is {bundle} a bundle?)") from None
    except ValueError as e:
        raise BundleError(f"{os.path.join(bundle, CONFIG)}: not JSON: {e}") from None
    return check(spec, runs_hooks)


def write(bundle: str, spec: dict) -> str:
    """Write config.json into `bundle` (created if missing); return its path."""
    os.makedirs(bundle, mode=0o700, exist_ok=True)
    path = os.path.join(bundle, CONFIG)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(check(spec), f, indent=2)
    os.rename(tmp, path)
    return path
