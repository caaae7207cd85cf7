"""Container lifecycle: states, legal transitions, and how `docker ps` words them.

    created --start--> running --(process exits / stop / kill)--> exited
                          |  ^  |                                     |
                    pause |  |  | exits, and its restart policy       +--start--> running
                          v  |  | says again (container/restart.py)
                         paused +--> restarting --(back-off)--> running
                                                     rm: created|exited --> (gone)

`State` mirrors the `State` object of `docker inspect` key for key. Everything here is
pure (time is passed in), so the rules are unit-tested without root.
"""
from __future__ import annotations

import time

from ..errors import Conflict, InvalidState
from ..gotime import ZERO_TIME, human_duration, parse_rfc3339, rfc3339nano

STATES = CREATED, RUNNING, PAUSED, RESTARTING, REMOVING, EXITED, DEAD = (
    "created", "running", "paused", "restarting", "removing", "exited", "dead")


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


def set_restarting(state: dict, exit_code: int, when_ns: int, oom: bool = False) -> dict:
    """The process ended and its restart policy starts it again after a back-off. Docker
    counts a restarting container as running (Running stays true: stop, rm, wait treat it so)."""
    state.update(Status=RESTARTING, Running=True, Paused=False, Restarting=True, Pid=0,
                 ExitCode=exit_code, OOMKilled=oom, FinishedAt=rfc3339nano(when_ns))
    return state


def set_start_failed(state: dict, exit_code: int, error: str) -> dict:
    """A start that never reached the user's command: Docker keeps the container `created`
    (if it never ran before) and records the exit code and error."""
    state.update(Running=False, Paused=False, Restarting=False, Pid=0, ExitCode=exit_code, Error=error)
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
        raise Conflict("container is marked for removal and cannot be started")
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
