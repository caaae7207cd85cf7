"""The learner's copy of the course, made from the instructor's notebooks with nbgrader's own
preprocessors: solutions replaced by a stub, hidden tests removed, outputs cleared (so that
"predict, then run" is not spoiled), test markers (`# NBVAL_...`) dropped.

    python -m minidocker.lab.course learner notebooks/ course/   # what `make lab` does
    python -m minidocker.lab.course exercises notebooks/          # every exercise and its points

A learner's copy that exists is never overwritten (it holds the learner's work): a newer
instructor notebook is written beside it as `<name>.new.ipynb`, to compare and merge by hand.

The format is nbgrader's (https://nbgrader.readthedocs.io): an exercise is a code cell with
`### BEGIN SOLUTION` / `### END SOLUTION` and the metadata nbgrader.solution = true; its check is
a locked code cell with nbgrader.grade = true and points, whose `### BEGIN HIDDEN TESTS` /
`### END HIDDEN TESTS` part only the grader sees. labs/ is the classroom side of the same files.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import re
import sys

NBVAL_MARKER = re.compile(r"^\s*#\s*NBVAL_[A-Z_]+\s*$")
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"


def load(path: str):
    import nbformat
    return nbformat.read(path, as_version=4)


def exercises(nb) -> list[dict]:
    """The nbgrader cells of a notebook, in order: {grade_id, kind: solution|check, points}."""
    out = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") or meta.get("grade"):
            out.append({"grade_id": meta.get("grade_id"), "points": meta.get("points", 0),
                        "kind": "check" if meta.get("grade") else "solution"})
    return out


try:  # nbconvert comes with nbgrader (the lab and test extras)
    from nbconvert.preprocessors import Preprocessor
    from traitlets import Bool
except ImportError:  # pragma: no cover
    Preprocessor, Bool = object, None


class StripTestMarkers(Preprocessor):
    """Drop nbval's `# NBVAL_...` comment lines: they are for CI, not for the learner.
    labs/nbgrader_config.py puts it in front of nbgrader's generate_assignment too."""

    enabled = Bool(True).tag(config=True) if Bool else True

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code":
            lines = cell.source.splitlines()
            cell.source = "\n".join(line for line in lines if not NBVAL_MARKER.match(line))
            cell.metadata.pop("execution", None)
        return cell, resources


class TagExercises(Preprocessor):
    """Tag every exercise cell (the solution stub and its check) `raises-exception`, JupyterLab's
    marker for "an error here is expected": until the learner solves it, it raises, and Run All
    should still run the rest of the notebook (nothing after an exercise depends on it) instead of
    stopping at the first stub. An error in any other cell still stops Run All."""

    enabled = Bool(True).tag(config=True) if Bool else True

    def preprocess_cell(self, cell, resources, index):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and (meta.get("solution") or meta.get("grade")):
            tags = cell.metadata.setdefault("tags", [])
            if "raises-exception" not in tags:
                tags.append("raises-exception")
        return cell, resources


def learner_notebook(nb):
    """The learner's version of an instructor notebook (a new object; `nb` is not changed)."""
    from nbgrader.preprocessors import ClearHiddenTests, ClearMarkScheme, ClearOutput, ClearSolutions
    from traitlets.config import Config
    nb = copy.deepcopy(nb)
    cfg = Config()
    cfg.ClearSolutions.code_stub = {"python": STUB}
    resources: dict = {}
    for pre in (ClearSolutions(config=cfg), ClearHiddenTests(), ClearMarkScheme(), ClearOutput(),
                StripTestMarkers(), TagExercises()):
        nb, resources = pre.preprocess(nb, resources)
    nb.metadata.pop("widgets", None)  # the saved state of widget views that are no longer there
    return nb


def _digest(nb) -> str:
    import nbformat
    return hashlib.sha256(nbformat.writes(nb).encode()).hexdigest()


def make_learner_copies(src: str, dest: str, force: bool = False) -> list[str]:
    """Write the learner's copy of every NN-*.ipynb (and the interview-*.ipynb practice notebook)
    in `src` to `dest`; returns what was done.
    Copies the learner may have worked in are kept (see the module's docstring)."""
    import nbformat
    os.makedirs(dest, exist_ok=True)
    done = []
    state_file = os.path.join(dest, ".generated.json")  # digest of each copy as generated
    try:
        with open(state_file) as f:
            generated = json.load(f)
    except (OSError, ValueError):
        generated = {}
    for name in sorted(os.listdir(src)):
        if not re.match(r"(\d\d|interview)-.*\.ipynb$", name):
            continue
        fresh = learner_notebook(load(os.path.join(src, name)))
        target = os.path.join(dest, name)
        if os.path.exists(target) and not force:
            current = load(target)
            if _digest(current) == _digest(fresh):
                continue
            if generated.get(name) != _digest(current):  # the learner has worked in it: keep it
                side = target[:-len(".ipynb")] + ".new.ipynb"
                nbformat.write(fresh, side)
                done.append(f"{name}: kept your copy (you changed it); the newer version is {os.path.basename(side)}")
                continue
        nbformat.write(fresh, target)
        generated[name] = _digest(load(target))
        done.append(f"{name}: written")
    with open(state_file, "w") as f:
        json.dump(generated, f, indent=1, sort_keys=True)
    return done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m minidocker.lab.course")
    sub = ap.add_subparsers(dest="cmd", required=True)
    lp = sub.add_parser("learner", help="write the learner's copies of SRC's notebooks into DEST")
    lp.add_argument("src")
    lp.add_argument("dest")
    lp.add_argument("--force", action="store_true", help="overwrite copies the learner changed")
    ep = sub.add_parser("exercises", help="list the exercises of SRC's notebooks")
    ep.add_argument("src")
    args = ap.parse_args(argv)
    if args.cmd == "learner":
        for line in make_learner_copies(args.src, args.dest, args.force):
            print(line)
        return 0
    total = 0
    for name in sorted(os.listdir(args.src)):
        if name.endswith(".ipynb"):
            for ex in exercises(load(os.path.join(args.src, name))):
                if ex["kind"] == "check":
                    total += ex["points"]
                    print(f"{name:<40} {ex['grade_id']:<36} {ex['points']:>3}")
    print(f"{'total':<77} {total:>3}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
