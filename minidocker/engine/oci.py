"""From a Docker container to an OCI runtime spec: what dockerd hands the low-level runtime.

Taught in notebook 01. moby does this in daemon/oci_linux.go (createSpec): start from a
default spec, then fill in the container's command, user, hostname, mounts, namespaces and
limits. The result goes to containers/<id>/bundle/config.json (core/bundle.py), and
core/runc.py (or the real runc) runs it.

    Config.Entrypoint + Cmd      -> process.args          (container/runconfig.py decided them)
    Config.Env, Hostname, Tty    -> process.env, hostname, process.terminal
    Config.User ("daemon")       -> process.user {uid, gid, additionalGids}, looked up in the
                                    container's own /etc/passwd and /etc/group, as dockerd does
    Config.WorkingDir            -> process.cwd (made inside if missing, as runc does)
    the overlay `merged` dir     -> root.path
    Mounts, /etc/hosts & co      -> mounts (after Docker's defaults: /proc, /dev, /sys, ...)
    HostConfig.NetworkMode       -> linux.namespaces: a new network namespace, none at all (host),
                                    or the path of another container's (container:<name>)
    HostConfig limits            -> linux.resources (container/hostconfig.py)
    MaskedPaths, ReadonlyPaths   -> linux.maskedPaths, linux.readonlyPaths
    CapAdd, CapDrop, Privileged  -> process.capabilities (container/confinement.py)
    SecurityOpt                  -> linux.seccomp (Docker's default profile unless told otherwise,
                                    core/seccomp.py), process.noNewPrivileges,
                                    process.apparmorProfile (on AppArmor hosts: core/apparmor.py)
    ReadonlyRootfs               -> root.readonly
"""
from __future__ import annotations

import os

from .. import fsutil, volumes
from ..container import confinement, hostconfig, runconfig
from ..core import apparmor, bundle, cgroups, security
from ..core.linux import syscalls as sc
from ..errors import MinidockerError

# moby oci/defaults.go DefaultLinuxSpec: the mounts every container gets, in this order
DEFAULT_MOUNTS = [
    {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["ro", "nosuid", "noexec", "nodev"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
]
ETC_FILES = (("/etc/resolv.conf", "ResolvConfPath"), ("/etc/hostname", "HostnamePath"), ("/etc/hosts", "HostsPath"))


def cgroup_parent(root) -> str:
    """A state root's cgroup parent: `minidocker` for the default root (Docker: `docker`),
    `minidocker-<tag>` for any other, so that one root's prune never touches another's."""
    return f"{cgroups.PARENT}-{root.tag}" if root.tag else cgroups.PARENT


def bundle_dir(container_dir: str) -> str:
    return os.path.join(container_dir, "bundle")


def resolve_user(rootfs: str, user: str, group_add: list[str] | None = None) -> tuple[int, int, list[int], str]:
    """`-u name[:group]` (and `--group-add`) against the container's own /etc/passwd and
    /etc/group (never the host's: names differ between images), read through the rootfs with
    symlinks kept inside it."""
    def read(path: str) -> str:
        return fsutil.read_text(fsutil.scoped_path(rootfs, path), "") or ""
    uid, gid, groups, home = runconfig.resolve_user(user, read("/etc/passwd"), read("/etc/group"))
    if group_add:
        groups = sorted(set(groups) | set(runconfig.additional_groups(group_add, read("/etc/group"))))
    return uid, gid, groups, home


def capabilities(host: dict | None = None) -> list[str]:
    """Docker's 14 capabilities, changed by --cap-add/--cap-drop/--privileged."""
    host = host or {}
    caps = confinement.capabilities([f"CAP_{c}" for c in security.DEFAULT_CAPS], list(host.get("CapAdd") or []),
                                    list(host.get("CapDrop") or []), bool(host.get("Privileged")),
                                    confinement.known_caps(sc.cap_last_cap()))
    return caps  # (CAP_MKNOD is safe: the cgroup's device rules decide what may be opened)


def depth(path: str) -> int:
    return len([p for p in path.split("/") if p])


def build(rec: dict, rootfs: str, user: tuple[int, int, list[int]], *, cgroup_version: int,
          cgroup_parent: str = cgroups.PARENT, join_netns: str | None = None, joined: dict | None = None) -> dict:
    """The config.json of container record `rec`, whose root filesystem is mounted at `rootfs`.
    `join_netns`: /proc/<pid>/ns/net of the container whose network this one shares
    (`joined`: that container's record: its hostname and /etc files are used)."""
    cfg, host = rec["Config"], rec["HostConfig"]
    network_mode = host.get("NetworkMode") or "default"
    hostname = (joined or rec)["Config"].get("Hostname") or rec["Id"][:12]
    tty = bool(cfg.get("Tty"))
    uid, gid, groups = user
    caps = capabilities(host)
    privileged = bool(host.get("Privileged"))
    opts = confinement.parse_security_opts(list(host.get("SecurityOpt") or []))
    namespaces = [{"type": "mount"}, {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "cgroup"}]
    if join_netns:
        namespaces.append({"type": "network", "path": join_netns})
    elif network_mode != "host":
        namespaces.append({"type": "network"})
    files = joined or rec
    shm = {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
           "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={host.get('ShmSize') or hostconfig.SHM_SIZE}"]}
    user_mounts = [volumes.oci_mount(m) for m in rec.get("Mounts") or []]
    user_mounts += [volumes.oci_mount({"Type": "tmpfs", "Destination": t, "Mode": o})
                    for t, o in (host.get("Tmpfs") or {}).items()]
    user_mounts += [{"destination": dest, "type": "bind", "source": files[key], "options": ["rbind", "rprivate"]}
                    for dest, key in ETC_FILES if files.get(key)]
    user_mounts.sort(key=lambda m: depth(m["destination"]))  # parents before children (moby sorts too)
    spec = {
        "ociVersion": bundle.OCI_VERSION,
        "process": {
            "terminal": tty,
            "user": {"uid": uid, "gid": gid, "additionalGids": list(groups)},
            "args": [rec["Path"]] + list(rec["Args"]),
            "env": runconfig.process_env(cfg.get("Env") or [], hostname, tty),
            "cwd": cfg.get("WorkingDir") or "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": opts["no_new_privileges"],
        },
        "root": {"path": rootfs, "readonly": bool(host.get("ReadonlyRootfs"))},
        "hostname": hostname,
        "mounts": DEFAULT_MOUNTS + [shm] + user_mounts,
        "linux": {
            "namespaces": namespaces,
            "cgroupsPath": f"/{cgroup_parent}/{rec['Id']}",
            "resources": hostconfig.oci_resources(host),
            "maskedPaths": [] if privileged else list(host.get("MaskedPaths") or security.MASKED_PATHS),
            "readonlyPaths": [] if privileged else list(host.get("ReadonlyPaths") or security.READONLY_PATHS),
        },
    }
    filter_ = confinement.seccomp_spec(host, caps)
    if filter_:
        spec["linux"]["seccomp"] = filter_
    profile = confinement.apparmor_spec(host, apparmor.enabled())
    if profile:
        spec["process"]["apparmorProfile"] = profile
    if privileged:  # --privileged: /sys writable, as Docker mounts it; every host device, usable
        spec["mounts"] = [dict(m, options=[o for o in m["options"] if o != "ro"]) if m["destination"] == "/sys" else m
                          for m in spec["mounts"]]
        spec["linux"]["devices"] = host_devices()
        spec["linux"]["resources"]["devices"] = [{"allow": True, "access": "rwm"}]
    if host.get("Init"):  # --init: Docker mounts docker-init (tini) and runs it first; ours is built in
        spec["annotations"] = {bundle.INIT_ANNOTATION: "true"}
    return bundle.check(spec)


HOST_DEV_SKIP = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev", "console"}  # (runc's HostDevices)


def host_devices(dev: str = "/dev") -> list[dict]:
    """Every device node under the host's /dev, as linux.devices entries (what moby gives
    --privileged): the container may open the host's disks, its kernel log, its terminals."""
    import stat
    out = []
    for top, dirs, files in os.walk(dev):
        dirs[:] = sorted(d for d in dirs if not (top == dev and d in HOST_DEV_SKIP))
        for name in sorted(files):
            if top == dev and name in HOST_DEV_SKIP:
                continue
            path = os.path.join(top, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                out.append({"path": path, "type": "c" if stat.S_ISCHR(st.st_mode) else "b",
                            "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
                            "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid})
    return out


def with_user_namespace(spec: dict, root: str, host: dict) -> None:
    """A state root made by --userns-remap: a user namespace with its maps (unless --userns host),
    and a way for the mapped root through the state root's directories to what it mounts."""
    from ..storage.shift import idmaps
    maps = idmaps(root)
    if not maps or host.get("UsernsMode") == "host":
        return
    from . import remap  # (with subprocess & co.: only for a remapped state root)
    uids, gids = maps
    spec["linux"]["namespaces"].append({"type": "user"})
    spec["linux"]["uidMappings"], spec["linux"]["gidMappings"] = uids.oci(), gids.oci()
    for path in [spec["root"]["path"]] + [m["source"] for m in spec["mounts"] if m.get("type") == "bind"]:
        remap.grant_traversal(root, path, gids.to_host(0))
        if path.startswith(os.path.join(root, "containers", "")) and os.path.isfile(path):
            os.chown(path, uids.to_host(0), gids.to_host(0))  # its /etc/hosts & co. are root's inside
    bundle.check(spec)


def write_bundle(rec: dict, container_dir: str, rootfs: str, *, cgroup_version: int,
                 cgroup_parent: str = cgroups.PARENT, join_netns: str | None = None,
                 joined: dict | None = None) -> str:
    """Resolve the user, write config.json; return the bundle dir. (A missing working directory
    is made by the runtime, inside the container: core/init.py.)"""
    try:
        uid, gid, groups, _home = resolve_user(rootfs, rec["Config"].get("User") or "",
                                               rec["HostConfig"].get("GroupAdd"))
    except MinidockerError as e:  # docker checks the user before starting: exit 125
        raise MinidockerError(str(e), exit_code=125) from None
    spec = build(rec, rootfs, (uid, gid, groups), cgroup_version=cgroup_version, cgroup_parent=cgroup_parent,
                 join_netns=join_netns, joined=joined)
    with_user_namespace(spec, os.path.dirname(os.path.dirname(container_dir)), rec["HostConfig"])
    if spec["process"].get("apparmorProfile") == apparmor.DEFAULT:
        apparmor.ensure_default()  # at each start, as dockerd: it may have been unloaded since
    d = bundle_dir(container_dir)
    bundle.write(d, spec)
    return d
