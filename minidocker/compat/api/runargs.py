"""docker-py's keyword arguments -> the Engine API's create body. Pure: unit-tested without root.

`client.containers.run("nginx", ports={"80/tcp": 8080}, volumes=["/srv:/usr/share/nginx/html:ro"],
mem_limit="64m")` is what a Python user writes; POST /containers/create wants Config, HostConfig
and NetworkingConfig. docker-py makes that body on the client side, and so does this module,
so the server's handler receives exactly what it receives from docker-py or the docker CLI.
"""
from __future__ import annotations

import shlex

from ...container.hostconfig import ram_in_bytes

# keyword -> its key in Config
CONFIG_KEYS = {
    "hostname": "Hostname", "domainname": "Domainname", "user": "User", "tty": "Tty",
    "stdin_open": "OpenStdin", "working_dir": "WorkingDir", "mac_address": "MacAddress",
    "network_disabled": "NetworkDisabled", "stop_signal": "StopSignal", "stop_timeout": "StopTimeout",
}
# keyword -> its key in HostConfig (taken as they are; the server refuses what minidocker lacks)
HOST_KEYS = {
    "auto_remove": "AutoRemove", "cap_add": "CapAdd", "cap_drop": "CapDrop", "cgroup_parent": "CgroupParent",
    "cpu_count": "CpuCount", "cpu_percent": "CpuPercent", "cpu_period": "CpuPeriod", "cpu_quota": "CpuQuota",
    "cpu_shares": "CpuShares", "cpuset_cpus": "CpusetCpus", "cpuset_mems": "CpusetMems", "devices": "Devices",
    "dns": "Dns", "dns_opt": "DnsOptions", "dns_search": "DnsSearch", "extra_hosts": "ExtraHosts",
    "group_add": "GroupAdd", "init": "Init", "ipc_mode": "IpcMode", "links": "Links",
    "nano_cpus": "NanoCpus", "oom_kill_disable": "OomKillDisable", "pid_mode": "PidMode",
    "pids_limit": "PidsLimit", "privileged": "Privileged", "publish_all_ports": "PublishAllPorts",
    "read_only": "ReadonlyRootfs", "runtime": "Runtime", "security_opt": "SecurityOpt",
    "sysctls": "Sysctls", "ulimits": "Ulimits", "userns_mode": "UsernsMode", "uts_mode": "UTSMode",
    "volumes_from": "VolumesFrom", "blkio_weight": "BlkioWeight", "mem_swappiness": "MemorySwappiness",
}
OTHER = {"image", "command", "entrypoint", "environment", "labels", "name", "ports", "volumes",
         "mounts", "network", "network_mode", "networking_config", "restart_policy", "mem_limit",
         "memswap_limit", "shm_size", "healthcheck", "log_config", "tmpfs", "detach", "platform",
         "cpus"}  # (cpus: not docker-py's, `docker run --cpus`'s: the notebooks' way to say it)
RUN_ONLY = {"stdout", "stderr", "remove", "stream"}


def split_command(command) -> list[str] | None:
    if command is None:
        return None
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def _bytes(value) -> int:
    return value if isinstance(value, int) else ram_in_bytes(str(value))


def port_bindings(ports: dict) -> tuple[dict, dict]:
    """docker-py's `ports` -> (ExposedPorts, PortBindings).
    {"80/tcp": 8080, 53: ("127.0.0.1", 5353), "22/tcp": None, "9/udp": [1, 2]}"""
    exposed, bindings = {}, {}
    for key, host in ports.items():
        key = str(key)
        if "/" not in key:
            key += "/tcp"
        exposed[key] = {}
        hosts = host if isinstance(host, list) else [host]
        out = []
        for h in hosts:
            if h is None:
                out.append({"HostIp": "", "HostPort": ""})
            elif isinstance(h, tuple):
                out.append({"HostIp": str(h[0]), "HostPort": str(h[1]) if len(h) > 1 and h[1] is not None else ""})
            elif isinstance(h, dict):
                out.append({"HostIp": h.get("HostIp", ""), "HostPort": str(h.get("HostPort", ""))})
            else:
                out.append({"HostIp": "", "HostPort": str(h)})
        bindings[key] = out
    return exposed, bindings


def binds(volumes) -> list[str]:
    """docker-py's `volumes` -> HostConfig.Binds. A list is taken as `-v` strings; a dict maps
    a host path or volume name to {"bind": "/in/container", "mode": "ro"}."""
    if isinstance(volumes, str):
        return [volumes]
    if isinstance(volumes, dict):
        out = []
        for src, spec in volumes.items():
            if isinstance(spec, str):
                out.append(f"{src}:{spec}:rw")
            else:
                mode = spec.get("mode") or ("ro" if spec.get("ro") else "rw")
                out.append(f"{src}:{spec['bind']}:{mode}")
        return out
    return list(volumes or [])


def healthcheck(hc: dict) -> dict:
    """{"test": "curl -f localhost", "interval": 10**9, ...} -> Docker's Healthcheck (keys in
    Docker's case; a string test runs in a shell, as HEALTHCHECK CMD's shell form does)."""
    out = {}
    for k, v in hc.items():
        key = {"test": "Test", "interval": "Interval", "timeout": "Timeout", "retries": "Retries",
               "start_period": "StartPeriod", "start_interval": "StartInterval"}.get(k, k)
        out[key] = v
    if isinstance(out.get("Test"), str):
        out["Test"] = ["CMD-SHELL", out["Test"]]
    return out


def create_body(image: str, command=None, **kw) -> tuple[dict, str | None]:
    """(the create request's body, the name for ?name=) from docker-py's run()/create() arguments.
    An argument docker-py does not have raises TypeError, as docker-py does."""
    unknown = set(kw) - set(CONFIG_KEYS) - set(HOST_KEYS) - OTHER - RUN_ONLY
    if unknown:
        raise TypeError(f"run() got an unexpected keyword argument '{sorted(unknown)[0]}'")
    cfg: dict = {"Image": image}
    host: dict = {}
    if not kw.get("detach"):  # (docker-py's way: a container run in the foreground is attached)
        cfg.update(AttachStdout=True, AttachStderr=True)
        if kw.get("stdin_open"):
            cfg.update(AttachStdin=True, StdinOnce=True)
    if command is not None:
        cfg["Cmd"] = split_command(command)
    if kw.get("entrypoint") is not None:
        cfg["Entrypoint"] = split_command(kw["entrypoint"])
    env = kw.get("environment")
    if env:
        cfg["Env"] = [f"{k}={v}" for k, v in env.items()] if isinstance(env, dict) else list(env)
    labels = kw.get("labels")
    if labels:
        cfg["Labels"] = dict(labels) if isinstance(labels, dict) else {k: "" for k in labels}
    for k, key in CONFIG_KEYS.items():
        if kw.get(k) is not None:
            cfg[key] = kw[k]
    for k, key in HOST_KEYS.items():
        if kw.get(k) is not None:
            host[key] = kw[k]
    if kw.get("mem_limit") is not None:
        host["Memory"] = _bytes(kw["mem_limit"])
    if kw.get("memswap_limit") is not None:
        host["MemorySwap"] = -1 if kw["memswap_limit"] in (-1, "-1") else _bytes(kw["memswap_limit"])
    if kw.get("cpus") is not None:
        host["NanoCpus"] = int(round(float(kw["cpus"]) * 1e9))
    if kw.get("shm_size") is not None:
        host["ShmSize"] = _bytes(kw["shm_size"])
    if kw.get("ports"):
        cfg["ExposedPorts"], host["PortBindings"] = port_bindings(kw["ports"])
    if kw.get("volumes"):
        host["Binds"] = binds(kw["volumes"])
        cfg["Volumes"] = {b.split(":")[1] if ":" in b else b: {} for b in host["Binds"]}
    if kw.get("mounts"):
        host["Mounts"] = [dict(m) for m in kw["mounts"]]
    if kw.get("tmpfs"):
        t = kw["tmpfs"]
        host["Tmpfs"] = dict(t) if isinstance(t, dict) else dict((x.split(":", 1) + [""])[:2] for x in t)
    if kw.get("restart_policy"):
        host["RestartPolicy"] = dict(kw["restart_policy"])
    if kw.get("healthcheck"):
        cfg["Healthcheck"] = healthcheck(kw["healthcheck"])
    if kw.get("log_config"):
        lc = kw["log_config"]
        host["LogConfig"] = {"Type": lc.get("Type", lc.get("type")), "Config": lc.get("Config", lc.get("config")) or {}}
    network, mode = kw.get("network"), kw.get("network_mode")
    if network and mode:
        raise TypeError("The options 'network' and 'network_mode' can not be used together.")
    if network:
        host["NetworkMode"] = network
        cfg["NetworkingConfig"] = kw.get("networking_config") or {"EndpointsConfig": {network: {}}}
    else:
        host["NetworkMode"] = mode or "default"
    if host:
        cfg["HostConfig"] = host
    return cfg, kw.get("name")
