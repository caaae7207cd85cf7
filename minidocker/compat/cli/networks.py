"""Network commands: network create/ls/inspect/rm/connect/disconnect/prune, and port."""
from __future__ import annotations

import sys

from ...engine.runtime import Runtime
from ...errors import MinidockerError, NotFound
from ...network import ports as portsmod
from ...network.store import PREDEFINED
from ...network.modes import Networking

NET_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
               "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"}
NET_DEFAULT = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"


def _net() -> Networking:
    return Networking(Runtime().root)


def cmd_network_create(args) -> int:
    labels = dict(lab.partition("=")[::2] for lab in args.label)
    rec = _net().store.create(args.name, subnet=args.subnet, gateway=args.gateway,
                              driver=args.driver, labels=labels, internal=args.internal)
    print(rec["Id"])
    return 0


def cmd_network_ls(args) -> int:
    from .common import unescape_format, render_table
    nets = sorted(_net().store.all(), key=lambda n: n["Name"])
    if args.filter:
        for f in args.filter:
            key, _, value = f.partition("=")
            if key == "name":
                nets = [n for n in nets if value in n["Name"]]
            elif key == "driver":
                nets = [n for n in nets if n["Driver"] == value]
            elif key == "id":
                nets = [n for n in nets if n["Id"].startswith(value)]
            else:
                raise MinidockerError(f"Invalid filter '{key}'")
    if args.quiet:
        for n in nets:
            print(n["Id"] if args.no_trunc else n["Id"][:12])
        return 0
    rows = [{"ID": n["Id"] if args.no_trunc else n["Id"][:12], "Name": n["Name"], "Driver": n["Driver"],
             "Scope": n["Scope"], "IPv6": str(n["EnableIPv6"]).lower(), "Internal": str(n["Internal"]).lower(),
             "Labels": ",".join(f"{k}={v}" for k, v in sorted(n["Labels"].items())),
             "CreatedAt": n["Created"]} for n in nets]
    template = unescape_format(args.format) if args.format else NET_DEFAULT
    sys.stdout.write(render_table(template, rows, NET_HEADERS))
    return 0


def cmd_network_inspect(args) -> int:
    from .common import err, print_inspect, parse_format
    template = parse_format(args.format)
    store = _net().store
    results, failed = [], 0
    for ref in args.networks:
        try:
            results.append(store.get(ref))
        except NotFound:
            err(f"network {ref} not found")
            failed = 1
    return print_inspect(results, template) or failed


def cmd_network_rm(args) -> int:
    from .common import each
    net = _net()
    return each(args.networks, lambda ref: (net.remove_network(ref), ref)[1])


def cmd_network_connect(args) -> int:
    Runtime().connect(args.container, args.network, aliases=args.alias, ip=args.ip)
    return 0


def cmd_network_disconnect(args) -> int:
    Runtime().disconnect(args.container, args.network, force=args.force)
    return 0


def cmd_network_prune(args) -> int:
    from .common import confirm
    if not confirm("WARNING! This will remove all custom networks not used by at least one container.",
                    args.force):
        return 0
    net = _net()
    removed = []
    for n in net.store.all():
        if n["Name"] in PREDEFINED or n["Containers"]:
            continue
        if net.in_use(n):
            continue
        net.remove_network(n["Id"])
        removed.append(n["Name"])
    from .common import print_section
    print_section("Deleted Networks:", removed)
    return 0


def cmd_port(args) -> int:
    rt = Runtime()
    rec = rt.inspect(args.container)
    ports = rec["NetworkSettings"].get("Ports") or {}
    published = {k: v for k, v in ports.items() if v}
    lines = portsmod.port_lines(published, args.port)
    if args.port and not lines:
        raise MinidockerError(f"No public port '{args.port if '/' in args.port else args.port + '/tcp'}' "
                              f"published for {args.container}")
    for line in lines:
        print(line)
    return 0


def register(sub, management: bool = False) -> None:
    from .common import Parser
    if management:
        return
    p = sub.add_parser("port", help="List port mappings or a specific mapping for the container")
    p.set_defaults(func=cmd_port)
    p.add_argument("container")
    p.add_argument("port", nargs="?", default=None)

    gp = sub.add_parser("network", help="Manage networks")
    gsub = gp.add_subparsers(dest="subcommand", metavar="COMMAND", parser_class=Parser)
    p = gsub.add_parser("create", help="Create a network")
    p.set_defaults(func=cmd_network_create)
    p.add_argument("-d", "--driver", default="bridge")
    p.add_argument("--subnet", default=None)
    p.add_argument("--gateway", default=None)
    p.add_argument("--internal", action="store_true")
    p.add_argument("--label", action="append", default=[])
    p.add_argument("name")
    p = gsub.add_parser("ls", aliases=["list"], help="List networks")
    p.set_defaults(func=cmd_network_ls)
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format", default=None)
    p = gsub.add_parser("inspect", help="Display detailed information on one or more networks")
    p.set_defaults(func=cmd_network_inspect)
    p.add_argument("-f", "--format", default=None)
    p.add_argument("networks", nargs="+")
    p = gsub.add_parser("rm", aliases=["remove"], help="Remove one or more networks")
    p.set_defaults(func=cmd_network_rm)
    p.add_argument("networks", nargs="+")
    p = gsub.add_parser("connect", help="Connect a container to a network")
    p.set_defaults(func=cmd_network_connect)
    p.add_argument("--alias", action="append", default=[])
    p.add_argument("--ip", default=None)
    p.add_argument("network")
    p.add_argument("container")
    p = gsub.add_parser("disconnect", help="Disconnect a container from a network")
    p.set_defaults(func=cmd_network_disconnect)
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("network")
    p.add_argument("container")
    p = gsub.add_parser("prune", help="Remove all unused networks")
    p.set_defaults(func=cmd_network_prune)
    p.add_argument("-f", "--force", action="store_true")
