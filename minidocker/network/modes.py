"""Docker's network modes, put together: none, host, bridge, container:<name>, user-defined.

    --network none          a new network namespace with only `lo`
    --network host          no new network namespace at all: the host's interfaces
    --network bridge        (the default) a veth to the minidocker0 bridge, NAT to the outside
    --network mynet         a veth to mynet's own bridge; names resolve (embedded DNS)
    --network container:db  no namespace of its own: join db's, share its IP and ports

The container's monitor calls `prepare()` before forking the container (which namespace?),
`attach()` while the container's init waits (veths, addresses, routes, firewall), and
`detach()` after it exits (addresses back, rules removed).
"""
from __future__ import annotations

import ipaddress
import os

from .. import fsutil
from ..container import etcfiles
from ..core import steps
from ..errors import Conflict, InvalidArgument, MinidockerError, NotFound
from ..paths import StateRoot
from . import nat, nft, ports as portsmod
from .store import PREDEFINED, NetworkStore, default_bridge_name, forget_root, register_root, registered_roots


def parse_mode(mode: str | None) -> tuple[str, str]:
    """HostConfig.NetworkMode -> (kind, name): kind is none, host, container or bridge."""
    mode = mode or "default"
    if mode in ("default", "bridge"):
        return "bridge", "bridge"
    if mode == "none":
        return "none", "none"
    if mode == "host":
        return "host", "host"
    if mode.startswith("container:"):
        target = mode.split(":", 1)[1]
        if not target:
            raise InvalidArgument("--network container: needs a container name or id")
        return "container", target
    return "bridge", mode  # a user-defined bridge network


def empty_endpoint(network_id: str = "", aliases: list[str] | None = None) -> dict:
    return {"IPAMConfig": None, "Links": None, "Aliases": aliases, "NetworkID": network_id,
            "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": None}


def network_settings(networks: dict) -> dict:
    return {"Bridge": "", "SandboxID": "", "HairpinMode": False, "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0, "Ports": {}, "SandboxKey": "", "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None, "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
            "MacAddress": "", "Networks": networks}


def published_elsewhere() -> set[tuple[str, int]]:
    """(proto, host port) of every DNAT rule in any minidocker table on this host: a port
    published through the firewall has no listening socket, so a bind() test misses it."""
    import re
    try:
        text = nft.run("list ruleset")
    except MinidockerError:
        return set()
    taken = set()
    table = None
    for line in text.splitlines():
        m = re.match(r"table ip (\S+)", line.strip())
        if m:
            table = m.group(1)
        elif table and table.startswith("minidocker"):
            d = re.search(r"\b(tcp|udp|sctp) dport (\d+) dnat", line)
            if d:
                taken.add((d.group(1), int(d.group(2))))
    return taken


class Networking:
    def __init__(self, root: StateRoot):
        self.root = root
        self.store = NetworkStore(root)

    # ------------------------------------------------------------------ at create time
    def settings_for_create(self, mode: str, aliases: list[str], cid: str, hostname_given: bool) -> dict:
        """Validate --network and build the container's initial NetworkSettings."""
        kind, name = parse_mode(mode)
        if kind == "container":
            if hostname_given:
                raise InvalidArgument("conflicting options: hostname and the network mode")
            return network_settings({})
        net = self.store.get(name)
        user_defined = net["Name"] not in PREDEFINED
        if aliases and not user_defined:
            raise InvalidArgument("network-scoped alias is supported only for containers in user defined networks")
        al = (aliases + [cid[:12]]) if user_defined else None
        return network_settings({net["Name"]: empty_endpoint(net["Id"], al)})

    # ------------------------------------------------------------------ before the fork
    def join_target(self, rec: dict, containers) -> tuple[str, int | None, dict | None]:
        """(kind, pid to join or None, the joined container's record)."""
        kind, name = parse_mode(rec["HostConfig"].get("NetworkMode"))
        if kind != "container":
            return kind, None, None
        try:
            tid = containers.resolve(name)
        except NotFound:
            raise NotFound(f"No such container: {name}") from None
        if tid == rec["Id"]:
            raise Conflict("cannot join own network namespace")
        target = containers.read(tid)
        if not target["State"]["Running"] or not containers.shim_alive(tid):
            raise Conflict(f"cannot join network namespace of a non running container: {tid}")
        return kind, target["State"]["Pid"], target

    # ------------------------------------------------------------------ while init waits
    def attach(self, rec: dict, pid: int) -> dict:
        """Plug the container into its bridge networks; returns the NetworkSettings to store."""
        kind, _ = parse_mode(rec["HostConfig"].get("NetworkMode"))
        settings = rec["NetworkSettings"]
        if kind != "bridge":
            return settings
        from . import bridge
        name = rec["Name"].lstrip("/")
        done = []
        ports = self._resolve_ports(rec)  # a taken host port fails before anything is plugged
        try:
            for i, (netname, ep) in enumerate(list(settings["Networks"].items())):
                net = self.store.get(ep.get("NetworkID") or netname)
                cfg = net["IPAM"]["Config"][0]
                prefix = ipaddress.ip_network(cfg["Subnet"]).prefixlen
                register_root(self.root)
                bridge.ensure_bridge(self.store.bridge(net), cfg["Gateway"], prefix)
                wanted = (ep.get("IPAMConfig") or {}).get("IPv4Address")
                entry = self.store.allocate(net["Id"], rec["Id"], name, wanted)
                done.append(net["Id"])
                ip = entry["IPv4Address"].split("/")[0]
                plug = steps.get("plug_container", bridge.plug_container)  # (notebook 99: a learner's)
                plug(pid, self.store.bridge(net), ip, prefix, cfg["Gateway"], entry["MacAddress"],
                     ifname=f"eth{i}", default_route=(i == 0))
                ep.update(NetworkID=net["Id"], EndpointID=entry["EndpointID"], Gateway=cfg["Gateway"],
                          IPAddress=ip, IPPrefixLen=prefix, MacAddress=entry["MacAddress"])
                if net["Name"] == "bridge":
                    settings.update(Bridge="", Gateway=cfg["Gateway"], IPAddress=ip, IPPrefixLen=prefix,
                                    MacAddress=entry["MacAddress"], EndpointID=entry["EndpointID"])
            settings["Ports"] = ports
            settings["SandboxKey"] = f"/proc/{pid}/ns/net"
            self.sync_firewall(include={**rec, "NetworkSettings": settings})
        except BaseException:
            for nid in done:
                self.store.release(nid, rec["Id"])
            raise
        return settings

    def _resolve_ports(self, rec: dict) -> dict:
        host = rec["HostConfig"]
        bindings = host.get("PortBindings") or {}
        if host.get("PublishAllPorts"):
            bindings = portsmod.publish_all(rec["Config"].get("ExposedPorts") or {}, bindings)
        out = {k: None for k in (rec["Config"].get("ExposedPorts") or {})}
        if not bindings:
            return out  # (nothing to publish: no need to know what is taken)
        taken = published_elsewhere()  # other state roots' rules (another course, the tests)
        for other in self._running_records(exclude=rec["Id"]):
            for key, blist in (other["NetworkSettings"].get("Ports") or {}).items():
                for b in blist or []:
                    taken.add((key.split("/")[1], int(b["HostPort"])))
        out.update(portsmod.resolve_bindings(bindings, taken))
        return out

    def _running_records(self, exclude: str = "") -> list[dict]:
        from ..container.store import ContainerStore
        cs = ContainerStore(self.root)
        out = []
        for r in cs.all():
            if r["Id"] != exclude and r["State"]["Running"] and cs.shim_alive(r["Id"]):
                out.append(r)
        return out

    # ------------------------------------------------------------------ after exit
    def detach(self, rec: dict) -> dict:
        """Give addresses back and drop the container's rules. (Its veths died with its
        network namespace: a veth pair goes when either end's namespace goes.)"""
        settings = rec.get("NetworkSettings") or network_settings({})
        had_address = any(ep.get("IPAddress") for ep in (settings.get("Networks") or {}).values())
        for netname, ep in (settings.get("Networks") or {}).items():
            if ep.get("NetworkID"):
                self.store.release(ep["NetworkID"], rec["Id"])
            for k in ("EndpointID", "Gateway", "IPAddress", "MacAddress"):
                ep[k] = ""
            ep["IPPrefixLen"] = 0
        for k in ("EndpointID", "Gateway", "IPAddress", "MacAddress", "SandboxKey"):
            settings[k] = ""
        settings["IPPrefixLen"] = 0
        settings["Ports"] = {}
        if had_address:  # only bridge-attached containers have rules to take away
            try:
                self.sync_firewall(exclude=rec["Id"])
            except MinidockerError:
                pass
        return settings

    # ------------------------------------------------------------------ firewall
    def sync_firewall(self, exclude: str = "", include: dict | None = None) -> None:
        """Rewrite our nftables table from the current state (see nat.py). `include`: a
        container being started (not marked running yet) whose ports must be published."""
        table = nat.table_name(self.store.tag)
        with self.store.lock():
            nets = [n for n in self.store._all_unlocked() if n["Driver"] == "bridge"]
            present = set(os.listdir("/sys/class/net"))  # the links that exist right now
            networks = [{"bridge": self.store.bridge(n), "subnet": n["IPAM"]["Config"][0]["Subnet"]}
                        for n in nets if self.store.bridge(n) in present]
            published = []
            records = self._running_records(exclude=exclude)
            if include is not None:
                records = [r for r in records if r["Id"] != include["Id"]] + [include]
            for r in records:
                eps = [ep for ep in (r["NetworkSettings"].get("Networks") or {}).values() if ep.get("IPAddress")]
                if not eps:
                    continue
                for key, blist in (r["NetworkSettings"].get("Ports") or {}).items():
                    port, proto = key.split("/")
                    for b in blist or []:
                        published.append({"proto": proto, "host_ip": b["HostIp"], "host_port": int(b["HostPort"]),
                                          "ip": eps[0]["IPAddress"], "port": int(port), "cid": r["Id"]})
            if networks or published:
                text = nat.render(table, networks, published)
                if not nat.same_rules(nft.list_table("ip", table), text):
                    nft.run(text)
            elif nft.table_exists("ip", table):
                nft.run(f"delete table ip {table}")
            self._sync_coexistence([n["bridge"] for n in networks])

    def _sync_coexistence(self, bridges: list[str], tag: str | None = None) -> None:
        """If another firewall (dockerd's iptables) drops forwarded traffic by default, add
        accept rules for our bridges to its FORWARD chain; take them away when unused."""
        comment = f"minidocker{self.store.tag if tag is None else tag}"
        objs = nft.list_json("chain ip filter FORWARD")
        chain = next((o["chain"] for o in objs if "chain" in o), None)
        if chain is None:
            return
        ours = [o["rule"]["handle"] for o in objs if "rule" in o and o["rule"].get("comment") == comment]
        cmds = "".join(f"delete rule ip filter FORWARD handle {h}\n" for h in ours)
        if bridges and chain.get("policy") == "drop":
            cmds += nat.coexist_rules("ip filter FORWARD", bridges, comment)
        if cmds:
            nft.run(cmds)

    # ------------------------------------------------------------------ /etc files
    def etc_files(self, rec: dict, joined: dict | None) -> None:
        """(Re)write hosts and resolv.conf once addresses are known."""
        kind, _ = parse_mode(rec["HostConfig"].get("NetworkMode"))
        host_resolv = fsutil.read_text("/etc/resolv.conf", "") or ""
        if kind == "host":
            fsutil.rewrite(rec["HostsPath"], fsutil.read_text("/etc/hosts", "") or "")
            fsutil.rewrite(rec["ResolvConfPath"], host_resolv)
            return
        if kind == "container" and joined is not None:
            return  # the joined container's files are used as they are
        hostname = rec["Config"]["Hostname"]
        eps = [ep for ep in rec["NetworkSettings"]["Networks"].values() if ep.get("IPAddress")]
        ip = eps[0]["IPAddress"] if eps else None
        fsutil.rewrite(rec["HostsPath"], etcfiles.hosts_file(hostname, ip))
        user_defined = [n for n in rec["NetworkSettings"]["Networks"] if n not in ("bridge", "none", "host")]
        if user_defined:
            text = etcfiles.embedded_dns_resolv_conf(host_resolv)
        else:
            text = etcfiles.resolv_conf(host_resolv, kind)
        fsutil.rewrite(rec["ResolvConfPath"], text)

    # ------------------------------------------------------------------ embedded DNS
    def dns_records(self, cid: str) -> dict[str, list[str]]:
        """Names the container `cid` may resolve: containers on its user-defined networks."""
        from ..container.store import ContainerStore
        cs = ContainerStore(self.root)
        me = cs.read(cid)
        mine = {ep.get("NetworkID") for n, ep in me["NetworkSettings"]["Networks"].items()
                if n not in PREDEFINED}
        records: dict[str, list[str]] = {}
        for r in self._running_records():
            for n, ep in (r["NetworkSettings"].get("Networks") or {}).items():
                if ep.get("NetworkID") in mine and ep.get("IPAddress"):
                    for name in [r["Name"].lstrip("/"), r["Id"][:12]] + list(ep.get("Aliases") or []):
                        ips = records.setdefault(name.lower(), [])
                        if ep["IPAddress"] not in ips:  # the short id is also an alias: one record, not two
                            ips.append(ep["IPAddress"])
        return records

    # ------------------------------------------------------------------ host cleanup
    def cleanup(self) -> list[str]:
        """system prune: unused user networks, idle bridges, stale addresses and rules."""
        from . import bridge
        cleaned = []
        running = {r["Id"] for r in self._running_records()}
        for net in self.store.all():
            stale = [c for c in net["Containers"] if c not in running]
            if stale:
                with self.store.update(net["Id"]) as rec:
                    for c in stale:
                        rec["Containers"].pop(c, None)
                cleaned.append(f"{len(stale)} stale address(es) on network {net['Name']}")
        for net in self.store.all():
            if net["Driver"] != "bridge" or net["Containers"]:
                continue
            if net["Name"] != "bridge":
                if self.in_use(net):
                    continue  # a stopped container will want it back
                self.store.remove(net["Id"])
                cleaned.append(f"network {net['Name']}")
            try:
                if bridge.delete_link(self.store.bridge(net)):
                    cleaned.append(f"bridge {self.store.bridge(net)}")
            except Exception:
                pass
        self.sync_firewall()
        return cleaned + self._orphans()

    def _orphans(self) -> list[str]:
        """Bridges and tables of state roots that no longer exist (see store.HOST_REGISTRY)."""
        from . import bridge
        cleaned = []
        roots = registered_roots()
        for tag, path in roots.items():
            if os.path.isdir(os.path.join(path, "network")):
                continue  # alive: its own `system prune` decides
            if bridge.delete_link(default_bridge_name(tag)):
                cleaned.append(f"bridge {default_bridge_name(tag)} of deleted state root {path}")
            table = nat.table_name(tag)
            if nft.table_exists("ip", table):
                nft.run(f"delete table ip {table}")
                cleaned.append(f"firewall table {table} of deleted state root {path}")
            self._sync_coexistence([], tag=tag)
            forget_root(tag)
        # user-defined networks' bridges (md-<id>) that no existing state root knows and no
        # container is plugged into
        known = {self.store.bridge(n) for n in self.store.all()}
        for path in roots.values():
            try:
                if os.path.isdir(os.path.join(path, "network")) and path != self.root.root:
                    known |= {self.store.bridge(n) for n in NetworkStore(StateRoot(path)).all()}
            except (OSError, ValueError, MinidockerError):
                return cleaned  # unsure what is whose: delete nothing more
        for name in bridge.links(("md-",)):
            if name not in known and not os.listdir(f"/sys/class/net/{name}/brif"):
                bridge.delete_link(name)
                cleaned.append(f"bridge {name} of a deleted network")
        return cleaned

    def in_use(self, net: dict) -> bool:
        """Is some container (running or not) configured to join `net`?"""
        from ..container.store import ContainerStore
        for rec in ContainerStore(self.root).all():
            for ep in (rec.get("NetworkSettings") or {}).get("Networks", {}).values():
                if ep.get("NetworkID") == net["Id"]:
                    return True
        return False

    def remove_network(self, ref: str) -> dict:
        from . import bridge
        rec = self.store.remove(ref)  # refuses while running containers are attached
        try:
            bridge.delete_link(self.store.bridge(rec))
        finally:
            self.sync_firewall()
        return rec
