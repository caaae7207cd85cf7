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
import re
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
    __tracebackhide__ = True  # IPython shows the check cell's line, not this frame
    if not condition:
        raise Mismatch(message)


def check_equal(actual: object, expected: object, what: str) -> None:
    """`what` is the thing compared, e.g. "memory.max": "memory.max is 'max', expected 67108864"."""
    __tracebackhide__ = True
    if actual != expected:
        raise Mismatch(f"{what} is {actual!r}, expected {expected!r}")


class ChildFailed(Exception):
    """The learner's function raised (or the process died) in the child: the child's traceback."""


def _learners_frames_only(shell, etype, value, tb, tb_offset=None):
    """How IPython shows a Mismatch or a ChildFailed: the traceback ends at the learner's line.
    (IPython's __tracebackhide__ hides every frame of ours but the one that raised.)"""
    kept = []
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__") != __name__:
            kept.append(tb)
        tb = tb.tb_next
    for outer, inner in zip(kept, kept[1:]):
        outer.tb_next = inner
    if kept:
        kept[-1].tb_next = None
    shell.showtraceback((etype, value, kept[0] if kept else None), tb_offset=tb_offset)


def _short_tracebacks_in_ipython() -> None:
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and not shell.custom_exceptions:  # never replace someone else's handler
        shell.set_custom_exc((Mismatch, ChildFailed), _learners_frames_only)


_short_tracebacks_in_ipython()


# ------------------------------------------------------------------ shipping a function
def _source(fn: types.FunctionType) -> str:
    try:
        return textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as e:
        raise TypeError(f"cannot find the source of {fn.__name__}(): define it in a cell (or a file)") from e


Chunk = tuple[str, int, str]  # (file name, its first line there, source): a definition to send


def _chunk(fn: types.FunctionType) -> Chunk:
    """A function's source with where it came from, so the child's traceback names the learner's
    cell and its line numbers, not a file of its own."""
    return fn.__code__.co_filename, fn.__code__.co_firstlineno, _source(fn)


def _needs(fn: types.FunctionType, seen: set[str]) -> tuple[list[str], list[Chunk]]:
    """The imports and definitions `fn` uses from its module's globals: modules (by import
    statement), functions defined in the notebook (by source, recursively) and plain constants
    (by repr). Anything else is left out and will be a NameError in the child."""
    imports: list[str] = []
    defs: list[Chunk] = []
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
                defs += more_defs + [_chunk(value)]
            else:
                imports.append(f"from {value.__module__} import {value.__name__} as {name}")
        elif isinstance(value, (type(None), bool, int, float, str, bytes, tuple, list, dict, frozenset, set)):
            try:
                if eval(repr(value), {}) == value:
                    defs.append(("<constants>", 1, f"{name} = {value!r}"))
            except Exception:  # noqa: BLE001 -- not a literal: the child will say NameError
                pass
        elif isinstance(value, type) and value.__module__ not in ("__main__", "__lab__"):
            imports.append(f"from {value.__module__} import {value.__qualname__} as {name}")
    return imports, defs


def parts_for(fn: types.FunctionType) -> tuple[str, list[Chunk]]:
    """The imports `fn` needs (one source), and its definitions: helpers, constants, then `fn`."""
    imports, defs = _needs(fn, {fn.__name__})
    return "\n".join(dict.fromkeys(imports)), defs + [_chunk(fn)]


def program_for(fn: types.FunctionType) -> str:
    """The same as one Python source (what a steps file holds: lab/capstone.py)."""
    imports, chunks = parts_for(fn)
    return imports + "\n\n" + "\n\n".join(text for _, _, text in chunks)


# The child: read (program, name, args, kwargs) from stdin, run the program as module __lab__,
# call the function, write (ok, value-or-traceback) to the fd named in argv[1].
_RUNNER = r"""
import ast, linecache, os, pickle, sys, traceback, types
imports, chunks, name, args, kwargs = pickle.load(sys.stdin.buffer)
out = os.fdopen(int(sys.argv[1]), "wb")
mod = types.ModuleType("__lab__"); sys.modules["__lab__"] = mod
try:
    exec(compile(imports, "<imports>", "exec"), mod.__dict__)
    for filename, first, text in chunks:
        # compiled at its own place in its cell (file), so a traceback shows the cell's lines
        tree = ast.parse(text, filename)
        ast.increment_lineno(tree, first - 1)
        lines = linecache.cache.get(filename, (0, None, [], filename))[2]
        lines = lines + ["\n"] * (first - 1 + text.count("\n") + 1 - len(lines))
        lines[first - 1:first - 1 + len(text.splitlines())] = text.splitlines(True)
        linecache.cache[filename] = (sum(map(len, lines)), None, lines, filename)
        exec(compile(tree, filename, "exec"), mod.__dict__)
    value = getattr(mod, name)(*args, **kwargs)
    try:
        data = pickle.dumps((True, value))
    except Exception as e:
        data = pickle.dumps((False, "the function's return value cannot be sent back: %s" % e))
except BaseException as e:
    tb = e.__traceback__.tb_next or e.__traceback__  # (not this runner's own frame)
    data = pickle.dumps((False, "".join(traceback.format_exception(type(e), e, tb))))
out.write(data); out.close()
"""


def in_child(fn: types.FunctionType, *args, timeout: float = 60, env: dict | None = None, **kwargs):
    """Call fn(*args, **kwargs) in a fresh Python process and return what it returns.

    What the function prints appears here; if it raises, ChildFailed carries its traceback.
    The function may fork, unshare, mount, chroot: none of it touches the notebook's kernel.
    Plain data goes in and comes back (pickle); the function finds the modules, constants and
    helper functions of the notebook it names (sent with it, see program_for)."""
    __tracebackhide__ = True  # IPython shows the learner's frames, not this one
    imports, chunks = parts_for(fn)
    payload = pickle.dumps((imports, chunks, fn.__name__, args, kwargs))
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
        raise ChildFailed(f"{fn.__name__}() raised in its process:\n{_cell_names(value)}") from None
    return value


def _cell_names(text: str) -> str:
    """In a notebook, IPython calls a cell's file "Cell In[5]": say it so in the child's traceback."""
    try:
        compiler = get_ipython().compile  # noqa: F821 -- defined inside IPython only
    except NameError:
        return text

    def name(m):
        found = compiler.format_code_name(m.group(1))
        return f"{found[0]} {found[1]}," if found else m.group(0)
    return re.sub(r'File "([^"]+)",', name, text)


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
