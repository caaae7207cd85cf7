"""minidocker.lab.lifecycle: the state machine of notebook 09, without root."""
from __future__ import annotations

import pytest

from minidocker.container import state as st
from minidocker.lab import lifecycle as lc


def test_the_states_are_dockers_and_every_one_is_laid_out():
    assert set(lc.STATES) == {"created", "running", "paused", "restarting", "removing", "exited", "dead"}
    assert set(lc.LAYOUT) == set(lc.STATES) | {lc.NEW, lc.GONE}
    assert len(set(lc.LAYOUT.values())) == len(lc.LAYOUT)          # no two states on one spot
    for e in lc.EDGES:
        assert e.src in lc.LAYOUT and e.dst in lc.LAYOUT
    # every state can be reached from NEW, and GONE from every state but NEW
    reach, todo = {lc.NEW}, [lc.NEW]
    while todo:
        for e in lc.edges_from(todo.pop()):
            if e.dst not in reach:
                reach.add(e.dst)
                todo.append(e.dst)
    assert reach == set(lc.LAYOUT)


def test_commands_lead_where_docker_leads():
    walk = [("create", lc.NEW, "created"), ("start", "created", "running"), ("pause", "running", "paused"),
            ("unpause", "paused", "running"), ("stop", "running", "exited"), ("start", "exited", "running"),
            ("kill", "running", "exited"), ("restart", "exited", "running"), ("restart", "running", "running"),
            ("rm -f", "running", lc.GONE), ("rm", "exited", lc.GONE), ("rm", "created", lc.GONE),
            ("stop", "exited", "exited"), ("stop", "paused", "exited"), ("restart", "created", "running")]
    for command, before, after in walk:
        assert lc.after(before, command) == after, (command, before)
    assert lc.path_of("running", "rm -f") == ["removing", lc.GONE]


@pytest.mark.parametrize("state, command, words", [
    ("paused", "start", "cannot start a paused container, try unpause instead"),
    ("running", "unpause", "Container abc is not paused"),
    ("running", "rm", "container is running: stop the container before removing or force remove"),
    ("exited", "kill", "Container abc is not running"),
    ("restarting", "pause", "is restarting, wait until the container is running"),
])
def test_refusals_use_dockerds_words(state, command, words):
    with pytest.raises(lc.Refused, match=words):
        lc.after(state, command, cid="abc")


def test_refusals_agree_with_the_runtimes_checks():
    """The runtime's own checks (container/state.py) refuse what the model refuses."""
    records = {"running": st.set_running(st.new_state(), 42, 0), "exited": st.set_exited(st.new_state(), 0, 0)}
    paused = dict(records["running"], Paused=True, Status="paused")
    with pytest.raises(Exception, match=lc.REFUSED["paused", "start"]):
        st.check_start(paused, "abc")
    with pytest.raises(Exception, match="is not paused"):
        st.check_unpause(records["running"], "abc")
    with pytest.raises(Exception, match="container is running"):
        st.check_remove(records["running"], "web", force=False)
    with pytest.raises(Exception, match="is not running"):
        st.check_kill(records["exited"], "abc")
    st.check_remove(records["exited"], "web", force=False)       # no refusal: the model's rm edge


def test_a_walk_accepts_edges_and_refuses_the_rest():
    w = lc.Walk()
    for command, status in [("create", "created"), ("start", "running"), ("pause", "paused"), ("unpause", "running"),
                            ("start", "running"), ("stop", "exited"), ("rm", lc.GONE)]:
        w.observe(command, status)
    assert [(e.src, e.dst) for e in w.trail] == [
        (lc.NEW, "created"), ("created", "running"), ("running", "paused"), ("paused", "running"),
        ("running", "running"), ("running", "exited"), ("exited", "removing"), ("removing", lc.GONE)]
    assert w.trail[4].note == "no change"
    bad = lc.Walk()
    bad.observe("create", "created")
    with pytest.raises(ValueError, match="created --pause--> paused"):
        bad.observe("pause", "paused")
    with pytest.raises(ValueError):
        lc.Walk().observe("rm", lc.GONE)


def test_exit_codes():
    assert lc.exit_code_of(-9) == 137 and lc.exit_code_of(-15) == 143 and lc.exit_code_of(3) == 3
    assert "SIGKILL" in lc.describe_exit(137) and "SIGTERM" in lc.describe_exit(143)
    assert "SIGINT" in lc.describe_exit(130) and "not found" in lc.describe_exit(127)
    assert lc.describe_exit(42) == "the program's own exit code"
    assert set(lc.EXIT_CODES) == {0, 1, 125, 126, 127, 137, 143}


def test_the_drawing_has_one_arrow_per_pair_and_labels_inside_the_picture():
    pairs = [(s, d) for s, d, _ in lc.drawn_edges()]
    assert len(pairs) == len(set(pairs))
    assert {(e.src, e.dst) for e in lc.EDGES} - set(pairs) == lc.HIDDEN
    for s, d, _ in lc.drawn_edges():
        if s != d:
            a, b, (lx, ly), align = lc.arrow_geometry(s, d)
            assert -0.5 < lx < 7.5 and -0.3 < ly < 4.3 and align in ("left", "right", "center")
    assert lc.both_ways("running", "paused") and not lc.both_ways("created", "running")


def test_draw_highlights_the_current_state():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    w = lc.Walk()
    w.observe("create", "created")
    w.observe("start", "running")
    fig, ax = plt.subplots()
    lc.draw(ax, current="running", trail=w.trail, title="t")
    texts = [t.get_text() for t in ax.texts]
    assert "running" in texts and any(t.startswith("start") and t.endswith("[2]") for t in texts)
    bold = [t.get_text() for t in ax.texts if t.get_fontweight() == "bold"]
    assert bold == ["running"]
    plt.close(fig)
