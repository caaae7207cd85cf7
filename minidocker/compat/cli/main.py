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

# (.common, with argparse, is imported where it is used: `run` spawns its monitor before that)


# The module that registers each command. `minidocker run ...` imports and builds only
# containers.py's commands: importing every module and building all ~90 subparsers cost
# ~55 ms at every command (issue 23). tests/test_cli_parser.py checks this table against
# what the modules register.
COMMANDS = {
    "containers": ("run", "create", "start", "stop", "restart", "kill", "rm", "exec", "top", "pause",
                   "unpause", "attach", "cp", "rename", "update", "stats", "wait", "ps", "inspect", "logs",
                   "container"),
    "images": ("tag", "rmi", "scan", "history", "save", "load", "import", "export", "commit", "diff",
               "pull", "push", "login", "logout", "images", "image"),
    "system": ("version", "info", "events", "system"),
    "networks": ("port", "network"),
    "build": ("build",),
    "volumes": ("volume",),
    "serve": ("serve",),
}
_GLOBAL_WITH_VALUE = ("--root", "--userns-remap")


def command_module(argv: list[str]) -> str | None:
    """The module of the command argv names (after the global options), or None: no command,
    an unknown one, or a global flag we leave to the full parser."""
    word = command_word(argv)
    return next((mod for mod, names in COMMANDS.items() if word in names), None)


def command_word(argv: list[str]) -> str | None:
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in _GLOBAL_WITH_VALUE:
            i += 2
        elif a.startswith(tuple(f"{g}=" for g in _GLOBAL_WITH_VALUE)):
            i += 1
        elif a.startswith("-"):
            return None  # -v, --help, or a mistake: the full parser answers
        else:
            return a
    return None


def build_parser(only: str | None = None, command: str | None = None):
    """docker's whole command line, or with `only` just the commands of that module (and
    its management group, `container` or `image`, only if `command` is that group)."""
    import importlib
    from .common import Parser
    modules = {name: importlib.import_module(f".{name}", __package__)
               for name in ([only] if only else COMMANDS)}
    p = Parser(prog="minidocker", description="A small, real container runtime that teaches how Docker works.")
    p.add_argument("--root", help="State directory (default $MINIDOCKER_ROOT or /var/lib/minidocker)")
    p.add_argument("-v", "--version", action="store_true", help="Print version information and quit")
    p.add_argument("--userns-remap", metavar="USER[:GROUP]",
                   help="Root in containers is USER's range from /etc/subuid (\"default\": dockremap); "
                        "state in <root>/<uid>.<gid> (dockerd's option)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in modules.values():
        module.register(sub)

    # `minidocker container ls`, `minidocker image ls`, ...: docker's management commands
    for group, name in (("container", "containers"), ("image", "images")):
        if name not in modules or (only and command != group):
            continue
        module = modules[name]
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
    if argv in (["-v"], ["--version"]):  # (no parser needed)
        from ... import __version__
        print(f"minidocker version {__version__}")
        return 0
    try:
        parser = build_parser(command_module(argv), command_word(argv))
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
    from .common import UsageError
    if isinstance(error, UsageError) or str(error).startswith("Error"):
        return ""
    return "Error: "


def entry() -> None:
    """The `minidocker` program (the console script, `python -m minidocker`)."""
    argv = sys.argv[1:]
    spawn_monitor = None
    if argv[:1] == ["run"] and os.geteuid() == 0:
        # `run` spawns the container's monitor first of all (engine/spawn_monitor.py): the
        # monitor's start then overlaps our imports and parsing as well as the create.
        from ...engine import spawn_monitor
        from ...paths import StateRoot
        spawn_monitor.prespawn(StateRoot.from_env().root,
                               _network_guess(argv) not in ("none", "host", "container"))
    try:
        code = main(argv)
    finally:
        if spawn_monitor is not None:
            spawn_monitor.close_prespawned()  # (if `run` did not take it)
    # Python's own exit tears down every module and object, ~10 ms after a `run`, and nothing
    # is left to tear down: every file we wrote is closed (and, where it must be, synced). So
    # after what exit would still do for us (flush, atexit), we leave at once. (Not while a
    # thread runs: Python's exit would wait for it.)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass
    import atexit
    atexit._run_exitfuncs()
    threading = sys.modules.get("threading")
    if threading is None or threading.active_count() == 1:
        os._exit(code if isinstance(code, int) else 1)
    sys.exit(code)


def _network_guess(argv: list[str]) -> str:
    """`run`'s network mode as the command line seems to give it, before it is parsed (only to
    decide whether to spawn a netlink helper ahead: a wrong guess costs time, not correctness)."""
    for i, a in enumerate(argv):
        for flag in ("--network", "--net"):
            if a == flag and i + 1 < len(argv):
                return argv[i + 1].split(":")[0]
            if a.startswith(flag + "="):
                return a[len(flag) + 1:].split(":")[0]
    return "default"


if __name__ == "__main__":
    entry()
