"""minidocker.lab.exercise: the learner's function runs in a fresh process (with the helpers,
constants and modules it names), its errors come back with the learner's own file and line."""
from __future__ import annotations

import os
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
