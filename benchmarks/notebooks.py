#!/usr/bin/env python3
"""Goal 8: each course notebook under nbval in at most 2 minutes on this machine.

Not part of the default `make bench` (all of them take about half an hour). Runs, one
notebook at a time, what CI runs: `python -m pytest -q notebooks/NN-x.ipynb` with
MINIDOCKER_STRICT=1 (the repo's pytest configuration turns nbval on), and prints each wall
time against 120 s.

    sudo .venv/bin/python benchmarks/notebooks.py [NOTEBOOK|NN ...]     (default: every notebook)
    sudo .venv/bin/python benchmarks/run_bench.py --notebooks [NN,NN]   (the same, from the driver)
"""
from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
import time

if __name__ == "__main__" and not __package__:  # run as a script: be the package's module
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import benchmarks.notebooks
    sys.exit(benchmarks.notebooks.main())

from . import stats  # noqa: E402
from .stats import Goal  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOAL = Goal("<=", 120, " s")
TIMEOUT = 1800


def select(spec: list[str] | None) -> list[str]:
    """Notebook paths (relative to the repo) for 'notebooks/00-preflight.ipynb', '00', '00-preflight'
    or nothing (every notebook in notebooks/)."""
    every = sorted(os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "notebooks", "*.ipynb")))
    if not spec:
        return every
    out = []
    for s in spec:
        s = s.strip()
        if not s:
            continue
        if s.endswith(".ipynb"):
            path = os.path.relpath(os.path.abspath(s), REPO) if os.path.exists(s) else s
            if not os.path.exists(os.path.join(REPO, path)):
                raise ValueError(f"no notebook {s}")
            out.append(path)
            continue
        hits = [p for p in every if os.path.basename(p).startswith(s)]
        if not hits:
            raise ValueError(f"no notebook matches {s!r}; there are: {', '.join(map(os.path.basename, every))}")
        out += [h for h in hits if h not in out]
    return out


def summary_line(output: str) -> str:
    """pytest's last line, e.g. '31 passed in 45.21s' (the '=' padding of -q runs removed)."""
    lines = [line.strip(" =") for line in output.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if re.search(r"\b(passed|failed|error|errors|skipped|no tests ran)\b", line):
            return line
    return lines[-1] if lines else "(no output)"


def time_notebook(path: str) -> tuple[float, int, str]:
    env = dict(os.environ, MINIDOCKER_STRICT="1")
    t = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-m", "pytest", "-q", path], cwd=REPO, env=env, capture_output=True,
                           text=True, stdin=subprocess.DEVNULL, timeout=TIMEOUT)
        rc, out = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out = -1, f"timed out after {TIMEOUT} s " + (e.stdout or b"").decode(errors="replace")[-200:]
    return time.perf_counter() - t, rc, summary_line(out)


def run(report, spec: list[str] | None = None) -> None:
    paths = select(spec)
    report.start("notebooks", f"nbval, one notebook at a time, MINIDOCKER_STRICT=1 ({len(paths)} notebook(s))")
    for path in paths:
        wall, rc, line = time_notebook(path)
        name = os.path.basename(path)
        ok = "" if rc == 0 else f" (pytest exit {rc})"
        report.keep(name, dict(seconds=wall, rc=rc, summary=line))
        report.row(stats.goal_row(f"nbval {name}{ok}", minidocker=f"{wall:.1f} s ({line})", value=wall,
                                  goal=GOAL))


def main(argv: list[str] | None = None) -> int:
    import argparse
    from .harness import Report
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", help="paths or number prefixes (default: all)")
    args = ap.parse_args(argv)
    report = Report()
    try:
        run(report, args.notebooks)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    report.say()
    report.say(stats.table(report.rows))
    return 0 if all(r.verdict.startswith("PASS") for r in report.rows) else 1
