"""`save` and `load`: images as one tar file, in the formats real Docker writes and reads.

What `minidocker save` writes is what Docker >= 25 writes: an OCI image layout plus
Docker's own manifest.json, so both new and old Dockers (and skopeo, podman) can load it:

    oci-layout                  {"imageLayoutVersion": "1.0.0"}
    index.json                  the images in this file, tags in annotations
    blobs/sha256/<digest>       config JSON, manifests, and each layer's uncompressed tar
    manifest.json               [{"Config": "blobs/sha256/..", "RepoTags": ["busybox:latest"],
                                  "Layers": ["blobs/sha256/..", ...]}]
    repositories                {"busybox": {"latest": "<top layer id>"}}

`load` reads that, Docker <= 24's legacy form (`<id>/layer.tar`, `<id>.json`), and plain
OCI layouts (index.json only, gzip layers allowed).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import shutil
import tarfile
import tempfile

from ..errors import InvalidArgument, MinidockerError
from . import reference as refmod
from .store import Image, ImageStore, chain_ids

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hex(d: str) -> str:
    return d.split(":", 1)[1]


class _TarWriter:
    """Add files to a tar stream with fixed metadata (saved files are reproducible)."""

    def __init__(self, out):
        self.tf = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)
        self.dirs: set[str] = set()

    def _dir(self, name: str) -> None:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self.dirs:
                info = tarfile.TarInfo(d)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
                self.tf.addfile(info)
                self.dirs.add(d)

    def add_bytes(self, name: str, data: bytes) -> None:
        self._dir(name)
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), 0o644, 0
        self.tf.addfile(info, io.BytesIO(data))

    def add_file(self, name: str, path: str) -> None:
        self._dir(name)
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = os.path.getsize(path), 0o644, 0
        with open(path, "rb") as f:
            self.tf.addfile(info, f)

    def close(self) -> None:
        self.tf.close()


def save(store: ImageStore, refs: list[str], out) -> None:
    """Write the images `refs` (names or ids) to the binary stream `out`."""
    images: list[tuple[Image, list[str]]] = []
    for ref in refs:
        img = store.resolve(ref)
        tag = None
        try:
            r = refmod.parse(ref)
            if str(r) in store.tags():
                tag = str(r)
        except InvalidArgument:
            pass
        tags = [tag] if tag else ([] if refmod.looks_like_id(ref) else store.tags_of(img.id))
        found = next((x for x in images if x[0].id == img.id), None)
        if found:
            found[1].extend(t for t in tags if t not in found[1])
        else:
            images.append((img, list(tags)))

    w = _TarWriter(out)
    written: set[str] = set()
    sizes: dict[str, int] = {}
    index, manifest_json, repositories = [], [], {}
    with tempfile.TemporaryDirectory(dir=store.root.tmp) as tmp:
        for img, tags in images:
            layer_blobs = []
            for chain in chain_ids(img.diff_ids):
                diff_id = store.layer_diff_id(chain)
                if diff_id not in written:
                    path = os.path.join(tmp, "layer.tar")
                    with open(path, "wb") as f:
                        store.layer_tar(chain, f)
                    sizes[diff_id] = os.path.getsize(path)
                    w.add_file(f"blobs/sha256/{_hex(diff_id)}", path)
                    written.add(diff_id)
                layer_blobs.append({"mediaType": OCI_LAYER, "digest": diff_id, "size": sizes[diff_id]})
            if img.id not in written:
                w.add_bytes(f"blobs/sha256/{_hex(img.id)}", img.raw)
                written.add(img.id)
            manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                   "config": {"mediaType": OCI_CONFIG, "digest": img.id, "size": len(img.raw)},
                                   "layers": layer_blobs}, separators=(",", ":")).encode()
            mdigest = _sha(manifest)
            if mdigest not in written:
                w.add_bytes(f"blobs/sha256/{_hex(mdigest)}", manifest)
                written.add(mdigest)
            for tag in tags or [None]:
                desc = {"mediaType": OCI_MANIFEST, "digest": mdigest, "size": len(manifest)}
                if tag:
                    r = refmod.parse(tag)
                    desc["annotations"] = {"io.containerd.image.name": f"{r.name}:{r.tag}",
                                           "org.opencontainers.image.ref.name": r.tag}
                    repositories.setdefault(r.familiar_name, {})[r.tag] = _hex(chain_ids(img.diff_ids)[-1]) \
                        if img.diff_ids else _hex(img.id)
                index.append(desc)
            manifest_json.append({"Config": f"blobs/sha256/{_hex(img.id)}", "RepoTags": tags or None,
                                  "Layers": [f"blobs/sha256/{_hex(b['digest'])}" for b in layer_blobs]})
    w.add_bytes("index.json", json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                          "manifests": index}, separators=(",", ":")).encode())
    w.add_bytes("manifest.json", json.dumps(manifest_json, separators=(",", ":")).encode())
    w.add_bytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    if repositories:
        w.add_bytes("repositories", json.dumps(repositories, separators=(",", ":")).encode())
    w.close()


def load(store: ImageStore, source) -> list[str]:
    """Load every image in the tar at `source` (path or stream); return docker's messages
    ("Loaded image: busybox:latest" / "Loaded image ID: sha256:...")."""
    with tempfile.TemporaryDirectory(dir=store.root.tmp) as tmp:
        _extract(source, tmp)
        if os.path.exists(os.path.join(tmp, "manifest.json")):
            entries = _from_manifest_json(tmp)
        elif os.path.exists(os.path.join(tmp, "index.json")):
            entries = _from_oci_index(tmp)
        else:
            raise MinidockerError("open manifest.json: no such file or directory (not an image archive)",
                                  exit_code=1)
        messages = []
        for config_path, layer_paths, tags in entries:
            with open(config_path, "rb") as f:
                raw = f.read()
            cfg = json.loads(raw)
            diff_ids = cfg.get("rootfs", {}).get("diff_ids", [])
            if len(diff_ids) != len(layer_paths):
                raise MinidockerError("invalid manifest: the number of layers does not match the config",
                                      exit_code=1)
            parent = None
            for path, diff_id in zip(layer_paths, diff_ids):
                parent = store.register_layer(path, parent, diff_id=diff_id)
            img = store.put_image(raw)
            for tag in tags:
                old = store.tags().get(str(refmod.parse(tag)))
                if old and old != img.id:
                    messages.append(f"The image {tag} already exists, renaming the old one with ID "
                                    f"{old} to empty string")
                store.tag(tag, img.id)
                messages.append(f"Loaded image: {tag}")
            if not tags:
                messages.append(f"Loaded image ID: {img.id}")
        return messages


def _extract(source, dest: str) -> None:
    """Unpack the archive safely (it is an image archive, not a layer: no devices, no links
    out); gzip-compressed archives are fine too."""
    from ..storage import archive
    with archive.open_layer_stream(source) as stream, tarfile.open(fileobj=stream, mode="r|") as tf:
        for m in tf:
            name = posixpath.normpath(m.name).lstrip("/")
            if name.startswith("..") or name in ("", "."):
                continue
            target = os.path.join(dest, name)
            if m.isdir():
                os.makedirs(target, exist_ok=True)
            elif m.isreg():
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as f:
                    shutil.copyfileobj(tf.extractfile(m), f)
            elif m.issym() and not m.linkname.startswith("/") and ".." not in m.linkname.split("/")[:-1]:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                src = os.path.normpath(os.path.join(os.path.dirname(target), m.linkname))
                if src.startswith(dest) and os.path.exists(src):
                    shutil.copyfile(src, target)  # legacy archives link identical layers


def _inside(root: str, rel: str) -> str:
    path = os.path.normpath(os.path.join(root, rel))
    if not path.startswith(root + os.sep):
        raise MinidockerError(f"invalid path in image archive: {rel}", exit_code=1)
    if not os.path.isfile(path):
        raise MinidockerError(f"image archive is missing {rel}", exit_code=1)
    return path


def _from_manifest_json(root: str) -> list[tuple[str, list[str], list[str]]]:
    with open(os.path.join(root, "manifest.json")) as f:
        manifest = json.load(f)
    return [(_inside(root, e["Config"]), [_inside(root, p) for p in e.get("Layers") or []],
             list(e.get("RepoTags") or [])) for e in manifest]


def _from_oci_index(root: str) -> list[tuple[str, list[str], list[str]]]:
    def blob(digest: str) -> str:
        return _inside(root, f"blobs/{digest.replace(':', '/')}")

    with open(os.path.join(root, "index.json")) as f:
        index = json.load(f)
    out = []
    for desc in index.get("manifests", []):
        with open(blob(desc["digest"]), "rb") as f:
            m = json.load(f)
        if m.get("mediaType") in (OCI_INDEX, DOCKER_LIST) or "manifests" in m:
            raise MinidockerError("multi-platform OCI archives are not supported by load", exit_code=1)
        ann = desc.get("annotations") or {}
        name = ann.get("io.containerd.image.name") or ann.get("org.opencontainers.image.ref.name")
        tags = [str(refmod.parse(name))] if name and (":" in name or "/" in name) else []
        out.append((blob(m["config"]["digest"]), [blob(layer["digest"]) for layer in m["layers"]], tags))
    return out
