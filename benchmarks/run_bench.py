#!/usr/bin/env python3
"""How fast is `minidocker run --rm busybox true`, next to `docker run --rm` and `runc run`?

All three run the same root filesystem (our offline busybox layer) in the same session,
so the ratios mean something on any machine. Needs root, docker.io and runc.

    sudo .venv/bin/python benchmarks/run_bench.py [-n 20] [--against GITREF]

--against GITREF also times minidocker as it was at GITREF (a temporary git worktree), runs
interleaved with today's, so a change's cost or saving is measured, not guessed.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from minidocker.images import busybox  # noqa: E402
from minidocker.images.store import ImageStore  # noqa: E402
from minidocker.lab.realdocker import RealDocker  # noqa: E402
from minidocker.paths import StateRoot  # noqa: E402
from minidocker.storage import archive  # noqa: E402


def timed(argv: list[str], n: int, env: dict | None = None, cwd: str | None = None) -> list[float]:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(argv, check=True, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        samples.append(time.perf_counter() - t)
    return samples


def runc_bundle(rootfs_tar: str, where: str) -> str:
    bundle = os.path.join(where, "bundle")
    rootfs = os.path.join(bundle, "rootfs")
    os.makedirs(rootfs)
    archive.apply_layer(rootfs_tar, rootfs, overlay=False)
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    with open(os.path.join(bundle, "config.json")) as f:
        cfg = json.load(f)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["true"]
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(cfg, f)
    return bundle


def against(ref: str, work: str, n: int, md: list[str], env: dict) -> dict[str, list[float]]:
    """minidocker at `ref` and today's, in alternation (both see the same machine state)."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tree = os.path.join(work, "against")
    subprocess.run(["git", "-C", repo, "worktree", "add", "--detach", tree, ref], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        old_env = dict(env, MINIDOCKER_ROOT=os.path.join(work, "root-against"), PYTHONPATH=tree)
        timed(md, 2, old_env, cwd=tree)
        old, new = [], []
        for _ in range(n):
            old += timed(md, 1, old_env, cwd=tree)
            new += timed(md, 1, env)
        subprocess.run([sys.executable, "-m", "minidocker", "system", "prune", "-f"], env=old_env, cwd=tree,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return {f"minidocker at {ref} (none)": old, "minidocker now (none), paired": new}
    finally:
        subprocess.run(["git", "-C", repo, "worktree", "remove", "--force", tree], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=15, help="runs per tool (default 15)")
    ap.add_argument("--against", metavar="GITREF", help="also time minidocker at this git revision")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("run me as root", file=sys.stderr)
        return 1
    work = tempfile.mkdtemp(prefix="mdbench-")
    root = os.path.join(work, "root")
    env = dict(os.environ, MINIDOCKER_ROOT=root)
    # A learner's machine caches compiled modules; some sandboxes turn that off. Measure
    # the normal case (the first warm-up run writes the cache).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    results: dict[str, list[float]] = {}
    docker = None
    try:
        store = ImageStore(StateRoot(root))
        image = busybox.ensure_busybox(store)
        tar = os.path.join(work, "busybox.tar")
        busybox.export_rootfs(store, image, tar)

        # --network none on both sides: docker's private daemon here has no bridge
        md = [sys.executable, "-m", "minidocker", "run", "--rm", "--network", "none", "busybox", "true"]
        timed(md, 2, env)  # warm the page cache
        results["minidocker run --rm"] = timed(md, args.n, env)
        mdb = [sys.executable, "-m", "minidocker", "run", "--rm", "busybox", "true"]
        timed(mdb, 1, env)
        results["minidocker run --rm (bridge+veth)"] = timed(mdb, args.n, env)

        if args.against:
            results.update(against(args.against, work, args.n, md, env))

        if shutil.which("runc"):
            bundle = runc_bundle(tar, work)
            rc = ["runc", "--root", os.path.join(work, "runc-state"), "run", "bench"]
            timed(rc, 2, cwd=bundle)
            results["runc run"] = timed(rc, args.n, cwd=bundle)

        docker = RealDocker.start()
        docker.load_rootfs(tar, "busybox:latest", busybox.DOCKER_IMPORT_CHANGES)
        dk = [docker.client, "-H", f"unix://{docker.socket}", "run", "--rm", "--network", "none",
              "busybox", "true"]
        timed(dk, 2)
        results["docker run --rm"] = timed(dk, args.n)
    finally:
        if docker:
            docker.stop()
        subprocess.run([sys.executable, "-m", "minidocker", "system", "prune", "-f"], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)

    base = statistics.median(results["minidocker run --rm"])
    print(f"{'command (busybox true, n=%d)' % args.n:34} {'median':>9} {'min':>9}  minidocker (none) is")
    for name, samples in results.items():
        med = statistics.median(samples)
        if name == "minidocker run --rm":
            ratio = "-"
        elif med >= base:
            ratio = f"{med / base:.2f}x faster"
        else:
            ratio = f"{base / med:.2f}x slower"
        print(f"{name:34} {med * 1000:7.1f}ms {min(samples) * 1000:7.1f}ms  {ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
