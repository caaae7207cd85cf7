"""The package's shape is part of the course: layers a learner can read from the kernel up.

    0  errors, paths, fsutil, gotime,         bottom helpers, anyone may use them
       progress, events, spawn
    1  core/linux                             the syscall layer, procfs
    2  core                                   what one `docker run` needs (knows no Docker)
    3  storage, images, network, volumes,     Docker's objects
       container
    4  engine                                 the verbs
    5  compat                                 Docker's surface: CLI, docker-py API, templates, builds
    6  lab                                    notebook helpers

Every import (function-level ones included) goes to the same layer or one below, and no two
modules import each other, directly or round a circle."""
import ast
import os
import re
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "minidocker"
LAYERS = [
    (0, r"minidocker\.(errors|paths|fsutil|gotime|progress|events|spawn)$"),
    (1, r"minidocker\.core\.linux(\..*)?$"),
    (2, r"minidocker\.core(\..*)?$"),
    (3, r"minidocker\.(storage|images|network|volumes|container)(\..*)?$"),
    (4, r"minidocker\.engine(\..*)?$"),
    (5, r"minidocker\.compat(\..*)?$"),
    (6, r"minidocker\.lab(\..*)?$"),
]
ENTRY_POINTS = {"minidocker", "minidocker.__main__"}  # the package's front door may point anywhere


def layer(mod: str) -> int:
    for n, pattern in LAYERS:
        if re.match(pattern, mod):
            return n
    raise AssertionError(f"{mod}: no layer; add it to LAYERS in tests/test_package_layout.py")


def modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG.parent).with_suffix("")
        mod = ".".join(rel.parts)
        out[mod.removesuffix(".__init__")] = path
    return out


def imports() -> dict[str, set[str]]:
    mods = modules()
    graph = {}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    base = base[:len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    deps.add(sub if sub in mods else target)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        graph[mod] = {d for d in deps if d in mods and d != mod}
    return graph


def test_every_import_goes_down_or_sideways():
    upward = [f"{m} ({layer(m)}) imports {d} ({layer(d)})"
              for m, deps in imports().items() if m not in ENTRY_POINTS for d in deps
              if d not in ENTRY_POINTS and layer(d) > layer(m)]
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    graph = {m: d - ENTRY_POINTS for m, d in imports().items() if m not in ENTRY_POINTS}
    # Tarjan's strongly connected components
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, cycles


def test_core_modules_name_their_notebook():
    """Each teaching module says which notebook teaches it (and the notebook exists)."""
    notebooks = {p.stem for p in (PKG.parent / "notebooks").glob("*.ipynb")}
    missing = []
    for mod, path in modules().items():
        if not mod.startswith("minidocker.core") or path.name == "__init__.py" and mod != "minidocker.core.cgroups":
            continue
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        named = set(re.findall(r"notebooks? (\d\d)", doc))
        if not named or not all(any(nb.startswith(n) for nb in notebooks) for n in named):
            missing.append(mod)
    assert not missing, f"say 'Taught in notebook NN' in the docstring of: {missing}"


def test_nothing_but_the_syscall_layer_calls_libc():
    offenders = [str(p.relative_to(PKG)) for p in PKG.rglob("*.py")
                 if "CDLL(" in p.read_text() and p.parent.name != "linux" and p.name != "nft.py"]
    assert not offenders, offenders
    assert os.path.exists(PKG / "core" / "linux" / "syscalls.py")
