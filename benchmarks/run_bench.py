#!/usr/bin/env python3
"""minidocker's benchmarks (issue 23): every figure next to Docker's and runc's, measured in
the same run, with its goal and PASS/MISS.

Needs root, docker.io and runc. ONE private dockerd (minidocker.lab.realdocker) serves the
whole run; minidocker works on a private state root; both run our offline busybox image.

    sudo .venv/bin/python benchmarks/run_bench.py [-n 15] [--only SECTION[,SECTION]] [--against GITREF]
    sudo .venv/bin/python benchmarks/run_bench.py --notebooks [NN[,NN]]    (goal 8, opt-in, ~30 min for all)

Sections (in order; each prints as it finishes, then a summary table):
    run        goal 1: run --rm --network none busybox true, vs docker run --rm and runc run
    bridge     goal 2: run --rm busybox true on the default bridge, vs docker on its bridge
    memory     goal 3: the per-container monitor's PSS in each network mode, vs containerd-shim-runc-v2
    many       goal 4: 100 running containers: ps, run -d #100 vs #1, parallel stop + rm, leftovers
    build      goal 5: a fully cached rebuild of a 10-step multi-stage Dockerfile, vs DOCKER_BUILDKIT=0
    saveload   goal 6: save -o / load -i of a ~100 MB image
    layer      goal 7: storage.archive.apply_layer vs GNU tar -xf, ~100 MB, 20k files
    notebooks  goal 8 (not in the default run): nbval per notebook, vs 120 s

--against GITREF also times minidocker as it was at GITREF (a temporary git worktree), in
alternation with today's (in the `run` section), so a change's cost or saving is measured.

Exit status: 0 when every section could be measured and the clean-up left nothing behind
(a MISS is a finding, not a failure of the benchmark); 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# Run as a script, Python puts benchmarks/ first on sys.path; our modules are imported as the
# `benchmarks` package from the repo instead (so none of them shadows a module of the same name).
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
sys.path.insert(0, REPO)

from benchmarks import build, layer, many, memory, notebooks, saveload, startup, stats  # noqa: E402
from benchmarks.harness import Bench, Report  # noqa: E402

SECTIONS = {
    "run": lambda b, r, a: startup.run_none(b, r, against=a.against),
    "bridge": lambda b, r, a: startup.run_bridge(b, r),
    "memory": lambda b, r, a: memory.run(b, r),
    "many": lambda b, r, a: many.run(b, r),
    "build": lambda b, r, a: build.run(b, r),
    "saveload": lambda b, r, a: saveload.run(b, r),
    "layer": lambda b, r, a: layer.run(b, r),
    "notebooks": lambda b, r, a: notebooks.run(r, a.notebook_list),
}
DEFAULT = [s for s in SECTIONS if s != "notebooks"]


def _git(*args: str) -> str:
    p = subprocess.run(["git", "-C", REPO, *args], capture_output=True, text=True)
    return p.stdout.strip() if p.returncode == 0 else "?"


def _header(report: Report, args, sections: list[str]) -> dict:
    meta = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "host": f"{platform.node()}, Linux {platform.release()}, {os.cpu_count()} CPUs, "
                f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        "python": f"{sys.executable} ({platform.python_version()})",
        "minidocker": f"{_git('rev-parse', '--short', 'HEAD')}"
                      f"{' + uncommitted changes' if _git('status', '--porcelain', '--', 'minidocker') else ''}",
        "sections": sections,
        "n": args.n,
    }
    report.say(f"minidocker benchmarks, {meta['when']}")
    for k in ("host", "python", "minidocker"):
        report.say(f"  {k}: {meta[k]}")
    report.say(f"  sections: {', '.join(sections)} (n={args.n} where a figure is a median of runs)")
    return meta


def _tidy_between(bench: Bench) -> None:
    """After a section that failed half-way: no container of it may weigh on the next one."""
    try:
        bench.remove_all_containers()
        if bench._docker is not None:
            ids = bench.dk("ps", "-aq", check=False).stdout.split()
            if ids:
                bench.dk("rm", "-f", *ids, check=False)
    except Exception:  # noqa: BLE001 -- best effort; close() reports what stays
        pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=15, help="runs per tool for the start-up figures (default 15); "
                    "the slower sections use min(n, their own count)")
    ap.add_argument("--against", metavar="GITREF", help="also time minidocker at this git revision (run section)")
    ap.add_argument("--only", metavar="SECTION[,SECTION]", help=f"run only these ({', '.join(SECTIONS)})")
    ap.add_argument("--notebooks", nargs="?", const="", metavar="NN[,NN]",
                    help="time notebooks under nbval (all, or these) instead of the default sections")
    ap.add_argument("--json", metavar="PATH", help="where to write the raw figures "
                    "(default: benchmarks/results/bench-<time>.json, git-ignored)")
    args = ap.parse_args(argv)
    if args.n < 1:
        ap.error("-n must be at least 1")
    try:
        if args.notebooks is not None:
            if args.only:
                ap.error("--notebooks runs the notebook timings alone; leave out --only")
            sections = ["notebooks"]
            args.notebook_list = [s for s in args.notebooks.split(",") if s] or None
            notebooks.select(args.notebook_list)  # a bad name fails now, not after minutes
        else:
            sections = stats.parse_sections(args.only, list(SECTIONS), DEFAULT)
            args.notebook_list = None
    except ValueError as e:
        ap.error(str(e))
    if os.geteuid() != 0:
        print("run me as root", file=sys.stderr)
        return 1

    report = Report()
    meta = _header(report, args, sections)
    bench = Bench(args.n, report)
    timings = {}
    problems: list[str] = []
    try:
        for name in sections:
            t = time.perf_counter()
            try:
                SECTIONS[name](bench, report, args)
            except KeyboardInterrupt:
                raise
            except Exception as e:  # noqa: BLE001 -- report it, clean up, go on with the next section
                report.section = name
                report.error(name, e)
                _tidy_between(bench)
            timings[name] = time.perf_counter() - t
            report.say(f"   ({name} took {stats.fmt_time(timings[name])})")
    except KeyboardInterrupt:
        report.say("\ninterrupted: cleaning up")
        problems.append("interrupted")
    finally:
        problems += bench.close()

    report.say("\n== summary (medians; ratio = minidocker / reference, except layer: throughput ratio)")
    report.say(stats.table(report.rows))
    report.say(f"\n{stats.tally(report.rows)}; total {stats.fmt_time(sum(timings.values()))}")
    for e in report.errors:
        report.say(f"NOT MEASURED: {e}")
    for p in problems:
        report.say(f"CLEAN-UP: {p}")
    if not problems:
        report.say(f"clean-up: the private dockerd, every container, network and image, and {bench.work} are gone")

    path = args.json or os.path.join(HERE, "results", time.strftime("bench-%Y%m%d-%H%M%S.json"))
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump({"meta": meta, "took": timings, "rows": [r.__dict__ for r in report.rows],
                       "raw": report.raw, "errors": report.errors, "cleanup": problems}, f, indent=1)
        report.say(f"raw figures: {os.path.relpath(path)}")
    except OSError as e:
        report.say(f"(could not write {path}: {e})")
    return 1 if report.errors or problems else 0


if __name__ == "__main__":
    sys.exit(main())
