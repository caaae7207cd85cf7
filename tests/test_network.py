"""Network modes for real, as root. All traffic stays on loopback or inside the network
namespaces minidocker creates; the embedded DNS forwards nothing (conftest)."""
import json
import os
import socket
import threading
import time

import pytest

from minidocker.network import nft

pytestmark = pytest.mark.root

HTTPD = "mkdir -p /www && echo hello-$HOSTNAME > /www/index.html && exec httpd -f -p 80 -h /www"


def inspect(md, ref):
    return json.loads(md.ok("inspect", ref))[0]


def ip_of(md, ref, net=None):
    nets = inspect(md, ref)["NetworkSettings"]["Networks"]
    return nets[net]["IPAddress"] if net else next(iter(nets.values()))["IPAddress"]


def http_get(host, port, timeout=5.0):
    """A plain HTTP GET with a socket (no proxies from the environment can interfere)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=2) as s:
                s.sendall(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
            return data.split(b"\r\n\r\n", 1)[1].decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def web(md):
    """An httpd container on the default bridge, published on a host port."""
    cid = md.ok("run", "-d", "--name", "web1", "-h", "web1", "-p", "127.0.0.1::80", "-p", "18081:80",
                "busybox", "sh", "-c", HTTPD).strip()
    yield cid
    md("rm", "-f", cid)


def test_default_bridge_ip_gateway_and_files(md, web):
    rec = inspect(md, web)
    ns = rec["NetworkSettings"]
    assert list(ns["Networks"]) == ["bridge"]
    ip, gw = ns["IPAddress"], ns["Gateway"]
    assert ip and gw and ns["Networks"]["bridge"]["IPAddress"] == ip
    assert ns["MacAddress"] == "02:42:" + ":".join(f"{int(x):02x}" for x in ip.split("."))
    assert md.ok("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", web).strip() == ip
    out = md.ok("run", "--rm", "-h", "probe", "busybox", "sh", "-c",
                "ip -4 route; cat /etc/hosts | tail -1; ls /sys/class/net")
    assert f"default via {gw} dev eth0" in out
    assert "\tprobe" in out and out.split()[-2:] == ["eth0", "lo"]


def test_containers_reach_each_other_by_ip(md, web):
    ip = ip_of(md, web)
    out = md.ok("run", "--rm", "busybox", "sh", "-c",
                f"ping -c1 -W2 {ip} >/dev/null && echo ping-ok; timeout 5 wget -q -O- http://{ip}/")
    assert out == "ping-ok\nhello-web1\n"
    assert http_get(ip, 80) == "hello-web1\n"  # and from the host, into the container's namespace


def test_published_ports_via_localhost(md, web):
    ports = inspect(md, web)["NetworkSettings"]["Ports"]["80/tcp"]
    assert {"HostIp": "0.0.0.0", "HostPort": "18081"} in ports
    random_port = next(int(p["HostPort"]) for p in ports if p["HostIp"] == "127.0.0.1")
    assert 32768 <= random_port <= 60999
    assert http_get("127.0.0.1", 18081) == "hello-web1\n"
    assert http_get("127.0.0.1", random_port) == "hello-web1\n"
    lines = md.ok("port", web).splitlines()
    assert "80/tcp -> 0.0.0.0:18081" in lines and f"80/tcp -> 127.0.0.1:{random_port}" in lines
    r = md("port", web, "443")
    assert r.returncode == 1 and "No public port '443/tcp'" in r.stderr
    # another container, through the host's published port (hairpin NAT); also where bridged
    # packets skip the host's netfilter (no br_netfilter, as in a fresh VM: nat.py's hairpin rule)
    gw = inspect(md, web)["NetworkSettings"]["Gateway"]
    hairpin = ["run", "--rm", "busybox", "sh", "-c", f"timeout 5 wget -q -O- http://{gw}:18081/"]
    assert md.ok(*hairpin) == "hello-web1\n"
    knob = "/proc/sys/net/bridge/bridge-nf-call-iptables"
    if os.path.exists(knob):
        before = open(knob).read().strip()
        try:
            with open(knob, "w") as f:
                f.write("0")
            assert md.ok(*hairpin) == "hello-web1\n"
        finally:
            with open(knob, "w") as f:
                f.write(before)
    # the same host port twice: refused, nothing half-made left running
    r = md("run", "-d", "--name", "clash", "-p", "18081:80", "busybox", "sleep", "30")
    assert r.returncode == 125 and "port is already allocated" in r.stderr
    assert inspect(md, "clash")["State"]["Status"] == "created"
    md.ok("rm", "clash")


def _table_name(md) -> str:
    from minidocker.network.nat import table_name
    from minidocker.network.store import root_tag
    from minidocker.paths import StateRoot
    return table_name(root_tag(StateRoot(md.root)))


def _table(md) -> str:
    return nft.list_table("ip", _table_name(md))


def _table_handle(md) -> int:
    return next(o["table"]["handle"] for o in nft.list_json(f"table ip {_table_name(md)}") if "table" in o)


def test_the_firewall_table_is_rewritten_only_when_its_rules_change(md):
    """A start or an exit that changes no rule (no published port, the bridge already there)
    leaves the kernel's table as it is (network/nat.py: its comment is its rules' digest); one
    that publishes a port replaces the table, and its exit replaces it again."""
    md.ok("run", "--rm", "busybox", "true")
    handle, rules = _table_handle(md), _table(md)
    md.ok("run", "--rm", "busybox", "true")
    assert (_table_handle(md), _table(md)) == (handle, rules)  # the same table object, untouched
    cid = md.ok("run", "-d", "-p", "18097:80", "busybox", "sleep", "30").strip()
    try:
        assert "tcp dport 18097 dnat" in _table(md) and _table_handle(md) != handle
    finally:
        md.ok("rm", "-f", cid)
    assert "18097" not in _table(md)
    assert [ln for ln in _table(md).splitlines() if "comment" in ln and "rules" in ln] == \
        [ln for ln in rules.splitlines() if "comment" in ln and "rules" in ln]  # the same rules again


def test_publish_all_exposed_ports(md):
    cid = md.ok("run", "-d", "--expose", "80", "-P", "busybox", "sh", "-c", HTTPD).strip()
    try:
        port = int(md.ok("port", cid, "80").split(":")[1])
        assert http_get("127.0.0.1", port).startswith("hello-")
        assert inspect(md, cid)["Config"]["ExposedPorts"] == {"80/tcp": {}}
    finally:
        md.ok("rm", "-f", cid)
    # rules go with the container
    from minidocker.network.modes import published_elsewhere
    assert ("tcp", port) not in published_elsewhere()


def test_user_defined_network_dns_and_isolation(md):
    md.ok("network", "create", "front")
    md.ok("network", "create", "--subnet", "10.231.0.0/24", "--gateway", "10.231.0.254", "back")
    try:
        back = json.loads(md.ok("network", "inspect", "back"))[0]
        assert back["IPAM"]["Config"] == [{"Subnet": "10.231.0.0/24", "Gateway": "10.231.0.254"}]
        md.ok("run", "-d", "--name", "api", "-h", "api", "--network", "front", "--network-alias", "service",
              "busybox", "sh", "-c", HTTPD)
        md.ok("run", "-d", "--name", "db", "--network", "back", "--ip", "10.231.0.10", "busybox", "sleep", "60")
        assert ip_of(md, "db", "back") == "10.231.0.10"
        out = md.ok("run", "--rm", "--network", "front", "busybox", "sh", "-c",
                    "cat /etc/resolv.conf; ping -c1 -W2 api >/dev/null && echo by-name;"
                    "timeout 5 wget -q -O- http://service/")
        assert "nameserver 127.0.0.11" in out and "by-name\nhello-api\n" in out
        api_id = inspect(md, "api")["Id"]
        out = md.ok("run", "--rm", "--network", "front", "busybox", "nslookup", api_id[:12], "127.0.0.11")
        assert out.count(f"Address: {ip_of(md, 'api', 'front')}") == 1   # one A record, as Docker's
        r = md("run", "--rm", "--network", "front", "busybox", "nslookup", "no-such-name", "127.0.0.11")
        assert r.returncode != 0
        # another network: no name, and no route through
        r = md("run", "--rm", "--network", "back", "busybox", "sh", "-c",
               f"ping -c1 -W1 api; ping -c1 -W1 {ip_of(md, 'api', 'front')}")
        assert r.returncode != 0 and "bad address 'api'" in r.stderr
        # the default bridge has no embedded DNS, as in Docker
        out = md.ok("run", "--rm", "busybox", "sh", "-c",
                    "grep -c 127.0.0.11 /etc/resolv.conf; nslookup api 127.0.0.11 >/dev/null 2>&1 || echo no-dns")
        assert out.split() == ["0", "no-dns"]
        # network rm refuses while in use
        r = md("network", "rm", "front")
        assert r.returncode == 1 and "has active endpoints" in r.stderr
        r = md("network", "create", "front")
        assert r.returncode == 1 and "already exists" in r.stderr
        r = md("network", "rm", "bridge")
        assert r.returncode == 1 and "pre-defined network" in r.stderr
        assert {"api", "db"} == {c["Name"] for n in ("front", "back")
                                 for c in json.loads(md.ok("network", "inspect", n))[0]["Containers"].values()}
    finally:
        md("rm", "-f", "api", "db")
        md("network", "rm", "front", "back")


def test_connect_and_disconnect_live(md):
    md.ok("network", "create", "extra")
    cid = md.ok("run", "-d", "busybox", "sleep", "60").strip()
    try:
        md.ok("network", "connect", "--alias", "joined", "extra", cid)
        ip = ip_of(md, cid, "extra")
        assert md.ok("exec" if False else "inspect", "-f", "{{len .NetworkSettings.Networks}}", cid).strip() == "2"
        out = md.ok("run", "--rm", "--network", "extra", "busybox", "sh", "-c",
                    "ping -c1 -W2 joined >/dev/null && echo ok")
        assert out == "ok\n"
        pid = inspect(md, cid)["State"]["Pid"]
        assert sorted(os.listdir(f"/proc/{pid}/root/sys/class/net")) == ["eth0", "eth1", "lo"]
        md.ok("network", "disconnect", "extra", cid)
        assert sorted(os.listdir(f"/proc/{pid}/root/sys/class/net")) == ["eth0", "lo"]
        assert "extra" not in inspect(md, cid)["NetworkSettings"]["Networks"]
        assert json.loads(md.ok("network", "inspect", "extra"))[0]["Containers"] == {}
        r = md("network", "disconnect", "extra", cid)
        assert r.returncode != 0 and "is not connected" in r.stderr
        assert ip
    finally:
        md("rm", "-f", cid)
        md("network", "rm", "extra")


def test_a_network_connected_while_running_is_kept_at_stop_and_released_at_rm(md):
    """The monitor tears down with the record as it is at exit, not as it was at start: a network
    connected meanwhile gives its address back (else `network rm` says "active endpoints") and
    stays in the record for the next start, as in Docker. (Found by notebook 06.)"""
    md.ok("network", "create", "late")
    cid = md.ok("run", "-d", "busybox", "sleep", "60").strip()
    try:
        md.ok("network", "connect", "late", cid)
        md.ok("stop", "-t", "0", cid)
        assert "late" in inspect(md, cid)["NetworkSettings"]["Networks"]
        assert json.loads(md.ok("network", "inspect", "late"))[0]["Containers"] == {}
        md.ok("start", cid)
        pid = inspect(md, cid)["State"]["Pid"]
        assert sorted(os.listdir(f"/proc/{pid}/root/sys/class/net")) == ["eth0", "eth1", "lo"]
        md.ok("rm", "-f", cid)
        assert md("network", "rm", "late").returncode == 0
    finally:
        md("rm", "-f", cid)
        md("network", "rm", "late")


def test_none_host_and_container_modes(md):
    assert md.ok("run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net").split() == ["lo"]
    host_links = sorted(os.listdir("/sys/class/net"))
    out = md.ok("run", "--rm", "--network", "host", "busybox", "sh", "-c", "hostname; ls /sys/class/net")
    assert out.split()[0] == os.uname().nodename
    assert sorted(out.split()[1:]) == [x for x in host_links if not x.startswith("veth")] or \
        set(out.split()[1:]) >= {"lo"}
    cid = md.ok("run", "-d", "--name", "netowner", "busybox", "sh", "-c", HTTPD).strip()
    try:
        ip = ip_of(md, cid)
        out = md.ok("run", "--rm", "--network", "container:netowner", "busybox", "sh", "-c",
                    "ip -4 -o addr show eth0; hostname; timeout 5 wget -q -O- http://127.0.0.1/")
        assert f"inet {ip}/" in out and out.splitlines()[1] == cid[:12]
        assert out.splitlines()[2].startswith("hello-")  # its localhost is the owner's localhost
        r = md("run", "--rm", "--network", "container:netowner", "-p", "80:80", "busybox", "true")
        assert r.returncode == 125 and "conflicting options" in r.stderr
        r = md("run", "--name", "selfish", "--network", "container:selfish", "busybox", "true")
        assert r.returncode == 125 and "cannot join own network namespace" in r.stderr
        md("rm", "-f", "selfish")
        md.ok("stop", "-t", "0", "netowner")
        r = md("run", "--rm", "--network", "container:netowner", "busybox", "true")
        assert r.returncode == 125 and "non running container" in r.stderr
    finally:
        md("rm", "-f", cid)


def test_concurrent_runs_get_distinct_addresses(md):
    md.ok("network", "create", "--subnet", "10.232.0.0/28", "crowd")
    results = []

    def run():
        results.append(md("run", "-d", "--network", "crowd", "busybox", "sleep", "30"))
    threads = [threading.Thread(target=run) for _ in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    try:
        ids = [r.stdout.strip() for r in results if r.returncode == 0]
        assert len(ids) == 6, [r.stderr for r in results]
        ips = [ip_of(md, c, "crowd") for c in ids]
        assert len(set(ips)) == 6 and all(ip.startswith("10.232.0.") for ip in ips)
    finally:
        md("rm", "-f", *[r.stdout.strip() for r in results if r.returncode == 0])
        md("network", "rm", "crowd")


def test_nothing_left_after_removal(md):
    from minidocker.network.store import NetworkStore, root_tag
    from minidocker.paths import StateRoot
    md.ok("network", "create", "temp")
    cid = md.ok("run", "-d", "--network", "temp", "-p", "18099:80", "busybox", "sleep", "30").strip()
    store = NetworkStore(StateRoot(md.root))
    bridge = store.bridge(store.get("temp"))
    assert bridge in os.listdir("/sys/class/net")
    md.ok("rm", "-f", cid)
    md.ok("network", "rm", "temp")
    assert bridge not in os.listdir("/sys/class/net")
    md.ok("system", "prune", "-f")
    links = os.listdir("/sys/class/net")
    assert not [x for x in links if x.startswith("veth")]
    assert f"md{root_tag(StateRoot(md.root))}0" not in links
    assert f"minidocker_{root_tag(StateRoot(md.root))}" not in nft.run("list tables")
    assert "18099" not in nft.run("list ruleset")


def test_prune_cleans_up_after_a_deleted_state_root(md, tmp_path):
    """rm -rf of a state root whose bridges still exist (a crashed test, a killed notebook):
    `system prune` from any other root finds them through /run/minidocker/roots."""
    import shutil
    from conftest import MD
    from minidocker.network.store import NetworkStore, registered_roots, root_tag
    from minidocker.paths import StateRoot
    gone = MD(str(tmp_path / "gone"))
    gone.ok("network", "create", "gonenet")
    gone.ok("run", "--rm", "--network", "gonenet", "busybox", "true")
    gone.ok("run", "--rm", "-p", "18098:80", "busybox", "true")   # default bridge and its table
    tag = root_tag(StateRoot(gone.root))
    user_bridge = NetworkStore(StateRoot(gone.root)).bridge(NetworkStore(StateRoot(gone.root)).get("gonenet"))
    assert registered_roots()[tag] == gone.root
    assert {f"md{tag}0", user_bridge} <= set(os.listdir("/sys/class/net"))
    assert nft.table_exists("ip", f"minidocker_{tag}")
    shutil.rmtree(gone.root)
    out = md.ok("system", "prune", "-f")
    assert f"bridge md{tag}0 of deleted state root" in out and f"bridge {user_bridge} of a deleted network" in out
    assert not {f"md{tag}0", user_bridge} & set(os.listdir("/sys/class/net"))
    assert not nft.table_exists("ip", f"minidocker_{tag}") and tag not in registered_roots()
    assert f"cgroup parent minidocker-{tag} of deleted state root" in out
    assert not any(os.path.isdir(os.path.join("/sys/fs/cgroup", t, f"minidocker-{tag}"))
                   for t in os.listdir("/sys/fs/cgroup"))


def test_network_prune_and_exposed_ports_from_a_build(md, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM busybox\nEXPOSE 80\nCMD " + json.dumps(["sh", "-c", HTTPD]) + "\n")
    md.ok("build", "--network", "none", "-t", "exposed:1", str(tmp_path), timeout=120)
    md.ok("network", "create", "unused1")
    md.ok("network", "create", "kept")
    cid = md.ok("run", "-d", "-P", "--network", "kept", "exposed:1").strip()
    try:
        port = int(md.ok("port", cid, "80").split(":")[1])
        assert http_get("127.0.0.1", port).startswith("hello-")
        out = md.ok("network", "prune", "-f")
        assert out.splitlines() == ["Deleted Networks:", "unused1", ""] or out.startswith("Deleted Networks:\nunused1")
        names = md.ok("network", "ls", "--format", "{{.Name}}").split()
        assert "kept" in names and "unused1" not in names
    finally:
        md("rm", "-f", cid)
        md("network", "rm", "kept")


def test_publish_a_port_left_in_time_wait(md):
    """A host server on 127.0.0.1:18181 just closed a connection (its side stays in TIME_WAIT
    for a minute): Docker publishes the port at once, and so must we."""
    from test_network_logic import _tcp_states, leave_time_wait
    port = leave_time_wait(18181)
    assert "06" in _tcp_states(port) and "0A" not in _tcp_states(port)
    r = md("run", "-d", "-p", f"127.0.0.1:{port}:80", "busybox", "sh", "-c", HTTPD)
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    try:
        assert md.ok("port", cid, "80") == f"127.0.0.1:{port}\n"
        assert http_get("127.0.0.1", port).startswith("hello-")
    finally:
        md("rm", "-f", cid)
    # a live listener on the port is still a conflict
    with socket.socket() as live:
        live.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        live.bind(("127.0.0.1", port))
        live.listen(1)
        r = md("run", "-d", "--name", "tw-clash", "-p", f"127.0.0.1:{port}:80", "busybox", "sleep", "30")
        assert r.returncode == 125 and "port is already allocated" in r.stderr
        md("rm", "-f", "tw-clash")


def test_a_start_that_fails_gives_back_its_port_and_address(md):
    """The program cannot be run (127): the network was plugged in before that was known, so
    the monitor must take the DNAT rule and the address away although the record never said
    running (found in rootless mode: a second container could not publish the same port)."""
    from minidocker.network import nft
    r = md("run", "-d", "--name", "nocmd", "-p", "127.0.0.1:18183:7/udp", "busybox", "no-such-command")
    assert r.returncode == 127, r.stderr
    cid = r.stdout.strip()
    try:
        assert cid[:12] not in nft.run("list ruleset")
        net = json.loads(md.ok("network", "inspect", "bridge"))[0]
        assert cid not in (net.get("Containers") or {})
        again = md("run", "-d", "--name", "nocmd2", "-p", "127.0.0.1:18183:7/udp", "busybox", "sleep", "30")
        assert again.returncode == 0, again.stderr
    finally:
        md("rm", "-f", "nocmd", "nocmd2")
