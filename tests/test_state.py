"""Lifecycle rules and docker's status wording: pure, no root."""
import pytest

from minidocker import gotime
from minidocker.container import state as st
from minidocker.core.runc import exit_status
from minidocker.errors import Conflict, InvalidState

NOW = 1_800_000_000.0


def at(seconds_ago: float) -> str:
    return gotime.rfc3339nano(int((NOW - seconds_ago) * 1e9))


@pytest.mark.parametrize("secs,text", [
    (0.5, "Less than a second"), (1, "1 second"), (59, "59 seconds"), (60, "About a minute"),
    (119, "About a minute"), (120, "2 minutes"), (3599, "59 minutes"), (3600, "About an hour"),
    (5400, "2 hours"), (47 * 3600, "47 hours"), (48 * 3600, "2 days"), (14 * 86400, "2 weeks"),
    (60 * 86400, "2 months"), (800 * 86400, "2 years"),
])
def test_human_duration(secs, text):
    assert gotime.human_duration(secs) == text


def test_rfc3339nano_trims_zeros_and_fixed_does_not():
    assert gotime.rfc3339nano(1_700_000_000_120_000_000) == "2023-11-14T22:13:20.12Z"
    assert gotime.rfc3339nano(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"
    assert gotime.rfc3339nano_fixed(1_700_000_000_120_000_000) == "2023-11-14T22:13:20.120000000Z"
    assert gotime.parse_rfc3339("2023-11-14T22:13:20.12Z") == pytest.approx(1_700_000_000.12)
    assert gotime.parse_rfc3339(gotime.ZERO_TIME) is None


def test_status_strings():
    s = st.new_state()
    assert st.status_string(s, NOW) == "Created"
    st.set_running(s, 42, int((NOW - 5) * 1e9))
    assert st.status_string(s, NOW) == "Up 5 seconds"
    s["Paused"] = True
    assert st.status_string(s, NOW) == "Up 5 seconds (Paused)"
    st.set_exited(s, 137, int((NOW - 3) * 1e9))
    assert st.status_string(s, NOW) == "Exited (137) 3 seconds ago"
    assert s["Pid"] == 0 and s["Running"] is False and s["Status"] == "exited"


def test_start_failure_keeps_created():
    s = st.new_state()
    st.set_start_failed(s, 127, "exec failed")
    assert (s["Status"], s["ExitCode"], st.status_string(s, NOW)) == ("created", 127, "Created")


def test_transitions():
    s = st.new_state()
    assert st.check_start(s, "c") is True
    with pytest.raises(InvalidState, match="is not running"):
        st.check_kill(s, "c")
    with pytest.raises(InvalidState, match="Container c is not running"):
        st.check_pause(s, "c")
    with pytest.raises(InvalidState, match="Container c is not paused"):
        st.check_unpause(s, "c")
    st.check_remove(s, "c", force=False)
    st.set_running(s, 1, 0)
    assert st.check_start(s, "c") is False  # already running: no-op
    with pytest.raises(Conflict, match='cannot remove container "c": container is running'):
        st.check_remove(s, "c", force=False)
    st.check_remove(s, "c", force=True)
    s["Paused"] = True
    with pytest.raises(Conflict, match="cannot start a paused container, try unpause instead"):
        st.check_start(s, "c")
    with pytest.raises(InvalidState, match="already paused"):
        st.check_pause(s, "c")


def test_exit_status_from_wait_status():
    assert exit_status(3 << 8) == 3
    assert exit_status(9) == 137
    assert exit_status(15) == 143


def test_random_names_add_a_digit_after_a_collision():
    from minidocker.container import names
    assert names.random_name().count("_") == 1 and not names.random_name()[-1].isdigit()
    assert names.random_name(retry=1)[-1].isdigit()
