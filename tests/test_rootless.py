"""Rootless mode (core/rootless.py): `minidocker` run by a user who is not root.

The pure parts run anywhere; the rest runs the CLI as a real unprivileged user (created here,
with its /etc/subuid range) and checks what the kernel shows: root inside, the user's uid on
the host, the same capabilities and seccomp filter as a root-run container, layers owned by
the subordinate ids, a private network whose published ports are reachable from the host's
loopback, limits discarded with Docker's warnings, and nothing left once `system prune` ran.
"""
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import REPO, require, require_tool
from minidocker.container import hostconfig
from minidocker.core import overlay2, rootless, userns

USER = "mdrootless"


# ---------------------------------------------------------------- without root
def test_the_maps_put_the_user_at_0_and_the_subordinate_ids_after():
    uidmap, gidmap = rootless.id_maps(1001, 1002, "alice", "alice:165536:65536\n", "1001:200000:10\nalice:300000:5\n")
    assert uidmap.ranges == [(0, 1001, 1), (1, 165536, 65536)]
    # (shadow-utils reads a numeric owner in /etc/subgid as the user's uid, as in /etc/subuid)
    assert gidmap.ranges == [(0, 1002, 1), (1, 200000, 10), (11, 300000, 5)]
    assert rootless.helper_args(uidmap) == ["0", "1001", "1", "1", "165536", "65536"]
    with pytest.raises(Exception, match="subordinate ids for bob in /etc/subuid"):
        rootless.id_maps(1003, 1003, "bob", "alice:165536:65536\n", "")


def test_the_host_map_is_the_identity():
    assert userns.is_host_map(userns.parse_proc_map("         0          0 4294967295\n"))
    assert not userns.is_host_map(userns.parse_proc_map("0 1001 1\n1 165536 65536\n"))


def test_limits_are_discarded_with_dockers_warnings():
    host = {"Memory": 64 << 20, "MemorySwap": 0, "NanoCpus": 500_000_000, "CpuShares": 0, "PidsLimit": 10}
    warnings = hostconfig.discard_limits(host)
    assert len(warnings) == 3 and all("discarded" in w for w in warnings)
    assert host["Memory"] == host["NanoCpus"] == 0 and host["PidsLimit"] is None
    assert hostconfig.discard_limits(host) == []


def test_overlay_marks_go_to_user_xattrs_in_a_user_namespace():
    assert overlay2.mount_options(["l/A"], "u", "w", userxattr=True).endswith(",userxattr")
    assert "userxattr" not in overlay2.mount_options(["l/A"], "u", "w")


# ---------------------------------------------------------------- as a real user who is not root
def _closed_dirs(paths: list[str]) -> list[str]:
    """The first directory on each path that others may not enter (pyenv under /root: 0700)."""
    out = []
    for p in paths:
        parts = os.path.realpath(p).split("/")[1:]
        for i in range(1, len(parts) + 1):
            d = "/" + "/".join(parts[:i])
            if os.path.isdir(d) and not os.stat(d).st_mode & 0o001:
                if d not in out:
                    out.append(d)
                break
    return out


class User:
    """Runs `python -m minidocker` as USER: in a private mount namespace where the
    directories our Python lives in are made enterable (an overlay whose top is 0711; the
    host's own permissions stay as they are), then setpriv to the user."""

    def __init__(self, work: str):
        self.pw = pwd.getpwnam(USER)
        self.work = work
        self.xdg = os.path.join(work, "xdg")
        os.makedirs(self.xdg)
        os.chown(self.xdg, self.pw.pw_uid, self.pw.pw_gid)
        os.chmod(self.xdg, 0o700)
        self.data = os.path.join(self.pw.pw_dir, ".local", "share", "minidocker")
        import pyroute2
        self.closed = _closed_dirs([sys.executable, sys.base_prefix, sys.prefix, REPO, pyroute2.__file__])
        self.env = {"HOME": self.pw.pw_dir, "PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "XDG_RUNTIME_DIR": self.xdg,
                    "MINIDOCKER_DNS_UPSTREAM": "", "MINIDOCKER_OFFLINE": "1", "PYTHONPATH": REPO}

    def __call__(self, *args: str, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*args), cwd="/", input=input, capture_output=True, text=True,
                              timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)

    def argv(self, *args: str) -> list[str]:
        mounts = []
        for d in self.closed:
            layer = tempfile.mkdtemp(dir=self.work)
            os.makedirs(f"{layer}/up")
            os.makedirs(f"{layer}/wk")
            os.chmod(f"{layer}/up", os.stat(d).st_mode & 0o7777 | 0o011)
            mounts.append(f"mount -t overlay overlay -o lowerdir={d},upperdir={layer}/up,workdir={layer}/wk {d}")
        script = " && ".join(mounts + ['exec setpriv --reuid={} --regid={} --init-groups env -i "$@"'.format(
            self.pw.pw_uid, self.pw.pw_gid)])
        env_args = [f"{k}={v}" for k, v in self.env.items()]
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", *env_args,
                sys.executable, "-m", "minidocker", *args]

    def ok(self, *args: str, **kw) -> str:
        p = self(*args, **kw)
        assert p.returncode == 0, f"minidocker {' '.join(args)} (rootless) exited {p.returncode}: {p.stderr}"
        return p.stdout

    def processes(self) -> list[int]:
        out = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if os.stat(f"/proc/{pid}").st_uid in (self.pw.pw_uid, *range(*self.subuids())):
                    out.append(int(pid))
            except OSError:
                pass
        return out

    def subuids(self) -> tuple[int, int]:
        with open("/etc/subuid") as f:
            start, count = userns.subid_ranges(f.read(), USER, self.pw.pw_uid)[0]
        return start, start + count


def _ensure_user() -> None:
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", USER], check=True)
    pw = pwd.getpwnam(USER)
    for path, flag in (("/etc/subuid", "--add-subuids"), ("/etc/subgid", "--add-subgids")):
        with open(path) as f:
            text = f.read()
        if not userns.subid_ranges(text, USER, pw.pw_uid):
            start = userns.free_range([text])
            subprocess.run(["usermod", flag, f"{start}-{start + 65535}", USER], check=True)


@pytest.fixture(scope="module")
def user():
    require(os.geteuid() == 0, "needs root (to make the test user)")
    require_tool("newuidmap")
    require_tool("setpriv")
    restricted = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"
    if os.path.exists(restricted):
        with open(restricted) as f:
            require(f.read().strip() == "0", "unprivileged user namespaces are restricted by AppArmor here")
    with open("/proc/sys/user/max_user_namespaces") as f:
        require(int(f.read()) > 0, "user namespaces are disabled (user.max_user_namespaces = 0)")
    _ensure_user()
    work = tempfile.mkdtemp(prefix="mdrootless-")  # (pytest's directories are 0700: not the user's)
    os.chmod(work, 0o755)
    u = User(work)
    shutil.rmtree(u.data, ignore_errors=True)
    yield u
    leftover = u("ps", "-aq", "--no-trunc").stdout.split()
    if leftover:
        u("rm", "-f", *leftover)
    u("network", "prune", "-f")
    u("system", "prune", "-af")
    deadline = time.monotonic() + 10
    while u.processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    left = u.processes()
    shutil.rmtree(u.data, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    assert left == [], f"processes of {USER} left behind: {left}"


@pytest.mark.root
def test_info_says_rootless(user):
    info = json.loads(user.ok("info", "--format", "{{json .}}"))
    assert info["DockerRootDir"] == user.data
    assert info["CgroupDriver"] == "none"
    assert "name=rootless" in info["SecurityOptions"]
    assert ["userxattr", "true"] in info["DriverStatus"]
    assert any("rootless-mode without cgroups" in w for w in info["Warnings"])


@pytest.mark.root
def test_root_inside_the_user_outside_with_a_root_containers_confinement(user, md):
    probe = "id -u; cat /proc/self/uid_map; grep -E '^(CapEff|CapBnd|Seccomp|NoNewPrivs):' /proc/self/status"
    out = user.ok("run", "--rm", "--network", "none", "busybox", "sh", "-c", probe).split("\n")
    start, _ = user.subuids()
    assert out[0] == "0"
    assert out[1].split() == ["0", str(user.pw.pw_uid), "1"] and out[2].split() == ["1", str(start), "65536"]
    as_root = md.ok("run", "--rm", "--network", "none", "busybox", "sh", "-c", probe).split("\n")
    assert out[3:] == as_root[2:], "the capabilities and seccomp of a root-run container"
    # the host's view: the container's PID 1 is the user, its device nodes are the host's (bound)
    cid = user.ok("run", "-d", "--network", "none", "busybox", "sleep", "60").strip()
    try:
        pid = int(user.ok("inspect", "-f", "{{.State.Pid}}", cid))
        with open(f"/proc/{pid}/status") as f:
            uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
        assert uids == [str(user.pw.pw_uid)] * 4
        assert user.ok("exec", cid, "stat", "-c", "%U %t,%T", "/dev/null").split() == ["nobody", "1,3"]
        assert user("exec", cid, "mknod", "/tmp/n", "c", "1", "3").returncode != 0
    finally:
        user.ok("rm", "-f", cid)


@pytest.mark.root
def test_limits_are_discarded_and_cgroup_verbs_refused(user):
    p = user("run", "--rm", "--network", "none", "-m", "64m", "--pids-limit", "10", "busybox", "echo", "ran")
    assert p.returncode == 0 and p.stdout == "ran\n"
    assert "WARNING: Your kernel does not support memory limit capabilities" in p.stderr
    assert "PIDs limit discarded" in p.stderr
    cid = user.ok("run", "-d", "--network", "none", "busybox", "sleep", "60").strip()
    try:
        paused = user("pause", cid)
        assert paused.returncode == 1 and "cannot toggle freezer: cgroups not configured" in paused.stderr
        updated = user("update", "-m", "100m", cid)
        assert updated.returncode == 1 and "without cgroups" in updated.stderr
    finally:
        user.ok("rm", "-f", cid)


@pytest.mark.root
def test_layers_belong_to_the_subordinate_ids_and_opaque_dirs_work(user):
    import pathlib
    ctx = pathlib.Path(user.work) / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        "RUN mkdir -p /data/keep && echo a > /data/keep/f && chown -R 1234:1234 /data\n"
        "RUN rm -rf /data/keep && mkdir /data/keep && echo b > /data/keep/g\n"
        "USER 1234\n")
    os.chmod(ctx, 0o755)
    user.ok("build", "-q", "-t", "rlimg", str(ctx))
    listing = user.ok("run", "--rm", "rlimg", "sh", "-c", "id -u; ls /data/keep; stat -c %u /data")
    assert listing.split() == ["1234", "g", "1234"], "the second RUN's directory hides the first's (opaque)"
    start, _ = user.subuids()
    owners = set()
    for dirpath, dirs, files in os.walk(os.path.join(user.data, "overlay2")):
        if dirpath.endswith("/diff/data"):
            owners.add(os.stat(dirpath).st_uid)
            for d in dirs:
                xattrs = os.listxattr(os.path.join(dirpath, d))
                assert not any(x.startswith("trusted.") for x in xattrs)
    assert owners == {start + 1233}, "uid 1234 inside is subordinate id start+1233 on the host"
    user.ok("rmi", "rlimg")


@pytest.mark.root
def test_a_private_network_and_ports_published_on_the_hosts_loopback(user):
    user.ok("network", "create", "rlnet")
    try:
        user.ok("run", "-d", "--name", "rlweb", "--network", "rlnet", "busybox", "httpd", "-f", "-p", "80")
        user.ok("exec", "rlweb", "sh", "-c", "echo hello > /index.html")
        got = user.ok("run", "--rm", "--network", "rlnet", "busybox", "sh", "-c",
                      "printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 3 rlweb 80")
        assert got.endswith("hello\n"), "containers reach each other by name"
        port = _free_port()
        user.ok("run", "-d", "--name", "rlpub", "-p", f"127.0.0.1:{port}:80", "busybox", "httpd", "-f", "-p", "80")
        user.ok("exec", "rlpub", "sh", "-c", "echo published > /index.html")
        assert _http_get(port).endswith(b"published\n")
        assert user.ok("port", "rlpub").strip() == f"80/tcp -> 127.0.0.1:{port}"
        taken = user("run", "-d", "-p", f"127.0.0.1:{port}:80", "busybox", "true")
        assert taken.returncode == 125 and "already allocated" in taken.stderr
        low = user("run", "-d", "-p", "127.0.0.1:81:80", "busybox", "true")
        # (docker's CLI exits 126 for a start error that says "permission denied")
        assert low.returncode == 126 and "cannot expose privileged port 81" in low.stderr
        assert low.stderr.rstrip().endswith("listen tcp4 127.0.0.1:81: bind: permission denied")
        user.ok("rm", "-f", "rlpub")
        with pytest.raises(OSError):
            _http_get(port)  # unpublished with the container
    finally:
        leftover = user("ps", "-aq").stdout.split()
        if leftover:
            user("rm", "-f", *leftover)
        user("network", "rm", "rlnet")


@pytest.mark.root
def test_pulls_reach_a_registry_on_the_hosts_loopback(user, md, tmp_path):
    """The engine's own connections are made by the rootless parent, in the host's network
    namespace (rootless.connect_outside): the private one has no way out."""
    require_tool("docker-registry")
    from minidocker.lab.registry import LocalRegistry
    with LocalRegistry.start(base=str(tmp_path)) as reg:
        ref = f"{reg.host}/rootless/bb:1"
        md.ok("run", "--rm", "--network", "none", "busybox", "true")
        md.ok("tag", "busybox", ref)
        md.ok("push", ref)
        md.ok("rmi", ref)
        assert "Status: " in user.ok("pull", ref)
        assert user.ok("run", "--rm", "--network", "none", ref, "echo", "pulled") == "pulled\n"
        user.ok("rmi", ref)


@pytest.mark.root
def test_serve_in_rootless_mode_for_the_users_docker_cli(user):
    """`minidocker serve` run by the user listens in $XDG_RUNTIME_DIR, as rootless dockerd does,
    and the user's docker CLI runs containers through it: root inside, the user outside."""
    docker_cli = "/usr/bin/docker"
    require(os.path.exists(docker_cli), "Debian's docker CLI (docker.io)")
    sock = os.path.join(user.xdg, "minidocker.sock")
    proc = subprocess.Popen(user.argv("serve"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd="/")
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(sock):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.1)
        assert os.stat(sock).st_uid == user.pw.pw_uid
        env = {"HOME": user.pw.pw_dir, "PATH": "/usr/bin:/bin", "DOCKER_HOST": f"unix://{sock}"}
        out = subprocess.run(["setpriv", f"--reuid={user.pw.pw_uid}", f"--regid={user.pw.pw_gid}", "--init-groups",
                              "env", "-i", *(f"{k}={v}" for k, v in env.items()), docker_cli, "run", "--rm",
                              "--network", "none", "busybox", "sh", "-c", "id -u; cat /proc/self/uid_map"],
                             capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.split("\n")
        assert lines[0] == "0" and lines[1].split() == ["0", str(user.pw.pw_uid), "1"]
    finally:
        proc.terminate()
        proc.wait(10)
    assert not os.path.exists(sock)


@pytest.mark.root
def test_remap_is_refused_in_rootless_mode(user):
    p = user("--userns-remap", "default", "ps")
    assert p.returncode == 1 and p.stderr.strip().endswith("not supported in rootless mode")


@pytest.mark.root
def test_prune_ends_the_namespaces_when_nothing_runs(user):
    user.ok("run", "--rm", "--network", "none", "busybox", "true")
    pidfile = os.path.join(user.xdg, "minidocker", rootless.HOLDER_PID)
    holder = int(open(pidfile).read().split()[0])
    assert os.readlink(f"/proc/{holder}/ns/user") != os.readlink("/proc/self/ns/user")
    # a container waiting to restart is not running, but its monitor lives in the namespaces
    cid = user.ok("run", "-d", "--network", "none", "--restart", "always", "busybox", "sh", "-c", "exit 1").strip()
    time.sleep(1)  # (its back-off grows: from here on it mostly waits)
    assert "the rootless namespaces" not in user.ok("system", "prune", "-f")
    assert os.path.exists(f"/proc/{holder}")
    user.ok("rm", "-f", cid)
    assert "the rootless namespaces" in user.ok("system", "prune", "-f")
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{holder}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{holder}") and not os.path.exists(pidfile)
    assert user.ok("run", "--rm", "--network", "none", "busybox", "echo", "again") == "again\n"


@pytest.mark.root
def test_udp_ports_are_carried_in_too(user):
    """busybox has no udp server: the host's python3 (bound read-only) answers in upper case."""
    require(os.path.exists("/usr/bin/python3"), "the host's /usr/bin/python3 serves udp in the container")
    port = _free_port(socket.SOCK_DGRAM)
    server = ("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 7))\n"
              "while True:\n    d, a = s.recvfrom(100); s.sendto(d.upper(), a)\n")
    libs = [a for d in ("/usr", "/lib", "/lib64") if os.path.exists(d) for a in ("-v", f"{d}:{d}:ro")]
    cid = user.ok("run", "-d", "-p", f"127.0.0.1:{port}:7/udp", *libs, "busybox", "/usr/bin/python3", "-c",
                  server).strip()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(1)
            for _ in range(20):  # (until the server has bound its socket)
                s.sendto(b"ping", ("127.0.0.1", port))
                try:
                    assert s.recvfrom(100) == (b"PING", ("127.0.0.1", port))
                    break
                except socket.timeout:
                    continue
            else:
                raise AssertionError("no answer over udp")
    finally:
        user.ok("rm", "-f", cid)


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http_get(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    if not data:
        raise OSError("no answer")
    return data


# ---------------------------------------------------------------- beside Docker's rootless mode
CONTRIB = "/usr/share/docker.io/contrib/dockerd-rootless.sh"  # Debian's docker.io ships it here


class RootlessDocker:
    """The real dockerd in rootless mode (rootlesskit + slirp4netns), run by the same user."""

    def __init__(self, user: User):
        self.user = user
        self.xdg = os.path.join(user.work, "docker-xdg")
        self.data = os.path.join(user.pw.pw_dir, ".local", "share", "docker")

    def env(self, **extra) -> list[str]:
        env = {"HOME": self.user.pw.pw_dir, "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
               "DOCKER_HOST": f"unix://{self.xdg}/docker.sock", **extra}
        return ["setpriv", f"--reuid={self.user.pw.pw_uid}", f"--regid={self.user.pw.pw_gid}", "--init-groups",
                "env", "-i", *(f"{k}={v}" for k, v in env.items())]

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([*self.env(), "/usr/bin/docker", *args], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, cwd="/")


@pytest.fixture(scope="module")
def rootless_docker(user, state_root):
    require_tool("rootlesskit")
    require_tool("slirp4netns")
    require_tool("dockerd")
    require(os.path.exists(CONTRIB), f"{CONTRIB} missing (Debian's docker.io has it)")
    # slirp4netns opens the tun device as the user (root only inside its user namespace)
    require(os.path.exists("/dev/net/tun") and os.stat("/dev/net/tun").st_mode & 0o006 == 0o006,
            "/dev/net/tun is not read-write for all users, as udev makes it (scripts/setup.sh does)")
    d = RootlessDocker(user)
    os.makedirs(d.xdg)
    os.chown(d.xdg, user.pw.pw_uid, user.pw.pw_gid)
    os.chmod(d.xdg, 0o700)
    shutil.rmtree(d.data, ignore_errors=True)
    log = open(os.path.join(user.work, "dockerd-rootless.log"), "wb")
    path = f"{os.path.dirname(CONTRIB)}:/usr/bin:/bin:/usr/sbin:/sbin"
    # cgroupfs: on a v2 host with systemd, rootless dockerd would otherwise use systemd's driver,
    # which needs the user's login session (the lab VM's tests have none: it fails to run
    # anything); without it dockerd uses its "none" driver, the one minidocker has
    proc = subprocess.Popen([*d.env(XDG_RUNTIME_DIR=d.xdg, PATH=path, DOCKERD_ROOTLESS_ROOTLESSKIT_NET="slirp4netns",
                                    DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER="builtin"), CONTRIB,
                             "--exec-opt", "native.cgroupdriver=cgroupfs"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while d("version").returncode != 0:
            assert proc.poll() is None and time.monotonic() < deadline, \
                open(log.name, errors="replace").read()[-2000:]
            time.sleep(0.5)
        from conftest import MD
        md = MD(state_root)
        md.ok("run", "--rm", "--network", "none", "busybox", "true")  # (the offline busybox, built once)
        tar = os.path.join(user.work, "busybox.tar")
        md.ok("save", "-o", tar, "busybox")
        os.chmod(tar, 0o644)
        loaded = d("load", "-i", tar)
        assert loaded.returncode == 0, loaded.stderr
        yield d
    finally:
        proc.terminate()  # (rootlesskit: it takes its namespaces, dockerd and containerd along)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(d.data, ignore_errors=True)


@pytest.fixture(scope="module")
def probes(user):
    from minidocker.lab import sysprobe
    from test_confinement import CALLS, SHELL
    require(sysprobe.supported(), "the probe programs are x86_64")
    d = os.path.join(user.work, "probes")
    os.makedirs(d)
    os.chmod(d, 0o755)
    for name, (nr, *args) in CALLS.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(sysprobe.elf(nr, *args))
        os.chmod(os.path.join(d, name), 0o755)
    lines = [f"/p/{n}; echo {n}=$?" for n in CALLS]
    lines += [f"({cmd}) >/dev/null 2>&1; echo {n}=$?" for n, cmd in SHELL.items()]
    lines += ["grep -E '^(Seccomp|NoNewPrivs|CapEff|CapBnd):' /proc/self/status | tr -d '\\t'",
              "id", "tr -s ' ' < /proc/self/uid_map", "stat -c '%n %U %G %t,%T' /dev/null /dev/zero",
              "ls /sys/fs/cgroup | tr '\\n' ' '", "cut -d: -f1,2 /proc/self/cgroup | tr '\\n' ' '", "echo",
              "mount | grep -c ' /sys/fs/cgroup/' || true"]  # (grep -c exits 1 on a count of 0: on v2)
    return d, "; ".join(lines)


@pytest.mark.root
def test_probes_end_as_under_dockers_rootless_mode(user, rootless_docker, probes):
    """Test_confinement's 29 probes, the ids, the device nodes and the cgroup view, run by the
    same user in a default container of each rootless runtime: the same, line by line."""
    d, script = probes
    args = ["run", "--rm", "--network", "none", "-v", f"{d}:/p:ro", "busybox", "sh", "-c", script]
    theirs = rootless_docker(*args)
    ours = user(*args)
    assert theirs.returncode == 0 and ours.returncode == 0, theirs.stderr + ours.stderr
    assert ours.stdout.splitlines() == theirs.stdout.splitlines()


@pytest.mark.root
def test_info_and_refusals_say_what_dockers_rootless_mode_says(user, rootless_docker):
    fields = "{{json .CgroupDriver}}|{{json .CgroupVersion}}|{{json .Warnings}}|{{json .SecurityOptions}}"
    theirs = rootless_docker("info", "--format", fields).stdout.strip().split("|")
    ours = user.ok("info", "--format", fields).strip().split("|")
    assert ours[:2] == theirs[:2]
    rootless_warnings = [[w for w in json.loads(x) if "rootless" in w] for x in (ours[2], theirs[2])]
    assert rootless_warnings[0] == rootless_warnings[1] != []  # (dockerd adds bridge-nf-call warnings of its own)
    assert set(json.loads(theirs[3])) <= set(json.loads(ours[3])), "ours: also cgroupns (always private here)"
    refusals = {}
    for name, rt in (("docker", rootless_docker), ("minidocker", user)):
        cid = rt("run", "-d", "--network", "none", "busybox", "sleep", "60").stdout.strip()
        try:
            paused = rt("pause", cid)
            low = rt("run", "--rm", "-p", "127.0.0.1:81:80", "busybox", "true")
        finally:
            rt("rm", "-f", cid)
        # (runc's words after that differ: on v1 "cannot toggle freezer: cgroups not configured",
        # on v2 "freezer not supported: openat2 <its cgroup path>/cgroup.freeze: ...")
        refusals[name] = (paused.returncode, paused.stderr.split(f"Cannot pause container {cid}: ")[-1].split(":")[0],
                          low.returncode, "cannot expose privileged port 81" in low.stderr,
                          low.stderr.rstrip().endswith("listen tcp4 127.0.0.1:81: bind: permission denied."
                                                       if name == "docker" else
                                                       "listen tcp4 127.0.0.1:81: bind: permission denied"))
    assert refusals["minidocker"] == refusals["docker"]
