"""The course notebooks as saved in git: executed, in order, without errors.

nbval (run by `make test` on notebooks/) re-executes every notebook and compares the fresh
outputs with the stored ones, so a *stale* notebook fails there. This file catches what nbval
does not: a notebook saved with an error in it, saved without its outputs, or saved after
running cells out of order (execution counts must read 1, 2, 3, ... top to bottom).
Regenerate with `scripts/run-notebooks.sh`.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
COURSE = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
CJK = re.compile(r"[\u4e00-\u9fff]")
SHOWS_SOMETHING = ("print(", "display(", "plt.show()")


def load(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def src(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_there_are_notebooks():
    assert len(COURSE) >= 5, COURSE


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.name)
def test_saved_without_errors(path):
    for i, cell in enumerate(code_cells(load(path)), start=1):
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", (
                f"code cell {i} was saved with an error ({out.get('ename')}: {out.get('evalue')}); "
                "fix it and run scripts/run-notebooks.sh")
            if out["output_type"] == "stream":
                text = "".join(out["text"]) if isinstance(out["text"], list) else out["text"]
                assert "Traceback (most recent call last)" not in text, f"code cell {i} printed a traceback"


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.name)
def test_executed_in_order(path):
    counts = [c["execution_count"] for c in code_cells(load(path))]
    assert counts == list(range(1, len(counts) + 1)), (
        f"execution counts {counts}: save the notebook after a clean top-to-bottom run "
        "(scripts/run-notebooks.sh)")


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.name)
def test_saved_with_outputs(path):
    cells = code_cells(load(path))
    assert any(c.get("outputs") for c in cells), "no outputs at all: the notebook was saved unexecuted"
    for i, cell in enumerate(cells, start=1):
        if any(s in src(cell) for s in SHOWS_SOMETHING):
            assert cell.get("outputs"), f"code cell {i} shows something but was saved without output"


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.name)
def test_kernel_and_headings(path):
    nb = load(path)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    headings = [line for c in nb["cells"] if c["cell_type"] == "markdown"
                for line in src(c).splitlines() if re.match(r"#{1,2} ", line)]
    assert headings and headings[0].startswith("# ")
    missing = [h for h in headings if not CJK.search(h)]
    assert not missing, f"headings need the seed's Chinese term beside the English one: {missing}"
