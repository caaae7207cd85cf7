"""scripts/setup.sh is the one list of host prerequisites: nothing a test or `make vm-test`
needs may be missing from it. (A green CI once hid a missing docker-registry: the developer
machine had it installed by hand, a fresh one did not.)"""
import ast
import os
import re
import subprocess
from pathlib import Path

from conftest import TOOLS, tool_path

ROOT = Path(__file__).resolve().parent.parent


def setup_packages(*flags: str) -> set[str]:
    out = subprocess.run(["bash", str(ROOT / "scripts/setup.sh"), "--print-apt-packages", *flags],
                         capture_output=True, text=True, check=True, env=dict(os.environ, APT_EXTRA=""))
    return set(out.stdout.split())


def vm_tools() -> dict[str, str]:
    text = (ROOT / "scripts/vm-test.sh").read_text()
    m = re.search(r'^VM_TOOLS="([^"]*)"', text, re.M)
    assert m, "scripts/vm-test.sh must declare VM_TOOLS (command:package pairs)"
    return dict(pair.split(":", 1) for pair in m.group(1).split())


def test_every_tool_the_tests_ask_for_is_installed_by_setup():
    missing = {tool: pkg for tool, pkg in TOOLS.items() if pkg not in setup_packages()}
    assert not missing, f"add these packages to APT_PACKAGES in scripts/setup.sh: {missing}"


def test_every_tool_the_vm_test_runs_is_installed_by_setup_vm_host():
    packages = setup_packages("--vm-host")
    missing = {tool: pkg for tool, pkg in vm_tools().items() if pkg not in packages}
    assert not missing, f"add these packages to VM_HOST_PACKAGES in scripts/setup.sh: {missing}"
    text = (ROOT / "scripts/vm-test.sh").read_text()
    assert "setup.sh\" --system-only --vm-host" in text and "HOST_PACKAGES=" not in text, \
        "vm-test.sh installs its tools through setup.sh, not a list of its own"


def _dpkg_owner(path: str) -> str | None:
    for p in {path, os.path.realpath(path), path.replace("/usr/bin", "/bin"), path.replace("/usr/sbin", "/sbin")}:
        r = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":", 1)[0].split(",")[0].strip()
    return None


def test_the_tool_to_package_mapping_is_true_where_installed():
    """What dpkg says: the named package really provides the tool (checked for the tools
    this machine has; setup.sh installs TOOLS' packages before the tests run)."""
    checked, wrong = 0, {}
    for tool, pkg in {**TOOLS, **vm_tools()}.items():
        path = tool_path(tool)
        if path is None or not path.startswith(("/usr/", "/bin", "/sbin")):
            continue
        owner = _dpkg_owner(path)
        if owner is None:  # e.g. /usr/local/bin/docker, installed by hand: not ours to judge
            continue
        checked += 1
        if owner != pkg:
            wrong[tool] = f"{path} comes from {owner}, not {pkg}"
    assert not wrong, wrong
    assert checked >= 3


def test_tests_ask_for_tools_only_through_require_tool():
    """A direct shutil.which() in a test would bypass the list above."""
    offenders = []
    for path in sorted((ROOT / "tests").glob("*.py")):
        if path.name == "conftest.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                if name in ("which", "available"):
                    offenders.append(f"{path.name}:{node.lineno}")
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "require_tool":
                tool = node.args[0].value
                assert tool in TOOLS, f"{path.name}:{node.lineno}: {tool} is not in conftest.TOOLS"
    assert not offenders, f"use conftest.require_tool(): {offenders}"
