"""/images/...: list, inspect, history, tag, remove, pull (create), push, save (get), load."""
from __future__ import annotations

import os
import tempfile

from ... import gotime
from ...errors import MinidockerError
from ...images import busybox
from ...images.store import ImageStore


def _store(srv) -> ImageStore:
    return srv.runtime().images


def list_images(srv, req, resp) -> None:
    store = _store(srv)
    tags = store.tags()
    parents = {store.parent_of(i) for i in store.image_ids()}
    filters = req.json_arg("filters", {}) or {}
    wanted_refs = list(filters.get("reference") or [])
    if isinstance(filters.get("reference"), dict):
        wanted_refs = [k for k, on in filters["reference"].items() if on]
    out = []
    for image_id in store.image_ids():
        names = sorted(t for t, i in tags.items() if i == image_id)
        if not req.flag("all") and image_id in parents and not names:
            continue
        if wanted_refs and not any(_ref_matches(n, r) for n in names for r in wanted_refs):
            continue
        img = store.get(image_id)
        size = store.size(img)
        out.append({"Id": img.id, "ParentId": store.parent_of(image_id) or "", "RepoTags": names or None,
                    "RepoDigests": [], "Created": int(gotime.parse_rfc3339(img.config.get("created", "")) or 0),
                    "Size": size, "VirtualSize": size, "SharedSize": -1,
                    "Labels": (img.config.get("config") or {}).get("Labels"), "Containers": -1})
    out.sort(key=lambda i: -i["Created"])
    resp.json(out)


def _ref_matches(name: str, pattern: str) -> bool:
    import fnmatch
    repo = name.rpartition(":")[0]
    return fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(repo, pattern)


def inspect(srv, req, resp) -> None:
    from ..cli.images import image_inspect_obj
    resp.json(image_inspect_obj(_store(srv), req.params["name"]))


def history(srv, req, resp) -> None:
    from ...images import manage
    out = []
    for r in manage.history(_store(srv), req.params["name"]):
        out.append({"Id": r["id"], "Created": int(gotime.parse_rfc3339(r["created"]) or 0),
                    "CreatedBy": r["created_by"], "Tags": None, "Size": r["size"], "Comment": r["comment"]})
    resp.json(out)


def tag(srv, req, resp) -> None:
    from ...images import manage
    store = _store(srv)
    source = req.params["name"]
    if busybox.is_embedded(source):
        busybox.ensure_busybox(store)
    repo, t = req.arg("repo") or "", req.arg("tag") or "latest"
    manage.tag(store, source, f"{repo}:{t}")
    resp.send(201, b"")


def remove(srv, req, resp) -> None:
    from ...images import manage
    lines = manage.remove(srv.runtime(), req.params["name"], force=req.flag("force"))
    out = []
    for line in lines:
        kind, _, what = line.partition(": ")
        out.append({kind: what})
    resp.json(out)


def create(srv, req, resp) -> None:
    """`docker pull`: the progress as JSON lines ({"status": ...}); the embedded busybox is
    built here, offline, as `minidocker pull busybox` does."""
    from ...images import reference, registry
    name = req.arg("fromImage") or ""
    if req.arg("fromSrc"):
        from .http import HTTPError
        raise HTTPError(501, "docker import through the API is not implemented by minidocker yet")
    tag_ = req.arg("tag") or ""
    if tag_:
        name = f"{name}@{tag_}" if tag_.startswith("sha256:") else f"{name}:{tag_}"
    ref = reference.parse(name)
    store = _store(srv)
    out = resp.stream("application/json")
    try:
        if busybox.is_embedded(name):
            img = busybox.ensure_busybox(store)
            out.json({"status": f"Pulling from library/{ref.name.rsplit('/', 1)[-1]}", "id": ref.tag or "latest"})
            out.json({"status": f"Digest: {img.id}"})
            out.json({"status": f"Status: Image is up to date for {ref}"})
        else:
            registry.pull(store, name, say=lambda line: out.json({"status": line}))
    except MinidockerError as e:
        out.json({"errorDetail": {"message": str(e)}, "error": str(e)})
    out.close()


def push(srv, req, resp) -> None:
    from ...images import registry
    name = req.params["name"]
    if req.arg("tag"):
        name = f"{name}:{req.arg('tag')}"
    out = resp.stream("application/json")
    try:
        registry.push(_store(srv), name, say=lambda line: out.json({"status": line}))
    except MinidockerError as e:
        out.json({"errorDetail": {"message": str(e)}, "error": str(e)})
    out.close()


def get(srv, req, resp) -> None:
    """`docker save`: a tarball of the images (Docker's legacy layout, plus OCI's index)."""
    from ...images import transfer
    names = [req.params["name"]] if "name" in req.params else list(req.query.get("names") or [])
    store = _store(srv)
    for n in names:
        if busybox.is_embedded(n):
            busybox.ensure_busybox(store)
        store.resolve(n)  # (404 before the stream starts)
    out = resp.stream("application/x-tar")
    transfer.save(store, names, _Writer(out))
    out.close()


class _Writer:
    """A write-only binary stream over the chunked answer (save writes a stream tar)."""

    def __init__(self, out):
        self.out = out

    def write(self, data: bytes) -> int:
        self.out.write(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


def load(srv, req, resp) -> None:
    from ...images import transfer
    store = _store(srv)
    with tempfile.TemporaryDirectory(dir=srv.runtime().root.tmp) as tmp:
        path = os.path.join(tmp, "images.tar")
        with open(path, "wb") as f:
            for chunk in req.body_chunks():
                f.write(chunk)
        out = resp.stream("application/json")
        try:
            for line in transfer.load(store, path, bars=False):
                out.json({"stream": line.rstrip("\n") + "\n"})
        except MinidockerError as e:  # (dockerd says it in the stream, after its 200)
            out.json({"errorDetail": {"message": str(e)}, "error": str(e)})
    out.close()


def build(srv, req, resp) -> None:
    """POST /build: the body is the context as a tar; the answer, the classic builder's lines
    as JSON ({"stream": "Step 1/2 : FROM busybox\n"}), then the image id ({"aux": {"ID": ...}})."""
    import shutil
    from ...storage import archive
    from ..build.builder import Builder
    from .http import HTTPError
    if req.arg("remote"):
        raise HTTPError(501, "building from a remote context (a URL or a git repository) is not supported "
                             "by minidocker: send the context")
    rt = srv.runtime()
    tags = list(req.query.get("t") or [])
    build_args = {k: v for k, v in (req.json_arg("buildargs", {}) or {}).items() if v is not None}
    labels = dict(req.json_arg("labels", {}) or {})
    quiet = req.flag("q")
    context = tempfile.mkdtemp(prefix="build-context-", dir=rt.root.tmp)
    try:
        archive.apply_layer(req.body_file(), context, overlay=False)
        out = resp.stream("application/json")
        try:
            builder = Builder(rt, context, dockerfile=req.arg("dockerfile") or None, tags=tags,
                              build_args=build_args, target=req.arg("target") or None, no_cache=req.flag("nocache"),
                              pull=req.flag("pull"), platform=req.arg("platform") or None,
                              network=req.arg("networkmode") or "default", labels=labels,
                              on_event=(lambda ev: None) if quiet else out.json)
            image_id = builder.build()
            out.json({"aux": {"ID": image_id}})
            if quiet:
                out.json({"stream": image_id + "\n"})
        except MinidockerError as e:
            out.json({"errorDetail": {"message": str(e)}, "error": str(e)})
        out.close()
    finally:
        shutil.rmtree(context, ignore_errors=True)


def prune(srv, req, resp) -> None:
    """`docker image prune`: dangling images, or (dangling=false) every image no container uses."""
    from ...images import manage
    filters = req.json_arg("filters", {}) or {}
    dangling = filters.get("dangling") or ["true"]
    if isinstance(dangling, dict):
        dangling = [k for k, on in dangling.items() if on]
    lines, space = manage.prune(srv.runtime(), all_images=str(dangling[-1]).lower() in ("false", "0"))
    deleted = []
    for line in lines:
        kind, _, what = line.partition(": ")
        deleted.append({kind.capitalize(): what})
    resp.json({"ImagesDeleted": deleted or None, "SpaceReclaimed": space})


def search(srv, req, resp) -> None:
    from .http import HTTPError
    raise HTTPError(501, "search is not supported by minidocker: it has no index to ask (Docker Hub's "
                         "search needs the internet)")


ROUTES = [
    ("POST", "/build", build),
    ("POST", "/images/prune", prune),
    ("GET", "/images/search", search),
    ("GET", "/images/json", list_images),
    ("POST", "/images/create", create),
    ("POST", "/images/load", load),
    ("GET", "/images/get", get),
    ("GET", "/images/{name*}/json", inspect),
    ("GET", "/images/{name*}/history", history),
    ("GET", "/images/{name*}/get", get),
    ("POST", "/images/{name*}/tag", tag),
    ("POST", "/images/{name*}/push", push),
    ("DELETE", "/images/{name*}", remove),
]
