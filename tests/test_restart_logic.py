"""container/restart.py: the restart policies' rules, without root (moby's restartmanager)."""
import pytest

from minidocker.container import restart
from minidocker.errors import InvalidArgument


@pytest.mark.parametrize("text,policy", [
    ("no", {"Name": "no", "MaximumRetryCount": 0}),
    ("always", {"Name": "always", "MaximumRetryCount": 0}),
    ("unless-stopped", {"Name": "unless-stopped", "MaximumRetryCount": 0}),
    ("on-failure", {"Name": "on-failure", "MaximumRetryCount": 0}),
    ("on-failure:3", {"Name": "on-failure", "MaximumRetryCount": 3}),
])
def test_parse(text, policy):
    assert restart.parse(text) == policy


@pytest.mark.parametrize("text,message", [
    ("bogus", "invalid restart policy 'bogus'"),
    (":3", "invalid restart policy format: no policy provided before colon"),
    ("on-failure:x", "maximum retry count must be an integer"),
    ("always:2", "maximum retry count cannot be used with restart policy 'always'"),
    ("on-failure:-1", "maximum retry count cannot be negative"),
])
def test_parse_refuses(text, message):
    with pytest.raises(InvalidArgument) as e:
        restart.parse(text)
    assert str(e.value) == message


def test_which_exits_restart():
    always, unless = restart.parse("always"), restart.parse("unless-stopped")
    on_failure, twice = restart.parse("on-failure"), restart.parse("on-failure:2")
    assert not restart.should_restart(restart.parse("no"), 1, False, 0)
    assert restart.should_restart(always, 0, False, 100) and restart.should_restart(unless, 0, False, 0)
    assert not restart.should_restart(on_failure, 0, False, 0)       # success is not a failure
    assert restart.should_restart(on_failure, 3, False, 1000)        # no limit
    assert [restart.should_restart(twice, 1, False, n) for n in range(4)] == [True, True, False, False]
    # after a stop or kill by the user only unless-stopped says no by itself (a stop or kill also
    # cancels the restart: the monitor checks that first, see engine/monitor.py)
    assert restart.should_restart(always, 137, True, 0) and not restart.should_restart(unless, 137, True, 0)


def test_which_kill_signals_cancel_the_restart():
    TERM, HUP, KILL = 15, 1, 9
    assert restart.cancels_restart(HUP, None)          # no StopSignal set: any signal
    assert restart.cancels_restart(KILL, HUP) and restart.cancels_restart(HUP, HUP)
    assert not restart.cancels_restart(TERM, HUP)      # a message to a process that keeps running


def test_back_off_doubles_caps_and_resets():
    delays, d = [], 0.0
    for _ in range(12):
        d = restart.next_delay(d, ran_for=0.01)
        delays.append(d)
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8] and delays[-1] == 60.0 and max(delays) == 60.0
    assert restart.next_delay(60.0, ran_for=10.0) == 0.1                # ran 10 s: start over


def test_at_boot_always_comes_back_unless_stopped_does_not():
    """What dockerd 20.10 did here after a restart of the daemon (tests/test_restart.py)."""
    always, unless, on_failure = (restart.parse(p) for p in ("always", "unless-stopped", "on-failure:1"))
    assert restart.should_start_at_boot(always, 0, manually_stopped=True, restart_count=0)
    assert not restart.should_start_at_boot(unless, 137, manually_stopped=True, restart_count=0)
    assert restart.should_start_at_boot(unless, 255, manually_stopped=False, restart_count=0)
    assert restart.should_start_at_boot(on_failure, 137, manually_stopped=True, restart_count=0)  # killed
    assert not restart.should_start_at_boot(on_failure, 1, manually_stopped=False, restart_count=1)  # used up
    assert not restart.should_start_at_boot(restart.parse("no"), 255, False, 0)
