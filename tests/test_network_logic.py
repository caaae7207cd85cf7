"""Networking without root: address management, -p parsing, NAT rules, the DNS wire format."""

import pytest

from minidocker.errors import Conflict, InvalidArgument
from minidocker.network import dns, ipam, nat, ports
from minidocker.network.store import host_routes


def test_choose_subnet_skips_what_the_host_uses():
    assert str(ipam.choose_subnet([])) == "172.17.0.0/16"
    assert str(ipam.choose_subnet(["172.17.0.0/16", "172.18.5.0/24"])) == "172.19.0.0/16"
    every16 = [f"172.{i}.0.0/16" for i in range(17, 32)]
    assert str(ipam.choose_subnet(every16 + ["192.168.0.0/20"])) == "192.168.16.0/20"
    with pytest.raises(Conflict, match="non-overlapping"):
        ipam.choose_subnet(["0.0.0.0/1", "128.0.0.0/1"])


def test_allocate_lowest_free_never_reserved():
    assert ipam.allocate("10.0.0.0/29", "10.0.0.1", []) == "10.0.0.2"
    assert ipam.allocate("10.0.0.0/29", "10.0.0.1", ["10.0.0.2", "10.0.0.4"]) == "10.0.0.3"
    assert ipam.allocate("10.0.0.0/29", "10.0.0.6", ["10.0.0.1"]) == "10.0.0.2"
    with pytest.raises(Conflict, match="no available IPv4 addresses"):
        ipam.allocate("10.0.0.0/30", "10.0.0.1", ["10.0.0.2"])
    assert ipam.allocate("10.0.0.0/24", "10.0.0.1", [], wanted="10.0.0.50") == "10.0.0.50"
    with pytest.raises(Conflict, match="Address already in use"):
        ipam.allocate("10.0.0.0/24", "10.0.0.1", ["10.0.0.50"], wanted="10.0.0.50")
    with pytest.raises(InvalidArgument, match="outside"):
        ipam.allocate("10.0.0.0/24", "10.0.0.1", [], wanted="10.9.0.5")


def test_parse_subnet_and_mac():
    net, gw = ipam.parse_subnet("10.5.0.0/24", None)
    assert (str(net), str(gw)) == ("10.5.0.0/24", "10.5.0.1")
    assert str(ipam.parse_subnet("10.5.0.0/24", "10.5.0.254")[1]) == "10.5.0.254"
    with pytest.raises(InvalidArgument, match="no matching subnet for gateway"):
        ipam.parse_subnet("10.5.0.0/24", "10.6.0.1")
    with pytest.raises(InvalidArgument, match="invalid CIDR"):
        ipam.parse_subnet("10.5.0.300/24", None)
    assert ipam.mac_for("172.17.0.2") == "02:42:ac:11:00:02"  # what docker gives 172.17.0.2


def test_host_routes_from_proc():
    text = ("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
            "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
            "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
            "docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n")
    assert host_routes(text) == ["192.0.2.0/24", "172.17.0.0/16"]


@pytest.mark.parametrize("spec,expected", [
    ("80", [("80/tcp", {"HostIp": "", "HostPort": ""})]),
    ("8080:80", [("80/tcp", {"HostIp": "", "HostPort": "8080"})]),
    ("127.0.0.1:8080:80", [("80/tcp", {"HostIp": "127.0.0.1", "HostPort": "8080"})]),
    ("127.0.0.1::80/udp", [("80/udp", {"HostIp": "127.0.0.1", "HostPort": ""})]),
    ("8000-8001:80-81", [("80/tcp", {"HostIp": "", "HostPort": "8000"}),
                         ("81/tcp", {"HostIp": "", "HostPort": "8001"})]),
])
def test_parse_publish(spec, expected):
    assert ports.parse_publish(spec) == expected


@pytest.mark.parametrize("bad", ["http", "80/icmp", "1.2.3:80:80", "0", "70000", "1:2:3:4", "8000-8002:80-81"])
def test_parse_publish_bad(bad):
    with pytest.raises(InvalidArgument):
        ports.parse_publish(bad)


def test_bindings_publish_all_and_resolution():
    exposed, bindings = ports.bindings_from_flags(["8080:80"], ["443", "53/udp"])
    assert exposed == {"443/tcp": {}, "53/udp": {}, "80/tcp": {}}
    allb = ports.publish_all(exposed, bindings)
    def free(port, proto, ip):
        return port != 32768  # something else listens on 32768
    got = ports.resolve_bindings(allb, taken={("tcp", 32769)}, free=free)
    assert got["80/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": "8080"}]
    assert got["443/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": "32770"}]
    assert got["53/udp"] == [{"HostIp": "0.0.0.0", "HostPort": "32769"}]  # udp 32769 is free
    with pytest.raises(Conflict, match="port is already allocated"):
        ports.resolve_bindings({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}, {("tcp", 8080)}, free)
    assert ports.port_lines(got) == ["53/udp -> 0.0.0.0:32769", "80/tcp -> 0.0.0.0:8080", "443/tcp -> 0.0.0.0:32770"]
    assert ports.port_lines(got, "80") == ["0.0.0.0:8080"]


def test_nat_rules_text():
    text = nat.render("minidocker", [{"bridge": "minidocker0", "subnet": "172.18.0.0/16"},
                                     {"bridge": "md-abc", "subnet": "172.19.0.0/16"}],
                      [{"proto": "tcp", "host_ip": "", "host_port": 8080, "ip": "172.18.0.2", "port": 80,
                        "cid": "0123456789abcdef"},
                       {"proto": "udp", "host_ip": "127.0.0.1", "host_port": 53, "ip": "172.18.0.2",
                        "port": 5353, "cid": "0123456789abcdef"}])
    assert text.startswith("table ip minidocker {\n}\ndelete table ip minidocker\n")  # atomic replace
    assert 'tcp dport 8080 dnat to 172.18.0.2:80 comment "0123456789ab"' in text
    assert "ip daddr 127.0.0.1 udp dport 53 dnat to 172.18.0.2:5353" in text
    assert 'ip saddr 172.18.0.0/16 oifname != "minidocker0" masquerade' in text
    assert 'oifname "minidocker0" ip saddr 127.0.0.0/8 masquerade' in text
    assert 'oifname "md-abc" ip saddr 172.19.0.0/16 ct status dnat masquerade' in text  # hairpin
    assert 'iifname "minidocker0" oifname { "md-abc" } drop' in text
    assert nat.table_name("") == "minidocker" and nat.table_name("ab12cd") == "minidocker_ab12cd"
    # the table names its rules by their digest: the same rules, the same comment
    comment = next(ln.strip() for ln in text.splitlines() if ln.strip().startswith("comment "))
    listing = "table ip minidocker {\n\t" + comment + "\n\tchain publish {\n\t}\n}\n"  # as nft lists it
    assert nat.same_rules(listing, text)
    other = nat.render("minidocker", [{"bridge": "minidocker0", "subnet": "172.18.0.0/16"}], [])
    assert not nat.same_rules(listing, other) and not nat.same_rules("", text)
    assert nat.coexist_rules("ip filter FORWARD", ["md-x"], "c").count("accept") == 2


def test_dns_roundtrip():
    q = dns.parse_query(dns.encode_query("Web.", dns.TYPE_A, qid=7))
    assert (q["id"], q["name"], q["qtype"], q["rd"]) == (7, "web", dns.TYPE_A, True)
    resp = dns.build_response(q, ["172.18.0.2", "172.18.0.3"])
    assert dns.answer_addresses(resp) == ["172.18.0.2", "172.18.0.3"]
    assert resp[:2] == b"\x00\x07" and resp[3] & 0x0F == dns.RCODE_OK
    nx = dns.build_response(q, [], dns.RCODE_NXDOMAIN)
    assert dns.answer_addresses(nx) == [] and nx[3] & 0x0F == dns.RCODE_NXDOMAIN
    with pytest.raises(dns.DNSFormatError):
        dns.parse_query(b"\x00\x01")
    assert dns.lookup("WEB", {"web": ["1.2.3.4"]}) == ["1.2.3.4"]
    assert dns.lookup("other", {"web": ["1.2.3.4"]}) is None
    assert dns.upstream_servers("search x\nnameserver 10.0.0.1\nnameserver ::1\n") == ["10.0.0.1", "::1"]


def test_dns_compression_pointer():
    # a name made of a label plus a pointer back into the question
    msg = dns.encode_query("a.example", qid=1)
    name, _ = dns._read_name(msg + b"\x03www\xc0\x0c", len(msg))
    assert name == "www.a.example"


def _tcp_states(port: int, ip_hex: str = "0100007F") -> list[str]:
    """The states (/proc/net/tcp's hex codes: 0A LISTEN, 06 TIME_WAIT) of the sockets bound to ip:port."""
    with open("/proc/net/tcp") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return [r[3] for r in rows if r[1] == f"{ip_hex}:{port:04X}"]


def leave_time_wait(port: int = 0) -> int:
    """A server on 127.0.0.1:port that accepts one connection and closes it first (so its side
    of the connection stays in TIME_WAIT for a minute), then stops listening. Returns the port."""
    import socket
    import time
    with socket.socket() as srv:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as any server does
        srv.bind(("127.0.0.1", port))
        srv.listen(1)
        port = srv.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            conn, _ = srv.accept()
            conn.close()                      # the server closes first: FIN_WAIT -> TIME_WAIT
            assert client.recv(1) == b""      # the client sees the end
    deadline = time.monotonic() + 5           # the client's FIN arrives: the server side is TIME_WAIT
    while "06" not in _tcp_states(port) and time.monotonic() < deadline:
        time.sleep(0.01)
    return port


def test_host_port_free_ignores_time_wait_but_not_a_listener():
    """Docker's allocator refuses only ports it allocated itself or that a socket holds
    (docker-proxy binds with SO_REUSEADDR, which succeeds over TIME_WAIT)."""
    import socket
    port = leave_time_wait()
    states = _tcp_states(port)
    assert "06" in states and "0A" not in states, states  # TIME_WAIT, and no listener left
    assert ports.host_port_free(port, "tcp", "127.0.0.1")
    assert ports.host_port_free(port, "tcp", "")  # 0.0.0.0 too
    assert ports.resolve_bindings({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}, set()) == \
        {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    # a live listener still holds its port, for its own address and for all addresses
    with socket.socket() as live:
        live.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        live.bind(("127.0.0.1", port))
        live.listen(1)
        assert "0A" in _tcp_states(port)
        assert not ports.host_port_free(port, "tcp", "127.0.0.1")
        assert not ports.host_port_free(port, "tcp", "")
        with pytest.raises(Conflict, match="port is already allocated"):
            ports.resolve_bindings({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}, set())
    # so does a socket bound without SO_REUSEADDR (not listening yet), and a bound UDP socket
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        assert not ports.host_port_free(bound.getsockname()[1], "tcp", "127.0.0.1")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        assert not ports.host_port_free(udp.getsockname()[1], "udp", "127.0.0.1")
