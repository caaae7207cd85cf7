"""environment.yml (conda) and pyproject.toml (pip) must list the same packages."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _norm(spec: str) -> str:
    return re.sub(r"\s+", "", spec).lower()


def conda_packages() -> set[str]:
    pkgs = set()
    in_deps = False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if line.startswith("dependencies:"):
            in_deps = True
            continue
        m = re.match(r"^  - (\S.*)$", line)  # top-level items only, not the pip: list
        if in_deps and m and not m.group(1).startswith("pip"):
            pkgs.add(_norm(m.group(1)))
    return pkgs


# PyPI name -> conda-forge name, where they differ
CONDA_NAMES = {"docker": "docker-py"}


def pyproject_packages() -> set[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(data.get("dependencies", []))
    for extra in data.get("optional-dependencies", {}).values():
        specs += extra
    out = set()
    for s in specs:
        name = re.match(r"[A-Za-z0-9_.-]+", s).group(0)
        out.add(_norm(CONDA_NAMES.get(name, name) + s[len(name):]))
    return out


def test_same_packages():
    conda = conda_packages()
    python = {p for p in conda if p.startswith("python=")}
    assert python, "environment.yml must pin the Python version"
    assert conda - python == pyproject_packages()


def test_python_pin_matches_requires_python():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    minimum = re.search(r">=\s*(\d+\.\d+)", data["requires-python"]).group(1)
    pin = next(p for p in conda_packages() if p.startswith("python=")).split("=", 1)[1]
    assert tuple(map(int, pin.split("."))) >= tuple(map(int, minimum.split(".")))
