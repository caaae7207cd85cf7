"""The grader as an image: built with `minidocker build` from labs/grader/make_context.py's
context, saved, loaded into a real (private) dockerd and run there unchanged, one container per
submission, in parallel. The instructor's submission gets full marks inside the container; a
learner's untouched copy gets none. (Every lab is graded on the host by tests/test_labs.py; in
the container, the labs that lean hardest on what the container grants: mounts, cgroups, network
namespaces and bridges.)

Takes ~2 minutes (the image is ~500 MB)."""
from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import require_tool

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbgrader")

from minidocker.lab import course  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IN_THE_CONTAINER = {"02-rootfs.ipynb", "04-cgroups.ipynb", "06-networking.ipynb"}
pytestmark = [pytest.mark.root, pytest.mark.docker]


def test_the_grader_image_grades_in_the_real_docker(tmp_path, state_root):
    # the image carries the host programs the notebooks call (labs/grader/make_context.py)
    require_tool("dockerd"), require_tool("docker"), require_tool("busybox"), require_tool("runc")
    require_tool("capsh"), require_tool("setpriv"), require_tool("ip")
    from minidocker.lab.realdocker import RealDocker
    ctx = tmp_path / "context"
    subprocess.run([sys.executable, os.path.join(ROOT, "labs", "grader", "make_context.py"), str(ctx)],
                   check=True, capture_output=True, timeout=600)
    md = [sys.executable, "-m", "minidocker", "--root", state_root]
    subprocess.run(md + ["build", "-q", "-t", "minidocker-grader:test", str(ctx)], check=True,
                   capture_output=True, timeout=900)
    image_tar = tmp_path / "grader.tar"
    subprocess.run(md + ["save", "-o", str(image_tar), "minidocker-grader:test"], check=True, timeout=900)
    subprocess.run(md + ["rmi", "minidocker-grader:test"], check=True, capture_output=True, timeout=300)
    shutil.rmtree(ctx)  # ~500 MB each: pytest keeps its last three temporary directories
    # the submissions: the instructor hands in every lab (flat), a learner the untouched copy of one
    sources = sorted(p for p in glob.glob(os.path.join(ROOT, "notebooks", "[0-9][0-9]-*.ipynb"))
                     if os.path.basename(p) in IN_THE_CONTAINER)
    subs, out = tmp_path / "subs", tmp_path / "graded"
    for who in ("instructor", "learner"):
        (subs / who).mkdir(parents=True)
    for path in sources:
        nbformat.write(nbformat.read(path, as_version=4), subs / "instructor" / os.path.basename(path))
    nbformat.write(course.learner_notebook(nbformat.read(sources[0], as_version=4)),
                   subs / "learner" / os.path.basename(sources[0]))
    with RealDocker.start() as docker:
        docker.docker("load", "-i", str(image_tar), timeout=900)
        # the one command an instructor types: a container per student, two at once
        p = subprocess.run([sys.executable, "-m", "minidocker.lab.grade", str(subs), "--in-docker",
                            "minidocker-grader:test", "--jobs", "2", "--docker", docker.client, "--out", str(out)],
                           capture_output=True, text=True, timeout=2400,
                           env=dict(os.environ, DOCKER_HOST=f"unix://{docker.socket}"))
    image_tar.unlink()
    assert p.returncode == 0, p.stdout + p.stderr
    mine = {r["lab"]: r for r in json.load(open(out / "instructor" / "scores.json"))}
    assert len(mine) == len(sources), p.stdout
    for lab, r in mine.items():
        assert r["max_score"] > 0 and r["score"] == r["max_score"], (lab, r, p.stdout[-3000:])
    (theirs,) = json.load(open(out / "learner" / "scores.json"))
    assert theirs["score"] == 0 and theirs["failed"], theirs
    assert glob.glob(str(out / "learner" / "feedback" / "learner" / "*" / "*.html"))
    assert "total" in p.stdout and "instructor" in p.stdout and "learner" in p.stdout
