"""The docker-py shaped Python API the notebooks use (as root, real containers).

Every call goes through the Engine API's handlers (compat/server) in this process; the
snippets are docker-py's documented uses, which must behave as docker-py's do."""
import io
import tarfile

import pytest

import minidocker
from minidocker.compat import api

pytestmark = pytest.mark.root


@pytest.fixture
def client(state_root):
    return minidocker.from_env(state_root)


def test_run_returns_output_and_raises_on_failure(client):
    assert client.containers.run("busybox", "echo hello", remove=True) == b"hello\n"
    with pytest.raises(minidocker.ContainerError) as e:
        client.containers.run("busybox", ["sh", "-c", "echo oops >&2; exit 4"], remove=True)
    assert e.value.exit_status == 4 and b"oops" in e.value.stderr
    assert client.containers.list(all=True) == []  # (remove=True removed both)


def test_detached_container_object(client):
    c = client.containers.run("busybox", "sleep 30", detach=True, name="api-nap",
                              environment={"A": "1"}, labels={"tier": "x"}, network_mode="none")
    try:
        assert c.status == "running" and c.pid > 0 and c.name == "api-nap" and c.labels == {"tier": "x"}
        assert "A=1" in c.attrs["Config"]["Env"]
        assert [x.id for x in client.containers.list()].count(c.id) == 1
        assert [x.name for x in client.containers.list(filters={"label": "tier=x"})] == ["api-nap"]
        assert client.containers.list(filters={"label": "tier=y"}) == []
        c.stop(timeout=0)
        assert c.wait() == {"StatusCode": 137, "Error": None}
        assert c.status == "exited"
    finally:
        c.remove(force=True)
    with pytest.raises(minidocker.errors.NotFound):
        client.containers.get("api-nap")


def test_exec_run_is_an_exec_result(client):
    c = client.containers.run("busybox", "sleep 30", detach=True, network_mode="none")
    try:
        r = c.exec_run("sh -c 'echo hi; echo bad >&2; exit 3'")
        assert isinstance(r, api.ExecResult) and r.exit_code == 3 and r.output == b"hi\nbad\n"
        code, output = c.exec_run(["echo", "tuple"])  # (it is still a tuple)
        assert (code, output) == (0, b"tuple\n")
        assert c.exec_run("sh -c 'echo o; echo e >&2'", demux=True).output == (b"o\n", b"e\n")
        assert b"".join(c.exec_run("sh -c 'echo 1; echo 2'", stream=True).output) == b"1\n2\n"
        assert c.exec_run("sh -c 'echo $X in $PWD'", environment={"X": "y"}, workdir="/tmp").output == b"y in /tmp\n"
        assert c.exec_run("id -u", user="nobody").output.strip() == b"65534"
        assert c.exec_run("sh -c 'sleep 0.2; touch /tmp/d'", detach=True).exit_code is None
        assert c.exec_run("sh -c 'sleep 1; ls /tmp/d'").exit_code == 0
    finally:
        c.remove(force=True)


def test_logs_stats_top_update_pause(client):
    c = client.containers.run("busybox", "sh -c 'echo out; echo err >&2; sleep 30'", detach=True,
                              network_mode="none", mem_limit="64m")
    try:
        stream = c.logs(stream=True)
        assert next(stream) == b"out\n"  # (as it is written, and the stream follows)
        assert c.logs() == b"out\nerr\n" and c.logs(stderr=False) == b"out\n"
        stats = c.stats(stream=False)
        assert stats["memory_stats"]["limit"] == 64 << 20 and stats["pids_stats"]["current"] >= 1
        first = next(c.stats(decode=True))
        assert first["id"] == c.id
        assert c.top()["Titles"][1] == "PID"
        c.update(mem_limit="128m")
        assert c.attrs["HostConfig"]["Memory"] == 128 << 20
        c.pause()
        assert c.status == "paused"
        c.unpause()
        assert c.status == "running"
    finally:
        c.remove(force=True)


def test_files_in_and_out(client):
    c = client.containers.run("busybox", "sleep 30", detach=True, network_mode="none")
    try:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            data = b"hello file\n"
            info = tarfile.TarInfo("f.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        assert c.put_archive("/tmp", buf.getvalue()) is True
        chunks, stat = c.get_archive("/tmp/f.txt")
        assert stat["name"] == "f.txt" and stat["size"] == 11
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            assert tar.extractfile("f.txt").read() == b"hello file\n"
        assert {"Path": "/tmp/f.txt", "Kind": 1} in c.diff()
        image = c.commit("api-commit", "v1", message="with a file")
        assert image.tags == ["api-commit:v1"]
        out = client.containers.run("api-commit:v1", "cat /tmp/f.txt", remove=True, network_mode="none")
        assert out == b"hello file\n"
        with tarfile.open(fileobj=io.BytesIO(b"".join(c.export()))) as tar:
            assert "tmp/f.txt" in tar.getnames()
    finally:
        c.remove(force=True)
    client.images.remove("api-commit:v1")


def test_networks_and_volumes(client):
    net = client.networks.create("api-net", labels={"k": "v"})
    vol = client.volumes.create("api-vol")
    try:
        assert net.name == "api-net" and [n.name for n in client.networks.list(names=["api-net"])] == ["api-net"]
        assert "api-vol" in [v.name for v in client.volumes.list()]
        db = client.containers.run("busybox", "sleep 30", detach=True, name="api-db", network="api-net",
                                   volumes={"api-vol": {"bind": "/data", "mode": "rw"}})
        out = client.containers.run("busybox", ["sh", "-c", "ping -c1 -W2 api-db >/dev/null && echo ok; ls /data"],
                                    network="api-net", volumes=["api-vol:/data:ro"], remove=True)
        assert out == b"ok\n"
        net.reload()
        assert [c.id for c in net.containers] == [db.id]
        db.remove(force=True)
    finally:
        for c in client.containers.list(all=True):
            c.remove(force=True)
        net.remove()
        vol.remove()
    with pytest.raises(minidocker.errors.NotFound):
        client.networks.get("api-net")


def test_images(client, tmp_path):
    img = client.images.get("busybox")
    assert "busybox:latest" in img.tags and img.short_id.startswith("sha256:")
    (layer,) = img.layers()
    assert layer["diff_id"] == layer["chain_id"] and layer["size"] > 1_000_000
    assert img.config["rootfs"]["diff_ids"] == img.attrs["RootFS"]["Layers"]
    (tmp_path / "Dockerfile").write_text("FROM busybox\nLABEL made=here\nRUN echo built > /b\n")
    built, events = client.images.build(path=str(tmp_path), tag="api-b:1", network_mode="none")
    assert built.tags == ["api-b:1"] and built.labels == {"made": "here"}
    assert any("Step 3/3" in ev.get("stream", "") for ev in events)
    with pytest.raises(api.BuildError, match="returned a non-zero code: 2"):
        client.images.build(fileobj=io.BytesIO(b"FROM busybox\nRUN exit 2\n"), network_mode="none")
    assert built.tag("api-b", "2") and client.images.get("api-b:2").id == built.id
    saved = b"".join(built.save(named=True))
    client.images.remove("api-b:1")
    client.images.remove("api-b:2")
    with pytest.raises(api.ImageNotFound):
        client.images.get("api-b:1")
    (loaded,) = client.images.load(saved)
    assert loaded.id == built.id and loaded.tags == ["api-b:1"]
    assert len(client.images.list(name="api-b")) == 1
    client.images.remove("api-b:1")


def test_system_calls(client):
    assert client.ping() is True
    assert client.version()["ApiVersion"] == "1.45"
    assert client.info()["Driver"] == "overlay2"
    df = client.df()
    assert set(df) >= {"Images", "Containers", "Volumes", "LayersSize"}


def test_unknown_arguments_and_errors_as_docker_py(client):
    with pytest.raises(TypeError):
        client.containers.run("busybox", "true", colour="blue")
    with pytest.raises(api.ImageNotFound):
        client.containers.create("no-such-image:1")
    with pytest.raises(minidocker.errors.Conflict):
        client.containers.create("busybox", name="api-twice", network_mode="none")
        client.containers.create("busybox", name="api-twice", network_mode="none")
    client.containers.get("api-twice").remove()
