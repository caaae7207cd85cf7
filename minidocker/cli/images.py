"""Image commands: images (image ls), image inspect."""
from __future__ import annotations

import sys

from ..container.state import parse_rfc3339
from ..errors import MinidockerError
from ..images import busybox
from ..images.store import ImageStore
from ..paths import StateRoot
from . import format as fmt

IMAGES_HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "CreatedSince": "CREATED",
                  "CreatedAt": "CREATED AT", "Size": "SIZE", "Digest": "DIGEST"}
IMAGES_DEFAULT = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"


def _store() -> ImageStore:
    store = ImageStore(StateRoot.from_env())
    busybox.ensure_busybox(store)  # the embedded image is always there, as if pre-pulled
    return store


def image_rows(store: ImageStore, trunc: bool = True, now: float | None = None) -> list[dict]:
    """One row per (image, tag), untagged images as <none> -- newest first, like docker."""
    rows = []
    tags = store.tags()
    for image_id in store.image_ids():
        img = store.get(image_id)
        created = parse_rfc3339(img.config.get("created", ""))
        names = sorted(t for t, i in tags.items() if i == image_id) or ["<none>:<none>"]
        for name in names:
            repo, _, tag = name.rpartition(":")
            rows.append({"Repository": repo, "Tag": tag,
                         "ID": img.short_id if trunc else img.id,
                         "CreatedSince": fmt.since(created, now) if created else "N/A",
                         "CreatedAt": img.config.get("created", ""),
                         "Size": fmt.human_size(store.size(img)), "Digest": "<none>",
                         "_created": created or 0})
    rows.sort(key=lambda r: (-r["_created"], r["Repository"], r["Tag"]))
    return rows


def image_inspect_obj(store: ImageStore, ref: str) -> dict:
    img = store.resolve(ref)
    cfg = img.config
    return {
        "Id": img.id, "RepoTags": store.tags_of(img.id), "RepoDigests": [],
        "Parent": "", "Comment": cfg.get("comment", ""), "Created": cfg.get("created", ""),
        "Container": "", "ContainerConfig": cfg.get("container_config") or {},
        "DockerVersion": cfg.get("docker_version", ""), "Author": cfg.get("author", ""),
        "Config": cfg.get("config") or {}, "Architecture": cfg.get("architecture", ""),
        "Os": cfg.get("os", ""), "Size": store.size(img), "VirtualSize": store.size(img),
        "GraphDriver": {"Data": _graph_data(store, img), "Name": "overlay2"},
        "RootFS": {"Type": "layers", "Layers": img.diff_ids},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    }


def _graph_data(store: ImageStore, img) -> dict:
    from ..images.store import chain_ids
    chains = chain_ids(img.diff_ids)
    if not chains:
        return {}
    d = store.driver
    top = store.layer_cache_id(chains[-1])
    data = {"MergedDir": d.merged(top), "UpperDir": d.diff(top), "WorkDir": d.dir(top) + "/work"}
    lowers = [d.diff(store.layer_cache_id(c)) for c in reversed(chains[:-1])]
    if lowers:
        data["LowerDir"] = ":".join(lowers)
    return data


def cmd_images(args) -> int:
    from .containers import _unescape_format, render_table
    store = _store()
    rows = image_rows(store, trunc=not args.no_trunc)
    if args.repository:
        want = args.repository
        rows = [r for r in rows if r["Repository"] == want.split(":")[0]
                and (":" not in want or r["Tag"] == want.split(":", 1)[1])]
    if args.quiet:
        seen = []
        for r in rows:
            if r["ID"] not in seen:
                seen.append(r["ID"])
        print("\n".join(seen) + ("\n" if seen else ""), end="")
        return 0
    template = _unescape_format(args.format) if args.format else IMAGES_DEFAULT
    sys.stdout.write(render_table(template, rows, IMAGES_HEADERS))
    return 0


def cmd_image_inspect(args) -> int:
    from .containers import _err, _print_inspect, parse_format
    template = parse_format(args.format)
    store = _store()
    results, failed = [], 0
    for ref in args.names:
        try:
            results.append(image_inspect_obj(store, ref))
        except MinidockerError as e:
            _err(str(e))
            failed = 1
    return _print_inspect(results, template) or failed


def register(sub, management: bool = False) -> None:
    p = sub.add_parser("images" if not management else "ls", help="List images",
                       aliases=["list"] if management else [])
    p.set_defaults(func=cmd_images)
    p.add_argument("-a", "--all", action="store_true", help="Show all images")
    p.add_argument("-q", "--quiet", action="store_true", help="Only show image IDs")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("--format", default=None, help="Pretty-print images using a Go template")
    p.add_argument("repository", nargs="?", default=None)
    if management:
        p = sub.add_parser("inspect", help="Display detailed information on one or more images")
        p.set_defaults(func=cmd_image_inspect)
        p.add_argument("-f", "--format", default=None)
        p.add_argument("names", nargs="+")
