"""Restart policies (`--restart`, 自动重启): whether a container that ended starts again, and when.

Taught in notebook 09 (lifecycle). Docker's daemon keeps a "restart manager" per container;
minidocker has no daemon, so the container's monitor (engine/monitor.py) asks these rules each
time the process ends, and waits out the back-off itself:

    no              never
    on-failure[:N]  when the exit code is not 0, at most N times (0 or no N: no limit)
    always          whatever the exit code
    unless-stopped  like always, but not after the user stopped it (the difference shows
                    when the host boots: see should_start_at_boot)

A `docker stop` or `docker kill` marks the container "manually stopped": it is not restarted
then, whatever the policy. The delay before a restart starts at 100 ms and doubles with each
restart in a row (capped at 1 minute); a run that lasted 10 s or more starts again at 100 ms.
Everything here is pure: unit-tested without root (moby's restartmanager, same numbers).
"""
from __future__ import annotations

from ..errors import InvalidArgument

POLICIES = ("no", "always", "unless-stopped", "on-failure")
FIRST_DELAY = 0.1          # seconds
MAX_DELAY = 60.0
RESET_AFTER = 10.0         # a run at least this long resets the back-off


def parse(text: str) -> dict:
    """`--restart` -> HostConfig.RestartPolicy, refused with the docker CLI's and dockerd's words
    (docker 20.10, the reference dockerd the tests compare with)."""
    name, colon, count = text.partition(":")
    if colon and not name:  # (docker 20.10 takes ":3" as "no"; newer CLIs refuse it so)
        raise InvalidArgument("invalid restart policy format: no policy provided before colon")
    retries = 0
    if count:
        try:
            retries = int(count)
        except ValueError:
            raise InvalidArgument("maximum retry count must be an integer") from None
    return validate({"Name": name, "MaximumRetryCount": retries})


def validate(policy: dict) -> dict:
    """dockerd's checks of a RestartPolicy (create and update): a daemon's refusal, exit 1
    (`run` makes it 125)."""
    name, retries = policy.get("Name") or "no", policy.get("MaximumRetryCount") or 0
    if name not in POLICIES:
        raise InvalidArgument(f"invalid restart policy '{name}'", exit_code=1)
    if retries and name != "on-failure":
        raise InvalidArgument(f"maximum retry count cannot be used with restart policy '{name}'", exit_code=1)
    if retries < 0:
        raise InvalidArgument("maximum retry count cannot be negative", exit_code=1)
    return {"Name": name, "MaximumRetryCount": retries}


def is_none(policy: dict | None) -> bool:
    return not policy or (policy.get("Name") or "no") == "no"


def should_restart(policy: dict | None, exit_code: int, manually_stopped: bool, restarts_so_far: int) -> bool:
    """The policy's answer when the process has ended (moby's RestartManager.ShouldRestart).
    `restarts_so_far` is the container's RestartCount (a start by the user sets it to 0). A stop or kill by
    the user also cancels the restart outright (the monitor checks that first), so
    `manually_stopped` matters here only where nothing cancelled: when the host boots."""
    if is_none(policy):
        return False
    name = policy["Name"]
    if name == "always":
        return True
    if name == "unless-stopped":
        return not manually_stopped
    limit = policy.get("MaximumRetryCount") or 0
    return exit_code != 0 and (limit == 0 or restarts_so_far < limit)


def cancels_restart(signal: int, stop_signal: int | None, sigkill: int = 9) -> bool:
    """Does `docker kill -s SIGNAL` by the user cancel the restart policy? moby: yes for SIGKILL,
    and for the container's own StopSignal if it has one set; without one, for any signal."""
    return stop_signal is None or signal in (sigkill, stop_signal)


def next_delay(previous: float, ran_for: float) -> float:
    """The back-off before the next restart, from the previous one (0 for the first) and how
    long the process just ran: 100 ms, 200 ms, 400 ms ... at most 1 minute."""
    if ran_for >= RESET_AFTER or previous <= 0:
        return FIRST_DELAY
    return min(previous * 2, MAX_DELAY)


def should_start_at_boot(policy: dict | None, exit_code: int, manually_stopped: bool, restart_count: int) -> bool:
    """When the host (dockerd) starts, which containers come back: the same rule (nothing
    cancels it at boot). So `always` comes back even after a `docker stop`, `unless-stopped`
    does not, `on-failure` does if its last exit was a failure with retries left -- even a
    `docker kill` (137), as dockerd 20.10 does."""
    return should_restart(policy, exit_code, manually_stopped, restart_count)
