"""`minidocker serve` driven by the real docker CLIs (Debian's 20.10 and, where installed, the
newer /usr/local/bin/docker), side by side with the private real dockerd: the same commands
give the same output and exit codes, and the CLI of minidocker sees what the API made."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from conftest import MD, REPO, require, require_tool
from minidocker.compat.server import core, http, translate

NEW_CLI = "/usr/local/bin/docker"


# ---------------------------------------------------------------- pure
def test_routes_versions_and_hosts():
    assert core.split_version("/v1.41/containers/json") == ("1.41", "/containers/json")
    assert core.split_version("/_ping") == (core.API_VERSION, "/_ping")
    r = core.build_router()
    handler, params = r.find("GET", "/images/localhost:5000/a/b:1/json")
    assert params == {"name": "localhost:5000/a/b:1"}
    assert r.find("HEAD", "/_ping")[0].__name__ == "ping"
    with pytest.raises(core.HTTPError) as e:
        r.find("GET", "/nothing/here")
    assert e.value.status == 404
    with pytest.raises(core.HTTPError) as e:
        r.find("PUT", "/containers/json")
    assert e.value.status == 405
    assert core.parse_host("unix:///run/x.sock") == ("unix", "/run/x.sock")
    assert core.parse_host("tcp://127.0.0.1:2375") == ("tcp", ("127.0.0.1", 2375))
    with pytest.raises(Exception, match="invalid bind address"):
        core.parse_host("ssh://host")


def test_create_bodies_become_the_engines_arguments():
    body = {"Image": "busybox", "Cmd": ["sh", "-c", "echo hi"], "Env": ["A=1"], "Tty": True, "OpenStdin": True,
            "AttachStdout": True, "Labels": {"k": "v"}, "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/anon": {}},
            "HostConfig": {"Binds": ["/src:/dst:ro"], "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1",
                                                                                   "HostPort": "8080"}],
                                                                      "53/udp": [{"HostIp": "", "HostPort": ""}]},
                           "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}, "AutoRemove": False,
                           "Memory": 64 << 20, "PidsLimit": 0, "CapAdd": ["NET_ADMIN"], "NetworkMode": "n1",
                           "Tmpfs": {"/run": "size=1m"}, "ShmSize": 67108864, "IpcMode": "private",
                           "Mounts": [{"Type": "volume", "Source": "v", "Target": "/v", "ReadOnly": True}]},
            "NetworkingConfig": {"EndpointsConfig": {"n1": {"Aliases": ["web"]}}}}
    image, cmd, kw = translate.create_kwargs(body, "c1")
    assert image == "busybox" and cmd == ["sh", "-c", "echo hi"] and kw["name"] == "c1"
    assert kw["volumes"] == ["/src:/dst:ro", "/anon"]
    assert kw["publish"] == ["127.0.0.1:8080:80/tcp", "53/udp"]
    assert kw["restart_policy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert kw["resources"] == {"Memory": 64 << 20} and kw["confine"] == {"CapAdd": ["NET_ADMIN"]}
    assert kw["network"] == "n1" and kw["network_aliases"] == ["web"]
    assert kw["tmpfs"] == ["/run:size=1m"] and kw["mounts"] == ["type=volume,source=v,target=/v,readonly"]
    assert kw["tty"] and kw["stdin_open"] and kw["attach"] and kw["expose"] == ["80/tcp"]
    with pytest.raises(Exception, match="HostConfig.Devices is not supported"):
        translate.create_kwargs({"Image": "busybox", "HostConfig": {"Devices": [{"PathOnHost": "/dev/kmsg"}]}})
    assert translate.list_filters({"name": ["a"], "status": {"exited": True}}) == ["name=a", "status=exited"]


def test_chunked_bodies_are_read_as_they_come():
    a, b = socket.socketpair()
    try:
        b.sendall(b"POST /v1.41/build HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        rfile = a.makefile("rb")
        req = http.read_request(a, rfile)
        assert req.method == "POST" and req.raw_path == "/v1.41/build" and req.body() == b"hello world"
    finally:
        a.close()
        b.close()


# ---------------------------------------------------------------- the real clients
@pytest.fixture(scope="module")
def server(state_root, tmp_path_factory):
    require(os.geteuid() == 0, "needs root")
    sock = str(tmp_path_factory.mktemp("serve") / "md.sock")
    env = dict(MD(state_root).env)
    log = open(sock + ".log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "minidocker", "serve", "-H", f"unix://{sock}", "-D"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO)
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(sock):
            assert proc.poll() is None and time.monotonic() < deadline, open(log.name).read()
            time.sleep(0.05)
        MD(state_root).ok("run", "--rm", "--network", "none", "busybox", "true")  # (busybox, built once)
        yield sock
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
    assert not os.path.exists(sock), "the socket is removed at exit"


def cli(binary: str, sock: str, *args: str, input: str | None = None, timeout: float = 60):
    return subprocess.run([binary, "-H", f"unix://{sock}", *args], capture_output=True, text=True, input=input,
                          timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)


OLD_CLI = "/usr/bin/docker"  # Debian's (20.10), not the newer one earlier on PATH


@pytest.fixture(params=["20.10", "new"])
def client(request):
    require_tool("docker")
    binary = OLD_CLI if request.param == "20.10" else NEW_CLI
    if request.param == "new" and not os.path.exists(binary):
        pytest.skip(f"{binary}: a newer docker CLI is not part of the set-up (this machine's is extra)")
    require(os.path.exists(binary), f"{binary} not installed")
    return binary


@pytest.mark.root
def test_version_is_negotiated(server, client):
    out = cli(client, server, "version", "--format", "{{.Client.APIVersion}} {{.Server.APIVersion}}")
    assert out.returncode == 0, out.stderr
    client_api, server_api = out.stdout.split()
    assert server_api == core.API_VERSION
    assert core.version_tuple(client_api) <= core.version_tuple(core.API_VERSION)


@pytest.mark.root
def test_run_like_dockerd(server, client, docker):
    """Output, stderr and exit codes of `docker run` against both daemons."""
    cases = [(["run", "--rm", "busybox", "echo", "hi"], None),
             (["run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"], None),
             (["run", "-i", "--rm", "busybox", "cat"], "hello\n"),
             (["run", "--rm", "busybox", "no-such-command"], None)]
    for args, stdin in cases:
        ours = cli(client, server, *args, input=stdin)
        theirs = cli(client, docker.socket, *args, input=stdin)
        assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), (args, ours, theirs)
        if ours.returncode in (0, 3):
            assert ours.stderr == theirs.stderr, args
        else:
            assert "executable file not found" in ours.stderr and "executable file not found" in theirs.stderr


@pytest.mark.root
def test_a_detached_container_through_the_api_is_one_of_minidockers(server, client, state_root):
    md = MD(state_root)
    name = f"api-{os.path.basename(client)}-{os.getpid()}"
    run = cli(client, server, "run", "-d", "--name", name, "-l", "api=1", "busybox", "sh", "-c",
              "echo started; sleep 60")
    assert run.returncode == 0, run.stderr
    cid = run.stdout.strip()
    try:
        assert md.ok("ps", "-q", "--no-trunc", "--filter", f"name={name}").strip() == cid  # the same state
        listed = cli(client, server, "ps", "--filter", "label=api=1", "--format", "{{.ID}} {{.Names}} {{.Status}}")
        assert listed.stdout.split()[:3] == [cid[:12], name, "Up"]
        assert cli(client, server, "inspect", "-f", "{{.State.Status}} {{.Config.Labels}}", name).stdout.strip() \
            == "running map[api:1]"
        ex = cli(client, server, "exec", name, "sh", "-c", "echo in-exec; echo e >&2; exit 4")
        assert (ex.returncode, ex.stdout, ex.stderr) == (4, "in-exec\n", "e\n")
        deadline = time.monotonic() + 5
        while "started" not in cli(client, server, "logs", name).stdout and time.monotonic() < deadline:
            time.sleep(0.1)
        assert cli(client, server, "logs", name).stdout == "started\n"
        top = cli(client, server, "top", name)
        assert top.returncode == 0 and "sleep 60" in top.stdout
        assert cli(client, server, "stop", "-t", "1", name).returncode == 0
        assert md.ok("inspect", "-f", "{{.State.Status}}", name).strip() == "exited"
    finally:
        cli(client, server, "rm", "-f", name)
    assert md("inspect", name).returncode != 0


@pytest.mark.root
def test_terminals_through_the_api(server, client, docker):
    """-t under a real terminal (script(1)): the same bytes as from dockerd."""
    outs = []
    for sock in (server, docker.socket):
        out = subprocess.run(["script", "-qc", f"{client} -H unix://{sock} run -t --rm busybox sh -c 'echo tty; tty'",
                              "/dev/null"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert out.returncode == 0, out.stdout + out.stderr
        outs.append(out.stdout)
    assert outs[0] == outs[1]
    assert "/dev/pts/0" in outs[0]


@pytest.mark.root
def test_errors_are_dockers(server, client, docker):
    for args in (["inspect", "no-such-container"], ["rm", "no-such-container"], ["stop", "no-such-container"],
                 ["network", "rm", "no-such-network"], ["volume", "rm", "no-such-volume"], ["swarm", "leave"]):
        ours, theirs = cli(client, server, *args), cli(client, docker.socket, *args)
        assert ours.returncode == theirs.returncode == 1, (args, ours.stderr, theirs.stderr)
    ours = cli(client, server, "inspect", "no-such-container")
    assert "No such container: no-such-container" in ours.stderr or "No such object" in ours.stderr
    said = {}
    for name, sock in (("ours", server), ("docker", docker.socket)):  # starting a paused container
        cid = cli(client, sock, "run", "-d", "busybox", "sleep", "30").stdout.strip()
        try:
            assert cli(client, sock, "pause", cid).returncode == 0
            started = cli(client, sock, "start", cid)
            said[name] = (started.returncode, started.stderr.replace(cid, "<id>").strip())
        finally:
            cli(client, sock, "rm", "-f", cid)
    assert said["ours"] == said["docker"] and "cannot start a paused container" in said["ours"][1]


@pytest.mark.root
def test_images_networks_and_volumes(server, client, state_root):
    md = MD(state_root)
    images = cli(client, server, "images", "--format", "{{.Repository}}:{{.Tag}}")
    assert "busybox:latest" in images.stdout.split()
    tag = f"api/bb:{os.path.basename(client).replace('.', '')}"
    assert cli(client, server, "tag", "busybox", tag).returncode == 0
    assert tag in md.ok("images", "--format", "{{.Repository}}:{{.Tag}}").split()
    assert cli(client, server, "rmi", tag).returncode == 0
    net = f"apinet{os.getpid()}"
    assert cli(client, server, "network", "create", net).returncode == 0
    try:
        assert net in md.ok("network", "ls", "--format", "{{.Name}}").split()
        assert json.loads(cli(client, server, "network", "inspect", net).stdout)[0]["Name"] == net
    finally:
        assert cli(client, server, "network", "rm", net).returncode == 0
    vol = f"apivol{os.getpid()}"
    assert cli(client, server, "volume", "create", vol).stdout.strip() == vol
    assert vol in cli(client, server, "volume", "ls", "-q").stdout.split()
    assert cli(client, server, "volume", "rm", vol).returncode == 0


@pytest.mark.root
def test_build_and_cp_through_the_api(server, client, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY hello.txt /hello.txt\nRUN echo built >> /hello.txt\n"
                                    "CMD [\"cat\", \"/hello.txt\"]\n")
    (ctx / "hello.txt").write_text("from the context\n")
    tag = f"api-build:{os.path.basename(client).replace('.', '')}"
    b = subprocess.run([client, "-H", f"unix://{server}", "build", "-t", tag, str(ctx)], capture_output=True,
                       text=True, timeout=300, env=dict(os.environ, DOCKER_BUILDKIT="0"), stdin=subprocess.DEVNULL)
    assert b.returncode == 0, b.stderr
    assert "Step 3/4 : RUN echo built >> /hello.txt" in b.stdout and f"Successfully tagged {tag}" in b.stdout
    name = f"cp-{os.path.basename(client).replace('.', '')}"
    assert cli(client, server, "run", "--name", name, tag).stdout == "from the context\nbuilt\n"
    try:
        out = tmp_path / "out.txt"
        assert cli(client, server, "cp", f"{name}:/hello.txt", str(out)).returncode == 0
        assert out.read_text() == "from the context\nbuilt\n"
        (tmp_path / "in.txt").write_text("copied in\n")
        assert cli(client, server, "cp", str(tmp_path / "in.txt"), f"{name}:/etc/").returncode == 0
        assert cli(client, server, "diff", name).stdout.split("\n")[:2] == ["C /etc", "A /etc/in.txt"]
        exported = subprocess.run([client, "-H", f"unix://{server}", "export", name], capture_output=True,
                                  timeout=60)
        assert b"etc/in.txt" in exported.stdout and b"copied in" in exported.stdout
    finally:
        cli(client, server, "rm", "-f", name)
        cli(client, server, "rmi", tag)


COMPOSE = """\
version: "3.8"
services:
  web:
    image: busybox
    command: sh -c "echo hello-from-web > /www/index.html; httpd -f -p 80 -h /www"
    volumes: [data:/www]
    networks: [backend]
    healthcheck: {test: ["CMD-SHELL", "test -f /www/index.html"], interval: 1s, timeout: 20s, retries: 10}
  worker:
    image: busybox
    command: sh -c "printf 'GET /index.html HTTP/1.0\\\\r\\\\n\\\\r\\\\n' | nc web 80; sleep 300"
    depends_on: {web: {condition: service_healthy}}
    environment: {ROLE: worker}
    networks: [backend]
networks: {backend: {}}
volumes: {data: {}}
"""


@pytest.mark.root
def test_a_compose_project_as_on_dockerd(server, docker, tmp_path):
    """docker-compose 1.29: a user network with names resolving, a named volume, a health check
    that another service waits for, exec, logs, --scale, down -v: the same on both daemons."""
    compose = require_tool("docker-compose")
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "docker-compose.yml").write_text(COMPOSE)

    def dc(sock: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([compose, *args], cwd=proj, capture_output=True, text=True, timeout=180,
                              env=dict(os.environ, DOCKER_HOST=f"unix://{sock}", COMPOSE_PROJECT_NAME="mdproj"),
                              stdin=subprocess.DEVNULL)
    seen = {}
    for name, sock in (("minidocker", server), ("docker", docker.socket)):
        try:
            up = dc(sock, "up", "-d")
            assert up.returncode == 0, (name, up.stderr)
            deadline = time.monotonic() + 20
            while "hello-from-web" not in dc(sock, "logs", "worker").stdout and time.monotonic() < deadline:
                time.sleep(0.3)
            scaled = dc(sock, "up", "-d", "--scale", "worker=2")
            assert scaled.returncode == 0, (name, scaled.stderr)
            seen[name] = (sorted(dc(sock, "ps", "--services").stdout.split()),
                          "hello-from-web" in dc(sock, "logs", "worker").stdout,
                          dc(sock, "exec", "-T", "worker", "sh", "-c", "echo $ROLE").stdout,
                          len(dc(sock, "ps", "-q", "worker").stdout.split()))
        finally:
            down = dc(sock, "down", "-v")
            assert down.returncode == 0, (name, down.stderr)
    assert seen["minidocker"] == seen["docker"] == (["web", "worker"], True, "worker\n", 2)


@pytest.mark.root
def test_docker_py_drives_it(server):
    """Snippets from docker-py's documentation, against minidocker serve."""
    docker_py = pytest.importorskip("docker")
    client = docker_py.DockerClient(base_url=f"unix://{server}", version="auto")
    assert client.ping() is True
    assert client.version()["ApiVersion"] == core.API_VERSION and "Containers" in client.info()
    assert client.containers.run("busybox", "echo hello world", remove=True) == b"hello world\n"
    with pytest.raises(docker_py.errors.ContainerError) as failed:
        client.containers.run("busybox", "sh -c 'echo oops >&2; exit 2'", remove=True)
    assert failed.value.exit_status == 2 and b"oops" in failed.value.stderr
    with pytest.raises(docker_py.errors.NotFound):
        client.containers.get("no-such-container")
    c = client.containers.run("busybox", ["sh", "-c", "echo a; echo b; sleep 30"], detach=True, name="pyc",
                              labels={"py": "1"})
    try:
        c.reload()
        assert c.status == "running" and c.name == "pyc" and c.labels == {"py": "1"}
        assert [x.name for x in client.containers.list(filters={"label": "py=1"})] == ["pyc"]
        lines = c.logs(stream=True)
        assert next(lines) == b"a\n"
        result = c.exec_run("sh -c 'echo x; exit 3'")
        assert (result.exit_code, result.output) == (3, b"x\n")
        assert c.exec_run("tty", tty=True).output.startswith(b"/dev/pts/")  # (the exec's own Tty)
        assert any("sleep 30" in p[-1] for p in c.top()["Processes"])
        stats = c.stats(stream=False)
        assert stats["name"] == "/pyc" and stats["pids_stats"]["current"] >= 1
        c.stop(timeout=1)
        assert c.wait()["StatusCode"] == 137
    finally:
        c.remove(force=True)
    checked = client.containers.create("busybox", "true", healthcheck={"test": ["CMD", "true"], "retries": None})
    try:  # (a field sent as null is unset, as dockerd reads it)
        assert checked.attrs["Config"]["Healthcheck"]["Test"] == ["CMD", "true"]
    finally:
        checked.remove()
    assert "busybox:latest" in [t for i in client.images.list() for t in i.tags]
    net = client.networks.create("pynet")
    try:
        assert [n.name for n in client.networks.list(names=["pynet"])] == ["pynet"]
    finally:
        net.remove()
    vol = client.volumes.create("pyvol")
    try:
        assert client.volumes.get("pyvol").name == "pyvol"
    finally:
        vol.remove()


@pytest.mark.root
def test_an_exec_terminal_is_resized_through_the_api(server):
    """POST /exec/{id}/resize: what `docker exec -it` sends when its window changes."""
    docker_py = pytest.importorskip("docker")
    api = docker_py.APIClient(base_url=f"unix://{server}", version="auto")
    c = api.create_container("busybox", "sleep 30")
    try:
        api.start(c)
        eid = api.exec_create(c, ["sh", "-c", "sleep 1; stty size"], tty=True)["Id"]
        sock = api.exec_start(eid, tty=True, socket=True)
        api.exec_resize(eid, height=33, width=99)
        out = b""
        while chunk := sock._sock.recv(4096):
            out += chunk
        assert out.strip() == b"33 99"
        framed = api.exec_start(api.exec_create(c, ["echo", "hi"], tty=True)["Id"], socket=True)._sock
        got = b""
        while chunk := framed.recv(4096):
            got += chunk
        assert got == b"\x01\x00\x00\x00\x00\x00\x00\x04hi\r\n"  # (a pty, but the start asked for frames)
        with pytest.raises(docker_py.errors.APIError):  # (no terminal: nothing to resize)
            api.exec_resize(api.exec_create(c, ["true"])["Id"], height=1, width=1)
    finally:
        api.remove_container(c, force=True)


@pytest.mark.root
@pytest.mark.parametrize("when", ["before the start", "running"])
@pytest.mark.parametrize("keys", ["ctrl-x", "default"])
def test_detach_keys_leave_the_container_running(server, when, keys):
    """The detach keys (ctrl-p ctrl-q, or ?detachKeys=) end the attach, not the container;
    the default pair typed one key at a time (a lone ctrl-p is held back, not an end)."""
    docker_py = pytest.importorskip("docker")
    api = docker_py.APIClient(base_url=f"unix://{server}", version="auto")
    c = api.create_container("busybox", "sh", tty=True, stdin_open=True)
    try:
        params = {"stdin": 1, "stdout": 1, "stream": 1}
        if keys != "default":
            params["detachKeys"] = keys
        if when == "running":
            api.start(c)
            sock = api.attach_socket(c, params=params)._sock
        else:
            sock = api.attach_socket(c, params=params)._sock
            api.start(c)
        sock.settimeout(10)
        sock.sendall(b"echo $((6*7))\n")
        seen = b""
        while b"42" not in seen:
            seen += sock.recv(4096)
        if keys == "default":
            sock.sendall(b"\x10")  # ctrl-p
            time.sleep(0.3)
            sock.sendall(b"\x11")  # ctrl-q
        else:
            sock.sendall(b"\x18")  # ctrl-x
        while sock.recv(4096):
            pass  # (until the server closes the stream)
        sock.close()
        time.sleep(0.5)
        assert api.inspect_container(c)["State"]["Running"] is True
    finally:
        api.remove_container(c, force=True)


@pytest.mark.root
def test_the_python_api_as_a_client_of_the_server(server):
    """minidocker.from_env(base_url=...) speaks to `minidocker serve` as docker-py does."""
    import minidocker
    client = minidocker.from_env(base_url=f"unix://{server}")
    assert client.ping() is True and client.api.server is None
    assert client.containers.run("busybox", "echo over the socket", remove=True) == b"over the socket\n"
    c = client.containers.run("busybox", "sleep 30", detach=True, name="py-remote")
    try:
        assert c.exec_run("hostname").output.strip() == c.id[:12].encode()
        assert [x.name for x in client.containers.list(filters={"name": "py-remote"})] == ["py-remote"]
    finally:
        c.remove(force=True)
    with pytest.raises(minidocker.errors.MinidockerError, match="in another process"):
        client.runtime


@pytest.mark.root
def test_concurrent_clients_and_one_that_hangs_up(server, state_root):
    """Eight clients at once each run and remove a container; a `logs -f` whose client is killed
    mid-stream leaves the server serving and nothing behind."""
    import concurrent.futures
    docker_py = pytest.importorskip("docker")
    md = MD(state_root)

    def one(i: int) -> bytes:
        client = docker_py.DockerClient(base_url=f"unix://{server}", version="auto")
        try:
            return client.containers.run("busybox", ["echo", f"n{i}"], name=f"conc{i}-{os.getpid()}", remove=True,
                                         network_mode="none")
        finally:
            client.close()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert sorted(pool.map(one, range(8))) == sorted(f"n{i}\n".encode() for i in range(8))
    name = f"follow-{os.getpid()}"
    cli(require_tool("docker"), server, "run", "-d", "--name", name, "busybox", "sh", "-c",
        "while true; do echo tick; sleep 0.2; done")
    follower = subprocess.Popen([require_tool("docker"), "-H", f"unix://{server}", "logs", "-f", name],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert follower.stdout.readline() == b"tick\n"
    follower.kill()
    follower.wait()
    assert cli(require_tool("docker"), server, "rm", "-f", name).returncode == 0
    left = md.ok("ps", "-a", "--format", "{{.Names}}").split()
    assert not [n for n in left if n.endswith(f"-{os.getpid()}") and n.startswith(("conc", "follow"))], left
    assert cli(require_tool("docker"), server, "version").returncode == 0  # (still serving)
