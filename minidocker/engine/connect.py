"""`docker network connect` / `disconnect`: another network for a container, now and at
every later start.

Taught with networking (network/). A running container gets one more veth (eth1, eth2, ...)
plugged into the network's bridge at once; the record remembers the network either way.
"""
from __future__ import annotations

import ipaddress

from ..errors import Conflict, InvalidArgument
from ..network import modes
from ..network.store import PREDEFINED, NetworkStore, register_root


def connect(rt, ref: str, network: str, aliases: list[str] | None = None, ip: str | None = None) -> str:
    from ..network import bridge
    cid = rt.resolve(ref)
    store = NetworkStore(rt.root)
    net = store.get(network)
    if net["Driver"] != "bridge":
        raise InvalidArgument("container cannot be disconnected from host network or connected to host network"
                              if net["Name"] == "host" else f"cannot connect to network {net['Name']}")
    with rt.containers.update(cid) as rec:
        kind, _ = modes.parse_mode(rec["HostConfig"].get("NetworkMode"))
        if kind != "bridge":
            raise Conflict("container sharing network namespace with another container or host "
                           "cannot be connected to any other network")
        nets = rec["NetworkSettings"]["Networks"]
        if net["Name"] in nets:
            raise Conflict(f"endpoint with name {rec['Name'].lstrip('/')} already exists in network {net['Name']}")
        user_defined = net["Name"] not in PREDEFINED
        ep = modes.empty_endpoint(net["Id"], (list(aliases or []) + [cid[:12]]) if user_defined else None)
        if ip:
            ep["IPAMConfig"] = {"IPv4Address": ip}
        if rec["State"]["Running"]:
            cfg = net["IPAM"]["Config"][0]
            prefix = ipaddress.ip_network(cfg["Subnet"]).prefixlen
            register_root(rt.root)
            bridge.ensure_bridge(store.bridge(net), cfg["Gateway"], prefix)
            entry = store.allocate(net["Id"], cid, rec["Name"].lstrip("/"), ip)
            addr = entry["IPv4Address"].split("/")[0]
            try:
                bridge.plug_container(rec["State"]["Pid"], store.bridge(net), addr, prefix, cfg["Gateway"],
                                      entry["MacAddress"], ifname=f"eth{len(nets)}", default_route=False)
            except BaseException:
                store.release(net["Id"], cid)
                raise
            ep.update(EndpointID=entry["EndpointID"], Gateway=cfg["Gateway"], IPAddress=addr,
                      IPPrefixLen=prefix, MacAddress=entry["MacAddress"])
        nets[net["Name"]] = ep
    modes.Networking(rt.root).sync_firewall()
    return cid


def disconnect(rt, ref: str, network: str, force: bool = False) -> str:
    from ..network import bridge
    cid = rt.resolve(ref)
    store = NetworkStore(rt.root)
    net = store.get(network)
    with rt.containers.update(cid) as rec:
        nets = rec["NetworkSettings"]["Networks"]
        if net["Name"] not in nets:
            raise Conflict(f"container {cid} is not connected to network {net['Name']}")
        ep = nets.pop(net["Name"])
        if rec["State"]["Running"] and ep.get("MacAddress"):
            bridge.unplug_by_mac(rec["State"]["Pid"], ep["MacAddress"])
        store.release(net["Id"], cid)
    modes.Networking(rt.root).sync_firewall()
    return cid
