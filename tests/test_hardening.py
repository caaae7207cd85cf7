"""What an attack on minidocker found, kept fixed (issue 13). Each test fails on the code
before its fix."""
import json
import os
import pty
import select
import subprocess
import sys
import time

import pytest

from conftest import REPO

PROBE = "test -t 0 && echo STDIN-IS-A-TTY; test -t 1 && echo STDOUT-IS-A-TTY; echo probe-done"


def _in_a_terminal(md, *args: str, timeout: float = 30) -> str:
    """Run `minidocker ARGS` with a terminal as its stdin, stdout and stderr, as an admin
    typing it would; return what appeared on the terminal."""
    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "minidocker", *args], env=dict(md.env, PYTHONPATH=REPO),
                         stdin=slave, stdout=slave, stderr=slave, close_fds=True, start_new_session=True)
    os.close(slave)
    out, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: every holder of the terminal closed it
                    break
                out += chunk
            if p.poll() is not None and not ready:
                break
        p.wait(timeout=10)
    finally:
        os.close(master)
    return out.decode(errors="replace")


@pytest.mark.root
def test_exec_and_run_never_hand_the_callers_terminal_to_the_container(md):
    """Without -t the container gets pipes, never the caller's terminal: from a terminal it could
    TIOCSTI a command into the admin's shell (dev.tty.legacy_tiocsti=1 allows that)."""
    md.ok("run", "-d", "--name", "tty-probe", "--network", "none", "busybox", "sleep", "300")
    try:
        out = _in_a_terminal(md, "exec", "tty-probe", "sh", "-c", PROBE)
        assert "probe-done" in out and "IS-A-TTY" not in out, out
        out = _in_a_terminal(md, "exec", "-i", "tty-probe", "sh", "-c", PROBE)
        assert "probe-done" in out and "IS-A-TTY" not in out, out
    finally:
        md("rm", "-f", "tty-probe")
    out = _in_a_terminal(md, "run", "--rm", "-i", "--network", "none", "busybox", "sh", "-c", PROBE)
    assert "probe-done" in out and "IS-A-TTY" not in out, out
    # with -t the container gets a terminal, but one of its own (on its devpts), not the caller's
    out = _in_a_terminal(md, "run", "--rm", "-t", "--network", "none", "busybox", "sh", "-c",
                         "tty; " + PROBE)
    assert "/dev/pts/0" in out and "STDIN-IS-A-TTY" in out


@pytest.mark.root
def test_stdin_is_still_copied_in(md):
    md.ok("run", "-d", "--name", "stdin-copy", "--network", "none", "busybox", "sleep", "300")
    try:
        big = "x" * 300_000 + "\n"  # more than a pipe holds: the copy must not block
        assert md.ok("exec", "-i", "stdin-copy", "wc", "-c", input=big).strip() == str(len(big))
        assert md.ok("exec", "-i", "stdin-copy", "sh", "-c", "cat; echo end", input="a\nb\n") == "a\nb\nend\n"
    finally:
        md("rm", "-f", "stdin-copy")
    assert md.ok("run", "--rm", "-i", "--network", "none", "busybox", "wc", "-c", input=big).strip() == str(len(big))


@pytest.mark.root
def test_a_setuid_file_a_container_leaves_is_out_of_reach_of_host_users(tmp_path):
    """CVE-2021-41091's class: a container writes a setuid-root copy of a shell into a volume
    (or its writable layer); the host's other users must not be able to run it."""
    import shutil
    import tempfile
    from conftest import MD
    root = tempfile.mkdtemp(prefix="mdtest-perm-", dir="/tmp")  # /tmp: every user may traverse it
    md = MD(root)
    try:
        md.ok("run", "--name", "suid", "--network", "none", "-v", "loot:/data", "busybox", "sh", "-c",
              "cp /bin/busybox /data/sh && chmod 4755 /data/sh && cp /bin/busybox /sh2 && chmod 4755 /sh2")
        upper = md.ok("inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", "suid").strip()
        volume = md.ok("volume", "inspect", "-f", "{{.Mountpoint}}", "loot").strip()
        for path in (os.path.join(volume, "sh"), os.path.join(upper, "sh2")):
            assert os.stat(path).st_mode & 0o4000  # it is there, setuid root...
            try:
                r = subprocess.run([path, "id", "-u"], user=65534, group=65534, extra_groups=[],
                                   capture_output=True, text=True)
                assert False, f"nobody ran {path}: {r.stdout!r}"
            except PermissionError:
                pass  # ...and nobody but root can reach it
        for d in (root, os.path.join(root, "volumes"), os.path.join(root, "overlay2"),
                  os.path.join(root, "containers")):
            assert os.stat(d).st_mode & 0o7 == 0, oct(os.stat(d).st_mode)
    finally:
        md("rm", "-f", "suid")
        md("volume", "rm", "loot")
        md("system", "prune", "-f")
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.root
def test_the_private_dockerd_leaves_the_hosts_docker_alone():
    """A dockerd started with --bridge=none deletes the host's docker0 at start-up: on a
    learner's machine with Docker, `make test` broke Docker's default network. The private
    daemon has a bridge of its own, sets no iptables rule and no ip_forward."""
    from conftest import require_tool
    from minidocker.lab.realdocker import BRIDGE_PREFIX, RealDocker
    from minidocker.network import bridge
    require_tool("dockerd")
    save = require_tool("iptables-save")
    made_docker0 = "docker0" not in os.listdir("/sys/class/net")
    if made_docker0:  # a stand-in for the host's own Docker bridge
        bridge.ensure_bridge("docker0", "172.17.0.1", 16)
    rules = subprocess.run([save], capture_output=True, text=True).stdout
    forward = open("/proc/sys/net/ipv4/ip_forward").read()
    try:
        with RealDocker.start() as docker:
            ours = open(os.path.join(docker.workdir, "bridge")).read().strip()
            assert ours.startswith(BRIDGE_PREFIX) and ours in os.listdir("/sys/class/net")
            assert "docker0" in os.listdir("/sys/class/net")
            assert docker.docker("network", "ls", "--format", "{{.Name}}").stdout.split()[:1] == ["bridge"]
        assert "docker0" in os.listdir("/sys/class/net")
        assert ours not in os.listdir("/sys/class/net"), "the private bridge outlived its daemon"
        strip = lambda text: [ln for ln in text.splitlines() if not ln.startswith(("#", ":"))]  # noqa: E731
        assert strip(subprocess.run([save], capture_output=True, text=True).stdout) == strip(rules)
        assert open("/proc/sys/net/ipv4/ip_forward").read() == forward
    finally:
        if made_docker0:
            bridge.delete_link("docker0")


def test_reconcile_decisions():
    from minidocker.engine.reconcile import last_sign_of_life, same_process
    assert same_process("42 1000", 42, 1000)
    assert not same_process("42 1000", 42, 2000)   # PID 42 was recycled: not ours to kill
    assert not same_process("42 1000", 42, None) and not same_process(None, 42, 1000)
    assert last_sign_of_life(started=100.0, log_mtime=130.0, boot=50.0, now=500.0) == 130.0
    assert last_sign_of_life(started=100.0, log_mtime=None, boot=50.0, now=500.0) == 100.0
    assert last_sign_of_life(started=10.0, log_mtime=30.0, boot=50.0, now=500.0) == 50.0  # died with the machine


@pytest.mark.root
def test_a_container_whose_monitor_died_records_when_it_died(md):
    """Not when someone looked: `ps -a` a while later says `Exited (255) N seconds ago`."""
    import signal
    from conftest import shim_processes
    before = set(shim_processes(md.root))
    cid = md.ok("run", "-d", "--network", "none", "busybox", "sh", "-c", "echo up; sleep 300").strip()
    time.sleep(0.5)
    pid = int(md.ok("inspect", "-f", "{{.State.Pid}}", cid))
    monitor = (set(shim_processes(md.root)) - before).pop()
    os.kill(monitor, signal.SIGKILL)   # the monitor first, so nobody records the exit...
    os.kill(pid, signal.SIGKILL)       # ...then the container
    died = time.time()
    time.sleep(3)
    state = json.loads(md.ok("inspect", "-f", "{{json .State}}", cid))
    from minidocker import gotime
    assert (state["Status"], state["ExitCode"]) == ("exited", 255)
    assert gotime.parse_rfc3339(state["FinishedAt"]) <= died + 0.5
    assert "second" in md.ok("ps", "-a", "--filter", f"id={cid}", "--format", "{{.Status}}")
    md.ok("rm", cid)


@pytest.mark.root
def test_each_state_root_has_its_own_cgroup_parent(md, tmp_path):
    """One root's `system prune` removed the cgroup parent all roots shared."""
    from conftest import MD
    from minidocker.engine.runtime import Runtime
    other = MD(str(tmp_path / "other-root"))
    mine, theirs = Runtime(md.root), Runtime(other.root)
    assert mine.cgroup_parent != theirs.cgroup_parent and mine.cgroup_parent.startswith("minidocker-")
    cid = md.ok("run", "-d", "--network", "none", "busybox", "sleep", "300").strip()
    try:
        other.ok("run", "--rm", "--network", "none", "busybox", "true")
        other.ok("system", "prune", "-f")
        assert cid in mine.cgroups().ids()
        assert os.path.isdir(mine.cgroups().path(cid))
        md.ok("pause", cid)
        md.ok("unpause", cid)
        pid = int(md.ok("inspect", "-f", "{{.State.Pid}}", cid))
        assert f"/{mine.cgroup_parent}/{cid}" in open(f"/proc/{pid}/cgroup").read()
    finally:
        md("rm", "-f", cid)
    # the other root's prune removed its own (empty) parent, never ours
    assert not os.path.exists(os.path.dirname(theirs.cgroups().path("any-id")))


LOOPBACK_PROBE = r'''
import os, socket, struct, sys
sys.path.insert(0, sys.argv[1])
from minidocker.core.linux import syscalls as sc
pid, gw_mac, port = int(sys.argv[2]), bytes.fromhex(sys.argv[3].replace(":", "")), int(sys.argv[4])
fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
sc.setns(fd, sc.CLONE_NEWNET)               # from here on we are on the container's network
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0x0800))
my_mac = bytes.fromhex(open("/sys/class/net/eth0/address").read().strip().replace(":", ""))
def csum(b):
    b += b"\0" * (len(b) % 2)
    t = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while t >> 16:
        t = (t & 0xFFFF) + (t >> 16)
    return ~t & 0xFFFF
payload = b"from a container"
udp = struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                 socket.inet_aton(sys.argv[5]), socket.inet_aton("127.0.0.1"))
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
s.send(gw_mac + my_mac + b"\x08\x00" + ip + udp)   # to 127.0.0.1, through the gateway's MAC
'''


@pytest.mark.root
def test_a_container_cannot_reach_the_hosts_localhost_services(md):
    """route_localnet=1 (set for publishing on 127.0.0.1) let a container send a packet to
    127.0.0.1 through the bridge's MAC address: it reached host services bound to localhost
    only (here a UDP socket; a TCP SYN gets as far). The guard chain drops it."""
    import socket
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(3)
    port = listener.getsockname()[1]
    cid = md.ok("run", "-d", "busybox", "sleep", "300").strip()  # the default bridge
    try:
        rec = json.loads(md.ok("inspect", cid))[0]
        ep = rec["NetworkSettings"]["Networks"]["bridge"]
        from minidocker.network.store import NetworkStore
        from minidocker.paths import StateRoot
        store = NetworkStore(StateRoot(md.root))
        bridge = store.bridge(store.get("bridge"))
        gw_mac = open(f"/sys/class/net/{bridge}/address").read().strip()
        assert open(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet").read().strip() == "1"
        subprocess.run([sys.executable, "-c", LOOPBACK_PROBE, REPO, str(rec["State"]["Pid"]), gw_mac, str(port),
                        ep["IPAddress"]], check=True, timeout=30)
        try:
            data = listener.recv(100)
        except socket.timeout:
            data = None
        assert data is None, f"a host service on 127.0.0.1 received {data!r} from a container"
        # publishing on 127.0.0.1 still works (the host's own packets, not the container's)
        web = md.ok("run", "-d", "-p", "127.0.0.1::80", "busybox", "httpd", "-f", "-p", "80").strip()
        try:
            hostport = int(md.ok("port", web, "80").split(":")[-1])
            with socket.create_connection(("127.0.0.1", hostport), timeout=5) as c:
                c.sendall(b"GET / HTTP/1.0\r\n\r\n")
                assert c.recv(100).startswith(b"HTTP/1.")
        finally:
            md("rm", "-f", web)
    finally:
        md("rm", "-f", cid)
        listener.close()


@pytest.mark.root
def test_prune_racing_run_leaves_no_ghost(md):
    """`container prune` while `run -d` runs: a container that runs always has its record
    (it used to be pruned between create and start, and ran on with its layers gone)."""
    import threading
    from conftest import shim_processes
    stop = threading.Event()

    def pruner():
        while not stop.is_set():
            md("container", "prune", "-f")

    t = threading.Thread(target=pruner)
    t.start()
    started = []
    try:
        for _ in range(12):
            r = md("run", "-d", "--network", "none", "busybox", "sleep", "60")
            if r.returncode == 0:
                started.append(r.stdout.strip())
            else:  # pruned before its start: a clean error, as Docker gives, never a ghost
                assert "No such container" in r.stderr and "Traceback" not in r.stderr, r.stderr
    finally:
        stop.set()
        t.join()
    try:
        listed = set(md.ok("ps", "-q", "--no-trunc").split())
        monitors = set()
        for pid in shim_processes(md.root):
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            monitors.add(argv[argv.index(md.root.encode()) + 1].decode())
        assert monitors <= listed, f"running without a record: {monitors - listed}"
        assert set(started) <= listed
        for cid in listed:
            layers = json.loads(md.ok("inspect", cid))[0]["GraphDriver"]["Data"]
            assert os.path.isdir(layers["UpperDir"])
    finally:
        if started:
            md("rm", "-f", *started)


@pytest.mark.root
def test_a_killed_removal_can_be_taken_up_again(md):
    """kill -9 of `rm` half-way left "Removal In Progress" for good: rm -f and prune refused it."""
    import shutil
    for verb in (["rm"], ["rm", "-f"], ["container", "prune", "-f"]):
        cid = md.ok("create", "--network", "none", "busybox", "true").strip()
        rec = json.loads(md.ok("inspect", cid))[0]
        config = os.path.join(md.root, "containers", cid, "config.v2.json")
        data = json.load(open(config))
        data["State"]["Status"] = "removing"          # what a killed `rm` leaves behind...
        json.dump(data, open(config, "w"))
        shutil.rmtree(rec["GraphDriver"]["Data"]["UpperDir"])  # ...half-way through its files
        assert "Removal In Progress" in md.ok("ps", "-a", "--filter", f"id={cid}", "--format", "{{.Status}}")
        md.ok(*verb, *([cid] if verb[0] == "rm" else []))
        assert cid not in md.ok("ps", "-aq", "--no-trunc")
        assert not os.path.exists(os.path.dirname(config))


@pytest.mark.root
def test_a_tree_thousands_of_levels_deep_can_be_diffed_and_removed(md):
    """Python 3.11's shutil.rmtree and os.walk recurse once per level: `diff`, `commit`, `save`,
    `rm`, `rmi` and `system prune` died with RecursionError and left the layer behind for ever."""
    md.ok("run", "--name", "deep", "--network", "none", "busybox", "sh", "-c",
          "i=0; while [ $i -lt 1500 ]; do mkdir d; cd d; i=$((i+1)); done; echo x > f")
    upper = json.loads(md.ok("inspect", "deep"))[0]["GraphDriver"]["Data"]["UpperDir"]
    changes = md.ok("diff", "deep").splitlines()
    assert len(changes) == 1501 and changes[-1].endswith("/d/f")
    md.ok("commit", "deep", "deep:1")            # the tree goes into a layer tar...
    md.ok("save", "-o", os.path.join(md.root, "tmp", "deep.tar"), "deep:1")
    os.unlink(os.path.join(md.root, "tmp", "deep.tar"))
    md.ok("rmi", "deep:1")                       # ...and out again
    md.ok("rm", "deep")
    assert not os.path.exists(upper)
    assert "Traceback" not in md("system", "prune", "-f").stderr


@pytest.mark.root
def test_volume_prune_racing_run_never_deletes_a_volume_being_used(md):
    """`volume prune -a` while `run -v vol:/etc` makes and fills the volume: it deleted the
    data under the container being made, whose start then failed with a raw FileNotFoundError."""
    import threading
    stop = threading.Event()

    def pruner():
        while not stop.is_set():
            md("volume", "prune", "-a", "-f")

    t = threading.Thread(target=pruner)
    t.start()
    try:
        for i in range(15):
            r = md("run", "--rm", "--network", "none", "-v", f"racevol{i % 3}:/etc", "busybox", "cat", "/etc/passwd")
            assert r.returncode == 0 and "root:x:0:0" in r.stdout, r.stderr
    finally:
        stop.set()
        t.join()
    md("volume", "prune", "-a", "-f")


@pytest.mark.root
def test_a_killed_builds_layer_goes_with_system_prune(md, tmp_path):
    """A build (or pull, load, import) killed after registering a layer but before storing its
    image left a layer no prune removed. Not while such work is under way, though."""
    import tarfile
    from minidocker.images.store import ImageStore
    from minidocker.paths import StateRoot
    md.ok("run", "--rm", "--network", "none", "busybox", "true")  # (the image is there)
    store = ImageStore(StateRoot(md.root))
    tar = tmp_path / "layer.tar"
    with tarfile.open(tar, "w") as tf:
        info = tarfile.TarInfo("left-by-a-killed-build")
        tf.addfile(info)
    base = store.resolve("busybox").top_chain_id
    with store.working():                              # a build in progress...
        chain = store.register_layer(str(tar), base)   # ...registered its layer, no image yet
        md.ok("system", "prune", "-f")
        assert store.has_layer(chain), "a running build's layer was pruned"
    cache = store.layer_cache_id(chain)
    out = md.ok("system", "prune", "-f")               # ...and was killed: its mark is free now
    assert f"unused layer {chain.split(':')[1][:12]}" in out
    assert not store.has_layer(chain) and not os.path.exists(store.driver.dir(cache))
    assert store.has_layer(base)  # the image's own layers stay
    assert md("run", "--rm", "--network", "none", "busybox", "true").returncode == 0


@pytest.mark.root
def test_an_image_volume_inside_proc_is_refused(md, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM busybox\nVOLUME /proc/sys\n")
    md.ok("build", "-q", "-t", "procvol:1", str(tmp_path))
    before = md.ok("ps", "-aq")
    r = md("run", "--rm", "--network", "none", "procvol:1", "true")
    assert r.returncode == 125 and "inside /proc" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    assert md.ok("ps", "-aq") == before
    md.ok("rmi", "procvol:1")


@pytest.mark.root
def test_orphan_cgroup_parents_go_with_system_prune(md):
    """A state root deleted while a container's cgroup was still being removed left its
    minidocker-<tag> parent for ever. Any root's `system prune` removes parents no live root owns."""
    from minidocker.core import cgroups
    tag = "0rphan"
    cg = cgroups.driver(f"{cgroups.PARENT}-{tag}")
    cg.create("leftover-container")               # an empty parent with an empty child, as left
    os.utime(cg.path("leftover-container"), (0, 0))  # (long ago: not a container starting now)
    from minidocker.engine.cleanup import tagged_cgroup_parents
    assert tag in tagged_cgroup_parents()
    out = md.ok("system", "prune", "-f")
    assert f"cgroup parent minidocker-{tag} of deleted state root" in out
    assert not any(os.path.isdir(os.path.join("/sys/fs/cgroup", t, f"minidocker-{tag}"))
                   for t in os.listdir("/sys/fs/cgroup"))


@pytest.mark.root
def test_rm_killed_at_its_first_unlink_is_taken_up_again(md):
    """The finding's own reproduction: `strace -f -e inject=unlink,unlinkat:signal=KILL:when=1
    minidocker rm NAME` (rm dies as it deletes its first file)."""
    from conftest import require_tool
    strace = require_tool("strace")
    cid = md.ok("create", "--name", "half-gone", "--network", "none", "busybox", "true").strip()
    r = subprocess.run([strace, "-f", "-o", "/dev/null", "-e", "inject=unlink,unlinkat:signal=KILL:when=1",
                        sys.executable, "-m", "minidocker", "rm", "half-gone"], env=md.env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0  # killed half-way
    state = md("inspect", "-f", "{{.State.Status}}", cid)
    assert state.returncode == 0, "the record should still be there, marked for removal"
    md.ok("rm", "-f", "half-gone")
    assert cid not in md.ok("ps", "-aq", "--no-trunc")
    assert not os.path.exists(os.path.join(md.root, "containers", cid))
