"""The Python API's docker-py arguments -> the Engine API's create body (pure, no root).

docker-py itself (in the test extra) is the reference: for each set of arguments from its
documentation, the body it would send and the body minidocker's client sends must agree."""
import pytest

from minidocker.compat.api import runargs

CASES = [
    dict(command="echo hello"),
    dict(command=["sh", "-c", "echo $A"], environment={"A": "1"}, name="web", detach=True),
    dict(command="sleep 30", ports={"80/tcp": 8080, 53: ("127.0.0.1", 5353), "22/tcp": None}, detach=True),
    dict(volumes=["/srv:/data:ro", "named:/v"], working_dir="/data", user="nobody"),
    dict(volumes={"/home/user1/": {"bind": "/mnt/vol2", "mode": "rw"},
                  "/var/www": {"bind": "/mnt/vol1", "mode": "ro"}}),
    dict(mem_limit="64m", memswap_limit="128m", nano_cpus=500_000_000, cpu_shares=512, pids_limit=20),
    dict(restart_policy={"Name": "on-failure", "MaximumRetryCount": 3}, labels={"tier": "web"}),
    dict(labels=["a", "b"], hostname="h1", tty=True, stdin_open=True),
    dict(healthcheck={"test": "true", "interval": 10**9, "retries": 2}),
    dict(healthcheck={"test": ["CMD", "true"], "timeout": 10**9}),
    dict(tmpfs={"/run": "size=1m"}, cap_add=["NET_ADMIN"], cap_drop=["MKNOD"], read_only=True,
         security_opt=["no-new-privileges"], privileged=False, init=True),
    dict(network_mode="none", auto_remove=True, stop_signal="SIGINT", entrypoint="/bin/sh -c"),
    dict(network_mode="host", publish_all_ports=True, group_add=["audio"]),
    dict(log_config={"type": "json-file", "config": {"max-size": "1m"}}),
]


def _norm(obj):
    """Without the keys set to nothing (docker-py sends many nulls and falses)."""
    if isinstance(obj, dict):
        out = {k: _norm(v) for k, v in obj.items()}
        return {k: v for k, v in out.items() if v not in (None, False, {}, [], "")}
    if isinstance(obj, list):
        return [_norm(v) for v in obj]
    return obj


@pytest.mark.parametrize("kw", CASES, ids=[",".join(sorted(c)) for c in CASES])
def test_the_create_body_is_docker_pys(kw):
    docker = pytest.importorskip("docker")
    from docker.models.containers import _create_container_args
    api = docker.APIClient(base_url="unix:///nonexistent", version="1.45")
    args = _create_container_args({"image": "busybox", "version": "1.45", **kw})
    args.pop("name", None)
    args.setdefault("command", None)
    theirs = api.create_container_config(**args)
    ours, name = runargs.create_body("busybox", kw.get("command"), **{k: v for k, v in kw.items() if k != "command"})
    assert name == kw.get("name")
    theirs.pop("NetworkingConfig", None)  # (docker-py's own odd form, {"net": None}; see below)
    ours.pop("NetworkingConfig", None)
    # docker-py's LogConfig keeps a field it sends empty; the body's other keys must be the same
    assert _norm(ours) == _norm(theirs)


def test_a_network_by_name_is_an_endpoint():
    body, _ = runargs.create_body("busybox", network="backend")
    assert body["HostConfig"]["NetworkMode"] == "backend"
    assert body["NetworkingConfig"] == {"EndpointsConfig": {"backend": {}}}
    with pytest.raises(TypeError):
        runargs.create_body("busybox", network="a", network_mode="none")


def test_unknown_arguments_are_refused_as_docker_py_does():
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        runargs.create_body("busybox", colour="blue")


def test_cpus_as_on_the_command_line():
    body, _ = runargs.create_body("busybox", cpus=1.5)
    assert body["HostConfig"]["NanoCpus"] == 1_500_000_000


def test_query_strings_as_docker_py_sends_them():
    from urllib.parse import parse_qs

    from minidocker.compat.api.transport import query
    q = parse_qs(query({"all": True, "limit": -1, "since": None, "filters": {"label": "a=b", "dangling": True},
                        "t": ("x:1", "y:2")}))
    assert q["all"] == ["1"] and q["limit"] == ["-1"] and "since" not in q
    import json
    assert json.loads(q["filters"][0]) == {"label": ["a=b"], "dangling": ["true"]}
    assert q["t"] == ["x:1", "y:2"]


def test_errors_by_status():
    from minidocker import errors
    from minidocker.compat.api.transport import APIError, ImageNotFound, error_for
    assert isinstance(error_for(404, "No such image: x:1", "/images/x/json"), ImageNotFound)
    assert type(error_for(404, "No such container: c", "/containers/c/json")) is errors.NotFound
    assert isinstance(error_for(409, "Conflict. The container name ...", "/containers/create"), errors.Conflict)
    assert isinstance(error_for(400, "bad", "/x"), errors.InvalidArgument)
    e = error_for(500, "boom", "/x")
    assert isinstance(e, APIError) and e.status_code == 500


def test_runc_cgroups_path_forms():
    from minidocker.compat.runc import cli
    spec = cli._prepare_spec({"linux": {"cgroupsPath": "system.slice:docker:abc"}}, "abc", True)
    assert spec["linux"]["cgroupsPath"] == "/system.slice/docker-abc.scope"
    assert cli._prepare_spec({"linux": {}}, "abc", False)["linux"]["cgroupsPath"] == "/minidocker-runc/abc"
    assert cli._prepare_spec({"linux": {"cgroupsPath": "/docker/abc"}}, "abc", False)["linux"]["cgroupsPath"] == \
        "/docker/abc"
    with pytest.raises(cli.RuncError):
        cli._prepare_spec({"linux": {"cgroupsPath": "/docker/abc"}}, "abc", True)
