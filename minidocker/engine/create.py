"""`docker create` (and the first half of `docker run`): a container that exists but has not run.

Taught in notebooks 01 and 05. Named steps, in order:

    resolve_image     the image, built (busybox) or pulled if it is not here yet
    decide_command    ENTRYPOINT/CMD/--entrypoint -> argv (container/runconfig.py)
    network_settings  --network, -p, --ip checked; NetworkSettings before the start
    wanted_mounts     -v, --mount, --tmpfs and the image's VOLUME lines, duplicates refused
    container_config  the `Config` that `docker inspect` shows
    new_record        the whole record (HostConfig from container/hostconfig.py)
    make_files        reserve the name, then the `-init` and writable overlay layers, the
                      volumes, /etc/hostname, /etc/hosts, /etc/resolv.conf and the log file

Nothing runs yet: the state is "created". If any step after the name was reserved fails,
everything made so far is removed: never a half-made container.
"""
from __future__ import annotations

import os
import sys
import time

from .. import events, fsutil, gotime
from ..container import confinement, etcfiles, health, hostconfig, names, restart, runconfig
from ..container import state as st
from ..core import security, userns
from ..core.linux import syscalls as sc
from ..errors import Conflict, InvalidArgument, NotFound
from ..images.store import Image
from ..network.store import PREDEFINED


def resolve_image(rt, name: str, pull: bool = True) -> Image:
    """Find an image; the embedded busybox is built on first use; others are pulled
    (as `docker run` does) unless MINIDOCKER_OFFLINE=1."""
    try:
        return rt.images.resolve(name)
    except NotFound:
        from ..images import busybox  # (builds the offline image: only the first time)
        if busybox.is_embedded(name):
            return busybox.ensure_busybox(rt.images)
        from ..images import reference
        ref = reference.parse(name)  # a malformed name says so ("invalid reference format")
        if os.environ.get("MINIDOCKER_OFFLINE") == "1" or not pull:
            raise NotFound(f"Unable to find image '{ref}' locally") from None
        import sys
        from ..images import registry
        print(f"Unable to find image '{ref}' locally", file=sys.stderr, flush=True)
        registry.pull(rt.images, name, say=lambda s: print(s, file=sys.stderr, flush=True))
        return rt.images.resolve(str(ref))


def decide_command(image_config: dict, command: list[str] | None, entrypoint: str | None):
    """(Entrypoint, Cmd, argv) after `docker run [--entrypoint E] IMAGE [args]`."""
    ep, cmd = runconfig.merge_command(image_config, command, entrypoint)
    return ep, cmd, runconfig.argv(ep, cmd)


def network_settings(rt, cid: str, network: str, aliases: list[str], hostname: str | None, ip: str | None,
                     publish: list[str], publish_all: bool, expose: list[str]) -> tuple[dict, dict, dict, str | None]:
    """(NetworkSettings, exposed ports, port bindings, hostname) for the network flags."""
    from ..network import modes, ports as portsmod
    kind, _ = modes.parse_mode(network)
    if kind == "container" and (publish or publish_all):
        raise InvalidArgument("conflicting options: port publishing and the container type network mode")
    if kind == "host" and not hostname:
        hostname = os.uname().nodename  # the host's network, the host's name
    exposed, bindings = portsmod.bindings_from_flags(publish, expose)
    if kind == "host":
        bindings = {}  # docker: "Published ports are discarded when using host network mode"
    settings = modes.Networking(rt.root).settings_for_create(network, aliases, cid,
                                                             hostname_given=bool(hostname) and kind != "host")
    if ip:
        eps = list(settings["Networks"].values())
        if not eps or list(settings["Networks"])[0] in PREDEFINED:
            raise InvalidArgument("user specified IP address is supported on user defined networks only")
        eps[0]["IPAMConfig"] = {"IPv4Address": ip}
    return settings, exposed, bindings, hostname


def wanted_mounts(image_config: dict, volumes: list[str], mounts: list[str], tmpfs: list[str]) -> list[dict]:
    """The volumes and bind mounts to make (tmpfs are checked for clashes only), Docker's way:
    a Dockerfile VOLUME the user did not mount elsewhere becomes an anonymous volume."""
    from .. import volumes as volmod
    wanted = [volmod.parse_v(v) for v in volumes] + [volmod.parse_mount(m) for m in mounts]
    targets = [m["Destination"] for m in wanted] + [volmod.parse_tmpfs(t)["Destination"] for t in tmpfs]
    taken = set(targets)
    if len(taken) < len(targets):
        raise InvalidArgument("Duplicate mount point: " + next(t for t in targets if targets.count(t) > 1))
    for target in image_config.get("Volumes") or {}:  # the image's VOLUME lines
        volmod.check_destination(os.path.normpath(target) if target.startswith("/") else target)
        if target not in taken:
            wanted.append({"Type": "volume", "Name": "", "Destination": target, "Mode": "", "RW": True})
    return wanted


def container_config(image: str, icfg: dict, *, hostname: str, user: str | None, env: list[str], cmd, ep,
                     workdir: str | None, tty: bool, stdin_open: bool, attach: bool, labels: dict,
                     exposed: dict, stop_signal: str | None, stop_timeout: int | None,
                     anonymous: list[str] = (), healthcheck: dict | None = None) -> dict:
    """`Config` as `docker inspect` shows it: the image's settings with the run flags over them.
    `anonymous`: the targets of `-v /path` (Docker lists them in Config.Volumes, not in Binds)."""
    volumes = {**(icfg.get("Volumes") or {}), **{t: {} for t in anonymous}} or None
    config = {
        "Hostname": hostname, "Domainname": "",
        "User": user if user is not None else icfg.get("User", ""),
        "AttachStdin": attach and stdin_open, "AttachStdout": attach, "AttachStderr": attach,
        "Tty": tty, "OpenStdin": stdin_open, "StdinOnce": attach and stdin_open,
        "Env": runconfig.container_env(icfg.get("Env") or [], env),
        "Cmd": cmd, "Image": image, "Volumes": volumes,
        "WorkingDir": workdir if workdir is not None else icfg.get("WorkingDir", ""),
        "Entrypoint": ep, "OnBuild": icfg.get("OnBuild"),
        "Labels": {**(icfg.get("Labels") or {}), **labels},
    }
    all_exposed = {**(icfg.get("ExposedPorts") or {}), **exposed}
    if all_exposed:  # docker's key order: right after AttachStderr
        items = list(config.items())
        at = [k for k, _ in items].index("AttachStderr") + 1
        config = dict(items[:at] + [("ExposedPorts", all_exposed)] + items[at:])
    if stop_signal or icfg.get("StopSignal"):
        runconfig.parse_signal(stop_signal or icfg["StopSignal"])
        config["StopSignal"] = stop_signal or icfg["StopSignal"]
    if stop_timeout is not None:
        config["StopTimeout"] = stop_timeout
    check = health.merge(icfg.get("Healthcheck"), healthcheck)
    if check is not None:  # docker's key order: right after Cmd
        health.validate(check)
        items = list(config.items())
        at = [k for k, _ in items].index("Cmd") + 1
        config = dict(items[:at] + [("Healthcheck", check)] + items[at:])
    if icfg.get("Shell"):  # (a CMD-SHELL health check runs in it)
        config["Shell"] = list(icfg["Shell"])
    return config


def new_record(rt, cid: str, name: str, argv: list[str], img: Image, config: dict, host: dict,
               settings: dict) -> dict:
    cdir = rt.containers.dir(cid)
    return {
        "Id": cid, "Created": gotime.rfc3339nano(time.time_ns()), "Path": argv[0], "Args": argv[1:],
        "State": st.new_state(), "Image": img.id,
        "ResolvConfPath": os.path.join(cdir, "resolv.conf"),
        "HostnamePath": os.path.join(cdir, "hostname"),
        "HostsPath": os.path.join(cdir, "hosts"),
        "LogPath": rt.containers.log_path(cid) if host["LogConfig"]["Type"] != "none" else "",
        "Name": "/" + name, "RestartCount": 0, "Driver": "overlay2", "Platform": "linux",
        "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "", "ExecIDs": None,
        "HostConfig": host, "GraphDriver": {"Data": None, "Name": "overlay2"},
        "Mounts": [], "Config": config, "NetworkSettings": settings,
    }


def make_files(rt, rec: dict, img: Image, wanted: list[dict]) -> None:
    """Reserve the name (atomically: two `run --name x` at once, one wins), then make the
    layers, volumes and files. On any failure, remove everything: no half-made container."""
    from .remove import remove_files
    cid = rec["Id"]
    lock = rt.containers.op_lock(cid)  # prune keeps away from a container being made
    try:
        _make_files(rt, rec, img, wanted, remove_files)
    finally:
        lock.release()


def _make_files(rt, rec: dict, img: Image, wanted: list[dict], remove_files) -> None:
    cid = rec["Id"]
    from .. import volumes as volmod
    rt.containers.create(rec)  # reserves the name; raises Conflict if taken
    try:
        mount_id, init_id = rt.images.create_container_layers(cid, img)
        vs = volmod.VolumeStore(rt.root)
        with vs.lock():  # no volume prune between making a volume and the record naming it
            rec["Mounts"] = prepare_mounts(rt, wanted, img, vs, init_id)
            rt.containers.write(rec)
        d = rt.images.driver
        lowers = [os.path.realpath(os.path.join(d.home, x)) for x in d.lower_chain(mount_id)]
        rec["GraphDriver"]["Data"] = {
            "LowerDir": ":".join(lowers), "MergedDir": d.merged(mount_id),
            "UpperDir": d.diff(mount_id), "WorkDir": os.path.join(d.dir(mount_id), "work")}
        hostname = rec["Config"]["Hostname"]
        from ..network.modes import parse_mode
        kind, _ = parse_mode(rec["HostConfig"]["NetworkMode"])
        fsutil.write_atomic(rec["HostnamePath"], etcfiles.hostname_file(hostname), durable=False)
        fsutil.write_atomic(rec["HostsPath"], etcfiles.hosts_file(hostname), durable=False)
        host_resolv = fsutil.read_text("/etc/resolv.conf", "") or ""
        fsutil.write_atomic(rec["ResolvConfPath"], etcfiles.resolv_conf(host_resolv, kind), durable=False)
        from ..storage.shift import idmaps  # (engine/remap.py: only for a remapped root)
        maps = idmaps(rt.root.root)
        if maps and rec["HostConfig"].get("UsernsMode") != "host":  # root's inside, as in Docker
            for key in ("HostnamePath", "HostsPath", "ResolvConfPath"):
                os.chown(rec[key], maps[0].to_host(0), maps[1].to_host(0))
        if rec["LogPath"]:
            open(rec["LogPath"], "a").close()
        rt.containers.write(rec)
    except BaseException:
        remove_files(rt.root, cid)
        raise


def prepare_mounts(rt, wanted: list[dict], img: Image, vs, init_id: str | None = None) -> list[dict]:
    """Create named/anonymous volumes (an empty one is filled from the container's view of the
    image, its `init_id` layer on top) and bind sources; return docker inspect's `Mounts`
    entries. (The caller holds vs.lock().)"""
    from .. import volumes as volmod
    out = []
    for m in wanted:
        m = dict(m)
        if m["Type"] == "volume":
            m["Name"] = vs.create(m["Name"] or None, anonymous=not m["Name"], locked=True)
            m.update(Source=vs.path(m["Name"]), Driver="local", Propagation="")
            # dockerd's populateVolumes: any *empty* volume is filled, also one made earlier by
            # `volume create` (copy_image_content leaves a volume that has files alone)
            if not m.pop("nocopy", False) and not os.listdir(m["Source"]):
                with rt.images.image_rootfs(img, init_id) as rootfs:
                    volmod.copy_image_content(fsutil.scoped_path(rootfs, m["Destination"]), m["Source"])
            m.pop("nocopy", None)
            out.append({k: m[k] for k in ("Type", "Name", "Source", "Destination", "Driver", "Mode", "RW",
                                          "Propagation")})
        elif m["Type"] == "bind":
            if not os.path.exists(m["Source"]):
                if not m.pop("create_source"):
                    raise InvalidArgument(f"invalid mount config for type \"bind\": bind source path does "
                                          f"not exist: {m['Source']}")
                os.makedirs(m["Source"], mode=0o755)  # docker -v creates a missing host directory
            m.pop("create_source", None)
            out.append(m)
        else:
            out.append(m)
    return out


def create(rt, image: str, command: list[str] | None = None, *, name: str | None = None,
           entrypoint: str | None = None, env: list[str] | None = None,
           workdir: str | None = None, user: str | None = None, hostname: str | None = None,
           tty: bool = False, stdin_open: bool = False, attach: bool = False,
           auto_remove: bool = False, restart_policy: dict | None = None, healthcheck: dict | None = None,
           init: bool = False, log_config: dict | None = None,
           labels: dict | None = None,
           resources: dict | None = None, stop_signal: str | None = None,
           stop_timeout: int | None = None, network: str = "default",
           network_aliases: list[str] | None = None, publish: list[str] | None = None,
           publish_all: bool = False, expose: list[str] | None = None,
           ip: str | None = None, volumes: list[str] | None = None,
           mounts: list[str] | None = None, tmpfs: list[str] | None = None,
           confine: dict | None = None, cid: str | None = None) -> str:
    """Create a container; return its id (`cid`, when the caller chose it: `run` does, for the
    monitor it spawned before the create). `resources` holds HostConfig limits (Memory,
    MemorySwap, NanoCpus, CpuShares, PidsLimit), as container/hostconfig.resources() makes them;
    `confine` the confinement keys (CapAdd, CapDrop, Privileged, ReadonlyRootfs, SecurityOpt),
    as the CLI sends them (container/confinement.py checks them here, as dockerd does)."""
    confine = dict(confine or {})
    confinement.check_caps(confine, confinement.known_caps(sc.cap_last_cap()))
    opts = confinement.parse_security_opts(list(confine.get("SecurityOpt") or []))
    if workdir and not workdir.startswith("/"):
        raise InvalidArgument(f"the working directory '{workdir}' is invalid, it needs to be an absolute path")
    if name is not None:
        name = runconfig.validate_name(name)
    if restart_policy is not None:
        restart_policy = restart.validate(restart_policy)
        if auto_remove and not restart.is_none(restart_policy):
            raise InvalidArgument(hostconfig.RESTART_WITH_AUTOREMOVE)
    img = resolve_image(rt, image)
    icfg = img.config.get("config") or {}
    ep, cmd, argv = decide_command(icfg, command, entrypoint)
    cid = cid or os.urandom(32).hex()  # (secrets.token_hex, without its imports)
    settings, exposed, bindings, hostname = network_settings(
        rt, cid, network, list(network_aliases or []), hostname, ip, list(publish or []), publish_all,
        list(expose or []))
    wanted = wanted_mounts(icfg, list(volumes or []), list(mounts or []), list(tmpfs or []))
    config = container_config(image, icfg, hostname=hostname or runconfig.default_hostname(cid), user=user,
                              env=list(env or []), cmd=cmd, ep=ep, workdir=workdir, tty=tty,
                              stdin_open=stdin_open, attach=attach, labels=dict(labels or {}), exposed=exposed,
                              stop_signal=stop_signal, stop_timeout=stop_timeout,
                              anonymous=[v for v in volumes or [] if ":" not in v], healthcheck=healthcheck)
    binds = [v for v in volumes or [] if ":" in v]  # `-v src:dst`; `-v /dst` alone is in Config.Volumes
    host = hostconfig.host_config(network_mode=network, port_bindings=bindings, publish_all=publish_all,
                                  auto_remove=auto_remove, restart_policy=restart_policy, log_config=log_config,
                                  limits=resources,
                                  binds=binds, tmpfs=tmpfs,
                                  masked_paths=security.MASKED_PATHS, readonly_paths=security.READONLY_PATHS)
    if userns.running_in_user_namespace():  # rootless mode: no cgroups to hold the limits
        for warning in hostconfig.discard_limits(host):
            print(f"WARNING: {warning}", file=sys.stderr)
    if init:
        host["Init"] = True  # (docker leaves the key out unless --init was given)
    host.update(confine)
    from ..storage.shift import idmaps
    if idmaps(rt.root.root):  # (a state root made by --userns-remap)
        from . import remap
        remap.check_host_options(host)
    if host["Privileged"]:  # nothing masked or read-only (dockerd leaves both lists null)
        host["MaskedPaths"] = host["ReadonlyPaths"] = None
    for retry in range(10):
        rec = new_record(rt, cid, name or names.random_name(retry), argv, img, config, host, settings)
        rec["AppArmorProfile"] = opts["apparmor"] or ""  # (dockerd: the given one until the first start)
        try:
            make_files(rt, rec, img, wanted)
            events.emit(rt.root, "container", "create", cid, events.container_attributes(rec))
            return cid
        except Conflict:
            if name or retry == 9:
                raise  # a name the user chose is taken; or ten random ones were (never seen)
    raise AssertionError("unreachable")
