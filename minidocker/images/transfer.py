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

import contextlib
import hashlib
import io
import json
import os
import posixpath
import re
import shutil
import tarfile
import tempfile

from .. import progress
from ..errors import InvalidArgument, MinidockerError
from . import reference as refmod
from .store import Image, ImageStore, chain_ids, json_kind, parse_config

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
    todo = {d for img, _ in images for d in img.diff_ids}
    bar = progress.bar("Saving layers", len(todo), unit="layer")
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
                    if bar:
                        bar.update(1)
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
    if bar:
        bar.close()


def load(store: ImageStore, source, bars: bool = True) -> list[str]:
    """`docker load` (see _load), while holding ImageStore.working(). `bars=False` (load -q)
    draws no progress bars."""
    with store.working():
        return _load(store, source, bars)


def _load(store: ImageStore, source, bars: bool = True) -> list[str]:
    """Load every image in the tar at `source` (path or stream); return docker's messages
    ("Loaded image: busybox:latest" / "Loaded image ID: sha256:...").

    Everything the archive says is checked before anything is stored (JSON shapes, tags, that
    each file is there, the number of layers); a layer that then turns out bad (a truncated tar,
    a DiffID that does not match) takes the layers this load registered with it: no half-made
    image, no orphan layer."""
    from . import manage
    with tempfile.TemporaryDirectory(dir=store.root.tmp) as tmp:
        bar = progress.bar("Reading archive", progress.stream_size(source)) if bars else None
        try:
            _extract(source, tmp, bar)
        finally:
            if bar:
                bar.close()
        if os.path.exists(os.path.join(tmp, "manifest.json")):
            entries = _from_manifest_json(tmp)
        elif os.path.exists(os.path.join(tmp, "index.json")):
            entries = _from_oci_index(tmp)
        else:
            raise MinidockerError("open manifest.json: no such file or directory (not an image archive)",
                                  exit_code=1)
        plans = []
        for config_path, layer_paths, tags in entries:
            with open(config_path, "rb") as f:
                raw = f.read()
            cfg = parse_config(raw)
            diff_ids = (cfg.get("rootfs") or {}).get("diff_ids", [])
            if len(diff_ids) != len(layer_paths):
                raise MinidockerError("invalid manifest: the number of layers does not match the config",
                                      exit_code=1)
            plans.append((raw, layer_paths, diff_ids, [_tag(t) for t in tags]))
        messages = []
        for raw, layer_paths, diff_ids, tags in plans:
            new_chains = [c for c in chain_ids(diff_ids) if not store.has_layer(c)]
            bar = progress.bar("Loading layers", len(diff_ids), unit="layer") if bars else None
            try:
                parent = None
                for path, diff_id in zip(layer_paths, diff_ids):
                    parent = store.register_layer(path, parent, diff_id=diff_id)
                    if bar:
                        bar.update(1)
                img = store.put_image(raw)
            except BaseException:
                manage.delete_unused_layers(store, new_chains)
                raise
            finally:
                if bar:
                    bar.close()
            for tag in tags:
                old = store.tags().get(tag)
                if old and old != img.id:
                    messages.append(f"The image {tag} already exists, renaming the old one with ID "
                                    f"{old} to empty string")
                store.tag(tag, img.id)
                messages.append(f"Loaded image: {tag}")
            if not tags:
                messages.append(f"Loaded image ID: {img.id}")
        return messages


def _tag(name: str) -> str:
    """A RepoTags entry, normalized; a malformed one fails the load (exit 1, as docker load)."""
    try:
        return str(refmod.parse(name))
    except InvalidArgument as e:
        raise MinidockerError(f"invalid tag {json.dumps(name)} in the image archive: {e}", exit_code=1) from None


def _extract(source, dest: str, bar=None) -> None:
    """Unpack the archive safely (it is an image archive, not a layer: no devices, no links
    out); gzip-compressed archives are fine too. A truncated or corrupt archive is refused
    (Docker: "unexpected EOF"), never loaded in part."""
    from ..storage import archive
    try:
        with contextlib.ExitStack() as stack:
            if isinstance(source, (str, bytes, os.PathLike)):
                source = stack.enter_context(open(source, "rb"))
            raw = stack.enter_context(archive.open_layer_stream(progress.Counted(source, bar)))
            stream = archive.TailReader(raw)
            with tarfile.open(fileobj=stream, mode="r|") as tf:
                for m in tf:
                    _extract_member(tf, m, dest)
                archive.check_end(stream.bytes_at, tf.offset)
    except archive.TAR_ERRORS as e:
        why = "the archive is empty" if str(e) == "empty file" else str(e)
        raise archive.ArchiveError(f"Error processing tar file: {why}") from None
    except OSError as e:
        if e.errno is not None:
            raise
        raise archive.ArchiveError(f"Error processing tar file: {e}") from None  # (bz2's errors)


def _extract_member(tf, m, dest: str) -> None:
    name = posixpath.normpath(m.name).lstrip("/")
    if name.startswith("..") or name in ("", ".") or "\x00" in name:
        return
    target = os.path.join(dest, name)
    if m.isdir():
        os.makedirs(target, exist_ok=True)
    elif m.isreg():
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.isdir(target) and not os.path.islink(target):
            raise MinidockerError(f"invalid image archive: {name} is both a file and a directory", exit_code=1)
        with open(target, "wb") as f:
            shutil.copyfileobj(tf.extractfile(m), f)
    elif m.issym() and not m.linkname.startswith("/") and ".." not in m.linkname.split("/")[:-1]:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        src = os.path.normpath(os.path.join(os.path.dirname(target), m.linkname))
        if src.startswith(dest + os.sep) and os.path.isfile(src):
            shutil.copyfile(src, target)  # legacy archives link identical layers


def _inside(root: str, rel) -> str:
    if not isinstance(rel, str):
        raise MinidockerError(f"invalid image archive: a file name is {json.dumps(rel)}", exit_code=1)
    path = os.path.normpath(os.path.join(root, rel))
    if not path.startswith(root + os.sep) or "\x00" in rel:
        raise MinidockerError(f"invalid path in image archive: {rel}", exit_code=1)
    if not os.path.isfile(path):
        raise MinidockerError(f"image archive is missing {rel}", exit_code=1)
    return path


def _read_json(root: str, rel: str, what: str):
    try:
        with open(os.path.join(root, rel), "rb") as f:
            return json.loads(f.read())
    except (ValueError, RecursionError) as e:
        raise MinidockerError(f"invalid {what}: not JSON: {e}", exit_code=1) from None
    except IsADirectoryError:
        raise MinidockerError(f"invalid image archive: {rel} is a directory", exit_code=1) from None


def _from_manifest_json(root: str) -> list[tuple[str, list[str], list[str]]]:
    manifest = _read_json(root, "manifest.json", "manifest.json")

    def bad(why: str) -> MinidockerError:
        return MinidockerError(f"invalid manifest.json: {why}", exit_code=1)

    if not isinstance(manifest, list):
        raise bad(f"a JSON {json_kind(manifest)}, not a list of images")
    out = []
    for e in manifest:
        if not isinstance(e, dict) or not isinstance(e.get("Config"), str):
            raise bad("each image needs a \"Config\" file name")
        layers, tags = e.get("Layers") or [], e.get("RepoTags") or []
        if not isinstance(layers, list) or not isinstance(tags, list) or \
                not all(isinstance(t, str) for t in tags):
            raise bad("\"Layers\" and \"RepoTags\" must be lists of strings")
        out.append((_inside(root, e["Config"]), [_inside(root, p) for p in layers], list(tags)))
    return out


def _from_oci_index(root: str) -> list[tuple[str, list[str], list[str]]]:
    def bad(why: str) -> MinidockerError:
        return MinidockerError(f"invalid OCI image layout: {why}", exit_code=1)

    def blob(desc) -> str:
        digest = desc.get("digest") if isinstance(desc, dict) else None
        if not isinstance(digest, str) or not re.fullmatch(r"[a-z0-9]+:[a-f0-9]{32,}", digest):
            raise bad(f"invalid descriptor digest {str(digest)[:100]!r}")
        return _inside(root, f"blobs/{digest.replace(':', '/')}")

    index = _read_json(root, "index.json", "index.json")
    if not isinstance(index, dict) or not isinstance(index.get("manifests", []), list):
        raise bad("index.json must be an object with a list of manifests")
    out = []
    for desc in index.get("manifests", []):
        path = blob(desc)
        m = _read_json(root, os.path.relpath(path, root), "image manifest")
        if not isinstance(m, dict):
            raise bad("a manifest is not a JSON object")
        if m.get("mediaType") in (OCI_INDEX, DOCKER_LIST) or "manifests" in m:
            raise MinidockerError("multi-platform OCI archives are not supported by load", exit_code=1)
        if not isinstance(m.get("layers", []), list):
            raise bad("a manifest's layers are not a list")
        ann = desc.get("annotations") or {}
        if not isinstance(ann, dict):
            raise bad("annotations must be an object")
        name = ann.get("io.containerd.image.name") or ann.get("org.opencontainers.image.ref.name")
        tags = [name] if isinstance(name, str) and (":" in name or "/" in name) else []
        out.append((blob(m.get("config")), [blob(layer) for layer in m.get("layers", [])], tags))
    return out
