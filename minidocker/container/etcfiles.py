"""/etc/hostname, /etc/hosts and /etc/resolv.conf, written per container as Docker does.

Docker does not let the image's copies of these files win: it writes them into the
container's own directory on the host and bind-mounts them over /etc/... at start.
That is why `docker run` shows your hostname in /etc/hosts, and why editing them in
a container lasts only as long as that container. Pure functions: tested without root.
"""
from __future__ import annotations

import re

HOSTS_HEADER = """127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
"""

DEFAULT_NAMESERVERS = ["8.8.8.8", "8.8.4.4"]  # what Docker falls back to


def hostname_file(hostname: str) -> str:
    return hostname + "\n"


def hosts_file(hostname: str, ip: str | None = None, aliases: list[str] | None = None) -> str:
    text = HOSTS_HEADER
    if ip:
        names = " ".join([hostname] + list(aliases or []))
        text += f"{ip}\t{names}\n"
    return text


def resolv_conf(host_text: str, network_mode: str) -> str:
    """The container's resolv.conf: the host's, minus loopback nameservers (127.0.0.53 means
    nothing inside another network namespace); Docker's public fallback if none remain.
    With --network none there is no DNS to reach, but Docker still copies the file."""
    lines = []
    servers = []
    for line in host_text.splitlines():
        m = re.match(r"^\s*nameserver\s+(\S+)", line)
        if m:
            addr = m.group(1)
            if addr.startswith("127.") or addr == "::1":
                continue
            servers.append(addr)
        lines.append(line)
    if network_mode == "host":
        return host_text
    if not servers:
        lines += [f"nameserver {s}" for s in DEFAULT_NAMESERVERS]
    return "\n".join(lines).strip("\n") + "\n"


def embedded_dns_resolv_conf(host_text: str) -> str:
    """On a user-defined network every lookup goes to the embedded DNS server at 127.0.0.11
    (it forwards what it does not know to the host's servers); the host's search domains stay."""
    search = [ln for ln in host_text.splitlines() if ln.strip().startswith(("search", "domain"))]
    return "\n".join(search + ["nameserver 127.0.0.11", "options ndots:0"]) + "\n"
