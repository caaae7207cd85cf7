"""Exercises: run the learner's code where it may fork, check it in one friendly line, and
show a solution only when the learner asks for it.

    from minidocker.lab.exercise import in_child, check, reveal

    def my_hostname_in_uts_namespace(name):       # the learner writes this in a cell
        from minidocker.core.linux import syscalls as sc
        sc.unshare(sc.CLONE_NEWUTS)
        ...
    result = in_child(my_hostname_in_uts_namespace, "box")   # runs in a fresh process
    check(result == "box", f"the hostname inside is {result!r}, not 'box'")
    reveal("nb03-uts")                             # prints the instructor's solution, on purpose

Why a fresh process? The notebook kernel is multi-threaded: fork() there can deadlock the child,
and unshare()/setns()/chroot() would change the kernel itself for the rest of the notebook. So the
learner's function is sent, as source code, to a new `python` process (which has one thread),
called there, and its return value comes back (pickled). What it prints is shown in the cell.
"""
from __future__ import annotations

import builtins
import inspect
import json
import os
import pickle
import subprocess
import sys
import textwrap
import types

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Where the instructor's notebooks are, for reveal(): the course and the classroom labs.
SOURCE_DIRS = [os.path.join(PACKAGE_PARENT, "notebooks"), os.path.join(PACKAGE_PARENT, "labs", "source")]


class Mismatch(AssertionError):
    """A graded check did not hold; the message says what is wrong in one line."""


def check(condition: object, message: str) -> None:
    """Fail a graded check with one line that says what is wrong (not a bare assert)."""
    if not condition:
        raise Mismatch(message)


def check_equal(actual: object, expected: object, what: str) -> None:
    """`what` is the thing compared, e.g. "memory.max": "memory.max is 'max', expected 67108864"."""
    if actual != expected:
        raise Mismatch(f"{what} is {actual!r}, expected {expected!r}")


class ChildFailed(Exception):
    """The learner's function raised (or the process died) in the child: the child's traceback."""


# ------------------------------------------------------------------ shipping a function
def _source(fn: types.FunctionType) -> str:
    try:
        return textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as e:
        raise TypeError(f"cannot find the source of {fn.__name__}(): define it in a cell (or a file)") from e


def _needs(fn: types.FunctionType, seen: set[str]) -> tuple[list[str], list[str]]:
    """The imports and definitions `fn` uses from its module's globals: modules (by import
    statement), functions defined in the notebook (by source, recursively) and plain constants
    (by repr). Anything else is left out and will be a NameError in the child."""
    imports: list[str] = []
    defs: list[str] = []
    names = set(fn.__code__.co_names)
    for const in fn.__code__.co_consts:  # names used in nested functions and comprehensions
        if isinstance(const, types.CodeType):
            names |= set(const.co_names)
    for name in sorted(names):
        if name in seen or name not in fn.__globals__ or hasattr(builtins, name):
            continue
        seen.add(name)
        value = fn.__globals__[name]
        if isinstance(value, types.ModuleType):
            imports.append(f"import {value.__name__} as {name}" if value.__name__ != name else f"import {name}")
        elif isinstance(value, types.FunctionType):
            if value.__module__ == fn.__module__ and fn.__module__ in ("__main__", "__lab__"):
                more_imports, more_defs = _needs(value, seen)
                imports += more_imports
                defs += more_defs + [_source(value)]
            else:
                imports.append(f"from {value.__module__} import {value.__name__} as {name}")
        elif isinstance(value, (type(None), bool, int, float, str, bytes, tuple, list, dict, frozenset, set)):
            try:
                if eval(repr(value), {}) == value:
                    defs.append(f"{name} = {value!r}")
            except Exception:  # noqa: BLE001 -- not a literal: the child will say NameError
                pass
        elif isinstance(value, type) and value.__module__ not in ("__main__", "__lab__"):
            imports.append(f"from {value.__module__} import {value.__qualname__} as {name}")
    return imports, defs


def program_for(fn: types.FunctionType) -> str:
    """The source the child runs: the imports and helpers `fn` needs, then `fn` itself."""
    imports, defs = _needs(fn, {fn.__name__})
    return "\n".join(dict.fromkeys(imports)) + "\n\n" + "\n\n".join(defs + [_source(fn)])


# The child: read (program, name, args, kwargs) from stdin, run the program as module __lab__,
# call the function, write (ok, value-or-traceback) to the fd named in argv[1].
_RUNNER = r"""
import linecache, os, pickle, sys, traceback, types
program, name, args, kwargs = pickle.load(sys.stdin.buffer)
linecache.cache["<your code>"] = (len(program), None, program.splitlines(True), "<your code>")  # for tracebacks
out = os.fdopen(int(sys.argv[1]), "wb")
mod = types.ModuleType("__lab__"); sys.modules["__lab__"] = mod
try:
    exec(compile(program, "<your code>", "exec"), mod.__dict__)
    value = getattr(mod, name)(*args, **kwargs)
    try:
        data = pickle.dumps((True, value))
    except Exception as e:
        data = pickle.dumps((False, "the function's return value cannot be sent back: %s" % e))
except BaseException:
    data = pickle.dumps((False, traceback.format_exc()))
out.write(data); out.close()
"""


def in_child(fn: types.FunctionType, *args, timeout: float = 60, env: dict | None = None, **kwargs):
    """Call fn(*args, **kwargs) in a fresh Python process and return what it returns.

    What the function prints appears here; if it raises, ChildFailed carries its traceback.
    The function may fork, unshare, mount, chroot: none of it touches the notebook's kernel.
    Plain data goes in and comes back (pickle); the function finds the modules, constants and
    helper functions of the notebook it names (sent with it, see program_for)."""
    payload = pickle.dumps((program_for(fn), fn.__name__, args, kwargs))
    r, w = os.pipe()
    child_env = dict(os.environ if env is None else env)
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_PARENT, child_env.get("PYTHONPATH")) if p)
    try:
        p = subprocess.Popen([sys.executable, "-u", "-c", _RUNNER, str(w)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(w,), env=child_env)
    finally:
        os.close(w)
    try:
        stdout, stderr = p.communicate(payload, timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        os.close(r)
        raise ChildFailed(f"{fn.__name__}() did not return within {timeout:g} s (killed)") from None
    with os.fdopen(r, "rb") as f:
        data = f.read()
    if stdout:
        sys.stdout.write(stdout.decode(errors="replace"))
    if stderr:
        sys.stderr.write(stderr.decode(errors="replace"))
    if not data:
        raise ChildFailed(f"the process running {fn.__name__}() ended without an answer (exit status {p.returncode})")
    ok, value = pickle.loads(data)
    if not ok:
        raise ChildFailed(f"{fn.__name__}() raised in its process:\n{value}")
    return value


# ------------------------------------------------------------------ solutions on purpose
def solution_cells(path: str) -> dict[str, str]:
    """grade_id -> source of every solution cell of an instructor notebook."""
    with open(path) as f:
        nb = json.load(f)
    found = {}
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and cell["cell_type"] == "code":
            src = cell["source"]
            found[meta["grade_id"]] = "".join(src) if isinstance(src, list) else src
    return found


def reveal(grade_id: str, print_it: bool = True) -> str:
    """The instructor's solution of exercise `grade_id` (the id in the exercise's heading), read
    from the instructor's notebooks in the repository. For a learner who is stuck: call it on
    purpose; the learner's copy never contains the solutions."""
    for d in SOURCE_DIRS:
        for dirpath, _dirs, files in os.walk(d):
            for name in sorted(files):
                if name.endswith(".ipynb") and ".ipynb_checkpoints" not in dirpath:
                    code = solution_cells(os.path.join(dirpath, name)).get(grade_id)
                    if code is not None:
                        text = code.replace("### BEGIN SOLUTION\n", "").replace("### END SOLUTION\n", "")
                        text = text.replace("### END SOLUTION", "")
                        if print_it:
                            print(f"# the solution of {grade_id} ({name}):\n{text}")
                        return text
    raise KeyError(f"no exercise {grade_id!r} in {', '.join(SOURCE_DIRS)}")
