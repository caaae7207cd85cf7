"""labs/ is an nbgrader course directory that works as instructors expect, tested with nbgrader
itself: the released copies hold no solution, hidden test or test marker; the instructor's source
handed in as a submission gets full marks; the released (learner's) copy handed in unchanged gets
none: every graded check fails on the stubs. And `python -m minidocker.lab.grade` turns a folder
of submissions into the score table and per-student feedback.

The grading runs every lab's notebook twice (real containers, as root): a few minutes."""
from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbgrader")

from minidocker.lab import course, grade  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LABS = os.path.join(ROOT, "labs")
SOURCES = sorted(glob.glob(os.path.join(LABS, "source", "*", "*.ipynb")))


def copy_labs(dest) -> str:
    """A private copy of labs/ (the repository's own stays untouched): its config, and its
    source notebooks as files (the repository links them to notebooks/)."""
    labs = os.path.join(dest, "labs")
    os.makedirs(labs)
    shutil.copy(os.path.join(LABS, "nbgrader_config.py"), labs)
    for path in SOURCES:
        lab = os.path.basename(os.path.dirname(path))
        os.makedirs(os.path.join(labs, "source", lab))
        shutil.copyfile(path, os.path.join(labs, "source", lab, os.path.basename(path)))
    return labs


def graded_cells(path: str) -> set[str]:
    nb = nbformat.read(path, as_version=4)
    return {c.metadata["nbgrader"]["grade_id"] for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")}


def test_labs_are_the_course_notebooks_and_at_least_four():
    assert len(SOURCES) >= 4
    for path in SOURCES:
        assert os.path.basename(os.path.dirname(path)) + ".ipynb" == os.path.basename(path)
        assert os.path.islink(path) and os.path.exists(path), f"{path} links to a notebook in notebooks/"
    course_nbs = {os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "notebooks", "[0-9][0-9]-*.ipynb"))}
    assert {os.path.basename(p) for p in SOURCES} == course_nbs, "every course notebook is a lab"


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> str:
    """A private copy of labs/ with every lab's released copy made by nbgrader (once for the
    module: ~1 minute)."""
    labs = copy_labs(tmp_path_factory.mktemp("released"))
    env, kdir = grade.nbgrader_env()
    try:
        for path in SOURCES:
            grade.nbgrader(labs, env, "generate_assignment", os.path.basename(os.path.dirname(path)),
                           "--force")  # raises on a bad config too
    finally:
        shutil.rmtree(kdir, ignore_errors=True)
    return labs


def test_released_copies_hold_no_solution_and_match_the_learners_copy(released):
    for path in SOURCES:
        lab = os.path.basename(os.path.dirname(path))
        raw = open(os.path.join(released, "release", lab, os.path.basename(path))).read()
        for secret in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS"):
            assert secret not in raw, f"{lab}: {secret}"
        rel = nbformat.reads(raw, as_version=4)
        assert not [c for c in rel.cells if c.cell_type == "code" and "NBVAL_" in c.source], lab
        mine = course.learner_notebook(nbformat.read(path, as_version=4))
        assert [c.source for c in rel.cells] == [c.source for c in mine.cells], \
            f"{lab}: `make lab`'s copy and nbgrader's release differ"


@pytest.mark.root
def test_source_gets_full_marks_the_released_copy_none(tmp_path, released):
    """The instructor hands in the source, a learner the released copies unchanged. (One grader
    after the other: two at once would run the same lab twice at the same moment, and a lab's
    hand-made network namespaces and bridges have fixed names.)"""
    if os.geteuid() != 0:
        pytest.skip("the labs make namespaces, mounts and cgroups: root")
    labs = str(shutil.copytree(released, tmp_path / "labs"))
    subs = tmp_path / "submissions"
    for path in SOURCES:
        lab, name = os.path.basename(os.path.dirname(path)), os.path.basename(path)
        (subs / "instructor").mkdir(parents=True, exist_ok=True)
        (subs / "learner" / lab).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, subs / "instructor" / name)                                  # flat layout
        shutil.copyfile(os.path.join(labs, "release", lab, name), subs / "learner" / lab / name)  # nbgrader's
    p = subprocess.run([sys.executable, "-m", "minidocker.lab.grade", str(subs), "--labs", labs],
                       capture_output=True, text=True, timeout=3600)
    assert p.returncode == 0, p.stderr[-3000:]
    rows = grade.scores(labs)
    by = {(r["student"], r["lab"]): r for r in rows}
    for path in SOURCES:
        lab = os.path.basename(os.path.dirname(path))
        ours, theirs = by[("instructor", lab)], by[("learner", lab)]
        assert ours["max_score"] > 0 and ours["score"] == ours["max_score"], (lab, ours)
        assert theirs["score"] == 0 and set(theirs["failed"]) == graded_cells(path), (lab, theirs)
        feedback = glob.glob(os.path.join(labs, "feedback", "learner", lab, "*.html"))
        assert feedback, f"{lab}: no feedback for the learner"
    assert "instructor" in p.stdout and "learner" in p.stdout and "total" in p.stdout
    with open(os.path.join(labs, "grades.csv")) as f:
        assert "instructor" in f.read()
    json.dumps(rows)  # the table's data is plain


def test_grade_reports_what_it_cannot_use(tmp_path):
    labs = copy_labs(tmp_path)
    subs = tmp_path / "subs"
    (subs / "bad name!").mkdir(parents=True)
    (subs / "bob").mkdir()
    (subs / "bob" / "unknown.ipynb").write_text("{}")
    p = subprocess.run([sys.executable, "-m", "minidocker.lab.grade", str(subs), "--labs", labs],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    assert "skipped 'bad name!'" in p.stderr and "skipped bob/unknown.ipynb" in p.stderr
    assert "Traceback" not in p.stderr
