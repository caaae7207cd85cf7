"""IP address management: which subnet a network gets, which address a container gets.

Docker's rules, kept here as pure functions (the store calls them under a lock, so two
`minidocker run` at the same moment never get the same address):

* A bridge network takes a subnet from the default pools -- 172.17.0.0/16 ... 172.31.0.0/16,
  then 192.168.0.0/20, 192.168.16.0/20, ... -- skipping any that overlaps a route or an
  address the host already has (your LAN, a VPN, a real docker0) or another network.
* The gateway is the subnet's first address (.1), given to the bridge on the host.
* Containers get the lowest free address, never the network, gateway or broadcast one.
"""
from __future__ import annotations

import ipaddress

from ..errors import Conflict, InvalidArgument


def default_pools() -> list[ipaddress.IPv4Network]:
    """moby's default address pools: 172.17-31.0.0/16, then 192.168.0.0/16 cut into /20s."""
    pools = [ipaddress.ip_network(f"172.{i}.0.0/16") for i in range(17, 32)]
    pools += list(ipaddress.ip_network("192.168.0.0/16").subnets(new_prefix=20))
    return pools


def overlaps(net: ipaddress.IPv4Network, taken: list[ipaddress.IPv4Network]) -> bool:
    return any(net.overlaps(t) for t in taken)


def choose_subnet(taken: list[str], preferred: str | None = None) -> ipaddress.IPv4Network:
    """The first pool subnet overlapping nothing in `taken` (host routes, other networks)."""
    taken_nets = [ipaddress.ip_network(t, strict=False) for t in taken]
    candidates = ([ipaddress.ip_network(preferred)] if preferred else []) + default_pools()
    for net in candidates:
        if not overlaps(net, taken_nets):
            return net
    raise Conflict("could not find an available, non-overlapping IPv4 address pool among the "
                   "defaults to assign to the network")


# Address blocks a bridge network must not use: a route for them on a host bridge would take
# traffic from the host's own loopback (where the localhost guard drops what comes from our
# bridges anyway), or they are no unicast networks at all. (Docker 20.10 takes 127.0.0.0/8.)
FORBIDDEN_SUBNETS = {
    "0.0.0.0/8": "addresses of \"this network\" (RFC 1122)",
    "127.0.0.0/8": "loopback addresses",
    "224.0.0.0/4": "multicast addresses",
    "240.0.0.0/4": "reserved addresses",
}


def parse_subnet(subnet: str, gateway: str | None) -> tuple[ipaddress.IPv4Network, ipaddress.IPv4Address]:
    """`network create --subnet 10.5.0.0/24 [--gateway 10.5.0.254]`, validated like Docker
    (dockerd's refusals: `network create` exits 1)."""
    try:
        net = ipaddress.ip_network(subnet, strict=False)
    except ValueError:
        raise InvalidArgument(f"invalid CIDR address: {subnet}", exit_code=1) from None
    if net.version != 4:
        raise InvalidArgument("only IPv4 subnets are supported", exit_code=1)
    if net.prefixlen > 30:
        raise InvalidArgument(f"subnet {subnet} is too small: it has no room for containers", exit_code=1)
    if gateway:
        try:
            gw = ipaddress.ip_address(gateway)
        except ValueError:
            raise InvalidArgument(f"invalid gateway address: {gateway}", exit_code=1) from None
        if gw not in net or gw in (net.network_address, net.broadcast_address):
            raise InvalidArgument(f"no matching subnet for gateway {gateway}", exit_code=1)
    else:
        gw = net.network_address + 1
    return net, gw


def check_usable(net: ipaddress.IPv4Network) -> None:
    """Refuse a subnet in FORBIDDEN_SUBNETS (checked after the overlap with other networks,
    so that 0.0.0.0/0 still gets Docker's "Pool overlaps" message)."""
    for block, what in FORBIDDEN_SUBNETS.items():
        if net.overlaps(ipaddress.ip_network(block)):
            raise InvalidArgument(f"invalid subnet {net}: it overlaps {block}, {what}, which a "
                                  "network cannot use", exit_code=1)


def allocate(subnet: str, gateway: str, used: list[str], wanted: str | None = None) -> str:
    """The container's address: `wanted` (--ip) if free, else the lowest free one."""
    net = ipaddress.ip_network(subnet)
    reserved = {net.network_address, net.broadcast_address, ipaddress.ip_address(gateway)}
    busy = {ipaddress.ip_address(u) for u in used} | reserved
    if wanted:
        ip = ipaddress.ip_address(wanted)
        if ip not in net:
            raise InvalidArgument(f"requested address {wanted} is outside the network's subnet {subnet}")
        if ip in busy:
            raise Conflict(f"Address already in use: {wanted}")
        return str(ip)
    for ip in net.hosts():
        if ip not in busy:
            return str(ip)
    raise Conflict(f"no available IPv4 addresses on this network's address pools: {subnet}")


def mac_for(ip: str) -> str:
    """Docker derives a container's MAC from its IP: 02:42 followed by the four bytes."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ipaddress.ip_address(ip).packed)
