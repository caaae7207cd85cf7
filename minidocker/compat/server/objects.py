"""/networks/... and /volumes/...: the other objects, as `docker network` and `docker volume`
see them (the same records as `minidocker network ls` and `volume ls`)."""
from __future__ import annotations

from ...errors import NotFound
from ...network.modes import Networking
from ...network.store import PREDEFINED
from ...volumes import VolumeStore
from . import translate


# ---------------------------------------------------------------- networks
def _net(srv) -> Networking:
    return Networking(srv.runtime().root)


def network_list(srv, req, resp) -> None:
    nets = sorted(_net(srv).store.all(), key=lambda n: n["Name"])
    for f in translate.list_filters(req.json_arg("filters", {})):
        key, _, value = f.partition("=")
        tests = {"name": lambda n: value in n["Name"], "driver": lambda n: n["Driver"] == value,
                 "id": lambda n: n["Id"].startswith(value),
                 "type": lambda n: (n["Name"] in PREDEFINED) == (value == "builtin"),
                 "label": lambda n: _label_ok(n.get("Labels") or {}, value)}
        if key not in tests:
            from ...errors import InvalidArgument
            raise InvalidArgument(f"Invalid filter '{key}'")
        nets = [n for n in nets if tests[key](n)]
    resp.json(nets)


def _label_ok(labels: dict, value: str) -> bool:
    k, eq, v = value.partition("=")
    return k in labels and (not eq or labels[k] == v)


def network_inspect(srv, req, resp) -> None:
    try:
        resp.json(_net(srv).store.get(req.params["id"]))
    except NotFound:
        raise NotFound(f"network {req.params['id']} not found") from None


def network_create(srv, req, resp) -> None:
    body = req.json({}) or {}
    ipam = (body.get("IPAM") or {}).get("Config") or [{}]
    rec = _net(srv).store.create(body.get("Name") or "", subnet=ipam[0].get("Subnet"), gateway=ipam[0].get("Gateway"),
                                 driver=body.get("Driver") or "bridge", labels=dict(body.get("Labels") or {}),
                                 internal=bool(body.get("Internal")))
    resp.json({"Id": rec["Id"], "Warning": ""}, status=201)


def network_remove(srv, req, resp) -> None:
    _net(srv).remove_network(req.params["id"])
    resp.send(204)


def network_connect(srv, req, resp) -> None:
    body = req.json({}) or {}
    ep = body.get("EndpointConfig") or {}
    srv.runtime().connect(body.get("Container") or "", req.params["id"], aliases=list(ep.get("Aliases") or []),
                          ip=(ep.get("IPAMConfig") or {}).get("IPv4Address") or None)
    resp.send(200, b"", content_type="text/plain")


def network_disconnect(srv, req, resp) -> None:
    body = req.json({}) or {}
    srv.runtime().disconnect(body.get("Container") or "", req.params["id"], force=bool(body.get("Force")))
    resp.send(200, b"", content_type="text/plain")


def network_prune(srv, req, resp) -> None:
    net = _net(srv)
    removed = []
    for n in net.store.all():
        if n["Name"] in PREDEFINED or n["Containers"] or net.in_use(n):
            continue
        net.remove_network(n["Id"])
        removed.append(n["Name"])
    resp.json({"NetworksDeleted": removed or None})


# ---------------------------------------------------------------- volumes
def _users(rt, name: str) -> list[str]:
    from ..cli.volumes import _users as users
    return users(rt, name)


def volume_list(srv, req, resp) -> None:
    from ..cli.volumes import parse_volume_filters, volume_matches
    rt = srv.runtime()
    vs = VolumeStore(rt.root)
    groups = parse_volume_filters(translate.list_filters(req.json_arg("filters", {})))
    names = [n for n in vs.names() if not groups or volume_matches(n, vs.get(n), bool(_users(rt, n)), groups)]
    resp.json({"Volumes": [vs.get(n) for n in names], "Warnings": None})


def volume_create(srv, req, resp) -> None:
    body = req.json({}) or {}
    if body.get("DriverOpts"):
        from ...errors import InvalidArgument
        raise InvalidArgument("volume driver options are not supported by minidocker")
    vs = VolumeStore(srv.runtime().root)
    name = vs.create(body.get("Name") or None, labels=dict(body.get("Labels") or {}),
                     driver=body.get("Driver") or "local")
    resp.json(vs.get(name), status=201)


def volume_inspect(srv, req, resp) -> None:
    resp.json(VolumeStore(srv.runtime().root).get(req.params["name"]))


def volume_remove(srv, req, resp) -> None:
    rt = srv.runtime()
    force = req.flag("force")

    def users(name):
        ids = _users(rt, name)
        return [u for u in ids if rt.inspect(u)["State"]["Running"]] if force else ids
    VolumeStore(rt.root).remove(req.params["name"], users)
    resp.send(204)


def volume_prune(srv, req, resp) -> None:
    from ..cli.volumes import prune_volumes
    filters = translate.list_filters(req.json_arg("filters", {}))
    from .http import version_tuple
    # (API 1.42 made prune spare named volumes unless all=true; older clients expect them gone)
    named = "all=true" in filters or "all=1" in filters or version_tuple(req.version) < (1, 42)
    removed, space = prune_volumes(srv.runtime(), named_too=named)
    resp.json({"VolumesDeleted": removed or None, "SpaceReclaimed": space})


ROUTES = [
    ("GET", "/networks", network_list),
    ("POST", "/networks/create", network_create),
    ("POST", "/networks/prune", network_prune),
    ("GET", "/networks/{id}", network_inspect),
    ("DELETE", "/networks/{id}", network_remove),
    ("POST", "/networks/{id}/connect", network_connect),
    ("POST", "/networks/{id}/disconnect", network_disconnect),
    ("GET", "/volumes", volume_list),
    ("POST", "/volumes/create", volume_create),
    ("POST", "/volumes/prune", volume_prune),
    ("GET", "/volumes/{name}", volume_inspect),
    ("DELETE", "/volumes/{name}", volume_remove),
]
