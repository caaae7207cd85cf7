"""The image store: layers, image configs and tags, in Docker's on-disk format.

Three content-addressed ideas (OCI image spec) tie it together:

    DiffID   sha256 of one layer's *uncompressed* tar          -> names a layer's content
    ChainID  ChainID(L0) = DiffID(L0)
             ChainID(L0..n) = sha256("<ChainID(L0..n-1)> <DiffID(n)>")
                                                             -> names a layer *and everything below it*
    ImageID  sha256 of the image config JSON bytes           -> names an image

Two images built on the same base share its layers: same ChainID, one directory on disk.

On disk (under <root>/image/overlay2/):
    imagedb/content/sha256/<image-id>        the config JSON, byte for byte
    layerdb/sha256/<chain-id>/diff           the layer's DiffID
                              /size          bytes of its files
                              /cache-id      its directory under overlay2/
                              /parent        ChainID of the layer below (absent for a base layer)
    layerdb/mounts/<container-id>/mount-id   the container's writable layer (overlay2/<mount-id>)
                                 /init-id    its init layer (overlay2/<mount-id>-init)
                                 /parent     ChainID of the image's top layer
    repositories.json                        {"Repositories": {"busybox": {"busybox:latest": "sha256:..."}}}
"""
from __future__ import annotations

import json
import os
import re
from contextlib import contextmanager
from functools import cached_property

from .. import fsutil
from ..errors import Conflict, MinidockerError, NotFound
from ..paths import StateRoot


def sha256_bytes(data: bytes) -> str:
    import hashlib  # (OpenSSL's, ~3 ms to load: not at every container start)
    return "sha256:" + hashlib.sha256(data).hexdigest()


def chain_id(parent_chain: str | None, diff_id: str) -> str:
    """ChainID of a layer whose DiffID is `diff_id`, sitting on `parent_chain`."""
    if parent_chain is None:
        return diff_id
    return sha256_bytes(f"{parent_chain} {diff_id}".encode())


def chain_ids(diff_ids: list[str]) -> list[str]:
    out: list[str] = []
    for d in diff_ids:
        out.append(chain_id(out[-1] if out else None, d))
    return out


def _hex(digest: str) -> str:
    return digest.split(":", 1)[1] if ":" in digest else digest


# What Docker always puts in a container's init layer (moby daemon/initlayer).
INIT_LAYER_DIRS = ["dev/pts", "dev/shm", "proc", "sys"]
INIT_LAYER_FILES = [".dockerenv", "etc/resolv.conf", "etc/hosts", "etc/hostname", "dev/console"]
INIT_LAYER_LINKS = {"etc/mtab": "/proc/mounts"}


# ---------------------------------------------------------------- what an image config may hold
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


def _is_digest(value) -> bool:
    return isinstance(value, str) and _DIGEST_RE.fullmatch(value) is not None


def _str_list(v) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _str_map(v) -> bool:
    return isinstance(v, dict) and all(isinstance(x, str) for x in v.values())


# The keys of the config's "config" section that minidocker reads, and the JSON type each
# must have (Docker unmarshals into typed Go structs and refuses anything else).
_CONFIG_KEYS = {
    "Env": _str_list, "Cmd": _str_list, "Entrypoint": _str_list, "OnBuild": _str_list, "Shell": _str_list,
    "WorkingDir": lambda v: isinstance(v, str), "User": lambda v: isinstance(v, str),
    "StopSignal": lambda v: isinstance(v, str), "Labels": _str_map,
    "ExposedPorts": lambda v: isinstance(v, dict), "Volumes": lambda v: isinstance(v, dict),
    "Healthcheck": lambda v: isinstance(v, dict),
}


def json_kind(value) -> str:
    """JSON's name for the type of a decoded value: object, array, string, ..."""
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


def parse_config(raw: bytes) -> dict:
    """An image config (JSON bytes) checked the way Docker's typed unmarshalling checks it:
    a JSON object, rootfs.diff_ids a list of sha256 digests, and the `config` keys minidocker
    uses of the right types. Anything else is a one-line error (exit 1), never a crash later
    in `run`."""
    def bad(why: str) -> MinidockerError:
        return MinidockerError(f"invalid image config: {why}", exit_code=1)

    try:
        cfg = json.loads(raw)
    except (ValueError, RecursionError) as e:  # (UnicodeDecodeError is a ValueError)
        raise bad(f"not JSON: {e}") from None
    if not isinstance(cfg, dict):
        raise bad(f"a JSON {json_kind(cfg)}, not an object")
    rootfs = cfg.get("rootfs", {})
    if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids", []), list):
        raise bad("rootfs.diff_ids must be a list")
    if not all(_is_digest(d) for d in rootfs.get("diff_ids", [])):
        raise bad("rootfs.diff_ids must be sha256 digests")
    for key in ("history",):
        if cfg.get(key) is not None and not (isinstance(cfg[key], list)
                                              and all(isinstance(h, dict) for h in cfg[key])):
            raise bad(f"{key} must be a list of objects")
    for key in ("architecture", "os", "created", "author", "comment", "variant"):
        if cfg.get(key) is not None and not isinstance(cfg[key], str):
            raise bad(f"{key} must be a string")
    section = cfg.get("config")
    if section is not None:
        if not isinstance(section, dict):
            raise bad("config must be an object")
        for key, ok in _CONFIG_KEYS.items():
            if section.get(key) is not None and not ok(section[key]):
                raise bad(f"config.{key} has the wrong type")
    return cfg


class Image:
    def __init__(self, id: str, config: dict, raw: bytes):
        self.id = id            # "sha256:<hex>"
        self.config = config    # the parsed config JSON
        self.raw = raw          # the config bytes (what the id is the hash of)

    def __repr__(self) -> str:
        return f"Image({self.id[:19]}...)"

    @property
    def short_id(self) -> str:
        return _hex(self.id)[:12]

    @property
    def diff_ids(self) -> list[str]:
        return list(self.config.get("rootfs", {}).get("diff_ids", []))

    @property
    def top_chain_id(self) -> str | None:
        ids = chain_ids(self.diff_ids)
        return ids[-1] if ids else None


class ImageStore:
    def __init__(self, root: StateRoot):
        self.root = root.ensure()

    @cached_property
    def driver(self):
        """The overlay2 driver, imported when first needed: what reads configs and tags only
        (`images`, `tag`, a cached rebuild) needs none of it, nor the syscall layer's ctypes."""
        from ..core.overlay2 import Overlay2
        return Overlay2(self.root.overlay2)

    def lock(self) -> fsutil.FileLock:
        return fsutil.FileLock(self.root.lock)

    @contextmanager
    def working(self):
        """Held by whatever registers layers before the image that uses them exists (build,
        pull, load, import, commit): `system prune` removes layers no image uses only when no
        such work is under way, so it never takes a layer from a running build, and always
        cleans up after a killed one."""
        # (os.urandom, what secrets.token_hex reads, without importing secrets: random, hmac...)
        lock = fsutil.FileLock(os.path.join(self.root.tmp, f"busy-{os.getpid()}-{os.urandom(4).hex()}"))
        lock.acquire()
        try:
            yield
        finally:
            try:
                os.unlink(lock.path)
            except FileNotFoundError:
                pass
            lock.release()

    def work_under_way(self) -> bool:
        """Is a build, pull, load, import or commit running now? (Stale marks are removed.)"""
        busy = False
        for name in os.listdir(self.root.tmp):
            path = os.path.join(self.root.tmp, name)
            if name.startswith("busy-"):
                if fsutil.is_locked(path):
                    busy = True
                else:
                    try:
                        os.unlink(path)  # its process is gone (killed)
                    except FileNotFoundError:
                        pass
        return busy

    # ------------------------------------------------------------------ layers
    def layer_dir(self, chain: str) -> str:
        return os.path.join(self.root.layerdb, _hex(chain))

    def has_layer(self, chain: str) -> bool:
        return os.path.isfile(os.path.join(self.layer_dir(chain), "cache-id"))

    def layer_cache_id(self, chain: str) -> str:
        return fsutil.read_text(os.path.join(self.layer_dir(chain), "cache-id")).strip()

    def layer_size(self, chain: str) -> int:
        return int(fsutil.read_text(os.path.join(self.layer_dir(chain), "size"), "0").strip() or 0)

    def layer_parent(self, chain: str) -> str | None:
        p = fsutil.read_text(os.path.join(self.layer_dir(chain), "parent"))
        return p.strip() if p else None

    def register_layer(self, source, parent_chain: str | None, diff_id: str | None = None) -> str:
        """Unpack a layer (a path or a binary stream; plain tar or compressed) on top of
        `parent_chain`; return its ChainID.

        The uncompressed tar goes to a temporary file first: its sha256 is the DiffID
        (checked against `diff_id` when the image config says what it must be), and its
        tar-split is recorded so the very same bytes can be given back by save/push.
        If the ChainID is already stored nothing is unpacked again: layers are shared.
        """
        import hashlib
        import tempfile
        from ..storage import archive, tarsplit  # tarfile & co: only needed when layers arrive
        fd, tmp_tar = tempfile.mkstemp(prefix="layer-", suffix=".tar", dir=self.root.tmp)
        try:
            h = hashlib.sha256()
            try:
                with os.fdopen(fd, "wb") as out, archive.open_layer_stream(source) as stream:
                    while chunk := stream.read(1 << 20):
                        h.update(chunk)
                        out.write(chunk)
            except (*archive.TAR_ERRORS, OSError) as e:  # a corrupt gzip/xz/bzip2 stream
                if isinstance(e, OSError) and e.errno is not None:
                    raise  # a real I/O error (the disk is full, ...), not bad input
                raise archive.ArchiveError(f"Error processing tar file: {e}") from None
            actual = "sha256:" + h.hexdigest()
            if diff_id is not None and diff_id != actual:
                raise MinidockerError(f"layer DiffID mismatch: the image config says {diff_id}, the "
                                      f"layer's content is {actual}", exit_code=1)
            archive.check_tar_file(tmp_tar)  # complete and readable, before anything is made of it
            chain = chain_id(parent_chain, actual)
            with self.lock():
                if self.has_layer(chain):
                    return chain
                parent_cache = self.layer_cache_id(parent_chain) if parent_chain else None
                cache = self.driver.create(parent=parent_cache)
                staging = os.path.join(self.root.layerdb, f".tmp-{_hex(chain)}")
                try:
                    fsutil.rmtree(staging, ignore_errors=True)
                    os.makedirs(staging)
                    tarsplit.record(tmp_tar, os.path.join(staging, "tar-split.json.gz"))
                    size = archive.apply_layer(tmp_tar, self.driver.diff(cache), overlay=True)
                    self._shift(self.driver.diff(cache))  # (--userns-remap: owned by the mapped ids)
                    fsutil.write_atomic(os.path.join(staging, "diff"), actual)
                    fsutil.write_atomic(os.path.join(staging, "size"), str(size))
                    fsutil.write_atomic(os.path.join(staging, "cache-id"), cache)
                    if parent_chain:
                        fsutil.write_atomic(os.path.join(staging, "parent"), parent_chain)
                    os.rename(staging, self.layer_dir(chain))  # the layer appears all at once
                except BaseException:
                    self.driver.remove(cache)
                    fsutil.rmtree(staging, ignore_errors=True)
                    raise
            return chain
        finally:
            os.unlink(tmp_tar)

    def layer_tar(self, chain: str, out) -> None:
        """Write the layer's original (uncompressed) tar to the binary stream `out`."""
        from ..storage import archive, tarsplit
        diff = self.driver.diff(self.layer_cache_id(chain))
        split = os.path.join(self.layer_dir(chain), "tar-split.json.gz")
        if os.path.exists(split):
            tarsplit.assemble(split, diff, out)
        else:  # a layer from before tar-split was kept: the deterministic export
            archive.export_dir(diff, out)

    def layer_diff_id(self, chain: str) -> str:
        return fsutil.read_text(os.path.join(self.layer_dir(chain), "diff")).strip()

    # ------------------------------------------------------------------ images
    def put_image(self, config: dict | bytes) -> Image:
        """Store an image config (its layers must be registered already); return the Image."""
        raw = config if isinstance(config, bytes) else json.dumps(config, separators=(",", ":")).encode()
        cfg = parse_config(raw)
        for c in chain_ids(cfg.get("rootfs", {}).get("diff_ids", [])):
            if not self.has_layer(c):
                raise NotFound(f"layer {c} of the image is not in the store")
        image_id = sha256_bytes(raw)
        path = os.path.join(self.root.imagedb, _hex(image_id))
        if not os.path.exists(path):
            fsutil.write_atomic(path, raw)
        return Image(image_id, cfg, raw)

    def get(self, image_id: str) -> Image:
        path = os.path.join(self.root.imagedb, _hex(image_id))
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            raise NotFound(f"No such image: {image_id}") from None
        return Image("sha256:" + _hex(image_id), json.loads(raw), raw)

    def image_ids(self) -> list[str]:
        try:
            return ["sha256:" + x for x in sorted(os.listdir(self.root.imagedb)) if not x.count(".")]
        except FileNotFoundError:
            return []

    def set_parent(self, child: str, parent: str) -> None:
        """Remember that `child` was built on `parent` (docker: imagedb/metadata/.../parent):
        `docker images` hides such intermediate images unless -a."""
        d = os.path.join(self.root.image_dir, "imagedb", "metadata", "sha256", _hex(child))
        os.makedirs(d, exist_ok=True)
        fsutil.write_atomic(os.path.join(d, "parent"), parent, durable=False)

    def parent_of(self, image_id: str) -> str | None:
        p = fsutil.read_text(os.path.join(self.root.image_dir, "imagedb", "metadata", "sha256",
                                          _hex(image_id), "parent"))
        return p.strip() if p else None

    def children_of(self, image_id: str) -> list[str]:
        return [i for i in self.image_ids() if self.parent_of(i) == image_id]

    @contextmanager
    def image_rootfs(self, image: Image, init_id: str | None = None):
        """A read-only view of the image's filesystem (for COPY --from, chown lookups). With
        `init_id`, a new container's view: the image under the container's `-init` layer (what
        dockerd fills an empty volume from: its /etc/mtab link comes from that layer)."""
        import tempfile
        caches = [self.layer_cache_id(c) for c in reversed(chain_ids(image.diff_ids))]
        caches = [init_id] + caches if init_id else caches
        if len(caches) <= 1:
            if caches:
                yield self.driver.diff(caches[0])
            else:
                with tempfile.TemporaryDirectory(dir=self.root.tmp) as empty:
                    yield empty
            return
        target = tempfile.mkdtemp(prefix="rootfs-", dir=self.root.tmp)
        try:
            self.driver.mount_readonly(caches, target)
            try:
                yield target
            finally:
                from ..core.linux import syscalls as sc
                sc.umount2(target, sc.MNT_DETACH)
        finally:
            os.rmdir(target)

    def size(self, image: Image) -> int:
        return sum(self.layer_size(c) for c in chain_ids(image.diff_ids))

    # ------------------------------------------------------------------ tags
    def _read_repos(self) -> dict:
        try:
            return fsutil.read_json(self.root.repositories).get("Repositories", {})
        except FileNotFoundError:
            return {}

    def tags(self) -> dict[str, str]:
        """{"busybox:latest": "sha256:..."} for every tag."""
        out = {}
        for repo in self._read_repos().values():
            out.update(repo)
        return out

    def tag(self, ref, image_id: str) -> None:
        from . import reference as refmod
        r = refmod.parse(ref) if isinstance(ref, str) else ref
        with self.lock():
            repos = self._read_repos()
            repo = repos.setdefault(r.familiar_name, {})
            # a tag that already names the image is not written again (a cached rebuild's:
            # no fsync, as moby's reference store returns early); the event is still sent
            if repo.get(str(r)) != image_id:
                repo[str(r)] = image_id
                fsutil.write_json(self.root.repositories, {"Repositories": repos})
        from .. import events
        events.emit(self.root, "image", "tag", image_id, {"name": str(r)})

    def untag(self, ref: str) -> None:
        from . import reference as refmod
        r = refmod.parse(ref)
        with self.lock():
            repos = self._read_repos()
            repo = repos.get(r.familiar_name, {})
            image_id = repo.pop(str(r), None)
            if image_id is None:
                raise NotFound(f"No such image: {ref}")
            if not repo:
                repos.pop(r.familiar_name, None)
            fsutil.write_json(self.root.repositories, {"Repositories": repos})
        from .. import events
        events.emit(self.root, "image", "untag", image_id, {"name": image_id})  # (dockerd names the id)

    def tags_of(self, image_id: str) -> list[str]:
        return sorted(t for t, i in self.tags().items() if i == image_id)

    def resolve(self, name: str) -> Image:
        """Find an image by tag, full id, or unique id prefix (like `docker image inspect`)."""
        from . import reference as refmod
        try:
            r = refmod.parse(name)
            image_id = self.tags().get(str(r))
            if image_id:
                return self.get(image_id)
        except Exception:
            r = None
        if refmod.looks_like_id(name):
            want = name.removeprefix("sha256:")
            hits = [i for i in self.image_ids() if _hex(i).startswith(want)]
            if len(hits) == 1:
                return self.get(hits[0])
            if len(hits) > 1:
                raise Conflict(f"multiple IDs found with provided prefix: {name}")
        raise NotFound(f"No such image: {r if r else name}")

    # ------------------------------------------------------------------ container layers
    def create_container_layers(self, container_id: str, image: Image) -> tuple[str, str]:
        """Make `<mount-id>-init` and `<mount-id>` on top of the image; return (mount_id, init_id)."""
        from ..core.overlay2 import random_id
        top = image.top_chain_id
        parent_cache = self.layer_cache_id(top) if top else None
        mount_id = random_id()
        init_id = f"{mount_id}-init"
        with self.lock():
            self.driver.create(init_id, parent=parent_cache)
            try:
                self._fill_init_layer(init_id)
                self._shift(self.driver.diff(init_id))
                self.driver.create(mount_id, parent=init_id)
                self._shift(self.driver.diff(mount_id))  # (the container's "/" is its upper dir's)
                d = os.path.join(self.root.mountsdb, container_id)
                os.makedirs(d, exist_ok=True)
                fsutil.write_atomic(os.path.join(d, "mount-id"), mount_id, durable=False)
                fsutil.write_atomic(os.path.join(d, "init-id"), init_id, durable=False)
                if top:
                    fsutil.write_atomic(os.path.join(d, "parent"), top, durable=False)
            except BaseException:
                self.driver.remove(mount_id)
                self.driver.remove(init_id)
                fsutil.rmtree(os.path.join(self.root.mountsdb, container_id), ignore_errors=True)
                raise
        return mount_id, init_id

    def _shift(self, path: str) -> None:
        """In a state root made by --userns-remap, files belong to the mapped ids (storage/shift.py)."""
        from ..storage import shift
        maps = shift.idmaps(self.root.root)
        if maps:
            shift.shift_tree(path, *maps)

    def _fill_init_layer(self, init_id: str) -> None:
        """Create the init layer's files, only those the image does not already have.

        moby mounts the init layer to look; we look through the lower layers' diff dirs
        directly (top-down, honouring whiteouts), which gives the same answer without
        a mount and an unmount on every `docker create`."""
        from ..core.overlay2 import visible_in_layers
        lowers = [os.path.join(self.driver.home, x) for x in self.driver.lower_chain(init_id)]
        target = self.driver.diff(init_id)

        def make_parents(rel: str) -> None:
            os.makedirs(os.path.dirname(os.path.join(target, rel)), 0o755, exist_ok=True)

        for d in INIT_LAYER_DIRS:
            if not visible_in_layers(lowers, d):
                os.makedirs(os.path.join(target, d), 0o755, exist_ok=True)
        for f in INIT_LAYER_FILES:
            if not visible_in_layers(lowers, f):
                make_parents(f)
                p = os.path.join(target, f)
                open(p, "a").close()
                os.chmod(p, 0o755)
        for link, dest in INIT_LAYER_LINKS.items():
            if not visible_in_layers(lowers, link):
                make_parents(link)
                os.symlink(dest, os.path.join(target, link))

    def container_mount_id(self, container_id: str) -> str | None:
        return (fsutil.read_text(os.path.join(self.root.mountsdb, container_id, "mount-id")) or "").strip() or None

    def container_parent(self, container_id: str) -> str | None:
        """ChainID of the image layer a container's layers sit on."""
        return (fsutil.read_text(os.path.join(self.root.mountsdb, container_id, "parent")) or "").strip() or None

    def remove_container_layers(self, container_id: str) -> None:
        d = os.path.join(self.root.mountsdb, container_id)
        mount_id = self.container_mount_id(container_id)
        with self.lock():
            if mount_id:
                self.driver.remove(mount_id)
                self.driver.remove(f"{mount_id}-init")
            fsutil.rmtree(d, ignore_errors=True)

    def containers_using_layers(self) -> set[str]:
        try:
            return set(os.listdir(self.root.mountsdb))
        except FileNotFoundError:
            return set()
