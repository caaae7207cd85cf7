"""Networks on disk: one JSON record per network, shaped like `docker network inspect`.

    <root>/network/<id>.json   {"Name", "Id", "Driver", "IPAM": {"Config": [{"Subnet", "Gateway"}]},
                                "Options": {"com.docker.network.bridge.name": ...} (the default one's),
                                "Containers": {<container-id>: {"IPv4Address": "172.18.0.2/16", ...}}}
    <root>/network/.lock       held while an address is chosen or a record changes

Three networks always exist, as in Docker: `bridge` (the default, bridge device
minidocker0), `host` and `none`. "Containers" lists running containers only: an address is
taken when a container starts and given back when it stops.
"""
from __future__ import annotations

import ipaddress
import os
import re
import time
from contextlib import contextmanager

from .. import fsutil
from ..gotime import rfc3339nano
from ..errors import Conflict, InvalidArgument, NotFound
from ..paths import StateRoot
from . import ipam

PREDEFINED = ("bridge", "host", "none")  # the networks every engine has; only others are "user-defined"
BRIDGE_NAME_OPT = "com.docker.network.bridge.name"


def root_tag(root: StateRoot) -> str:
    """"" for the default state root; else a short hash (paths.StateRoot.tag)."""
    return root.tag


def default_bridge_name(tag: str) -> str:
    return "minidocker0" if not tag else f"md{tag}0"


def host_routes(proc_net_route: str) -> list[str]:
    """Destinations the host already routes (from /proc/net/route), default route aside."""
    out = []
    for line in proc_net_route.splitlines()[1:]:
        f = line.split()
        if len(f) < 8:
            continue
        dest = ipaddress.IPv4Address(int(f[1], 16).to_bytes(4, "little"))
        mask = ipaddress.IPv4Address(int(f[7], 16).to_bytes(4, "little"))
        if int(mask) == 0:
            continue
        out.append(str(ipaddress.IPv4Network(f"{dest}/{mask}", strict=False)))
    return out


def read_routes() -> list[str]:
    try:
        with open("/proc/net/route") as f:
            return host_routes(f.read())
    except OSError:
        return []


# Which state root owns which bridge and firewall table, host-wide. It lives in /run, so it
# is forgotten at reboot exactly when the bridges and tables themselves are. With it,
# `system prune` from any state root can clean up after a root that was deleted (rm -rf of
# a test's or a notebook's temporary root) while its bridge still existed.
HOST_REGISTRY = "/run/minidocker/roots"  # (rootless mode: $XDG_RUNTIME_DIR/minidocker/roots)


def host_registry() -> str:
    run = os.environ.get("MINIDOCKER_RUN_DIR")
    return os.path.join(run, "roots") if run else HOST_REGISTRY


def register_root(root: StateRoot, registry: str | None = None) -> None:
    registry = registry or host_registry()
    tag = root_tag(root)
    path = os.path.join(registry, tag or "default")
    if not os.path.exists(path):
        os.makedirs(registry, exist_ok=True)
        fsutil.write_atomic(path, os.path.abspath(root.root), durable=False)


def registered_roots(registry: str | None = None) -> dict[str, str]:
    """{tag: state root path} ("" is the default root's tag)."""
    registry = registry or host_registry()
    out = {}
    for name in sorted(os.listdir(registry)) if os.path.isdir(registry) else []:
        path = fsutil.read_text(os.path.join(registry, name), "")
        if path:
            out["" if name == "default" else name] = path.strip()
    return out


def forget_root(tag: str, registry: str | None = None) -> None:
    registry = registry or host_registry()
    try:
        os.unlink(os.path.join(registry, tag or "default"))
    except FileNotFoundError:
        pass


class NetworkStore:
    def __init__(self, root: StateRoot):
        self.root = root
        self.dir = os.path.join(root.root, "network")
        os.makedirs(self.dir, exist_ok=True)
        self.tag = root_tag(root)

    def lock(self) -> fsutil.FileLock:
        return fsutil.FileLock(os.path.join(self.dir, ".lock"))

    def _path(self, nid: str) -> str:
        return os.path.join(self.dir, f"{nid}.json")

    def _all_unlocked(self) -> list[dict]:
        out = []
        for name in sorted(os.listdir(self.dir)):
            if name.endswith(".json"):
                try:
                    out.append(fsutil.read_json(os.path.join(self.dir, name)))
                except (OSError, ValueError):
                    continue
        return out

    def _write(self, rec: dict) -> None:
        fsutil.write_json(self._path(rec["Id"]), rec)

    # --- records ---
    def _new(self, name: str, driver: str, subnet: str | None, gateway: str | None,
             bridge: str | None, labels: dict | None = None, internal: bool = False) -> dict:
        cfg = [{"Subnet": subnet, "Gateway": gateway}] if subnet else []
        options = {BRIDGE_NAME_OPT: bridge} if bridge else {}
        return {"Name": name, "Id": os.urandom(32).hex(), "Created": rfc3339nano(time.time_ns()),
                "Scope": "local", "Driver": driver, "EnableIPv6": False,
                "IPAM": {"Driver": "default", "Options": None, "Config": cfg},
                "Internal": internal, "Attachable": False, "Ingress": False,
                "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": {},
                "Options": options, "Labels": labels or {}}

    def _taken_subnets(self, recs: list[dict]) -> list[str]:
        taken = read_routes()
        for r in recs:
            taken += [c["Subnet"] for c in r["IPAM"]["Config"] if c.get("Subnet")]
        return taken

    def ensure_defaults(self) -> None:
        with self.lock():
            recs = self._all_unlocked()
            names = {r["Name"] for r in recs}
            if "bridge" not in names:
                net = ipam.choose_subnet(self._taken_subnets(recs))
                self._write(self._new("bridge", "bridge", str(net), str(net.network_address + 1),
                                      default_bridge_name(self.tag)))
            if "host" not in names:
                self._write(self._new("host", "host", None, None, None))
            if "none" not in names:
                self._write(self._new("none", "null", None, None, None))

    def all(self) -> list[dict]:
        self.ensure_defaults()
        return self._all_unlocked()

    def get(self, ref: str) -> dict:
        recs = self.all()
        for r in recs:
            if r["Id"] == ref or r["Name"] == ref:
                return r
        hits = [r for r in recs if ref and r["Id"].startswith(ref)]
        if len(hits) == 1:
            return hits[0]
        raise NotFound(f"network {ref} not found")

    def create(self, name: str, subnet: str | None = None, gateway: str | None = None,
               driver: str = "bridge", labels: dict | None = None, internal: bool = False) -> dict:
        if driver != "bridge":
            raise InvalidArgument(f"plugin \"{driver}\" not found: minidocker creates bridge networks only")
        if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", name):
            raise InvalidArgument(f"invalid network name \"{name}\"")
        self.ensure_defaults()
        with self.lock():
            recs = self._all_unlocked()
            if any(r["Name"] == name for r in recs):
                raise Conflict(f"network with name {name} already exists")
            if subnet:
                net, gw = ipam.parse_subnet(subnet, gateway)
                for r in recs:
                    for c in r["IPAM"]["Config"]:
                        if c.get("Subnet") and net.overlaps(ipaddress.ip_network(c["Subnet"])):
                            raise Conflict("Pool overlaps with other one on this address space")
                ipam.check_usable(net)
            else:
                if gateway:
                    raise InvalidArgument("cannot specify a gateway without a subnet")
                net = ipam.choose_subnet(self._taken_subnets(recs))
                gw = net.network_address + 1
            rec = self._new(name, "bridge", str(net), str(gw), None, labels, internal)
            self._write(rec)  # (its bridge: md-<id>, as Docker's is br-<id>; not in Options, as in Docker)
        from .. import events
        events.emit(self.root, "network", "create", rec["Id"], {"name": name, "type": "bridge"})
        return rec

    def remove(self, ref: str) -> dict:
        rec = self.get(ref)
        if rec["Name"] in PREDEFINED:
            raise Conflict(f"{rec['Name']} is a pre-defined network and cannot be removed")
        with self.lock():
            rec = fsutil.read_json(self._path(rec["Id"]))
            if rec["Containers"]:
                raise Conflict(f"error while removing network: network {rec['Name']} id {rec['Id']} "
                               "has active endpoints")
            os.unlink(self._path(rec["Id"]))
        from .. import events
        events.emit(self.root, "network", "destroy", rec["Id"], {"name": rec["Name"], "type": "bridge"})
        return rec

    @contextmanager
    def update(self, nid: str):
        with self.lock():
            rec = fsutil.read_json(self._path(nid))
            yield rec
            self._write(rec)

    # --- addresses ---
    def allocate(self, nid: str, cid: str, name: str, wanted: str | None = None) -> dict:
        """Reserve an address for container `cid`; returns its endpoint entry."""
        with self.update(nid) as rec:
            cfg = rec["IPAM"]["Config"][0]
            used = [e["IPv4Address"].split("/")[0] for c, e in rec["Containers"].items() if c != cid]
            ip = ipam.allocate(cfg["Subnet"], cfg["Gateway"], used, wanted)
            prefix = ipaddress.ip_network(cfg["Subnet"]).prefixlen
            ep = {"Name": name, "EndpointID": os.urandom(32).hex(), "MacAddress": ipam.mac_for(ip),
                  "IPv4Address": f"{ip}/{prefix}", "IPv6Address": ""}
            rec["Containers"][cid] = ep
            return ep

    def release(self, nid: str, cid: str) -> None:
        try:
            with self.update(nid) as rec:
                rec["Containers"].pop(cid, None)
        except FileNotFoundError:
            pass

    def bridge(self, rec: dict) -> str:
        """The bridge device of a bridge network: the one Options names (the default network's,
        or a record written by an older minidocker), else md-<first 12 of the id>."""
        if rec["Options"].get(BRIDGE_NAME_OPT):
            return rec["Options"][BRIDGE_NAME_OPT]
        return f"md-{rec['Id'][:12]}" if rec.get("Driver") == "bridge" else ""
