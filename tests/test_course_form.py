"""The course's form (notebooks/AUTHORING.md), checked on every notebook: objectives and time at the
top, the seed's questions named, predict-then-run with collapsed answers, at least three graded
exercises in nbgrader's format, a recap; and the learner's copy holds no solution, hidden test,
output or test marker. Pure file checks (no root); running the copies is tests/test_labs.py's job."""
from __future__ import annotations

import glob
import os
import re

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbgrader")

from minidocker.lab import course  # noqa: E402
from minidocker.lab.exercise import reveal, solution_cells  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "notebooks", "[0-9][0-9]-*.ipynb")))
IDS = [os.path.basename(p)[:2] for p in NOTEBOOKS]


def text(cell) -> str:
    return cell.source if isinstance(cell.source, str) else "".join(cell.source)


@pytest.fixture(params=NOTEBOOKS, ids=IDS)
def nb(request):
    return request.param, nbformat.read(request.param, as_version=4)


def test_objectives_time_and_seed_at_the_top(nb):
    path, book = nb
    first = text(book.cells[0])
    assert book.cells[0].cell_type == "markdown"
    assert "**Objectives**" in first, "the first cell lists the objectives"
    assert re.search(r"\*\*Time\*\*:\s*~?\d+\s*min", first), "the first cell says how long it takes"
    assert re.search(r"\*\*Seed\*\*:.*Q\d+", first, re.S), "the first cell names the seed's questions (Q1..Q75)"


def test_predict_then_run_with_a_collapsed_answer(nb):
    path, book = nb
    prompts = [i for i, c in enumerate(book.cells) if c.cell_type == "markdown"
               and text(c).lstrip().startswith("**Predict, then run.**")]
    assert len(prompts) >= 2, "at least two predict-then-run prompts"
    for i in prompts:
        after = book.cells[i + 1:i + 4]
        assert after and after[0].cell_type == "code", f"cell {i}: the prompt comes right before the code"
        assert any(c.cell_type == "markdown" and "<details>" in text(c) and "<summary>" in text(c)
                   for c in after[1:]), f"cell {i}: the answer follows the code, collapsed in <details>"


def test_at_least_three_graded_exercises_in_nbgraders_format(nb):
    path, book = nb
    solutions, checks = {}, {}
    for i, cell in enumerate(book.cells):
        meta = cell.metadata.get("nbgrader")
        if not meta:
            assert "BEGIN SOLUTION" not in text(cell) and "HIDDEN TESTS" not in text(cell), \
                f"cell {i}: markers without metadata"
            continue
        assert meta.get("schema_version") == 3 and cell.cell_type == "code", f"cell {i}"
        if meta.get("solution"):
            assert not meta.get("grade") and "### BEGIN SOLUTION" in text(cell) and "### END SOLUTION" in text(cell)
            solutions[meta["grade_id"]] = i
        if meta.get("grade"):
            assert meta.get("locked") and meta.get("points", 0) > 0, f"cell {i}: a check is locked and has points"
            src = text(cell)
            assert "### BEGIN HIDDEN TESTS" in src and "### END HIDDEN TESTS" in src, f"cell {i}: hidden tests"
            checks[meta["grade_id"]] = i
    assert len(solutions) >= 3 and len(checks) >= 3, f"{len(solutions)} exercises, {len(checks)} checks"
    for gid, i in solutions.items():
        assert re.fullmatch(r"nb\d\d-[a-z0-9-]+", gid), gid
        assert checks.get(gid + "-check", -1) > i, f"{gid}: its check ({gid}-check) comes after it"
        heading = text(book.cells[i - 1])
        assert "Exercise" in heading and gid in heading and f'reveal("{gid}")' in heading, \
            f"{gid}: the cell before says Exercise, the id and how to reveal the solution"


def test_grade_ids_are_unique_in_the_course():
    seen = {}
    for path in NOTEBOOKS:
        for ex in course.exercises(nbformat.read(path, as_version=4)):
            assert ex["grade_id"] not in seen, f"{ex['grade_id']} in {path} and {seen[ex['grade_id']]}"
            seen[ex["grade_id"]] = path


def test_a_recap_at_the_end(nb):
    path, book = nb
    tail = [text(c) for c in book.cells[-3:] if c.cell_type == "markdown"]
    assert any(re.search(r"^##\s+Recap", t, re.M) for t in tail), "one of the last cells is '## Recap'"


def test_the_learners_copy_holds_no_solution_hidden_test_output_or_marker(nb):
    path, book = nb
    learner = course.learner_notebook(book)
    raw = nbformat.writes(learner)
    for secret in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS"):
        assert secret not in raw, secret
    for cell in learner.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None
            assert "NBVAL_" not in cell.source, "test markers are for CI, not for the learner"
    stubs = [c for c in learner.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert stubs and all("raise NotImplementedError()" in text(c) for c in stubs)
    # Run All goes on past the stubs and failing checks (JupyterLab's raises-exception tag), not past other errors
    for cell in learner.cells:
        meta = cell.metadata.get("nbgrader", {})
        tagged = "raises-exception" in cell.metadata.get("tags", [])
        assert tagged == (cell.cell_type == "code" and bool(meta.get("solution") or meta.get("grade")))
    # and the source is untouched
    assert "BEGIN SOLUTION" in nbformat.writes(book)


def test_reveal_prints_the_solution_on_purpose():
    path = NOTEBOOKS[-1]
    gid, code = next(iter(solution_cells(path).items()))
    shown = reveal(gid, print_it=False)
    assert "BEGIN SOLUTION" not in shown and shown.strip() and shown.strip() in code.replace("### BEGIN SOLUTION\n", "")
    with pytest.raises(KeyError):
        reveal("nb99-nothing", print_it=False)


def test_learner_copies_keep_the_learners_work(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    book = nbformat.read(NOTEBOOKS[0], as_version=4)
    nbformat.write(book, src / "00-x.ipynb")
    dest = tmp_path / "course"
    assert course.make_learner_copies(str(src), str(dest)) == ["00-x.ipynb: written"]
    assert course.make_learner_copies(str(src), str(dest)) == []          # unchanged: nothing to do
    mine = nbformat.read(dest / "00-x.ipynb", as_version=4)
    mine.cells.append(nbformat.v4.new_code_cell("my_work = 1"))
    nbformat.write(mine, dest / "00-x.ipynb")
    book.cells.append(nbformat.v4.new_markdown_cell("a newer instructor cell"))
    nbformat.write(book, src / "00-x.ipynb")
    done = course.make_learner_copies(str(src), str(dest))
    assert "kept your copy" in done[0]
    assert "my_work = 1" in (dest / "00-x.ipynb").read_text()
    assert "a newer instructor cell" in (dest / "00-x.new.ipynb").read_text()
