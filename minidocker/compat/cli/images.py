"""Image commands: images (image ls), image inspect."""
from __future__ import annotations

import argparse
import os
import sys

from ...gotime import parse_rfc3339
from ...errors import MinidockerError
from ...images import busybox
from ...images.store import ImageStore
from ...paths import StateRoot
from . import format as fmt

IMAGES_HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "CreatedSince": "CREATED",
                  "CreatedAt": "CREATED AT", "Size": "SIZE", "Digest": "DIGEST"}
IMAGES_DEFAULT = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"


def _store() -> ImageStore:
    return ImageStore(StateRoot.from_env())


def image_rows(store: ImageStore, trunc: bool = True, now: float | None = None,
               all_images: bool = False) -> list[dict]:
    """One row per (image, tag), untagged images as <none> -- newest first, like docker.
    Untagged intermediate images (a build's steps, parents of others) only with -a."""
    rows = []
    tags = store.tags()
    parents = {store.parent_of(i) for i in store.image_ids()}
    for image_id in store.image_ids():
        if not all_images and image_id in parents and image_id not in tags.values():
            continue
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


def docker_config(cfg: dict) -> dict:
    """An image's config as `docker image inspect` shows it: every field of Docker's
    container.Config, null where unset (omitempty ones only when set)."""
    out = {"Hostname": "", "Domainname": "", "User": cfg.get("User", ""), "AttachStdin": False,
           "AttachStdout": False, "AttachStderr": False}
    if cfg.get("ExposedPorts"):
        out["ExposedPorts"] = cfg["ExposedPorts"]
    out.update({"Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": cfg.get("Env"),
                "Cmd": cfg.get("Cmd")})
    if cfg.get("Healthcheck"):
        out["Healthcheck"] = cfg["Healthcheck"]
    out.update({"Image": cfg.get("Image", ""), "Volumes": cfg.get("Volumes"),
                "WorkingDir": cfg.get("WorkingDir", ""), "Entrypoint": cfg.get("Entrypoint"),
                "OnBuild": cfg.get("OnBuild"), "Labels": cfg.get("Labels")})
    for k in ("StopSignal", "Shell"):
        if cfg.get(k):
            out[k] = cfg[k]
    return out


def image_inspect_obj(store: ImageStore, ref: str) -> dict:
    img = store.resolve(ref)
    cfg = img.config
    return {
        "Id": img.id, "RepoTags": store.tags_of(img.id), "RepoDigests": [],
        "Parent": store.parent_of(img.id) or "", "Comment": cfg.get("comment", ""), "Created": cfg.get("created", ""),
        "Container": "", "ContainerConfig": cfg.get("container_config") or {},
        "DockerVersion": cfg.get("docker_version", ""), "Author": cfg.get("author", ""),
        "Config": docker_config(cfg.get("config") or {}), "Architecture": cfg.get("architecture", ""),
        "Os": cfg.get("os", ""), "Size": store.size(img), "VirtualSize": store.size(img),
        "GraphDriver": {"Data": _graph_data(store, img), "Name": "overlay2"},
        "RootFS": {"Type": "layers", "Layers": img.diff_ids},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    }


def _graph_data(store: ImageStore, img) -> dict:
    from ...images.store import chain_ids
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
    from .common import unescape_format, render_table
    store = _store()
    rows = image_rows(store, trunc=not args.no_trunc, all_images=args.all)
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
    template = unescape_format(args.format) if args.format else IMAGES_DEFAULT
    sys.stdout.write(render_table(template, rows, IMAGES_HEADERS))
    return 0


def cmd_image_inspect(args) -> int:
    from .common import err, print_inspect, parse_format
    template = parse_format(args.format)
    store = _store()
    results, failed = [], 0
    for ref in args.names:
        try:
            results.append(image_inspect_obj(store, ref))
        except MinidockerError as e:
            err(str(e))
            failed = 1
    return print_inspect(results, template) or failed


def register(sub, management: bool = False) -> None:
    register_more(sub, management)
    if not management:
        register_registry(sub)
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


# ---------------------------------------------------------------------------- tag/rmi/history/...
def _runtime():
    from ...engine.runtime import Runtime
    return Runtime()


def cmd_tag(args) -> int:
    from ...images import manage
    store = _store()
    if busybox.is_embedded(args.source):
        busybox.ensure_busybox(store)  # the embedded image can be named before first use
    manage.tag(store, args.source, args.target)
    return 0


def cmd_rmi(args) -> int:
    from ...images import manage
    from .common import each
    rt = _runtime()
    return each(args.images, lambda ref: "\n".join(manage.remove(rt, ref, force=args.force)))


def cmd_history(args) -> int:
    from ...images import manage
    from .common import unescape_format, render_table
    rows = []
    for r in manage.history(_store(), args.image):
        created = parse_rfc3339(r["created"])
        by = r["created_by"] if args.no_trunc else fmt.ellipsis(r["created_by"], 45)
        rows.append({"ID": (r["id"] if args.no_trunc or r["id"] == "<missing>" else r["id"].split(":")[1][:12]),
                     "CreatedSince": fmt.since(created) if created else "N/A", "CreatedAt": r["created"],
                     "CreatedBy": by, "Size": fmt.human_size(r["size"]), "Comment": r["comment"]})
    if args.quiet:
        print("\n".join(r["ID"] for r in rows))
        return 0
    headers = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
               "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}
    template = unescape_format(args.format) if args.format else \
        "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
    sys.stdout.write(render_table(template, rows, headers))
    return 0


def cmd_scan(args) -> int:
    """The image's packages (an SBOM) matched against OSV advisory files (images/scan.py)."""
    import json
    from ...images import scan
    store = _store()
    img = store.resolve(args.image)
    texts = []
    for path in args.advisories:
        try:
            with open(path, encoding="utf-8") as f:
                texts.append(f.read())
        except OSError as e:
            raise MinidockerError(f"advisories {path}: {e.strerror}", exit_code=125) from None
    try:
        advisories = scan.load_advisories(texts)
    except ValueError as e:
        raise MinidockerError(f"advisories: {e}", exit_code=125) from None
    with store.image_rootfs(img) as root:
        packages = scan.read_packages(root)
    findings = scan.match(packages, advisories)
    if args.sbom:
        with open(args.sbom, "w", encoding="utf-8") as f:
            json.dump(scan.cyclonedx(args.image, img.id, packages, findings), f, indent=2)
    if args.format == "json":
        print(json.dumps({"image": args.image, "packages": packages, "vulnerabilities": findings}, indent=2))
    else:
        counts = {}
        for p in packages:
            counts[p["ecosystem"]] = counts.get(p["ecosystem"], 0) + 1
        print(f"{args.image} ({img.id[7:19]}): {len(packages)} packages "
              f"({', '.join(f'{n} {e}' for e, n in sorted(counts.items())) or 'no package database found'}), "
              f"{len(advisories)} advisories, {len(findings)} vulnerabilities")
        if findings:
            from .common import render_table
            rows = [{"Package": f["package"], "Id": f["id"], "Severity": f["severity"], "Installed": f["installed"],
                     "Fixed": f["fixed"] or "-", "Summary": fmt.ellipsis(f["summary"], 40)} for f in findings]
            headers = {"Package": "PACKAGE", "Id": "VULNERABILITY", "Severity": "SEVERITY",
                       "Installed": "INSTALLED", "Fixed": "FIXED IN", "Summary": "SUMMARY"}
            sys.stdout.write(render_table("table {{.Package}}\t{{.Id}}\t{{.Severity}}\t{{.Installed}}\t{{.Fixed}}"
                                          "\t{{.Summary}}", rows, headers))
    return args.exit_code if findings else 0


def cmd_image_prune(args) -> int:
    from ...images import manage
    from .common import confirm
    warning = ("WARNING! This will remove all images without at least one container associated to them."
               if args.all else "WARNING! This will remove all dangling images.")
    if not confirm(warning, args.force):
        return 0
    from .common import print_section
    lines, space = manage.prune(_runtime(), all_images=args.all)
    print_section("Deleted Images:", lines)
    print(f"Total reclaimed space: {fmt.human_size(space, 4)}")
    return 0


def _output(path: str | None):
    """-o FILE, or stdout -- but never a terminal: a tar on screen helps nobody."""
    if path:
        return open(path, "wb")
    if sys.stdout.isatty():
        raise MinidockerError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    return open(sys.stdout.fileno(), "wb", closefd=False)


def cmd_save(args) -> int:
    from ...images import transfer
    store = _store()
    for ref in args.images:
        store.resolve(ref)  # fail before writing anything
    out = _output(args.output)
    try:
        transfer.save(store, args.images, out)
    except BaseException:
        if args.output:
            out.close()
            os.unlink(args.output)  # no half-written archive left behind
        raise
    out.close()
    return 0


def _input_file(path: str) -> str:
    """A file to read an archive from, refused as docker refuses it (exit 1)."""
    if not os.path.exists(path):
        raise MinidockerError(f"open {path}: no such file or directory")
    if os.path.isdir(path):
        raise MinidockerError(f"read {path}: is a directory")
    import stat
    if stat.S_ISCHR(os.stat(path).st_mode) or stat.S_ISBLK(os.stat(path).st_mode):
        # /dev/zero would be read for ever (a tar stream ends, the device does not)
        raise MinidockerError(f"read {path}: is a device, not an archive file")
    if not os.access(path, os.R_OK):
        raise MinidockerError(f"open {path}: permission denied")
    return path


def cmd_load(args) -> int:
    from ...images import transfer
    if args.input:
        source = _input_file(args.input)
    else:
        if sys.stdin.isatty():
            raise MinidockerError("requested load from stdin, but stdin is empty")
        source = open(sys.stdin.fileno(), "rb", closefd=False)
    for line in transfer.load(_store(), source, bars=not args.quiet):
        if not args.quiet or line.startswith("Loaded"):
            print(line)
    return 0


def cmd_import(args) -> int:
    from ...images import manage
    if args.file == "-":
        source = open(sys.stdin.fileno(), "rb", closefd=False)
    elif args.file.startswith(("http://", "https://")):
        raise MinidockerError("importing from a URL is not supported; download the file first")
    else:
        source = _input_file(args.file)
    if args.repository:
        from ...images import reference
        try:
            reference.parse(args.repository)
        except MinidockerError as e:
            raise MinidockerError(str(e), exit_code=1) from None  # (docker import: 1)
    config = changes_to_config(args.change)
    print(manage.import_rootfs(_store(), source, args.repository, config, args.message, args.file))
    return 0


def changes_to_config(changes: list[str], base: dict | None = None) -> dict:
    """--change "CMD ..." lines (docker's subset: CMD ENTRYPOINT ENV EXPOSE LABEL ONBUILD USER
    VOLUME WORKDIR STOPSIGNAL) applied to an image config's "config" section."""
    cfg = dict(base or {})
    if not changes:
        return cfg
    from ..build import dockerfile
    text = "FROM scratch\n" + "\n".join(changes) + "\n"
    df = dockerfile.parse(text, {}, filename="--change")
    from ..build.builder import apply_config_instruction
    for ins in df.stages[0].instructions:
        apply_config_instruction(cfg, dockerfile.expand_instruction(ins, {}, "--change"), env={})
    return cfg


def cmd_export(args) -> int:
    from ...engine import changes
    rt = _runtime()
    rt.resolve(args.container)
    out = _output(args.output)
    try:
        changes.export(rt, args.container, out)
    finally:
        out.close()
    return 0


def cmd_commit(args) -> int:
    from ...engine import changes
    cfg = changes_to_config(args.change)
    print(changes.commit(_runtime(), args.container, args.repository, args.message, args.author, cfg,
                         pause=args.pause))
    return 0


def cmd_diff(args) -> int:
    from ...engine import changes
    for kind, path in changes.diff(_runtime(), args.container):
        print(f"{kind} {path}")
    return 0


def register_more(sub, management: bool = False) -> None:
    """The commands that move images around (registered next to `images`)."""
    def add(name, func, help, aliases=()):
        p = sub.add_parser(name, help=help, aliases=list(aliases))
        p.set_defaults(func=func)
        return p

    p = add("tag", cmd_tag, "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE")
    p.add_argument("source")
    p.add_argument("target")
    p = add("rmi" if not management else "rm", cmd_rmi, "Remove one or more images",
            aliases=["remove"] if management else [])
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--no-prune", action="store_true")
    p.add_argument("images", nargs="+")
    if not management:
        p = add("scan", cmd_scan, "List an image's packages and match them against vulnerability advisories")
        p.add_argument("--advisories", action="append", default=[], metavar="FILE",
                       help="OSV advisories (JSON: one, a list, or osv.dev's {\"vulns\": [...]}); repeatable")
        p.add_argument("--sbom", default=None, metavar="FILE", help="Write a CycloneDX SBOM of the image to FILE")
        p.add_argument("--format", choices=["table", "json"], default="table")
        p.add_argument("--exit-code", type=int, default=0, help="Exit code when vulnerabilities are found")
        p.add_argument("image")
    p = add("history", cmd_history, "Show the history of an image")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-H", "--human", action="store_true", default=True)
    p.add_argument("--format", default=None)
    p.add_argument("image")
    p = add("save", cmd_save, "Save one or more images to a tar archive (streamed to STDOUT by default)")
    p.add_argument("-o", "--output", default=None)
    p.add_argument("images", nargs="+")
    p = add("load", cmd_load, "Load an image from a tar archive or STDIN")
    p.add_argument("-i", "--input", default=None)
    p.add_argument("-q", "--quiet", action="store_true")
    p = add("import", cmd_import, "Import the contents from a tarball to create a filesystem image")
    p.add_argument("-c", "--change", action="append", default=[])
    p.add_argument("-m", "--message", default="")
    p.add_argument("file")
    p.add_argument("repository", nargs="?", default=None)
    if management:
        p = add("prune", cmd_image_prune, "Remove unused images")
        p.add_argument("-a", "--all", action="store_true")
        p.add_argument("-f", "--force", action="store_true")
    else:
        p = add("export", cmd_export, "Export a container's filesystem as a tar archive")
        p.add_argument("-o", "--output", default=None)
        p.add_argument("container")
        p = add("commit", cmd_commit, "Create a new image from a container's changes")
        p.add_argument("-a", "--author", default="")
        p.add_argument("-c", "--change", action="append", default=[])
        p.add_argument("-m", "--message", default="")
        p.add_argument("-p", "--pause", action=argparse.BooleanOptionalAction, default=True)
        p.add_argument("container")
        p.add_argument("repository", nargs="?", default=None)
        p = add("diff", cmd_diff, "Inspect changes to files or directories on a container's filesystem")
        p.add_argument("container")


# ---------------------------------------------------------------------------- registries
def _say(line: str) -> None:
    print(line, flush=True)


def cmd_pull(args) -> int:
    from ...images import registry
    platform = None
    if args.platform:
        os_, _, rest = args.platform.partition("/")
        arch, _, variant = rest.partition("/")
        platform = {"os": os_, "architecture": arch, **({"variant": variant} if variant else {})}
    registry.pull(_store(), args.image, platform=platform, say=(lambda s: None) if args.quiet else _say)
    if args.quiet:
        from ...images import reference
        r = reference.parse(args.image)
        print(f"{r.name}:{r.tag}" if r.tag else f"{r.name}@{r.digest}")
    return 0


def cmd_push(args) -> int:
    from ...images import registry
    registry.push(_store(), args.image, say=(lambda s: None) if args.quiet else _say)
    return 0


def cmd_login(args) -> int:
    from ...images import registry
    import getpass
    server = args.server or "docker.io"
    user = args.username or input("Username: ")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = args.password if args.password is not None else getpass.getpass("Password: ")
    if args.password is not None:
        print("WARNING! Using --password via the CLI is insecure. Use --password-stdin.", file=sys.stderr)
    registry.login(server, user, password)
    print(f"WARNING! Your password will be stored unencrypted in {registry.config_path()}.", file=sys.stderr)
    print("Login Succeeded")
    return 0


def cmd_logout(args) -> int:
    from ...images import registry
    server = args.server or "docker.io"
    if registry.remove_credentials(server):
        print(f"Removing login credentials for {server}")
    else:
        print(f"Not logged in to {server}")
    return 0


def register_registry(sub) -> None:
    p = sub.add_parser("pull", help="Download an image from a registry")
    p.set_defaults(func=cmd_pull)
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--platform", default=None)
    p.add_argument("image")
    p = sub.add_parser("push", help="Upload an image to a registry")
    p.set_defaults(func=cmd_push)
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("image")
    p = sub.add_parser("login", help="Log in to a registry")
    p.set_defaults(func=cmd_login)
    p.add_argument("-u", "--username", default=None)
    p.add_argument("-p", "--password", default=None)
    p.add_argument("--password-stdin", action="store_true")
    p.add_argument("server", nargs="?", default=None)
    p = sub.add_parser("logout", help="Log out from a registry")
    p.set_defaults(func=cmd_logout)
    p.add_argument("server", nargs="?", default=None)
