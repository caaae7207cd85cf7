"""Goal 5: a fully cached rebuild of a 10-step multi-stage Dockerfile, `minidocker build -t x ctx`
next to the classic builder, `DOCKER_BUILDKIT=0 docker build -t x ctx`, on the same context.
Both are warmed by a first build; the rebuilds are timed, interleaved, and checked to have
used the cache at every step."""
from __future__ import annotations

import os

from . import stats
from .harness import Bench, Report, interleaved
from .stats import Goal, describe, fmt_time, median

GOAL = Goal("<=", 0.5, "x docker")
REPS = 7

DOCKERFILE = """\
FROM busybox AS a
RUN mkdir -p /out && echo hello > /out/greeting
COPY app /src
RUN cat /src/*.txt | wc -l > /out/lines
FROM busybox
COPY --from=a /out /opt/out
ENV APP_HOME=/opt/app
WORKDIR /opt/app
COPY app/config.txt ./
CMD ["cat", "/opt/out/greeting"]
"""
STEPS = 10
CACHE_HITS = 8  # a fully cached rebuild: every step but the two FROMs says "Using cache"


def make_context(where: str, files: int = 40) -> str:
    ctx = os.path.join(where, "build-ctx")
    os.makedirs(os.path.join(ctx, "app"), exist_ok=True)
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write(DOCKERFILE)
    for i in range(files):
        with open(os.path.join(ctx, "app", f"f{i:02d}.txt"), "w") as f:
            f.write(f"line {i}\n" * (i + 1))
    with open(os.path.join(ctx, "app", "config.txt"), "w") as f:
        f.write("key=value\n")
    return ctx


def _cache_hits(output: str) -> int:
    return output.count("Using cache")


def run(b: Bench, report: Report) -> None:
    n = min(b.n, REPS)
    report.start("build", f"fully cached rebuild of a {STEPS}-step multi-stage Dockerfile (n={n}, interleaved)")
    ctx = make_context(b.work)
    dk_env = dict(os.environ, DOCKER_BUILDKIT="0")
    b.md("build", "-t", "benchbuild", ctx)  # the first builds, untimed
    b.dk("build", "-t", "benchbuild", ctx, env=dk_env)
    hits = {"minidocker": _cache_hits(b.md("build", "-t", "benchbuild", ctx).stdout),
            "docker": _cache_hits(b.dk("build", "-t", "benchbuild", ctx, env=dk_env).stdout)}
    report.say(f"   \"Using cache\" in a rebuild: minidocker {hits['minidocker']}, docker {hits['docker']} "
               f"(of the {CACHE_HITS} steps after the FROMs)")
    for who, n_hits in hits.items():
        if n_hits != CACHE_HITS:
            report.say(f"   !! {who}'s rebuild is not fully cached")
    res = interleaved({"minidocker build (cached)": dict(argv=b.md_argv("build", "-t", "benchbuild", ctx), env=b.env),
                       "DOCKER_BUILDKIT=0 docker build (cached)": dict(argv=b.dk_argv("build", "-t", "benchbuild", ctx),
                                                                       env=dk_env)}, n, warm=0)
    for name, samples in res.items():
        report.say(f"   {name:40} {describe(samples)}")
        report.keep(name, samples)
    md, dk = res["minidocker build (cached)"], res["DOCKER_BUILDKIT=0 docker build (cached)"]
    report.row(stats.goal_row(f"cached rebuild, {STEPS}-step multi-stage", minidocker=fmt_time(median(md)),
                              docker=fmt_time(median(dk)), value=stats.ratio(median(md), median(dk)),
                              best=stats.ratio(min(md), min(dk)), against="docker", goal=GOAL))
