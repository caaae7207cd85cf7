"""System commands: system prune (and the leftovers only a crash leaves behind), system restore
(what dockerd does when it starts: run at boot)."""
from __future__ import annotations

from ...engine.runtime import Runtime
from . import format as fmt

PRUNE_WARNING = """WARNING! This will remove:
  - all stopped containers
  - all networks not used by at least one container
  - all dangling images
  - all dangling build cache
  - what a crash may leave: mounts, layers, cgroups, bridges, firewall rules, temporary files"""


def cmd_system_prune(args) -> int:
    from .common import confirm, print_section
    if not confirm(PRUNE_WARNING, args.force):
        return 0
    rt = Runtime()
    from ...images import manage
    removed, space = rt.prune()
    print_section("Deleted Containers:", removed)
    lines, image_space = manage.prune(rt, all_images=args.all)
    print_section("Deleted Images:", lines)
    space += image_space
    if args.volumes:  # anonymous volumes no container uses
        from .volumes import prune_volumes
        gone, volume_space = prune_volumes(rt)
        space += volume_space
        print_section("Deleted Volumes:", gone)
    print_section("Cleaned up leftovers:", rt.cleanup_leftovers())
    print(f"Total reclaimed space: {fmt.human_size(space, 4)}")
    return 0


def cmd_system_restore(args) -> int:
    from ...engine.restore import restore
    _, failed = restore(Runtime())
    return 1 if failed else 0


def register(sub, management: bool = False) -> None:
    from .common import Parser
    if management:
        return
    gp = sub.add_parser("system", help="Manage minidocker")
    gsub = gp.add_subparsers(dest="subcommand", metavar="COMMAND", parser_class=Parser)
    p = gsub.add_parser("restore", help="At boot: start the containers whose restart policy says so "
                                        "(what dockerd does when it starts)")
    p.set_defaults(func=cmd_system_restore)
    p = gsub.add_parser("prune", help="Remove unused data")
    p.set_defaults(func=cmd_system_prune)
    p.add_argument("-a", "--all", action="store_true", help="Remove all unused images not just dangling ones")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    p.add_argument("--volumes", action="store_true", help="Prune volumes")
