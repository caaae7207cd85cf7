"""The docker-py shaped Python API the notebooks use (as root, real containers)."""
import pytest

import minidocker

pytestmark = pytest.mark.root


def test_run_returns_output_and_raises_on_failure(state_root):
    client = minidocker.from_env(state_root)
    assert client.containers.run("busybox", "echo hello", remove=True) == b"hello\n"
    with pytest.raises(minidocker.ContainerError) as e:
        client.containers.run("busybox", ["sh", "-c", "echo oops >&2; exit 4"], remove=True)
    assert e.value.exit_status == 4 and b"oops" in e.value.stderr


def test_detached_container_object(state_root):
    client = minidocker.from_env(state_root)
    c = client.containers.run("busybox", "sleep 30", detach=True, name="api-nap",
                              environment={"A": "1"})
    try:
        assert c.status == "running" and c.pid > 0 and c.name == "api-nap"
        assert "A=1" in c.attrs["Config"]["Env"]
        assert [x.id for x in client.containers.list()].count(c.id) == 1
        c.stop(timeout=0)
        assert c.wait() == {"StatusCode": 137, "Error": None}
        assert c.status == "exited"
    finally:
        c.remove(force=True)
    with pytest.raises(minidocker.errors.NotFound):
        client.containers.get("api-nap")


def test_image_layers(state_root):
    client = minidocker.from_env(state_root)
    img = client.images.get("busybox")
    assert "busybox:latest" in img.tags
    (layer,) = img.layers()
    assert layer["diff_id"] == layer["chain_id"] and layer["size"] > 1_000_000
