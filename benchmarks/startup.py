"""Goals 1 and 2: `run --rm busybox true`, minidocker next to `docker run --rm` and `runc run`.

All three run the same root filesystem (our offline busybox layer), interleaved round by
round (a learner's `minidocker`, `python -m minidocker`, docker, runc, again...), so that
background load falls on all of them alike."""
from __future__ import annotations

import os
import subprocess
import sys

from . import stats
from .harness import Bench, Report, interleaved
from .stats import Goal, describe, fmt_time, median

GOAL_NONE_DOCKER = Goal("<=", 0.30, "x docker")
GOAL_NONE_RUNC = Goal("<=", 2, "x runc")
GOAL_BRIDGE_DOCKER = Goal("<=", 0.50, "x docker")


def _print(report: Report, results: dict[str, list[float]]) -> None:
    width = max(len(k) for k in results)
    for name, samples in results.items():
        report.say(f"   {name:{width}}  {describe(samples)}")
        report.keep(name, samples)


def run_none(b: Bench, report: Report, against: str | None = None) -> None:
    report.start("run", f"run --rm --network none busybox true (n={b.n}, interleaved)")
    cmds = {
        "minidocker (console script)": dict(argv=b.md_argv("run", "--rm", "--network", "none", "busybox", "true"),
                                            env=b.env),
        "python -m minidocker": dict(argv=b.md_module + ["run", "--rm", "--network", "none", "busybox", "true"],
                                     env=b.env),
        "docker run --rm --network none": dict(argv=b.dk_argv("run", "--rm", "--network", "none", "busybox",
                                                              "true")),
    }
    bundle = b.runc_bundle()
    if bundle:
        cmds["runc run"] = dict(argv=b.runc_argv(), cwd=bundle)
    res = interleaved(cmds, b.n)
    _print(report, res)
    md, mdm = res["minidocker (console script)"], res["python -m minidocker"]
    dk, rc = res["docker run --rm --network none"], res.get("runc run")
    figure = "run --rm --network none busybox true"
    report.row(stats.goal_row(figure, minidocker=fmt_time(median(md)), docker=fmt_time(median(dk)),
                              runc=fmt_time(median(rc)) if rc else "-",
                              value=stats.ratio(median(md), median(dk)), best=stats.ratio(min(md), min(dk)),
                              against="docker", goal=GOAL_NONE_DOCKER))
    if rc:
        report.row(stats.goal_row(figure, minidocker=fmt_time(median(md)), docker=fmt_time(median(dk)),
                                  runc=fmt_time(median(rc)), value=stats.ratio(median(md), median(rc)),
                                  best=stats.ratio(min(md), min(rc)), against="runc", goal=GOAL_NONE_RUNC))
    else:
        report.row(stats.Row(figure + " (no runc installed)", verdict="n/a", goal=str(GOAL_NONE_RUNC)))
    report.row(stats.goal_row("  the same, python -m minidocker", minidocker=fmt_time(median(mdm)),
                              docker=fmt_time(median(dk)), value=stats.ratio(median(mdm), median(dk)),
                              against="docker"))
    if against:
        _against(b, report, against)


def run_bridge(b: Bench, report: Report) -> None:
    report.start("bridge", f"run --rm busybox true on the default bridge (n={b.n}, interleaved)")
    cmds = {
        "minidocker run --rm (bridge)": dict(argv=b.md_argv("run", "--rm", "busybox", "true"), env=b.env),
        "docker run --rm (its bridge)": dict(argv=b.dk_argv("run", "--rm", "busybox", "true")),
    }
    res = interleaved(cmds, b.n)
    _print(report, res)
    md, dk = res["minidocker run --rm (bridge)"], res["docker run --rm (its bridge)"]
    report.row(stats.goal_row("run --rm busybox true (default bridge)", minidocker=fmt_time(median(md)),
                              docker=fmt_time(median(dk)), value=stats.ratio(median(md), median(dk)),
                              best=stats.ratio(min(md), min(dk)), against="docker", goal=GOAL_BRIDGE_DOCKER))


def _against(b: Bench, report: Report, ref: str) -> None:
    """minidocker at `ref` (a temporary git worktree) and today's, in alternation, both as
    `python -m minidocker` (an old tree has no console script of its own)."""
    from .harness import REPO
    tree = os.path.join(b.work, "against")
    subprocess.run(["git", "-C", REPO, "worktree", "add", "--detach", tree, ref], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    old_env = dict(b.env, MINIDOCKER_ROOT=os.path.join(b.work, "root-against"), PYTHONPATH=tree)
    argv = [sys.executable, "-m", "minidocker", "run", "--rm", "--network", "none", "busybox", "true"]
    try:
        res = interleaved({f"minidocker at {ref}": dict(argv=argv, env=old_env, cwd=tree),
                           "minidocker now": dict(argv=argv, env=b.env)}, b.n)
        _print(report, res)
        old, new = res[f"minidocker at {ref}"], res["minidocker now"]
        report.row(stats.goal_row(f"  run --rm none, now vs at {ref}", minidocker=fmt_time(median(new)),
                                  value=stats.ratio(median(new), median(old)), against=ref))
    finally:
        subprocess.run([sys.executable, "-m", "minidocker", "system", "prune", "-f", "-a"], env=old_env, cwd=tree,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["git", "-C", REPO, "worktree", "remove", "--force", tree], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

