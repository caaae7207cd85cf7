"""Container lifecycle: states, legal transitions, and how `docker ps` words them.

    created --start--> running --(process exits / stop / kill)--> exited
                          |  ^                                        |
                    pause |  | unpause                                +--start--> running
                          v  |
                         paused                      rm: created|exited --> (gone)

`State` mirrors the `State` object of `docker inspect` key for key. Everything here is
pure (time is passed in), so the rules are unit-tested without root.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

from ..errors import Conflict, InvalidState

ZERO_TIME = "0001-01-01T00:00:00Z"

CREATED, RUNNING, PAUSED, RESTARTING, REMOVING, EXITED, DEAD = (
    "created", "running", "paused", "restarting", "removing", "exited", "dead")


# ---------------------------------------------------------------- time formats
def now_ns() -> int:
    return time.time_ns()


def rfc3339nano(ns: int) -> str:
    """Go's time.RFC3339Nano: nanoseconds with trailing zeros trimmed, UTC 'Z'."""
    sec, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(sec, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    frac_s = f"{frac:09d}".rstrip("0")
    return f"{base}.{frac_s}Z" if frac_s else f"{base}Z"


def rfc3339nano_fixed(ns: int) -> str:
    """docker logs -t: always nine fractional digits (jsonmessage.RFC3339NanoFixed)."""
    sec, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(sec, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def parse_rfc3339(s: str) -> float | None:
    """Seconds since the epoch, or None for Go's zero time."""
    if not s or s.startswith("0001-01-01"):
        return None
    s = s.rstrip("Z")
    base, _, frac = s.partition(".")
    dt = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return dt.timestamp() + (float("0." + frac) if frac else 0.0)


def human_duration(seconds: float) -> str:
    """go-units HumanDuration, used by `docker ps` for CREATED and STATUS."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(seconds / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


# ---------------------------------------------------------------- the State object
def new_state() -> dict:
    return {"Status": CREATED, "Running": False, "Paused": False, "Restarting": False,
            "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
            "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME}


def set_running(state: dict, pid: int, when_ns: int) -> dict:
    state.update(Status=RUNNING, Running=True, Paused=False, Restarting=False, OOMKilled=False,
                 Dead=False, Pid=pid, ExitCode=0, Error="", StartedAt=rfc3339nano(when_ns))
    return state


def set_exited(state: dict, exit_code: int, when_ns: int, oom: bool = False, error: str = "") -> dict:
    state.update(Status=EXITED, Running=False, Paused=False, Restarting=False, Pid=0,
                 ExitCode=exit_code, OOMKilled=oom, Error=error, FinishedAt=rfc3339nano(when_ns))
    return state


def set_start_failed(state: dict, exit_code: int, error: str) -> dict:
    """A start that never reached the user's command: Docker keeps the container `created`
    (if it never ran before) and records the exit code and error."""
    state.update(Running=False, Paused=False, Pid=0, ExitCode=exit_code, Error=error)
    if state["StartedAt"] == ZERO_TIME:
        state["Status"] = CREATED
    else:
        state["Status"] = EXITED
    return state


def status_string(state: dict, now: float | None = None) -> str:
    """The STATUS column of `docker ps` (moby container.State.String)."""
    now = time.time() if now is None else now
    if state.get("Running"):
        started = parse_rfc3339(state["StartedAt"]) or now
        up = human_duration(now - started)
        if state.get("Paused"):
            return f"Up {up} (Paused)"
        if state.get("Restarting"):
            finished = parse_rfc3339(state["FinishedAt"]) or now
            return f"Restarting ({state['ExitCode']}) {human_duration(now - finished)} ago"
        health = (state.get("Health") or {}).get("Status")
        if health and health != "none":
            return f"Up {up} ({health})" if health != "starting" else f"Up {up} (health: starting)"
        return f"Up {up}"
    if state.get("Status") == REMOVING:
        return "Removal In Progress"
    if state.get("Dead"):
        return "Dead"
    if parse_rfc3339(state.get("StartedAt", ZERO_TIME)) is None:
        return "Created"
    finished = parse_rfc3339(state.get("FinishedAt", ZERO_TIME))
    if finished is None:
        return ""
    return f"Exited ({state['ExitCode']}) {human_duration(now - finished)} ago"


# ---------------------------------------------------------------- legal transitions
def check_start(state: dict, cid: str) -> bool:
    """May we start? Returns False when already running (docker: a no-op success)."""
    if state.get("Paused"):
        raise Conflict("cannot start a paused container, try unpause instead")
    if state.get("Status") == REMOVING:
        raise Conflict(f"container is marked for removal and cannot be started")
    if state.get("Dead"):
        raise Conflict(f"container {cid} is marked as dead and cannot be started")
    return not state.get("Running")


def check_kill(state: dict, cid: str, ref: str | None = None) -> None:
    if not state.get("Running"):
        raise InvalidState(f"Cannot kill container: {ref or cid}: Container {cid} is not running")


def check_pause(state: dict, cid: str) -> None:
    if not state.get("Running"):
        raise InvalidState(f"Container {cid} is not running")
    if state.get("Paused"):
        raise InvalidState(f"Container {cid} is already paused")
    if state.get("Restarting"):
        raise InvalidState(f"Container {cid} is restarting, wait until the container is running")


def check_unpause(state: dict, cid: str) -> None:
    if not state.get("Paused"):
        raise InvalidState(f"Container {cid} is not paused")


def check_remove(state: dict, name: str, force: bool) -> None:
    if state.get("Running") and not force:
        if state.get("Paused"):
            raise Conflict(f'cannot remove container "{name}": container is paused and running: '
                           "unpause and then stop the container before removing or force remove")
        raise Conflict(f'cannot remove container "{name}": container is running: '
                       "stop the container before removing or force remove")
    if state.get("Status") == REMOVING:
        raise Conflict(f"removal of container {name} is already in progress")


def exit_code_from_wait_status(status: int) -> int:
    """waitpid status -> the exit code Docker reports: the code, or 128+signal."""
    import os
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)
