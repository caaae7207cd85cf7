"""The one network call the container's own init makes: bring up its loopback device.

A new network namespace starts with only `lo`, and even that one is down: `ping
127.0.0.1` says "Network is unreachable". Setting the IFF_UP flag is one ioctl on any
socket in the namespace (what `ip link set lo up` does through netlink). Everything else
about networking happens outside, through netlink (pyroute2), in minidocker/network/.
Taught in notebook 03 (namespaces: a new network namespace).
"""
from __future__ import annotations

import fcntl
import socket
import struct

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
_IFREQ = "16sH14s"  # struct ifreq: name, short flags, padding


def link_up(name: str = "lo") -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack(_IFREQ, name.encode(), 0, b"")
        flags = struct.unpack(_IFREQ, fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack(_IFREQ, name.encode(), flags | IFF_UP, b""))
