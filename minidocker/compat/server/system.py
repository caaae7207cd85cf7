"""/_ping, /version, /info, /events, /system/df, /auth: what a client asks first, and the
system-wide answers (the same data as `minidocker version`, `info`, `events`, `system df`)."""
from __future__ import annotations

import time

from ... import events


def ping(srv, req, resp) -> None:
    # The client reads the API version (and the builder to use) from these headers: a client
    # newer than us then speaks our version ("API version negotiation"). Builder-Version 1:
    # the classic builder, the one minidocker has (2 would be BuildKit's).
    headers = {"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache",
               "Builder-Version": "1", "Swarm": "inactive"}
    resp.send(200, b"OK", content_type="text/plain; charset=utf-8", headers=headers)


def version(srv, req, resp) -> None:
    from ..cli.system import version_info
    from .http import API_VERSION, MIN_API_VERSION
    server = version_info()["Server"]
    server.update(ApiVersion=API_VERSION, MinAPIVersion=MIN_API_VERSION)
    server["Components"][0]["Details"].update(ApiVersion=API_VERSION, MinAPIVersion=MIN_API_VERSION)
    resp.json(server)


def info(srv, req, resp) -> None:
    from ..cli.system import info_dict
    resp.json(info_dict(srv.runtime()))


def system_df(srv, req, resp) -> None:
    """`docker system df`: the same numbers as the CLI's table, in the API's shape."""
    from ... import gotime
    from ...volumes import VolumeStore
    from ..cli.system import disk_usage
    from . import translate
    rt = srv.runtime()
    du = disk_usage(rt)
    store = rt.images
    images = []
    for img in du["images"]:
        size = store.size(img)
        images.append({"Id": img.id, "ParentId": store.parent_of(img.id) or "", "RepoTags": store.tags_of(img.id),
                       "RepoDigests": [], "Created": int(gotime.parse_rfc3339(img.config.get("created", "")) or 0),
                       "Size": size, "SharedSize": -1, "VirtualSize": size,
                       "Labels": (img.config.get("config") or {}).get("Labels"),
                       "Containers": sum(1 for r, _ in du["containers"] if r["Image"] == img.id)})
    containers = [dict(translate.summary(r), SizeRw=size, SizeRootFs=size) for r, size in du["containers"]]
    vs = VolumeStore(rt.root)
    volumes = [dict(vs.get(name), UsageData={"Size": size, "RefCount": int(used)})
               for name, size, used in du["volumes"]]
    resp.json({"LayersSize": du["rows"][0][3], "Images": images, "Containers": containers,
               "Volumes": volumes, "BuildCache": []})


def auth(srv, req, resp) -> None:
    """`docker login`: check the credentials against the registry, as dockerd does."""
    from ...images import registry
    body = req.json({}) or {}
    server = (body.get("serveraddress") or "docker.io").removeprefix("https://").removeprefix("http://")
    server = server.split("/")[0]
    registry.Client(registry.registry_host(server), (body.get("username", ""), body.get("password", ""))).ping()
    resp.json({"Status": "Login Succeeded", "IdentityToken": ""})


def events_stream(srv, req, resp) -> None:
    """GET /events: past events (since=) then new ones as they come, one JSON per line, until
    `until` or the client hangs up."""
    filters = {k: list(v) if isinstance(v, list) else [k2 for k2, on in v.items() if on]
               for k, v in (req.json_arg("filters", {}) or {}).items()}
    since, until = _when(req.arg("since")), _when(req.arg("until"))
    rt = srv.runtime()
    out = resp.stream("application/json")
    last = time.time_ns() - 1
    if since is not None:
        for msg in events.read(rt.root, since, until):
            if events.matches(msg, filters):
                out.json(msg)
            last = max(last, msg["timeNano"])
    while until is None or time.time_ns() < until:
        for msg in events.read(rt.root, last + 1, until):
            if msg["timeNano"] > last:
                last = msg["timeNano"]
                if events.matches(msg, filters):
                    out.json(msg)
        time.sleep(0.1)
    out.close()


def _when(value: str | None) -> int | None:
    """since/until in the query: unix seconds, maybe with a fraction ("1764630000.123456789")."""
    if not value:
        return None
    sec, _, frac = value.partition(".")
    return int(sec) * 1_000_000_000 + int((frac + "000000000")[:9] or 0)


NOT_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect '
               'this node to swarm and try again.')


def swarm_inspect(srv, req, resp) -> None:
    """minidocker has no swarm mode: what dockerd answers on a node that never joined one."""
    resp.error(503, NOT_MANAGER)


def swarm_leave(srv, req, resp) -> None:
    resp.error(503, "This node is not part of a swarm")


def swarm_join(srv, req, resp) -> None:
    resp.error(501, "swarm mode is not supported by minidocker (use the real dockerd's, as notebook 12 does)")


ROUTES = [
    ("GET", "/swarm", swarm_inspect),
    ("POST", "/swarm/leave", swarm_leave),
    ("POST", "/swarm/init", swarm_join),
    ("POST", "/swarm/join", swarm_join),
    ("GET", "/nodes", swarm_inspect),
    ("GET", "/services", swarm_inspect),
    ("GET", "/tasks", swarm_inspect),
    ("GET", "/secrets", swarm_inspect),
    ("GET", "/configs", swarm_inspect),
    ("GET", "/_ping", ping),
    ("GET", "/version", version),
    ("GET", "/info", info),
    ("GET", "/system/df", system_df),
    ("POST", "/auth", auth),
    ("GET", "/events", events_stream),
]
