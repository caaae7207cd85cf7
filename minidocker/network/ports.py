"""Publishing ports: `-p [ip:][hostPort:]containerPort[/proto]`, `-P`, `--expose`.

Docker keeps two maps, and so do we:
    Config.ExposedPorts       {"80/tcp": {}}                      what the image/--expose declares
    HostConfig.PortBindings   {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}   what -p asked for
and, while running, NetworkSettings.Ports with the host ports actually chosen:
    {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "443/tcp": null}
Pure parsing here; the chosen ports become DNAT rules (nat.py).
"""
from __future__ import annotations

import ipaddress
import re

from ..errors import Conflict, InvalidArgument

EPHEMERAL = (32768, 60999)  # /proc/sys/net/ipv4/ip_local_port_range's default


_PORT = re.compile(r"[0-9]+")


def _port_range(text: str, what: str) -> list[int]:
    """"80" or "8000-8010" (go-connections' ParsePortRange: ASCII digits only, no sign, no
    blanks: `-p " 80"` is refused as Docker refuses it)."""
    lo, dash, hi = text.partition("-")
    if not _PORT.fullmatch(lo) or (dash and not _PORT.fullmatch(hi)) or len(lo) > 5 or len(hi) > 5:
        raise InvalidArgument(f"invalid {what}: {text}")
    a, b = int(lo), int(hi) if dash else int(lo)
    if not (1 <= a <= b <= 65535):
        raise InvalidArgument(f"invalid {what}: {text}")
    return list(range(a, b + 1))


def parse_publish(spec: str) -> list[tuple[str, dict]]:
    """"127.0.0.1:8080:80/udp" -> [("80/udp", {"HostIp": "127.0.0.1", "HostPort": "8080"})]."""
    body, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()  # docker takes "80/TCP" as tcp
    if proto not in ("tcp", "udp", "sctp"):
        raise InvalidArgument(f"invalid proto: {spec.partition('/')[2]}")
    parts = body.rsplit(":", 2) if body.count(":") <= 2 else None
    if parts is None:
        raise InvalidArgument(f"invalid port format: {spec}")
    host_ip, host_port, cport = "", "", parts[-1]
    if len(parts) == 2:
        host_port = parts[0]
    elif len(parts) == 3:
        host_ip, host_port = parts[0], parts[1]
        if host_ip:
            try:
                ipaddress.IPv4Address(host_ip)
            except ValueError:
                raise InvalidArgument(f"invalid IP address: {host_ip}") from None
    if not cport:
        raise InvalidArgument(f"no port specified: {spec}<empty>")
    cports = _port_range(cport, "containerPort")
    hports = _port_range(host_port, "hostPort") if host_port else [None] * len(cports)
    if len(hports) != len(cports):
        # docker takes a host range for one container port as a range to pick from; minidocker
        # does not (yet), and a container range needs a host range of the same size
        raise InvalidArgument(f"invalid ranges specified for container and host Ports: {spec}")
    out = []
    for cp, hp in zip(cports, hports):
        out.append((f"{cp}/{proto}", {"HostIp": host_ip, "HostPort": "" if hp is None else str(hp)}))
    return out


def bindings_from_flags(publish: list[str], expose: list[str]) -> tuple[dict, dict]:
    """(ExposedPorts, PortBindings) for -p and --expose flags."""
    exposed: dict[str, dict] = {}
    bindings: dict[str, list] = {}
    for e in expose:
        body, _, proto = e.partition("/")
        for p in _port_range(body, "port"):
            exposed[f"{p}/{proto or 'tcp'}"] = {}
    for spec in publish:
        for key, b in parse_publish(spec):
            exposed[key] = {}
            bindings.setdefault(key, []).append(b)
    return exposed, bindings


def publish_all(exposed: dict, bindings: dict) -> dict:
    """-P: every exposed port without a binding gets one on a random host port."""
    out = {k: list(v) for k, v in bindings.items()}
    for key in exposed:
        out.setdefault(key, [{"HostIp": "", "HostPort": ""}])
    return out


def host_port_free(port: int, proto: str, host_ip: str = "") -> bool:
    """Is anything on the host listening there already? (DNAT would steal its traffic.)

    A trial bind(), with SO_REUSEADDR for TCP as docker-proxy's (Go's) listen() has: a
    connection that just ended leaves a TIME_WAIT socket on the port for a minute, which
    a plain bind() counts as "in use" but Docker does not. A listening socket, or one bound
    without SO_REUSEADDR, still makes the bind fail."""
    import socket  # (~3 ms: only when a port is published)
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host_ip or "0.0.0.0", port))
            return True
        except OSError:
            return False


def resolve_bindings(bindings: dict, taken: set[tuple[str, int]], free=host_port_free) -> dict:
    """Give every empty HostPort a port, check the fixed ones; returns NetworkSettings.Ports
    shape (HostIp "0.0.0.0" for "all addresses", as `docker port` prints it)."""
    out = {}
    used = set(taken)
    for key, blist in bindings.items():
        proto = key.split("/")[1]
        resolved = []
        for b in blist:
            ip = b.get("HostIp") or "0.0.0.0"
            if b.get("HostPort"):
                port = int(b["HostPort"])
                if (proto, port) in used or not free(port, proto, b.get("HostIp", "")):
                    raise Conflict(f"driver failed programming external connectivity on endpoint: "
                                   f"Bind for {ip}:{port} failed: port is already allocated")
            else:
                port = next((p for p in range(*EPHEMERAL) if (proto, p) not in used
                             and free(p, proto, b.get("HostIp", ""))), None)
                if port is None:
                    raise Conflict("no free host port left for publishing")
            used.add((proto, port))
            resolved.append({"HostIp": ip, "HostPort": str(port)})
        out[key] = resolved
    return out


def port_lines(ports: dict, only: str | None = None) -> list[str]:
    """`docker port` output: "80/tcp -> 0.0.0.0:8080" (or just "0.0.0.0:8080" for one port)."""
    lines = []
    for key in sorted(ports, key=lambda k: (int(k.split("/")[0]), k)):
        if only:
            want = only if "/" in only else f"{only}/tcp"
            if key != want:
                continue
        for b in ports[key] or []:
            addr = f"{b['HostIp']}:{b['HostPort']}"
            lines.append(addr if only else f"{key} -> {addr}")
    return lines
