"""Talking to a registry: the Docker Registry HTTP API v2 (distribution), as `docker pull/push`.

    GET  /v2/                                 is this a registry? (401 = yes, log in)
    GET  /v2/<name>/manifests/<tag|digest>    the manifest (or an index of per-platform ones)
    GET  /v2/<name>/blobs/<digest>            a config or a (gzip) layer
    HEAD /v2/<name>/blobs/<digest>            do you have it already?
    POST /v2/<name>/blobs/uploads/            start an upload -> Location
    PUT  <location>?digest=<digest>           finish it with the bytes
    PUT  /v2/<name>/manifests/<tag>           publish the image under a tag

Authentication: a 401 carries `WWW-Authenticate: Bearer realm=..,service=..,scope=..`;
we ask the realm (with our credentials, if any) for a token and retry with
`Authorization: Bearer <token>` -- Docker Hub's flow. A registry protected by plain
htpasswd answers `Basic realm=..` instead.

Everything downloaded is checked against its digest *while streaming*, into a temporary
file; only a complete, verified blob becomes a layer, so a broken pull leaves nothing.
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request

from .platform import host_platform
from ..errors import MinidockerError, NotFound
from .. import progress
from . import reference as refmod
from .store import ImageStore, chain_id

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MANIFEST_TYPES = [DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX]
INDEX_TYPES = (DOCKER_LIST, OCI_INDEX)
HUB_HOST = "registry-1.docker.io"


class RegistryError(MinidockerError):
    exit_code = 1


# ---------------------------------------------------------------- credentials (`login`)
def config_path() -> str:
    base = os.environ.get("MINIDOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".minidocker")
    return os.path.join(base, "config.json")


def _load_config() -> dict:
    try:
        with open(config_path()) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return {}


def save_credentials(server: str, user: str, password: str) -> None:
    cfg = _load_config()
    cfg.setdefault("auths", {})[server] = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
    os.makedirs(os.path.dirname(config_path()), mode=0o700, exist_ok=True)
    from .. import fsutil
    fsutil.write_json(config_path(), cfg, mode=0o600)  # like ~/.docker/config.json: base64, not encrypted


def remove_credentials(server: str) -> bool:
    cfg = _load_config()
    if server not in cfg.get("auths", {}):
        return False
    del cfg["auths"][server]
    from .. import fsutil
    fsutil.write_json(config_path(), cfg, mode=0o600)
    return True


def credentials(server: str) -> tuple[str, str] | None:
    entry = _load_config().get("auths", {}).get(server)
    if not entry:
        return None
    user, _, pw = base64.b64decode(entry["auth"]).decode().partition(":")
    return user, pw


# ---------------------------------------------------------------- pure helpers
def registry_host(domain: str) -> str:
    return HUB_HOST if domain == refmod.DEFAULT_DOMAIN else domain


def is_insecure(host: str) -> bool:
    """Plain HTTP is allowed for registries on this machine (as Docker allows localhost)
    and for those listed in MINIDOCKER_INSECURE_REGISTRIES."""
    name = host.rsplit(":", 1)[0].strip("[]")
    extra = [x for x in os.environ.get("MINIDOCKER_INSECURE_REGISTRIES", "").split(",") if x]
    return name in ("localhost", "127.0.0.1", "::1") or name.startswith("127.") or host in extra


def parse_www_authenticate(header: str) -> tuple[str, dict]:
    """'Bearer realm="https://auth.docker.io/token",service="registry.docker.io"' ->
    ("bearer", {"realm": ..., "service": ...})."""
    scheme, _, rest = header.strip().partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


def select_platform(index: dict, want: dict) -> dict:
    """The manifest descriptor of an index that matches os/architecture(/variant)."""
    candidates = [m for m in index.get("manifests", [])
                  if (m.get("platform") or {}).get("os") == want["os"]
                  and (m.get("platform") or {}).get("architecture") == want["architecture"]]
    if want.get("variant"):
        exact = [m for m in candidates if (m.get("platform") or {}).get("variant") in (want["variant"], None)]
        candidates = exact or candidates
    if not candidates:
        plat = f"{want['os']}/{want['architecture']}" + (f"/{want['variant']}" if want.get("variant") else "")
        raise RegistryError(f"no matching manifest for {plat} in the manifest list entries")
    return candidates[0]


# ---------------------------------------------------------------- the HTTP client
class Client:
    def __init__(self, host: str, creds: tuple[str, str] | None = None):
        self.host = host
        self.scheme = "http" if is_insecure(host) else "https"
        self.creds = creds
        self.auth_header: str | None = None

    def url(self, path: str) -> str:
        return f"{self.scheme}://{self.host}/v2/{path}"

    def _open(self, req: urllib.request.Request):
        # never use proxies from the environment for a registry on this machine
        from ..core import rootless  # (rootless mode: connections from the host's network namespace)
        handlers = [urllib.request.ProxyHandler({})] if is_insecure(self.host) else []
        return urllib.request.build_opener(*handlers, *rootless.url_handlers()).open(req, timeout=60)

    def request(self, method: str, url: str, headers: dict | None = None, data=None, scope: str = ""):
        for attempt in range(2):
            h = dict(headers or {})
            if self.auth_header:
                h["Authorization"] = self.auth_header
            req = urllib.request.Request(url, data=data, headers=h, method=method)
            try:
                return self._open(req)
            except urllib.error.HTTPError as e:
                if e.code == 401 and attempt == 0 and self._authenticate(e.headers.get("WWW-Authenticate", ""), scope):
                    if hasattr(data, "seek"):
                        data.seek(0)
                    continue
                if e.code == 401 and url != self.url(""):
                    raise RegistryError("unauthorized: authentication required (minidocker login "
                                        f"{self.host})") from None
                raise
            except urllib.error.URLError as e:
                raise RegistryError(f'Get "{url}": {dial_error(url, e.reason)}') from None
        raise RegistryError("unauthorized")  # not reached

    def _authenticate(self, challenge: str, scope: str) -> bool:
        scheme, params = parse_www_authenticate(challenge)
        if scheme == "basic":
            if not self.creds:
                return False
            self.auth_header = "Basic " + base64.b64encode(f"{self.creds[0]}:{self.creds[1]}".encode()).decode()
            return True
        if scheme != "bearer" or "realm" not in params:
            return False
        query = {"service": params.get("service", "")}
        if scope or params.get("scope"):
            query["scope"] = scope or params["scope"]
        req = urllib.request.Request(params["realm"] + "?" + urllib.parse.urlencode(query))
        if self.creds:
            req.add_header("Authorization", "Basic " + base64.b64encode(
                f"{self.creds[0]}:{self.creds[1]}".encode()).decode())
        try:
            with self._open(req) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as e:
            raise RegistryError(f"unauthorized: authentication required ({e.code} from {params['realm']})") from None
        except urllib.error.URLError as e:
            raise RegistryError(f'Get "{params["realm"]}": {dial_error(params["realm"], e.reason)}') from None
        token = body.get("token") or body.get("access_token")
        if not token:
            return False
        self.auth_header = f"Bearer {token}"
        return True

    # --- the API ---
    def ping(self) -> None:
        try:
            self.request("GET", self.url("")).close()
        except urllib.error.HTTPError as e:
            if e.code == 401:
                raise RegistryError("unauthorized: incorrect username or password") from None
            raise RegistryError(f"registry {self.host} answered {e.code}") from None

    def get_manifest(self, repo: str, ref: str) -> tuple[str, bytes, str]:
        try:
            resp = self.request("GET", self.url(f"{repo}/manifests/{ref}"),
                                {"Accept": ", ".join(MANIFEST_TYPES)}, scope=f"repository:{repo}:pull")
        except urllib.error.HTTPError as e:
            if e.code in (404, 401, 403):
                raise NotFound(f"manifest for {self.host}/{repo}:{ref} not found: manifest unknown"
                               if e.code == 404 else
                               f"pull access denied for {repo}, repository does not exist or may require "
                               "'docker login'") from None
            raise RegistryError(f"error fetching manifest: {e.code} {e.reason}") from None
        with resp:
            body = resp.read()
            media = (resp.headers.get("Content-Type") or "").split(";")[0]
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if ref.startswith("sha256:") and digest != ref:
            raise RegistryError(f"manifest digest mismatch: wanted {ref}, got {digest}")
        if media not in MANIFEST_TYPES:
            media = json.loads(body).get("mediaType", media)
        return media, body, digest

    def fetch_blob(self, repo: str, digest: str, out, progress=None) -> int:
        """Stream a blob into `out`, verifying its digest; returns its size."""
        try:
            resp = self.request("GET", self.url(f"{repo}/blobs/{digest}"), scope=f"repository:{repo}:pull")
        except urllib.error.HTTPError as e:
            raise RegistryError(f"error fetching blob {digest}: {e.code} {e.reason}") from None
        h, size = hashlib.sha256(), 0
        with resp:
            while chunk := resp.read(1 << 16):
                h.update(chunk)
                out.write(chunk)
                size += len(chunk)
                if progress:
                    progress(len(chunk))
        if "sha256:" + h.hexdigest() != digest:
            raise RegistryError(f"filesystem layer verification failed for digest {digest}")
        return size

    def blob_exists(self, repo: str, digest: str) -> bool:
        try:
            self.request("HEAD", self.url(f"{repo}/blobs/{digest}"), scope=f"repository:{repo}:push,pull").close()
            return True
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return False
            raise RegistryError(f"checking blob {digest}: {e.code} {e.reason}") from None

    def upload_blob(self, repo: str, digest: str, path: str, desc: str | None = None) -> None:
        """Upload the blob at `path`; `desc` names its progress bar (None: no bar)."""
        scope = f"repository:{repo}:push,pull"
        try:
            with self.request("POST", self.url(f"{repo}/blobs/uploads/"), data=b"", scope=scope) as resp:
                location = resp.headers["Location"]
            location = urllib.parse.urljoin(self.url(""), location)
            sep = "&" if "?" in location else "?"
            size = os.path.getsize(path)
            bar = progress.bar(desc, size) if desc else None
            try:
                with open(path, "rb") as f:
                    self.request("PUT", f"{location}{sep}digest={urllib.parse.quote(digest)}",
                                 {"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                                 data=progress.Counted(f, bar), scope=scope).close()
            finally:
                if bar:
                    bar.close()
        except urllib.error.HTTPError as e:
            if e.code in (401, 403):
                raise RegistryError("denied: requested access to the resource is denied") from None
            raise RegistryError(f"blob upload failed: {e.code} {e.reason}") from None

    def put_manifest(self, repo: str, tag: str, media_type: str, body: bytes) -> None:
        try:
            self.request("PUT", self.url(f"{repo}/manifests/{tag}"), {"Content-Type": media_type},
                         data=body, scope=f"repository:{repo}:push,pull").close()
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")[:200]
            raise RegistryError(f"manifest upload failed: {e.code} {e.reason} {detail}".strip()) from None


def dial_error(url: str, reason) -> str:
    """A connection failure in Go's words (as docker prints them), not a Python errno."""
    import socket
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    if isinstance(reason, socket.gaierror):
        return f"dial tcp: lookup {host}: no such host"
    if isinstance(reason, ConnectionRefusedError):
        return f"dial tcp {host}:{port}: connect: connection refused"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"dial tcp {host}:{port}: i/o timeout"
    if isinstance(reason, OSError) and reason.strerror:
        return f"dial tcp {host}:{port}: {reason.strerror.lower()}"
    return str(reason)


def client_for(ref: refmod.Reference) -> Client:
    host = registry_host(ref.domain)
    return Client(host, credentials(ref.domain) or credentials(host))


# ---------------------------------------------------------------- pull
def pull(store: ImageStore, name: str, platform: dict | None = None, say=print) -> str:
    """`docker pull` (see _pull), while holding ImageStore.working()."""
    with store.working():
        return _pull(store, name, platform, say)


def _pull(store: ImageStore, name: str, platform: dict | None = None, say=print) -> str:
    """Pull `name` into the store; return the image id. `say` gets docker's status lines."""
    ref = refmod.parse(name)
    client = client_for(ref)
    repo = ref.path
    tag_or_digest = ref.digest or ref.tag
    say(f"{ref.tag or ref.digest}: Pulling from {repo}")
    media, body, digest = client.get_manifest(repo, tag_or_digest)
    if media in INDEX_TYPES or "manifests" in json.loads(body):
        chosen = select_platform(json.loads(body), platform or host_platform())
        media, body, _ = client.get_manifest(repo, chosen["digest"])
    manifest = json.loads(body)
    if manifest.get("schemaVersion") == 1:
        raise RegistryError("schema 1 manifests are not supported (the registry is too old)")
    cfg_desc = manifest["config"]
    import io
    buf = io.BytesIO()
    client.fetch_blob(repo, cfg_desc["digest"], buf)
    config_raw = buf.getvalue()
    diff_ids = json.loads(config_raw).get("rootfs", {}).get("diff_ids", [])
    layers = manifest.get("layers", [])
    if len(diff_ids) != len(layers):
        raise RegistryError("invalid image: the manifest's layers do not match the config's diff_ids")
    parent, fresh = None, False
    for desc, diff_id in zip(layers, diff_ids):
        short = desc["digest"].split(":")[1][:12]
        chain = chain_id(parent, diff_id)
        if store.has_layer(chain):
            say(f"{short}: Already exists")
            parent = chain
            continue
        fd, tmp = tempfile.mkstemp(prefix="blob-", dir=store.root.tmp)
        bar = progress.bar(short, desc.get("size"))
        try:
            with os.fdopen(fd, "wb") as out:
                client.fetch_blob(repo, desc["digest"], out, bar.update if bar else None)
            parent = store.register_layer(tmp, parent, diff_id=diff_id)
        finally:
            if bar:
                bar.close()
            os.unlink(tmp)  # verified or not, the download itself never stays
        fresh = True
        say(f"{short}: Pull complete")
    img = store.put_image(config_raw)
    old = store.tags().get(str(ref)) if ref.tag else None
    if ref.tag:
        store.tag(ref, img.id)
    say(f"Digest: {digest}")
    if fresh or old != img.id:
        say(f"Status: Downloaded newer image for {ref}")
    else:
        say(f"Status: Image is up to date for {ref}")
    say(f"{ref.name}:{ref.tag}" if ref.tag else f"{ref.name}@{ref.digest}")
    return img.id


# ---------------------------------------------------------------- push
def _gzip_layer(store: ImageStore, chain: str, path: str) -> tuple[str, int]:
    """The layer's tar, gzip-compressed the same way every time (mtime 0): same digest."""
    h = hashlib.sha256()

    class Hashing:
        def __init__(self, f):
            self.f = f

        def write(self, b):
            h.update(b)
            return self.f.write(b)

        def flush(self):
            self.f.flush()

    with open(path, "wb") as raw:
        hw = Hashing(raw)
        with gzip.GzipFile(fileobj=hw, mode="wb", mtime=0, compresslevel=6) as gz:
            store.layer_tar(chain, gz)
    return "sha256:" + h.hexdigest(), os.path.getsize(path)


def push(store: ImageStore, name: str, say=print) -> str:
    ref = refmod.parse(name)
    img = store.resolve(str(ref))
    client = client_for(ref)
    repo = ref.path
    say(f"The push refers to repository [{ref.name}]")
    from .store import chain_ids
    layer_descs = []
    with tempfile.TemporaryDirectory(dir=store.root.tmp) as tmp:
        for chain in chain_ids(img.diff_ids):
            path = os.path.join(tmp, "layer.tar.gz")
            digest, size = _gzip_layer(store, chain, path)
            short = store.layer_diff_id(chain).split(":")[1][:12]
            if client.blob_exists(repo, digest):
                say(f"{short}: Layer already exists")
            else:
                client.upload_blob(repo, digest, path, desc=short)
                say(f"{short}: Pushed")
            layer_descs.append({"mediaType": DOCKER_LAYER_GZIP, "size": size, "digest": digest})
        cfg_path = os.path.join(tmp, "config.json")
        with open(cfg_path, "wb") as f:
            f.write(img.raw)
        if not client.blob_exists(repo, img.id):
            client.upload_blob(repo, img.id, cfg_path)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                           "config": {"mediaType": DOCKER_CONFIG, "size": len(img.raw), "digest": img.id},
                           "layers": layer_descs}, indent=3).encode()
    client.put_manifest(repo, ref.tag or "latest", DOCKER_MANIFEST, manifest)
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    say(f"{ref.tag}: digest: {digest} size: {len(manifest)}")
    return digest


def login(server: str, user: str, password: str) -> None:
    host = registry_host(server)
    Client(host, (user, password)).ping()
    save_credentials(server, user, password)
