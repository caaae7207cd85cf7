"""What every command module of the CLI shares: docker's argument parser and error rules,
its way of reporting per-object failures, confirmations, tables and --format templates.

(A module of its own so that the command modules import it, never each other.)
"""
from __future__ import annotations

import argparse
import os
import sys

from ...errors import MinidockerError
from . import format as fmt


class UsageError(MinidockerError):
    exit_code = 125


def terminal_columns() -> int:
    """shutil.get_terminal_size().columns ($COLUMNS, else stdout's terminal, else 80), without
    importing shutil and its bz2, lzma & co. (~3 ms): argparse asks at every add_argument."""
    try:
        columns = int(os.environ.get("COLUMNS", 0))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class HelpFormatter(argparse.HelpFormatter):
    def __init__(self, prog, indent_increment=2, max_help_position=24, width=None):
        super().__init__(prog, indent_increment, max_help_position,
                         terminal_columns() - 2 if width is None else width)


class Parser(argparse.ArgumentParser):
    """argparse, with docker's conventions: `-h` is free for --hostname, errors exit 125."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("add_help", False)
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self.add_argument("--help", action="help", help="Print usage")

    def error(self, message: str):
        import re
        unknown = re.match(r"argument COMMAND: invalid choice: '([^']*)'", message)
        if unknown:  # docker (cobra): one line naming the command, exit 1
            tool = self.prog.split()[0]
            where = "" if self.prog == tool else f" {self.prog[len(tool) + 1:]}"
            raise UsageError(f"{tool}: '{unknown.group(1)}' is not a {tool}{where} command. "
                             f"See '{self.prog} --help'", exit_code=1)
        if message.startswith("the following arguments are required"):
            # docker (cobra) exits 1 here, unlike other usage errors
            raise UsageError(f'"{self.prog}" requires at least 1 argument. '
                             f"See '{self.prog} --help'.", exit_code=1)
        raise UsageError(f"{message}. See '{self.prog} --help'.")

    def parse_args(self, args=None, namespace=None):
        # Unknown flags are only noticed by the top-level parser; name the subcommand
        # in the message as docker does ("See 'docker run --help'.").
        ns, extra = self.parse_known_args(args, namespace)
        if extra:
            prog = " ".join([self.prog] + [w for w in (getattr(ns, "command", None),
                                                       getattr(ns, "subcommand", None)) if w])
            flags = [e for e in extra if e.startswith("-")]
            what = f"unknown flag: {flags[0]}" if flags else f"unexpected arguments: {' '.join(extra)}"
            raise UsageError(f"{what}. See '{prog} --help'.")
        return ns


def err(msg: str) -> None:
    print(f"Error: {msg}" if not msg.startswith("Error") else msg, file=sys.stderr)


PARALLEL = 50  # docker's CLI: stop, kill, rm, pause and unpause act on up to 50 containers at once


def each(args_list: list[str], action, ignore_missing: bool = False, parallel: bool = False) -> int:
    """Apply `action` to each container argument; print each failure, exit 1 if any failed
    (docker keeps going after an error, e.g. `docker rm a missing b`). `parallel`: as docker's
    CLI does for stop, kill, rm, pause and unpause (its parallelOperation), in threads; results
    are printed in the order of the arguments all the same. (`stop` of 100 containers whose
    PID 1 ignores SIGTERM: 100 grace periods one after the other, or one.)"""
    from ...errors import NotFound

    def attempt(ref):
        try:
            return action(ref), None
        except MinidockerError as e:
            return None, e
    if parallel and len(args_list) > 1:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(max_workers=min(PARALLEL, len(args_list))) as pool:
            results = pool.map(attempt, args_list)  # (in order; printed as each one's turn comes)
            return _report(results, ignore_missing, NotFound)
    return _report(map(attempt, args_list), ignore_missing, NotFound)


def _report(results, ignore_missing: bool, not_found) -> int:
    failed = 0
    for out, e in results:
        if e is None:
            if out is not None:
                print(out, flush=True)
            continue
        err(str(e))
        if not (ignore_missing and isinstance(e, not_found)):
            failed = 1
    return failed


def parse_labels(values: list[str], flag: str) -> dict:
    """--label flags -> a Labels map; a bad one is a flag error, as in docker (exit 125)."""
    if not values:
        return {}  # (runconfig, with its signal import, only when there is a label to check)
    from ...container import runconfig
    from ...errors import InvalidArgument
    labels = {}
    for lab in values:
        try:
            k, v = runconfig.parse_label(lab)
        except InvalidArgument as e:
            raise InvalidArgument(f'invalid argument "{lab}" for "{flag}" flag: {e}') from None
        labels[k] = v
    return labels


def confirm(prompt: str, force: bool) -> bool:
    if force:
        return True
    print(prompt + "\nAre you sure you want to continue? [y/N] ", end="", flush=True)
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def print_section(title: str, items: list[str]) -> None:
    """Docker's prune report: a title, one line per item, a blank line (nothing if empty)."""
    if items:
        print(title)
        for item in items:
            print(item)
        print()


def unescape_format(f: str) -> str:
    # docker accepts literal "\t" typed in a shell as a tab
    return f.replace("\\t", "\t").replace("\\n", "\n")


# ---------------------------------------------------------------------------- inspect
def parse_format(template: str | None):
    """Parse a --format template up front: a bad template is an error before any lookup."""
    if not template:
        return None
    from .. import gotemplate
    try:
        return gotemplate.parse(unescape_format(template))
    except gotemplate.TemplateError as e:
        raise MinidockerError(f"template parsing error: {e}") from None


def render_table(template: str, rows: list[dict], headers: dict) -> str:
    """docker's formatter: a `table` template prints a header row (the template rendered
    over the header names) and aligns the columns with tabwriter."""
    table = template.startswith("table")
    if table:
        template = template[len("table"):].lstrip()
    from .. import gotemplate
    try:
        t = gotemplate.parse(template)
        lines = [t.execute(r) for r in rows]
    except gotemplate.TemplateError as e:
        raise MinidockerError(f"template parsing error: {e}") from None
    if not table:
        return "".join(line + "\n" for line in lines)
    head = t.execute(headers)
    return fmt.tabwrite([line.split("\t") for line in [head] + lines])


# Fields that are slices / maps in Docker's Go structs: a null there prints `[]` / `map[]`
# in `inspect -f`, not `<nil>` (docker runs the template on the typed struct).
TYPED_SLICES = {"Args", "Cmd", "Entrypoint", "Env", "OnBuild", "ExecIDs", "Mounts", "Binds", "CapAdd",
                "CapDrop", "Dns", "DnsOptions", "DnsSearch", "ExtraHosts", "Links", "VolumesFrom",
                "SecurityOpt", "GroupAdd", "Devices", "MaskedPaths", "ReadonlyPaths", "Aliases",
                "DeviceCgroupRules", "RepoTags", "RepoDigests", "Layers"}


TYPED_MAPS = {"Labels", "Volumes", "ExposedPorts", "PortBindings", "Ports", "Networks", "Data",
              "DriverOpts", "Options", "StorageOpt", "Sysctls", "Tmpfs"}
# Sets, in Go a map[string]struct{}: their values print as `{}`, not `map[]`
TYPED_SETS = {"ExposedPorts", "Volumes"}


def as_typed(obj):
    """Give JSON data the Go types of Docker's structs (pure): nulls where Docker has slices or
    maps become NilSlice/NilMap; the empty values of sets (ExposedPorts) become EmptyStruct."""
    from ..gotemplate import EmptyStruct, GoMap, NilMap, NilSlice
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if v is None and k in TYPED_SLICES:
                out[k] = NilSlice()
            elif v is None and k in TYPED_MAPS:
                out[k] = NilMap()
            elif k in TYPED_SETS and isinstance(v, dict):
                out[k] = GoMap({key: EmptyStruct() if val == {} else as_typed(val) for key, val in v.items()})
            elif k in TYPED_MAPS and isinstance(v, dict):
                out[k] = GoMap(as_typed(v))
            else:
                out[k] = as_typed(v)
        return out
    if isinstance(obj, list):
        return [as_typed(x) for x in obj]
    return obj


def print_inspect(results: list[dict], template) -> int:
    if template is not None:
        from .. import gotemplate
        for obj in results:
            try:
                print(template.execute(as_typed(obj), missingkey="error"))
            except gotemplate.TemplateError as e:
                raise MinidockerError(f"template parsing error: {e}") from None
        return 0
    print(fmt.json_indent(results))
    return 0
