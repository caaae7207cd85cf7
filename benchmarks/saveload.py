"""Goal 6: `save -o` and `load -i` of a ~100 MB image, minidocker next to docker.

The image is built once in minidocker (FROM busybox, RUN dd if=/dev/urandom of=/blob bs=1M
count=100) and moved to the private dockerd with `docker load`, so both engines hold the very
same layers. Each engine then saves to a file and loads its own file back, after an untimed
`rmi` (so the 100 MB layer is unpacked again, not found already there). Interleaved."""
from __future__ import annotations

import os

from . import stats
from .harness import Bench, Report, timed
from .stats import Goal, describe, fmt_time, median

GOAL = Goal("<=", 1, "x docker")
REPS = 3
IMAGE = "benchbig"
DOCKERFILE = "FROM busybox\nRUN dd if=/dev/urandom of=/blob bs=1M count=100\n"


def run(b: Bench, report: Report) -> None:
    n = min(b.n, REPS)
    report.start("saveload", f"save -o / load -i of a ~100 MB image (n={n}, interleaved)")
    ctx = os.path.join(b.work, "big-ctx")
    os.makedirs(ctx, exist_ok=True)
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write(DOCKERFILE)
    t = timed(b.md_argv("build", "-q", "-t", IMAGE, ctx), env=b.env)
    report.say(f"   (minidocker build of the image: {fmt_time(t)})")
    md_tar, dk_tar = os.path.join(b.work, "md-save.tar"), os.path.join(b.work, "dk-save.tar")
    b.md("save", "-o", md_tar, IMAGE)
    b.dk("load", "-i", md_tar)  # docker now has the same image
    b.dk("save", "-o", dk_tar, IMAGE)  # warm both
    report.say(f"   image files: minidocker's save {os.path.getsize(md_tar) / 1e6:.0f} MB, "
               f"docker's {os.path.getsize(dk_tar) / 1e6:.0f} MB")
    res: dict[str, list[float]] = {k: [] for k in ("minidocker save -o", "docker save -o",
                                                   "minidocker load -i", "docker load -i")}
    try:
        for _ in range(n):
            for who, tar, save, rmi, load in (
                    ("minidocker", md_tar, b.md_argv("save", "-o", md_tar, IMAGE), b.md_argv("rmi", IMAGE),
                     b.md_argv("load", "-i", md_tar)),
                    ("docker", dk_tar, b.dk_argv("save", "-o", dk_tar, IMAGE), b.dk_argv("rmi", IMAGE),
                     b.dk_argv("load", "-i", dk_tar))):
                env = b.env if who == "minidocker" else None
                os.unlink(tar)
                res[f"{who} save -o"].append(timed(save, env=env))
                timed(rmi, env=env)
                res[f"{who} load -i"].append(timed(load, env=env))
    finally:
        for p in (md_tar, dk_tar):
            if os.path.exists(p):
                os.unlink(p)
        b.md("rmi", IMAGE, check=False)
        b.dk("rmi", IMAGE, check=False)
    for name, samples in res.items():
        report.say(f"   {name:20} {describe(samples)}")
        report.keep(name, samples)
    for verb in ("save -o", "load -i"):
        md, dk = res[f"minidocker {verb}"], res[f"docker {verb}"]
        report.row(stats.goal_row(f"{verb} of a 100 MB image", minidocker=fmt_time(median(md)),
                                  docker=fmt_time(median(dk)), value=stats.ratio(median(md), median(dk)),
                                  best=stats.ratio(min(md), min(dk)), against="docker", goal=GOAL))
