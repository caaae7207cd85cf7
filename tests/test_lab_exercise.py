"""minidocker.lab.exercise: the learner's function runs in a fresh process (with the helpers,
constants and modules it names), its errors come back with the learner's own file and line."""
from __future__ import annotations

import os
import re
import textwrap

import pytest

from minidocker.lab.exercise import ChildFailed, Mismatch, check, check_equal, in_child, program_for

# What a learner's cell holds (run as a notebook runs it: module __main__-like, source in a file)
CELL = textwrap.dedent('''
    import os
    LIMIT = 5

    def _times_limit(x):
        return x * LIMIT

    def twice_in_child(x):
        print("child says hi")
        return _times_limit(x) * 2, os.getpid()

    def fails_on_line():
        a = 1
        raise ValueError(f"nope {a}")

    def sleeper():
        import time
        time.sleep(30)
''')


@pytest.fixture
def cell(tmp_path):
    path = tmp_path / "cell_7.py"
    path.write_text(CELL)
    ns = {"__name__": "__lab__"}
    exec(compile(CELL, str(path), "exec"), ns)
    return str(path), ns


def test_the_function_runs_elsewhere_with_what_it_names(cell, capsys):
    _, ns = cell
    value, pid = in_child(ns["twice_in_child"], 3)
    assert value == 30 and pid != os.getpid()
    assert "child says hi" in capsys.readouterr().out
    src = program_for(ns["twice_in_child"])
    assert "LIMIT = 5" in src and "def _times_limit" in src and "import os" in src


def test_an_error_names_the_learners_file_and_line(cell):
    path, ns = cell
    with pytest.raises(ChildFailed) as e:
        in_child(ns["fails_on_line"])
    line = CELL.splitlines().index('    raise ValueError(f"nope {a}")') + 1
    assert f'File "{path}", line {line}, in fails_on_line' in str(e.value)
    assert 'raise ValueError(f"nope {a}")' in str(e.value) and "ValueError: nope 1" in str(e.value)
    assert "<string>" not in str(e.value)  # not the runner's own frame


def test_a_function_that_never_returns_is_killed(cell):
    with pytest.raises(ChildFailed, match="did not return within 1 s"):
        in_child(cell[1]["sleeper"], timeout=1)


def test_checks_fail_in_one_line():
    check(True, "never")
    with pytest.raises(Mismatch, match="^memory.max is 'max', expected 67108864$"):
        check_equal("max", 67108864, "memory.max")
    with pytest.raises(Mismatch, match="^the limit was never written$"):
        check(False, "the limit was never written")


def test_in_a_kernel_a_failed_check_ends_at_the_learners_line():
    """IPython shows every frame of a traceback's end; a failed check (or a learner's function
    that raised in its process) should read like the learner's own error: the last frame is
    the learner's cell line, the error is still an error (nbgrader and nbval see it fail)."""
    pytest.importorskip("ipykernel")
    jc = pytest.importorskip("jupyter_client")
    km, kc = jc.manager.start_new_kernel(kernel_name="python3", startup_timeout=60)
    try:
        def run(code):
            errors = []
            reply = kc.execute_interactive(code, timeout=60, output_hook=lambda m: errors.append(m["content"])
                                           if m["msg_type"] == "error" else None)
            return reply["content"]["status"], errors

        status, errors = run("from minidocker.lab.exercise import check, in_child\n"
                             "def f():\n    raise ValueError('nope')\n")
        assert status == "ok", errors
        for code, ename, last_line in [("x = 1\ncheck(x == 2, 'x is 1, not 2')", "Mismatch", "check(x == 2"),
                                       ("in_child(f)", "ChildFailed", "in_child(f)")]:
            status, errors = run(code)
            assert status == "error" and len(errors) == 1 and errors[0]["ename"] == ename, errors
            lines = [re.sub(r"\x1b\[[0-9;]*m", "", t) for t in errors[0]["traceback"]]  # no colours
            text = "\n".join(lines)
            assert "exercise.py" not in text, text              # none of our frames
            last_frame = lines[-2]                              # (lines[-1] is the error itself)
            assert "Cell In[" in last_frame and last_line in last_frame, text  # the learner's cell
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
