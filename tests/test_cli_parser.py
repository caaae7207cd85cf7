"""The CLI builds only the parser of the command it runs (issue 23: ~55 ms at every command).
Pure: no root. The table of which module registers which command must match the modules, and
a command parsed by its module's parser alone must mean what it means to the whole parser."""
from __future__ import annotations

import importlib

import pytest

from minidocker.compat.cli import main
from minidocker.compat.cli.common import Parser, UsageError


def registered(module: str) -> set[str]:
    p = Parser(prog="minidocker")
    sub = p.add_subparsers(dest="command", parser_class=Parser)
    importlib.import_module(f"minidocker.compat.cli.{module}").register(sub)
    return set(sub.choices)


def test_the_table_names_what_each_module_registers():
    groups = {"containers": {"container"}, "images": {"image"}}   # (made by build_parser itself)
    for module, names in main.COMMANDS.items():
        assert set(names) == registered(module) | groups.get(module, set()), module
    full = main.build_parser()
    sub = next(a for a in full._actions if a.dest == "command")
    assert set(sub.choices) == {n for names in main.COMMANDS.values() for n in names}


@pytest.mark.parametrize("argv,module", [
    (["run", "--rm", "busybox", "true"], "containers"),
    (["--root", "/tmp/x", "ps", "-a"], "containers"),
    (["--root=/tmp/x", "image", "ls"], "images"),
    (["--userns-remap", "default", "network", "ls"], "networks"),
    (["volume", "ls"], "volumes"),
    (["-v"], None), (["--help"], None), ([], None), (["nosuch"], None), (["--root"], None),
])
def test_the_command_word_after_the_global_options(argv, module):
    assert main.command_module(argv) == module


@pytest.mark.parametrize("argv", [
    ["run", "--rm", "-e", "A=1", "--network", "none", "-p", "80", "busybox", "sh", "-c", "echo hi"],
    ["--root", "/tmp/x", "container", "ls", "-a", "--format", "{{.ID}}"],
    ["image", "rm", "-f", "busybox"], ["images", "-q"], ["network", "create", "-d", "bridge", "n1"],
    ["volume", "create", "v"], ["system", "prune", "-f"], ["build", "-t", "x", "."], ["exec", "-it", "c", "sh"],
])
def test_one_modules_parser_parses_as_the_whole_one(argv):
    lazy = vars(main.build_parser(main.command_module(argv), main.command_word(argv)).parse_args(argv))
    whole = vars(main.build_parser().parse_args(argv))
    assert lazy == whole


@pytest.mark.parametrize("argv", [["run", "--nosuch", "busybox"], ["ps", "extra"], ["image", "nosuch"]])
def test_usage_errors_read_the_same(argv):
    def error(parser):
        with pytest.raises(UsageError) as e:
            parser.parse_args(argv)
        return str(e.value), e.value.exit_code
    lazy = main.build_parser(main.command_module(argv), main.command_word(argv))
    assert error(lazy) == error(main.build_parser())
