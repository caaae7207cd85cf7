"""Volume commands: volume create/ls/inspect/rm/prune."""
from __future__ import annotations

import sys

from ...engine.runtime import Runtime
from ...errors import MinidockerError
from ...volumes import VolumeStore
from . import format as fmt


def _users(rt: Runtime, name: str) -> list[str]:
    return [r["Id"] for r in rt.list(all=True)
            if any(m.get("Type") == "volume" and m.get("Name") == name for m in r.get("Mounts") or [])]


def prune_volumes(rt: Runtime, named_too: bool = False) -> tuple[list[str], int]:
    """Remove the volumes no container uses: anonymous ones only (docker >= 23), named ones
    too with `named_too` (`volume prune -a`). Returns the names and the bytes freed."""
    return VolumeStore(rt.root).prune(lambda name: _users(rt, name), named_too)


def cmd_volume_create(args) -> int:
    labels = dict(lab.partition("=")[::2] for lab in args.label)
    print(VolumeStore(Runtime().root).create(args.name, labels=labels, driver=args.driver))
    return 0


VOLUME_FILTERS = ("dangling", "name", "driver", "label")


def volume_matches(name: str, meta: dict, in_use: bool, groups: dict[str, list[str]]) -> bool:
    """`volume ls --filter` (pure): values of one key OR'ed, keys AND'ed, as dockerd does."""
    labels = meta.get("Labels") or {}

    def label_ok(value: str) -> bool:
        k, eq, v = value.partition("=")
        return k in labels and (not eq or labels[k] == v)
    tests = {"dangling": lambda v: (v in ("true", "1")) != in_use, "name": lambda v: v in name,
             "driver": lambda v: v == "local", "label": label_ok}
    return all(any(tests[key](v) for v in values) for key, values in groups.items())


def parse_volume_filters(filters: list[str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for f in filters:
        key, _, value = f.partition("=")
        if key not in VOLUME_FILTERS:
            raise MinidockerError(f"Invalid filter '{key}'")
        if key == "dangling" and value not in ("true", "false", "1", "0"):
            raise MinidockerError(f"Invalid filter 'dangling={value}'")
        groups.setdefault(key, []).append(value)
    return groups


def cmd_volume_ls(args) -> int:
    from .common import unescape_format, render_table
    rt = Runtime()
    vs = VolumeStore(rt.root)
    groups = parse_volume_filters(args.filter)
    names = [n for n in vs.names() if not groups or volume_matches(n, vs.get(n), bool(_users(rt, n)), groups)]
    if args.quiet:
        print("\n".join(names) + ("\n" if names else ""), end="")
        return 0
    rows = [{"Driver": "local", "Name": n, "Mountpoint": vs.path(n), "Scope": "local"} for n in names]
    template = unescape_format(args.format) if args.format else "table {{.Driver}}\t{{.Name}}"
    sys.stdout.write(render_table(template, rows, {"Driver": "DRIVER", "Name": "VOLUME NAME",
                                                   "Mountpoint": "MOUNTPOINT", "Scope": "SCOPE"}))
    return 0


def cmd_volume_inspect(args) -> int:
    from .common import each, print_inspect, parse_format
    template = parse_format(args.format)
    vs = VolumeStore(Runtime().root)
    results = []
    failed = each(args.volumes, lambda n: results.append(vs.get(n)))
    return print_inspect(results, template) or failed


def cmd_volume_rm(args) -> int:
    from .common import each
    rt = Runtime()
    vs = VolumeStore(rt.root)

    def users(name):
        ids = _users(rt, name)
        return [u for u in ids if rt.inspect(u)["State"]["Running"]] if args.force else ids

    def rm(name):
        vs.remove(name, users)
        return name
    return each(args.volumes, rm)


def cmd_volume_prune(args) -> int:
    from .common import confirm, print_section
    if not confirm("WARNING! This will remove all local volumes not used by at least one container.", args.force):
        return 0
    removed, space = prune_volumes(Runtime(), named_too=args.all)
    print_section("Deleted Volumes:", removed)
    print(f"Total reclaimed space: {fmt.human_size(space, 4)}")
    return 0


def register(sub, management: bool = False) -> None:
    from .common import Parser
    if management:
        return
    gp = sub.add_parser("volume", help="Manage volumes")
    gsub = gp.add_subparsers(dest="subcommand", metavar="COMMAND", parser_class=Parser)
    p = gsub.add_parser("create", help="Create a volume")
    p.set_defaults(func=cmd_volume_create)
    p.add_argument("--label", action="append", default=[])
    p.add_argument("-d", "--driver", default="local")
    p.add_argument("name", nargs="?", default=None)
    p = gsub.add_parser("ls", aliases=["list"], help="List volumes")
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="Provide filter values (e.g. 'dangling=true', 'name=', 'label=', 'driver=')")
    p.set_defaults(func=cmd_volume_ls)
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--format", default=None)
    p = gsub.add_parser("inspect", help="Display detailed information on one or more volumes")
    p.set_defaults(func=cmd_volume_inspect)
    p.add_argument("-f", "--format", default=None)
    p.add_argument("volumes", nargs="+")
    p = gsub.add_parser("rm", aliases=["remove"], help="Remove one or more volumes")
    p.set_defaults(func=cmd_volume_rm)
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("volumes", nargs="+")
    p = gsub.add_parser("prune", help="Remove unused local volumes")
    p.set_defaults(func=cmd_volume_prune)
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-f", "--force", action="store_true")
