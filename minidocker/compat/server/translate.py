"""Docker's JSON <-> the engine's arguments. Pure: unit-tested without root.

POST /containers/create sends what `docker run`'s flags became on the client side (Config,
HostConfig, NetworkingConfig); the engine's create() takes the flags' own shapes (it is what
the CLI calls). Here one becomes the other, and the container list is drawn from records.
"""
from __future__ import annotations

from ...container import restart
from ...container import state as st
from ...errors import InvalidArgument
from ..cli import format as fmt

RESOURCE_KEYS = ("Memory", "MemorySwap", "NanoCpus", "CpuShares", "CpuQuota", "CpuPeriod", "PidsLimit")
CONFINEMENT_KEYS = ("CapAdd", "CapDrop", "GroupAdd", "Privileged", "ReadonlyRootfs", "SecurityOpt")
# HostConfig settings minidocker does not have: refused when set rather than silently ignored
# (the values a client sends when the flag was not used are fine)
UNSUPPORTED = ("Devices", "DeviceRequests", "ExtraHosts", "Dns", "DnsSearch", "DnsOptions", "Links",
               "VolumesFrom", "CpusetCpus", "CpusetMems", "BlkioWeight", "Ulimits", "Sysctls", "IpcMode",
               "PidMode", "UTSMode", "ShmSize", "OomKillDisable", "Runtime")
UNSET = {"IpcMode": ("private", "shareable"), "ShmSize": (67108864,), "Runtime": ("runc",)}


def refuse_unsupported(host: dict) -> None:
    for key in UNSUPPORTED:
        value = host.get(key)
        if value not in (None, "", [], {}, 0, False) and value not in UNSET.get(key, ()):
            raise InvalidArgument(f"HostConfig.{key} is not supported by minidocker", exit_code=1)


def create_kwargs(body: dict, name: str | None = None) -> tuple[str, list[str] | None, dict]:
    """(image, command, keyword arguments of engine.create.create) from a create request's body."""
    cfg = body or {}
    host = cfg.get("HostConfig") or {}
    image = cfg.get("Image") or ""
    if not image:
        raise InvalidArgument("No image specified", exit_code=1)
    refuse_unsupported(host)
    cmd = cfg.get("Cmd")
    if isinstance(cmd, str):
        cmd = [cmd]
    entrypoint = cfg.get("Entrypoint")
    if isinstance(entrypoint, str):
        entrypoint = [entrypoint]
    binds = list(host.get("Binds") or [])
    bound = {b.split(":")[1] if b.count(":") >= 1 else b for b in binds}
    anonymous = [t for t in (cfg.get("Volumes") or {}) if t not in bound]
    mode = host.get("NetworkMode") or "default"
    endpoints = ((cfg.get("NetworkingConfig") or {}).get("EndpointsConfig") or {})
    ep = endpoints.get(mode) or (next(iter(endpoints.values())) if len(endpoints) == 1 else {}) or {}
    policy = host.get("RestartPolicy") or {}
    log = host.get("LogConfig") or {}
    kw = {
        "name": name or None,
        "entrypoint": entrypoint,
        "env": list(cfg.get("Env") or []),
        "workdir": cfg.get("WorkingDir") or None,
        "user": cfg.get("User") or None,
        "hostname": cfg.get("Hostname") or None,
        "tty": bool(cfg.get("Tty")),
        "stdin_open": bool(cfg.get("OpenStdin")),
        "attach": bool(cfg.get("AttachStdout") or cfg.get("AttachStderr")),
        "auto_remove": bool(host.get("AutoRemove")),
        "restart_policy": restart.validate({"Name": policy.get("Name") or "no",
                                            "MaximumRetryCount": int(policy.get("MaximumRetryCount") or 0)})
        if policy else None,
        "healthcheck": cfg.get("Healthcheck") or None,
        "init": bool(host.get("Init")),
        "log_config": {"Type": log.get("Type") or "json-file", "Config": dict(log.get("Config") or {})},
        "labels": dict(cfg.get("Labels") or {}),
        "resources": {k: host[k] for k in RESOURCE_KEYS if host.get(k) not in (None, 0, -1)},
        "stop_signal": cfg.get("StopSignal") or None,
        "stop_timeout": cfg.get("StopTimeout"),
        "network": mode,
        "network_aliases": list(ep.get("Aliases") or []),
        "publish": publish_specs(host.get("PortBindings") or {}),
        "publish_all": bool(host.get("PublishAllPorts")),
        "expose": list(cfg.get("ExposedPorts") or {}),
        "ip": ((ep.get("IPAMConfig") or {}).get("IPv4Address")) or None,
        "volumes": binds + anonymous,
        "mounts": [mount_spec(m) for m in host.get("Mounts") or []],
        "tmpfs": [f"{t}:{o}" if o else t for t, o in (host.get("Tmpfs") or {}).items()],
        "confine": {k: host[k] for k in CONFINEMENT_KEYS if host.get(k)}
        | ({"UsernsMode": host["UsernsMode"]} if host.get("UsernsMode") else {}),
    }
    return image, (list(cmd) if cmd else None), kw


def publish_specs(bindings: dict) -> list[str]:
    """{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]} -> ["8080:80/tcp"] (what -p said)."""
    out = []
    for key, blist in bindings.items():
        port, _, proto = key.partition("/")
        for b in blist or [{}]:
            ip, hport = (b or {}).get("HostIp") or "", (b or {}).get("HostPort") or ""
            out.append(f"{ip}:{hport}:{port}/{proto or 'tcp'}" if ip else
                       f"{hport}:{port}/{proto or 'tcp'}" if hport else f"{port}/{proto or 'tcp'}")
    return out


def mount_spec(m: dict) -> str:
    """HostConfig.Mounts[i] -> the --mount string it came from."""
    parts = [f"type={m.get('Type') or 'volume'}"]
    if m.get("Source"):
        parts.append(f"source={m['Source']}")
    parts.append(f"target={m.get('Target') or ''}")
    if m.get("ReadOnly"):
        parts.append("readonly")
    size = (m.get("TmpfsOptions") or {}).get("SizeBytes")
    if size:
        parts.append(f"tmpfs-size={size}")
    if (m.get("VolumeOptions") or {}).get("NoCopy"):
        parts.append("volume-nocopy")
    return ",".join(parts)


def summary(rec: dict, now: float | None = None) -> dict:
    """One container as GET /containers/json lists it (moby's types.Container)."""
    from ... import gotime
    command = " ".join([rec["Path"]] + [f"'{a}'" if " " in a else a for a in rec["Args"]])
    settings = rec.get("NetworkSettings") or {}
    return {
        "Id": rec["Id"], "Names": [rec["Name"]], "Image": rec["Config"].get("Image", ""),
        "ImageID": rec.get("Image", ""), "Command": command,
        "Created": int(gotime.parse_rfc3339(rec["Created"]) or 0),
        "Ports": fmt.api_ports(settings.get("Ports")), "Labels": rec["Config"].get("Labels") or {},
        "State": rec["State"]["Status"], "Status": st.status_string(rec["State"], now),
        "HostConfig": {"NetworkMode": rec["HostConfig"].get("NetworkMode") or "default"},
        "NetworkSettings": {"Networks": settings.get("Networks") or {}},
        "Mounts": rec.get("MountPoints") or rec.get("Mounts") or [],
    }


def list_filters(filters: dict) -> list[str]:
    """The `filters` query ({"name": ["t1"]} or the old {"name": {"t1": true}}) -> -f strings."""
    out = []
    for key, values in (filters or {}).items():
        if isinstance(values, dict):
            values = [v for v, on in values.items() if on]
        elif isinstance(values, (str, bool, int)):  # (a lone value: docker-py sends lists, curl users may not)
            values = [str(values).lower() if isinstance(values, bool) else values]
        out += [f"{key}={v}" for v in values]
    return out


def go_file_mode(st_mode: int) -> int:
    """A stat's st_mode as Go's os.FileMode (what the API's path stat carries): the permission
    bits, and one high bit per kind (ModeDir 1<<31, ModeSymlink 1<<27, ...)."""
    import stat
    mode = st_mode & 0o777
    kinds = [(stat.S_ISDIR, 1 << 31), (stat.S_ISLNK, 1 << 27), (stat.S_ISFIFO, 1 << 25), (stat.S_ISSOCK, 1 << 24),
             (stat.S_ISBLK, 1 << 26), (stat.S_ISCHR, (1 << 26) | (1 << 21))]
    for test, bit in kinds:
        if test(st_mode):
            mode |= bit
    for flag, bit in ((stat.S_ISUID, 1 << 23), (stat.S_ISGID, 1 << 22), (stat.S_ISVTX, 1 << 20)):
        if st_mode & flag:
            mode |= bit
    return mode
