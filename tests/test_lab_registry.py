"""minidocker.lab.registry: a real docker-registry on loopback for the notebooks (08). The pure
pieces without the program; the rest starts the real one (no root needed), pushes a blob and a
manifest over the v2 API by hand, and checks that stop() leaves no process and no directory."""
import hashlib
import json
import os
import socket
import urllib.request

import pytest

from conftest import require_tool
from minidocker.lab import registry as labreg


def test_config_yaml_listens_on_loopback_only(tmp_path):
    text = labreg.config_yaml(str(tmp_path / "data"), 5123)
    assert "addr: 127.0.0.1:5123" in text and f"rootdirectory: {tmp_path}/data" in text
    assert "enabled: true" in text  # deletes allowed (a course may clean up tags)
    with pytest.raises(ValueError):
        labreg.config_yaml("/x", 5000, host="0.0.0.0")


def test_free_port_is_free():
    port = labreg.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # nobody holds it


def _put(reg, path, data, ctype="application/octet-stream", method="PUT"):
    req = urllib.request.Request(reg.url + path, data=data, method=method, headers={"Content-Type": ctype})
    with labreg._OPENER.open(req, timeout=10) as resp:
        return resp.status, dict(resp.headers)


def test_start_push_by_hand_and_stop(tmp_path):
    require_tool("docker-registry")
    reg = labreg.LocalRegistry.start(base=str(tmp_path))
    try:
        assert reg.running() and reg.host.startswith("127.0.0.1:")
        status, headers, body = reg.get("/v2/")
        assert status == 200 and headers["Docker-Distribution-Api-Version"] == "registry/2.0"
        assert reg.get_json("/v2/_catalog") == {"repositories": []}
        # one blob and a manifest naming it, uploaded as a client does (monolithic upload)
        config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
        digest = "sha256:" + hashlib.sha256(config).hexdigest()
        status, headers = _put(reg, "/v2/t/app/blobs/uploads/", b"", method="POST")
        assert status == 202
        location = headers["Location"]
        location = location[len(reg.url):] if location.startswith("http") else location
        sep = "&" if "?" in location else "?"
        assert _put(reg, f"{location}{sep}digest={digest}", config)[0] == 201
        assert reg.blob("t/app", digest) == config
        manifest = json.dumps({"schemaVersion": 2, "mediaType": labreg.DOCKER_MANIFEST,
                               "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                                          "size": len(config), "digest": digest}, "layers": []}).encode()
        assert _put(reg, "/v2/t/app/manifests/1", manifest, labreg.DOCKER_MANIFEST)[0] == 201
        assert reg.get_json("/v2/_catalog") == {"repositories": ["t/app"]}
        assert reg.get_json("/v2/t/app/tags/list") == {"name": "t/app", "tags": ["1"]}
        got, mdigest = reg.manifest("t/app", "1")
        assert got["config"]["digest"] == digest and mdigest == "sha256:" + hashlib.sha256(manifest).hexdigest()
        assert reg.get("/v2/t/app/manifests/nosuch", labreg.MANIFEST_TYPES)[0] == 404
    finally:
        reg.stop()
    assert not reg.running() and not os.path.exists(reg.workdir)
    reg.stop()  # twice is fine
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", reg.port), timeout=1).close()


def test_context_manager_stops_on_error(tmp_path):
    require_tool("docker-registry")
    with pytest.raises(KeyError):
        with labreg.LocalRegistry.start(base=str(tmp_path)) as reg:
            pid = reg.pid
            raise KeyError("a failing cell")
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    assert not os.path.exists(reg.workdir)
