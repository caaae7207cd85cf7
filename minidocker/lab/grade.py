"""Grade a class: a folder of submissions in, a score table and per-student feedback out.

    python -m minidocker.lab.grade SUBMISSIONS [--labs labs/]

SUBMISSIONS holds one folder per student, with the notebooks they handed in, either flat
(`alice/04-cgroups.ipynb`) or by lab (`alice/04-cgroups/04-cgroups.ipynb`, nbgrader's own
layout). Each notebook is matched to the lab whose source has a notebook of that name. Then
nbgrader does the work (through its Python API, in this process), on the labs/ course
directory: `generate_assignment` (so the gradebook
knows every graded cell), `autograde` (runs each submission, as root: the exercises make
namespaces, mounts and cgroups), `generate_feedback` (HTML per student and lab, under
labs/feedback/) and `export` (labs/grades.csv). The table printed at the end comes from the
gradebook.

Grading runs the students' code as root: do it on a throw-away machine (a VM, or the grader
image, labs/grader/), never on a host you care about.

    python -m minidocker.lab.grade SUBMISSIONS --in-docker minidocker-grader [--jobs 4]

grades each student in a container of the grader image (labs/grader/make_context.py), run by
the `docker` command (DOCKER_HOST says which daemon), several at once, and prints one table.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

# What a grader container needs: the labs make namespaces (SYS_ADMIN, and SYS_PTRACE to read other
# processes' /proc/<pid>/ns), bridges and veths (NET_ADMIN), cgroups (the host's /sys/fs/cgroup,
# writable), device nodes (all devices allowed), /proc/sys writable for the bridge's sysctls
# (systempaths=unconfined), seccomp off for unshare(CLONE_NEWUSER...) probes, and /tmp on a tmpfs:
# overlay upper directories cannot live on the container's own overlay root. Less than
# --privileged (which also works, where the host's own bounding set has every capability).
DOCKER_RUN_FLAGS = [
    "--network", "none",
    "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN", "--cap-add", "SYS_PTRACE", "--cap-add", "IPC_LOCK",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--security-opt", "systempaths=unconfined", "--device-cgroup-rule", "a *:* rwm",
    "-v", "/sys/fs/cgroup:/sys/fs/cgroup", "--tmpfs", "/tmp:rw,exec,dev,suid,size=4g",
]
LABS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "labs")
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class GradeError(Exception):
    pass


def lab_notebooks(labs: str) -> dict[str, str]:
    """notebook file name -> the lab (assignment) it belongs to."""
    found = {}
    for path in sorted(glob.glob(os.path.join(labs, "source", "*", "*.ipynb"))):
        found[os.path.basename(path)] = os.path.basename(os.path.dirname(path))
    return found


def collect(submissions: str, labs: str) -> dict[str, set[str]]:
    """Copy every student's notebooks into labs/submitted/<student>/<lab>/; returns
    {lab: {students}}. Unknown notebooks and bad student names are reported, not fatal."""
    known = lab_notebooks(labs)
    todo: dict[str, set[str]] = {}
    for student in sorted(os.listdir(submissions)):
        sdir = os.path.join(submissions, student)
        if not os.path.isdir(sdir):
            continue
        if not STUDENT_ID.match(student):
            print(f"skipped {student!r}: a student id is letters, digits, '.', '_' or '-'", file=sys.stderr)
            continue
        for path in sorted(glob.glob(os.path.join(sdir, "*.ipynb")) + glob.glob(os.path.join(sdir, "*", "*.ipynb"))):
            name = os.path.basename(path)
            if ".ipynb_checkpoints" in path:
                continue
            lab = known.get(name)
            if lab is None:
                print(f"skipped {student}/{name}: no lab has a notebook of that name", file=sys.stderr)
                continue
            dest = os.path.join(labs, "submitted", student, lab)
            os.makedirs(dest, exist_ok=True)
            shutil.copyfile(path, os.path.join(dest, name))
            todo.setdefault(lab, set()).add(student)
    return todo


def nbgrader_env() -> tuple[dict, str]:
    """nbgrader starts kernels and `alembic` by name: make both this interpreter's. The
    `python3` kernelspec pip installs runs whatever `python` is first on PATH (as root, often
    another interpreter), so a private kernelspec names sys.executable."""
    kdir = tempfile.mkdtemp(prefix="mdgrade-kernels-")
    os.makedirs(os.path.join(kdir, "kernels", "python3"))
    with open(os.path.join(kdir, "kernels", "python3", "kernel.json"), "w") as f:
        json.dump({"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                   "display_name": "Python 3 (ipykernel)", "language": "python"}, f)
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "/usr/bin:/bin")])
    env["JUPYTER_PATH"] = os.pathsep.join(p for p in (kdir, env.get("JUPYTER_PATH")) if p)
    return env, kdir


def nbgrader(labs: str, env: dict, *args: str) -> str:
    p = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=labs, env=env, text=True,
                       capture_output=True, stdin=subprocess.DEVNULL)
    out = p.stdout + p.stderr
    # A config file that fails to load is only logged, and nbgrader goes on with its defaults
    # (e.g. a 30 s cell timeout): treat it as the error it is.
    if p.returncode != 0 or "Exception while loading config file" in out:
        raise GradeError(f"nbgrader {' '.join(args)} failed:\n{out[-4000:]}")
    return out


def scores(labs: str) -> list[dict]:
    """One row per (student, lab) submitted: score, max score, per notebook."""
    from nbgrader.api import Gradebook, MissingEntry
    rows = []
    with Gradebook("sqlite:///" + os.path.join(labs, "gradebook.db")) as gb:
        for a in sorted(gb.assignments, key=lambda a: a.name):
            for s in sorted(gb.students, key=lambda s: s.id):
                try:
                    sub = gb.find_submission(a.name, s.id)
                except MissingEntry:
                    continue
                rows.append({"student": s.id, "lab": a.name, "score": sub.score, "max_score": sub.max_score,
                             "failed": sorted(g.name for nb in sub.notebooks for g in nb.grades
                                              if g.max_score and (g.score or 0) < g.max_score)})
    return rows


def table(rows: list[dict]) -> str:
    labs = sorted({r["lab"] for r in rows})
    students = sorted({r["student"] for r in rows})
    cell = {(r["student"], r["lab"]): r for r in rows}
    width = max([len("student")] + [len(s) for s in students])
    head = f"{'student':<{width}}  " + "  ".join(f"{lab[:14]:>14}" for lab in labs) + "     total"
    lines = [head]
    for s in students:
        got = [cell.get((s, lab)) for lab in labs]
        parts = [f"{r['score']:>6g} / {r['max_score']:<5g}" if r else f"{'-':>14}" for r in got]
        total = sum(r["score"] for r in got if r)
        top = sum(r["max_score"] for r in got if r)
        lines.append(f"{s:<{width}}  " + "  ".join(parts) + f"  {total:g}/{top:g}")
    return "\n".join(lines)


class InProcess:
    """nbgrader's own Python API (NbGraderAPI), in this process: the same steps as its command
    line, without starting an interpreter that imports nbgrader (~4 s) for each one, which for
    a class of 30 and 11 labs adds up to most of an hour. (This process is the grader's own,
    single-threaded: the notebooks still run in kernels that nbgrader starts.)"""

    def __init__(self, labs: str, env: dict):
        from traitlets.config.loader import PyFileConfigLoader
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory
        os.environ.update(env)  # (the kernels nbgrader starts: PATH and JUPYTER_PATH)
        try:
            cfg = PyFileConfigLoader("nbgrader_config.py", path=labs).load_config()
        except Exception as e:  # noqa: BLE001 -- nbgrader would only log it and go on with defaults
            raise GradeError(f"{os.path.join(labs, 'nbgrader_config.py')}: {type(e).__name__}: {e}") from None
        self.api = NbGraderAPI(CourseDirectory(config=cfg), config=cfg)

    def run(self, step: str, *args) -> None:
        result = getattr(self.api, step)(*args, force=True)
        if not result.get("success"):
            raise GradeError(f"nbgrader {step} {' '.join(map(str, args))} failed:\n"
                             f"{(result.get('log', '') + result.get('error', ''))[-4000:]}")


def grade(submissions: str, labs: str = LABS) -> list[dict]:
    todo = collect(submissions, labs)
    if not todo:
        raise GradeError(f"no notebook in {submissions} belongs to a lab of {labs}")
    env, kdir = nbgrader_env()
    old_env, old_cwd = dict(os.environ), os.getcwd()
    try:
        os.chdir(labs)
        nb = InProcess(labs, env)
        for lab, students in sorted(todo.items()):
            nb.run("generate_assignment", lab)
            for student in sorted(students):
                nb.run("autograde", lab, student)
                nb.run("generate_feedback", lab, student)
        nbgrader(labs, env, "export", "--to", os.path.join(labs, "grades.csv"))
    finally:
        os.chdir(old_cwd)
        os.environ.clear()
        os.environ.update(old_env)
        shutil.rmtree(kdir, ignore_errors=True)
    graded = {(lab, s) for lab, ss in todo.items() for s in ss}
    return [r for r in scores(labs) if (r["lab"], r["student"]) in graded]


def export(rows: list[dict], labs: str, out: str) -> None:
    """The results, out of a grader container: scores, nbgrader's CSV, the feedback pages."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "scores.json"), "w") as f:
        json.dump(rows, f, indent=1)
    shutil.copyfile(os.path.join(labs, "grades.csv"), os.path.join(out, "grades.csv"))
    if os.path.isdir(os.path.join(labs, "feedback")):
        shutil.copytree(os.path.join(labs, "feedback"), os.path.join(out, "feedback"), dirs_exist_ok=True)


def grade_in_docker(submissions: str, image: str, out: str, jobs: int = 2,
                    docker: str = "docker") -> tuple[list[dict], list[str]]:
    """One container of the grader image per student, `jobs` at a time; their results land in
    out/<student>/ (scores.json, grades.csv, feedback/). Returns the rows and the students
    whose container failed."""
    from concurrent.futures import ThreadPoolExecutor
    students = [s for s in sorted(os.listdir(submissions))
                if os.path.isdir(os.path.join(submissions, s)) and STUDENT_ID.match(s)]
    if not students:
        raise GradeError(f"no student folder in {submissions}")

    def one(student: str) -> tuple[str, int, str]:
        dest = os.path.join(out, student)
        os.makedirs(dest, exist_ok=True)
        p = subprocess.run([docker, "run", "--rm", *DOCKER_RUN_FLAGS,
                            "-v", f"{os.path.join(submissions, student)}:/submissions/{student}:ro",
                            "-v", f"{dest}:/out", image], capture_output=True, text=True, stdin=subprocess.DEVNULL)
        return student, p.returncode, p.stdout + p.stderr

    rows, failed = [], []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:  # threads only wait for `docker run`
        for student, code, log in pool.map(one, students):
            if code != 0:
                last = (log.strip().splitlines() or ["(no output)"])[-1]
                print(f"{student}: the grader container exited {code}: {last}", file=sys.stderr)
                failed.append(student)
                continue
            with open(os.path.join(out, student, "scores.json")) as f:
                rows += json.load(f)
    return rows, failed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m minidocker.lab.grade", description=__doc__.split("\n\n")[0])
    ap.add_argument("submissions", help="a folder with one folder per student")
    ap.add_argument("--labs", default=LABS, help="the nbgrader course directory (default: labs/)")
    ap.add_argument("--out", help="also write scores.json, grades.csv and feedback/ here (the grader image's /out)")
    ap.add_argument("--in-docker", metavar="IMAGE", help="grade each student in a container of this grader image")
    ap.add_argument("--jobs", type=int, default=2, help="with --in-docker: containers at once (default 2)")
    ap.add_argument("--docker", default="docker", help="with --in-docker: the docker command (default: docker)")
    args = ap.parse_args(argv)
    try:
        if args.in_docker:
            out = os.path.abspath(args.out or "graded")
            rows, failed = grade_in_docker(os.path.abspath(args.submissions), args.in_docker, out,
                                           args.jobs, args.docker)
            args.labs = out
        else:
            failed = []
            rows = grade(os.path.abspath(args.submissions), os.path.abspath(args.labs))
            if args.out:
                export(rows, os.path.abspath(args.labs), args.out)
    except (GradeError, OSError) as e:
        print(f"grade: {e}", file=sys.stderr)
        return 1
    print(table(rows))
    for r in rows:
        if r["failed"]:
            print(f"{r['student']} {r['lab']}: not yet: {', '.join(r['failed'])}")
    if args.in_docker:
        print(f"feedback and scores: {args.labs}/<student>/")
    else:
        print(f"feedback: {os.path.join(args.labs, 'feedback')}/<student>/<lab>/")
        print(f"scores:   {os.path.join(args.labs, 'grades.csv')}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
