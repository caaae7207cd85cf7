"""Links and addresses, through netlink (pyroute2): the bridge, and a veth pair per container.

    host network namespace                       container network namespace
    ┌─────────────────────────────────┐          ┌──────────────────────────┐
    │ minidocker0 (bridge) 172.18.0.1 │          │ eth0 172.18.0.2/16       │
    │   └── veth1a2b3c4  ─────────────┼── pair ──┼── (the other end)        │
    └─────────────────────────────────┘          │ default via 172.18.0.1   │
                                                  └──────────────────────────┘

A veth pair is a virtual cable: what goes in one end comes out of the other. One end is
plugged into the bridge (a virtual switch) on the host; the other is moved into the
container's network namespace and renamed eth0. This is `ip link add type veth` +
`ip link set netns` + `ip addr add`, done with the same netlink messages `ip` sends.

pyroute2 is imported lazily: it takes ~0.1 s to import, which only containers that need a
network device should pay.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

from ..core.linux import syscalls as sc
from .delegate import delegable  # (a monitor's start: done by its netlink helper)


def _IPRoute():
    from pyroute2 import IPRoute  # lazy: see the module docstring
    return IPRoute


def outside_event_loop(fn):
    """pyroute2's synchronous API drives an asyncio loop of its own, which cannot run inside
    a thread that already runs one (a Jupyter kernel's). There, do the work in a short-lived
    thread: namespace switches (setns) are per thread anyway."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import asyncio  # (imported here: ~20 ms nobody outside Jupyter should pay)
        import threading
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return fn(*args, **kwargs)
        box: dict = {}

        def work():
            try:
                box["value"] = fn(*args, **kwargs)
            except BaseException as e:  # re-raised in the caller's thread
                box["error"] = e
        t = threading.Thread(target=work)
        t.start()
        t.join()
        if "error" in box:
            raise box["error"]
        return box.get("value")
    return wrapper


def _sysctl(path: str, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError:
        pass  # a missing knob (e.g. no route_localnet on an old kernel) is not fatal


@contextmanager
def netlink_in(pid: int | None):
    """A netlink socket in the network namespace of `pid` (None: ours). The socket is created
    while this thread is in that namespace and keeps working there after we switch back."""
    IPRoute = _IPRoute()
    if pid is None:
        ipr = IPRoute()
    else:
        own = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            sc.setns(target, sc.CLONE_NEWNET)
            try:
                ipr = IPRoute()
            finally:
                sc.setns(own, sc.CLONE_NEWNET)
        finally:
            os.close(own)
            os.close(target)
    try:
        yield ipr
    finally:
        ipr.close()


def link_index(ipr, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


@delegable
@outside_event_loop
def ensure_bridge(name: str, gateway: str, prefixlen: int) -> None:
    """Create the bridge if needed, give it the gateway address, bring it up."""
    with netlink_in(None) as ipr:
        idx = link_index(ipr, name)
        if idx is None:
            try:
                ipr.link("add", ifname=name, kind="bridge")
            except Exception as e:  # a racing `run` created it first
                if "exists" not in str(e).lower():
                    raise
            idx = link_index(ipr, name)
        addrs = [a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=idx, family=2)]
        if gateway not in addrs:
            try:
                ipr.addr("add", index=idx, address=gateway, prefixlen=prefixlen)
            except Exception as e:
                if "exists" not in str(e).lower():
                    raise
        ipr.link("set", index=idx, state="up")
    # forward packets between interfaces (containers <-> outside), as dockerd does at start
    _sysctl("/proc/sys/net/ipv4/ip_forward", "1")
    # let 127.0.0.1-sourced packets be routed out of the bridge (published ports on localhost)
    _sysctl(f"/proc/sys/net/ipv4/conf/{name}/route_localnet", "1")


@outside_event_loop
def delete_link(name: str) -> bool:
    with netlink_in(None) as ipr:
        idx = link_index(ipr, name)
        if idx is None:
            return False
        ipr.link("del", index=idx)
        return True


@outside_event_loop
def links(prefixes: tuple[str, ...]) -> list[str]:
    with netlink_in(None) as ipr:
        names = [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()]
    return [n for n in names if n and n.startswith(prefixes)]


@delegable
@outside_event_loop
def plug_container(pid: int, bridge: str, ip: str, prefixlen: int, gateway: str, mac: str,
                   ifname: str = "eth0", default_route: bool = True) -> str:
    """Connect the container whose PID 1 is `pid` to `bridge`; return the host-side veth name."""
    host_end = "veth" + os.urandom(4).hex()[:7]        # Docker: veth + 7 hex characters
    tmp_peer = "mdtmp" + os.urandom(4).hex()          # renamed to eth0 once inside
    with netlink_in(None) as ipr:
        br = link_index(ipr, bridge)
        if br is None:
            raise RuntimeError(f"bridge {bridge} does not exist")
        ipr.link("add", ifname=host_end, kind="veth", peer={"ifname": tmp_peer, "net_ns_pid": pid})
        try:
            h = link_index(ipr, host_end)
            ipr.link("set", index=h, master=br)
            ipr.link("set", index=h, state="up")
        except BaseException:
            ipr.link("del", ifname=host_end)
            raise
    try:
        with netlink_in(pid) as cipr:
            c = link_index(cipr, tmp_peer)
            cipr.link("set", index=c, ifname=ifname, address=mac)
            cipr.addr("add", index=c, address=ip, prefixlen=prefixlen)
            cipr.link("set", index=c, state="up")
            if default_route:
                cipr.route("add", dst="0.0.0.0/0", gateway=gateway)
    except BaseException:
        delete_link(host_end)  # deleting one end of a veth pair deletes both
        raise
    return host_end


@outside_event_loop
def unplug_by_mac(pid: int, mac: str) -> None:
    """Remove the container's interface with this MAC address (its veth peer goes with it)."""
    with netlink_in(pid) as cipr:
        for link in cipr.get_links():
            if (link.get_attr("IFLA_ADDRESS") or "").lower() == mac.lower():
                cipr.link("del", index=link["index"])
