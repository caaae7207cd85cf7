"""client.images: docker-py's Image and ImageCollection, over the Engine API."""
from __future__ import annotations

import io
import os
import tarfile

from ...errors import MinidockerError
from .model import Model
from .transport import APIError, ImageNotFound


def _raise_stream_error(events):
    """Pulls, pushes, loads and builds say their errors inside the stream, after a 200."""
    for ev in events:
        if "error" in ev:
            raise APIError(ev["error"])
        yield ev


class Image(Model):
    def __repr__(self) -> str:
        return f"<Image: {', '.join(repr(t) for t in self.tags)}>"

    @property
    def short_id(self) -> str:
        return "sha256:" + self.id.split(":", 1)[1][:10]

    @property
    def tags(self) -> list[str]:
        return [t for t in self.attrs.get("RepoTags") or [] if t != "<none>:<none>"]

    @property
    def labels(self) -> dict:
        return (self.attrs.get("Config") or {}).get("Labels") or {}

    def reload(self) -> "Image":
        self.attrs = self.api.json("GET", f"/images/{self.id}/json")
        return self

    def history(self) -> list[dict]:
        return self.api.json("GET", f"/images/{self.id}/history")

    def tag(self, repository: str, tag: str | None = None, force: bool = False) -> bool:
        return self.api.call("POST", f"/images/{self.id}/tag", {"repo": repository, "tag": tag}) == 201

    def save(self, chunk_size: int | None = None, named: bool = False):
        """The `docker save` tarball's chunks (named=True: under the image's first tag)."""
        name = self.tags[0] if named and self.tags else self.id
        return self.api.open("GET", f"/images/{name}/get").chunks()

    # --- in-process extras for the notebooks ---
    @property
    def config(self) -> dict:
        """The image's config JSON as stored (its sha256 is the image ID): lower-case keys,
        `history` with the empty layers, `rootfs.diff_ids`."""
        return self.client.runtime.images.get(self.id).config

    def layers(self) -> list[dict]:
        """The image's layers, bottom first, as the overlay2 store keeps them (for the layer
        explorer in the notebooks)."""
        from ...images.store import chain_ids
        store = self.client.runtime.images
        img = store.get(self.id)
        out = []
        for diff_id, chain in zip(img.diff_ids, chain_ids(img.diff_ids)):
            cache = store.layer_cache_id(chain)
            out.append({"diff_id": diff_id, "chain_id": chain, "cache_id": cache,
                        "diff_dir": store.driver.diff(cache), "size": store.layer_size(chain)})
        return out


def context_tar(path: str) -> io.BytesIO:
    """The build context as the docker CLI sends it: a tar of the directory (the builder reads
    .dockerignore from it, as dockerd's classic builder does)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(os.listdir(path)):
            tar.add(os.path.join(path, name), arcname=name)
    buf.seek(0)
    return buf


class ImageCollection:
    def __init__(self, client):
        self.client, self.api = client, client.api

    def get(self, name: str) -> Image:
        """The image (the embedded busybox is made on first use, as `minidocker run busybox`
        does: it is built from the host's busybox-static, offline)."""
        from ...images import busybox
        try:
            return Image(self.client, self.api.json("GET", f"/images/{name}/json"))
        except ImageNotFound:
            if not busybox.is_embedded(name):
                raise
        self.pull(name)
        return Image(self.client, self.api.json("GET", f"/images/{name}/json"))

    def list(self, name: str | None = None, all: bool = False, filters: dict | None = None) -> list[Image]:
        filters = dict(filters or {})
        if name:
            filters["reference"] = [name]
        rows = self.api.json("GET", "/images/json", {"all": all, "filters": filters or None})
        return [self.get(r["Id"]) for r in rows]

    def pull(self, repository: str, tag: str | None = None, all_tags: bool = False, **kw) -> Image:
        if all_tags:
            raise APIError("pulling all tags is not supported by minidocker")
        if tag is None and ":" not in repository.rsplit("/", 1)[-1] and "@" not in repository:
            tag = "latest"
        events = self.api.open("POST", "/images/create", {"fromImage": repository, "tag": tag}).json_stream()
        for _ in _raise_stream_error(events):
            pass
        sep = "@" if tag and tag.startswith("sha256:") else ":"
        return self.get(f"{repository}{sep}{tag}" if tag else repository)

    def push(self, repository: str, tag: str | None = None, stream: bool = False, decode: bool = False):
        events = self.api.open("POST", f"/images/{repository}/push", {"tag": tag}).json_stream()
        if stream:
            return events if decode else (str(ev).encode() for ev in events)
        import json
        return "".join(json.dumps(ev) + "\r\n" for ev in events)

    def remove(self, image: str, force: bool = False, noprune: bool = False) -> list[dict]:
        return self.api.json("DELETE", f"/images/{image}", {"force": force, "noprune": noprune})

    def prune(self, filters: dict | None = None) -> dict:
        return self.api.json("POST", "/images/prune", {"filters": filters})

    def load(self, data) -> list[Image]:
        """`docker load` of a tarball (bytes or a file): the images it brought."""
        events = self.api.open("POST", "/images/load", body=data,
                               headers={"Content-Type": "application/x-tar"}).json_stream()
        out = []
        for ev in _raise_stream_error(events):
            line = ev.get("stream", "")
            for prefix in ("Loaded image: ", "Loaded image ID: "):
                if line.startswith(prefix):
                    out.append(self.get(line[len(prefix):].strip()))
        return out

    def search(self, term: str, limit: int | None = None):
        return self.api.json("GET", "/images/search", {"term": term, "limit": limit})

    def build(self, path: str | None = None, tag: str | list[str] | None = None, dockerfile: str | None = None,
              buildargs: dict | None = None, target: str | None = None, nocache: bool = False,
              network_mode: str | None = None, fileobj=None, labels: dict | None = None, pull: bool = False,
              quiet: bool = False, rm: bool = True, on_event=None, **kw) -> tuple[Image, list[dict]]:
        """Build like `docker build` (POST /build with the context as a tar): (image, the
        build's events). `on_event(ev)` sees each event as it happens ({"stream": "Step 1/3 :
        FROM busybox\\n"}), e.g. to show the progress in a notebook while the build runs."""
        events = []
        image_id = None
        for ev in self._build_events(path, tag, dockerfile, buildargs, target, nocache, network_mode, fileobj,
                                     labels, pull, quiet):
            events.append(ev)
            if on_event:
                on_event(ev)
            if "error" in ev:
                raise BuildError(ev["error"], events)
            image_id = (ev.get("aux") or {}).get("ID", image_id)
        if image_id is None:
            raise BuildError("the build ended without an image", events)
        return self.get(image_id), events

    def build_stream(self, path: str, **kw):
        """Yield the build's events while it runs (docker-py's low-level `build` stream)."""
        yield from self._build_events(path, kw.get("tag"), kw.get("dockerfile"), kw.get("buildargs"),
                                      kw.get("target"), kw.get("nocache", False), kw.get("network_mode"),
                                      None, kw.get("labels"), kw.get("pull", False), False)

    def _build_events(self, path, tag, dockerfile, buildargs, target, nocache, network_mode, fileobj,
                      labels, pull, quiet):
        if fileobj is not None:  # a Dockerfile alone (docker-py: `fileobj=`): a context of one file
            data = fileobj.read()
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tar:
                info = tarfile.TarInfo("Dockerfile")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data if isinstance(data, bytes) else data.encode()))
            buf.seek(0)
            body = buf
        elif path is not None:
            body = context_tar(path)
        else:
            raise TypeError("Either path or fileobj needs to be provided.")
        tags = [tag] if isinstance(tag, str) else list(tag or [])
        params = {"t": tuple(tags), "dockerfile": dockerfile, "buildargs": buildargs or None, "target": target,
                  "nocache": nocache, "networkmode": network_mode, "labels": labels or None, "pull": pull,
                  "q": quiet}
        return self.api.open("POST", "/build", params, body=body,
                             headers={"Content-Type": "application/x-tar"}).json_stream()


class BuildError(MinidockerError):
    """A build that failed (docker-py's BuildError): the message and the events so far."""

    def __init__(self, reason: str, build_log: list[dict]):
        super().__init__(reason)
        self.msg, self.build_log = reason, build_log
