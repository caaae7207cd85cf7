"""The embedded DNS server of user-defined networks: `ping web` finds the container "web".

Docker answers at 127.0.0.11 inside every container on a user-defined network: names of
containers (and their --network-alias) on the same networks resolve to their addresses;
anything else is forwarded to the host's nameservers. The default bridge has no such
server (only /etc/hosts), which is why names do not work there.

minidocker does the same without a daemon: each container's monitor (shim.py) opens a
UDP socket *inside the container's network namespace* at 127.0.0.11:53 and answers from
the network records. This module is the DNS wire format (RFC 1035), as pure functions.
"""
from __future__ import annotations

import ipaddress
import struct

TYPE_A, CLASS_IN = 1, 1
RCODE_OK, RCODE_FORMERR, RCODE_SERVFAIL, RCODE_NXDOMAIN = 0, 1, 2, 3
EMBEDDED_DNS = "127.0.0.11"


class DNSFormatError(ValueError):
    pass


def _read_name(msg: bytes, pos: int, depth: int = 0) -> tuple[str, int]:
    labels = []
    while True:
        if pos >= len(msg) or depth > 10:
            raise DNSFormatError("truncated name")
        n = msg[pos]
        if n & 0xC0 == 0xC0:  # a pointer to a name earlier in the message
            ptr = struct.unpack("!H", msg[pos:pos + 2])[0] & 0x3FFF
            rest, _ = _read_name(msg, ptr, depth + 1)
            labels.append(rest)
            return ".".join(x for x in labels if x), pos + 2
        if n == 0:
            return ".".join(labels), pos + 1
        labels.append(msg[pos + 1:pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n


def parse_query(msg: bytes) -> dict:
    """{"id", "rd", "name", "qtype", "qclass", "question": raw question bytes}."""
    if len(msg) < 12:
        raise DNSFormatError("short message")
    qid, flags, qd, _, _, _ = struct.unpack("!HHHHHH", msg[:12])
    if flags & 0x8000 or qd != 1:
        raise DNSFormatError("not a single question")
    name, pos = _read_name(msg, 12)
    if pos + 4 > len(msg):
        raise DNSFormatError("truncated question")
    qtype, qclass = struct.unpack("!HH", msg[pos:pos + 4])
    return {"id": qid, "rd": bool(flags & 0x0100), "name": name.lower().rstrip("."),
            "qtype": qtype, "qclass": qclass, "question": msg[12:pos + 4]}


def build_response(query: dict, addresses: list[str], rcode: int = RCODE_OK, ttl: int = 600) -> bytes:
    """An answer to `query` with A records for `addresses` (an empty list = no data)."""
    flags = 0x8000 | 0x0400 | (0x0100 if query.get("rd") else 0) | 0x0080 | rcode  # QR AA RD RA
    answers = b""
    for a in addresses:
        answers += (b"\xc0\x0c" + struct.pack("!HHIH", TYPE_A, CLASS_IN, ttl, 4)
                    + ipaddress.ip_address(a).packed)
    header = struct.pack("!HHHHHH", query["id"], flags, 1, len(addresses), 0, 0)
    return header + query["question"] + answers


def build_error(msg: bytes, rcode: int) -> bytes:
    """A bare error reply for a message we could not even parse (keeps its id)."""
    qid = struct.unpack("!H", msg[:2])[0] if len(msg) >= 2 else 0
    return struct.pack("!HHHHHH", qid, 0x8000 | 0x0080 | rcode, 0, 0, 0, 0)


def encode_query(name: str, qtype: int = TYPE_A, qid: int = 0x1234) -> bytes:
    """A query message (used by tests and by the forwarder's health check)."""
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\x00"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack("!HH", qtype, CLASS_IN)


def answer_addresses(resp: bytes) -> list[str]:
    """The A records in a response (for tests)."""
    _, _, qd, an, _, _ = struct.unpack("!HHHHHH", resp[:12])
    pos = 12
    for _ in range(qd):
        _, pos = _read_name(resp, pos)
        pos += 4
    out = []
    for _ in range(an):
        _, pos = _read_name(resp, pos)
        rtype, _, _, rdlen = struct.unpack("!HHIH", resp[pos:pos + 10])
        pos += 10
        if rtype == TYPE_A and rdlen == 4:
            out.append(str(ipaddress.ip_address(resp[pos:pos + 4])))
        pos += rdlen
    return out


def lookup(name: str, records: dict[str, list[str]]) -> list[str] | None:
    """Addresses for `name` among {name_or_alias: [ip, ...]}; None if we do not know it.
    Docker also answers for "name.<network>" (the container name qualified by the network)."""
    name = name.lower().rstrip(".")
    if name in records:
        return records[name]
    return None


class EmbeddedServer:
    """127.0.0.11:53 inside one container's network namespace, served by its monitor.

    `records()` returns {name: [ip, ...]} at the moment of each query (containers come and
    go); unknown names are forwarded to `upstreams` (the host's nameservers) from the
    host's namespace, and their answers relayed back. Non-blocking: the monitor's event
    loop calls `handle(fd)` when one of `fds()` is readable."""

    FORWARD_TIMEOUT = 3.0

    def __init__(self, pid: int, records, upstreams: list[str]):
        import os
        import socket
        from ..core.linux import syscalls as sc
        self.records = records
        self.upstreams = upstreams
        own = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            sc.setns(target, sc.CLONE_NEWNET)   # the socket is born in the container's namespace
            try:
                self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.sock.bind((EMBEDDED_DNS, 53))
            finally:
                sc.setns(own, sc.CLONE_NEWNET)
        finally:
            os.close(own)
            os.close(target)
        self.sock.setblocking(False)
        self.up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # in the host's namespace
        self.up.setblocking(False)
        self.pending: dict[int, tuple[int, tuple, float]] = {}  # upstream id -> (client id, addr, t)
        self.next_id = 1

    def fds(self) -> list[int]:
        return [self.sock.fileno(), self.up.fileno()]

    def handle(self, fd: int) -> None:
        import time
        try:
            if fd == self.sock.fileno():
                msg, addr = self.sock.recvfrom(4096)
                self._query(msg, addr)
            else:
                msg, _ = self.up.recvfrom(4096)
                self._relay(msg)
        except (BlockingIOError, OSError):
            return
        now = time.monotonic()
        for k in [k for k, v in self.pending.items() if now - v[2] > self.FORWARD_TIMEOUT]:
            del self.pending[k]

    def _query(self, msg: bytes, addr) -> None:
        import time
        try:
            q = parse_query(msg)
        except DNSFormatError:
            self.sock.sendto(build_error(msg, RCODE_FORMERR), addr)
            return
        found = lookup(q["name"], self.records())
        if found is not None:
            # A: the addresses; AAAA and others: "no data" (the name exists, IPv4 only)
            self.sock.sendto(build_response(q, found if q["qtype"] == TYPE_A else []), addr)
            return
        if not self.upstreams:
            self.sock.sendto(build_response(q, [], RCODE_SERVFAIL), addr)
            return
        uid = self.next_id = (self.next_id % 65535) + 1
        self.pending[uid] = (q["id"], addr, time.monotonic())
        fwd = struct.pack("!H", uid) + msg[2:]
        try:
            self.up.sendto(fwd, (self.upstreams[0], 53))
        except OSError:
            self.pending.pop(uid, None)
            self.sock.sendto(build_response(q, [], RCODE_SERVFAIL), addr)

    def _relay(self, msg: bytes) -> None:
        if len(msg) < 2:
            return
        uid = struct.unpack("!H", msg[:2])[0]
        entry = self.pending.pop(uid, None)
        if entry:
            client_id, addr, _ = entry
            self.sock.sendto(struct.pack("!H", client_id) + msg[2:], addr)

    def close(self) -> None:
        self.sock.close()
        self.up.close()


def upstream_servers(resolv_conf_text: str) -> list[str]:
    out = []
    for line in resolv_conf_text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            out.append(parts[1])
    return out
