"""The `minidocker` command line: docker's commands, flags, output and exit codes.

    minidocker [--root DIR] COMMAND [OPTIONS] ...

Parsing lives here; each command is a small function in containers.py, images.py or
system.py that calls the engine (engine/runtime.py) and prints like docker does.
Errors print one line and exit with docker's code: 125 for usage and runtime errors,
126/127 when the container's command cannot be run, 1 for a failed command.
"""
from __future__ import annotations

import os
import sys

from ...errors import MinidockerError
from .common import Parser, UsageError


def build_parser() -> Parser:
    from . import build, containers, images, networks, serve, system, volumes
    p = Parser(prog="minidocker", description="A small, real container runtime that teaches how Docker works.")
    p.add_argument("--root", help="State directory (default $MINIDOCKER_ROOT or /var/lib/minidocker)")
    p.add_argument("-v", "--version", action="store_true", help="Print version information and quit")
    p.add_argument("--userns-remap", metavar="USER[:GROUP]",
                   help="Root in containers is USER's range from /etc/subuid (\"default\": dockremap); "
                        "state in <root>/<uid>.<gid> (dockerd's option)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    containers.register(sub)
    images.register(sub)
    system.register(sub)
    networks.register(sub)
    build.register(sub)
    volumes.register(sub)
    serve.register(sub)

    # `minidocker container ls`, `minidocker image ls`, ...: docker's management commands
    for group, module in (("container", containers), ("image", images)):
        gp = sub.add_parser(group, help=f"Manage {group}s")
        gsub = gp.add_subparsers(dest="subcommand", metavar="COMMAND", parser_class=Parser)
        module.register(gsub, management=True)
    for name, parser in sub.choices.items():  # every --help names the notebook that teaches it
        if name in TAUGHT_IN:
            parser.description = f"{parser.description or ''}\n\nTaught in notebooks/{TAUGHT_IN[name]}.ipynb".lstrip()
    return p


# which notebook explains each command (the course: notebooks/, README "The course")
TAUGHT_IN = {
    **dict.fromkeys(["run", "create", "start", "stop", "kill", "rm", "ps", "logs", "wait", "inspect", "container"],
                    "01-container-is-a-process"),
    "exec": "03-namespaces",
    **dict.fromkeys(["pause", "unpause", "update", "stats"], "04-cgroups"),
    **dict.fromkeys(["diff", "history"], "05-overlay2"),
    **dict.fromkeys(["volume", "cp"], "07-volumes-and-data"),
    **dict.fromkeys(["build", "images", "image", "tag", "rmi", "save", "load", "push", "pull", "login", "logout"],
                    "08-images-and-build"),
    **dict.fromkeys(["restart", "attach", "events"], "09-lifecycle-and-operations"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.version:
            from ... import __version__
            print(f"minidocker version {__version__}")
            return 0
        func = getattr(args, "func", None)
        if func is None:
            parser.print_help()
            return 0 if not argv else 125
        if args.root:
            os.environ["MINIDOCKER_ROOT"] = os.path.abspath(args.root)
        if os.geteuid() != 0 and getattr(args, "needs_root", True):
            # rootless mode: root in a user namespace of our own (core/rootless.py)
            if args.userns_remap:
                raise MinidockerError("--userns-remap is not supported in rootless mode", exit_code=1)
            from ...core import rootless
            rootless.enter()
        if args.userns_remap:  # from here on, the state root is the remapped one
            from ...engine import remap
            from ...paths import default_root
            os.environ["MINIDOCKER_ROOT"] = remap.setup(args.userns_remap, os.path.abspath(default_root()))
        return func(args) or 0
    except MinidockerError as e:
        print(_prefix(argv, e) + str(e), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `minidocker logs x | head`: the reader left; not an error worth a traceback
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except OSError as e:
        print(_prefix(argv, e) + str(e), file=sys.stderr)
        return 125


def _prefix(argv: list[str], error: Exception | None = None) -> str:
    # `docker run` says "docker: ..." before its errors, other commands "Error...: ...",
    # usage errors nothing at all
    words = [a for i, a in enumerate(argv)
             if not a.startswith("-") and (i == 0 or argv[i - 1] not in ("--root", "--userns-remap"))]
    if words[:1] == ["run"] or words[:2] == ["container", "run"]:
        return "minidocker: "
    if isinstance(error, UsageError) or str(error).startswith("Error"):
        return ""
    return "Error: "


if __name__ == "__main__":
    sys.exit(main())
