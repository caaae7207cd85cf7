"""Health checks (HEALTHCHECK, `--health-*`, 健康检查): the rules, as Docker applies them.

Taught in notebook 09 (lifecycle). A container can be running and still be of no use (a web
server that hangs). A health check is a command run inside the container every Interval; its
exit code is the verdict: 0 healthy, anything else a failure (a probe that outlives Timeout is
killed and fails too). State.Health records it:

    starting --probe 0--> healthy --Retries failures in a row--> unhealthy --probe 0--> healthy

Failures while the container is still `starting` and younger than StartPeriod do not count.
The last 5 results are kept in Health.Log, each output cut at 4096 bytes. The container's
monitor runs the probes (engine/health.py); everything here is pure, unit-tested without root.
"""
from __future__ import annotations

from ..errors import InvalidArgument
from ..gotime import format_duration, rfc3339nano

STARTING, HEALTHY, UNHEALTHY, NONE = "starting", "healthy", "unhealthy", "none"
DEFAULT_INTERVAL = DEFAULT_TIMEOUT = 30_000_000_000   # ns
DEFAULT_RETRIES = 3
MAX_LOG_ENTRIES = 5
MAX_OUTPUT = 4096
MIN_DURATION = 1_000_000                               # 1 ms
DURATIONS = ("Interval", "Timeout", "StartPeriod", "StartInterval")


# ---------------------------------------------------------------- the configuration
def from_flags(cmd: str | None, interval: int, timeout: int, start_period: int, retries: int,
               disabled: bool) -> dict | None:
    """The `--health-*` / `--no-healthcheck` flags -> Config.Healthcheck (only what was set),
    refused with the docker CLI's words. None: no flag given (the image's check applies)."""
    given = cmd is not None or interval or timeout or start_period or retries
    if disabled:
        if given:
            raise InvalidArgument("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    for flag, value in (("--health-interval", interval), ("--health-timeout", timeout),
                        ("--health-start-period", start_period), ("--health-retries", retries)):
        if value < 0:
            raise InvalidArgument(f"{flag} cannot be negative")
    if not given:
        return None
    config: dict = {"Test": ["CMD-SHELL", cmd] if cmd is not None else None}
    for key, value in (("Interval", interval), ("Timeout", timeout), ("StartPeriod", start_period),
                       ("Retries", retries)):
        if value:
            config[key] = value
    return {k: v for k, v in config.items() if v is not None}


def merge(image: dict | None, user: dict | None) -> dict | None:
    """Config.Healthcheck of a new container: the flags over the image's HEALTHCHECK, field by
    field (dockerd's merge: an unset field takes the image's)."""
    if user is None:
        return dict(image) if image else None
    merged = {k: v for k, v in user.items() if v is not None}  # (the API may send a field as null: unset)
    for key, value in (image or {}).items():
        if not merged.get(key):
            merged[key] = value
    return merged


def validate(config: dict | None) -> None:
    """dockerd's checks of Config.Healthcheck (a daemon's refusal: exit 1, `run` makes it 125)."""
    for key in DURATIONS:
        value = (config or {}).get(key) or 0
        if 0 < value < MIN_DURATION or value < 0:
            raise InvalidArgument(f"{key} in Healthcheck cannot be less than 1ms", exit_code=1)
    if ((config or {}).get("Retries") or 0) < 0:
        raise InvalidArgument("Retries in Healthcheck cannot be negative", exit_code=1)


def enabled(config: dict | None) -> bool:
    test = (config or {}).get("Test") or []
    return bool(test) and test[0] != "NONE"


def probe_argv(config: dict, shell: list[str] | None = None) -> list[str]:
    """The probe's command line: CMD-SHELL runs in the image's shell (SHELL, default sh -c)."""
    kind, *rest = config["Test"]
    if kind == "CMD-SHELL":
        return list(shell or ["/bin/sh", "-c"]) + [" ".join(rest)]
    return rest


def interval(config: dict) -> float:
    return (config.get("Interval") or DEFAULT_INTERVAL) / 1e9


def timeout(config: dict) -> float:
    return (config.get("Timeout") or DEFAULT_TIMEOUT) / 1e9


def timeout_message(config: dict) -> str:
    return f"Health check exceeded timeout ({format_duration(config.get('Timeout') or DEFAULT_TIMEOUT)})"


# ---------------------------------------------------------------- State.Health
def on_start(health: dict | None) -> dict:
    """The container (re)starts: `starting` again; the log and the streak carry over."""
    health = dict(health or {"FailingStreak": 0, "Log": []})
    return {"Status": STARTING, "FailingStreak": health.get("FailingStreak", 0), "Log": list(health.get("Log") or [])}


def on_stop(health: dict | None) -> dict | None:
    """The container stopped: Docker leaves `unhealthy` with no streak (and keeps the log)."""
    if health is None:
        return None
    return {"Status": UNHEALTHY, "FailingStreak": 0, "Log": list(health.get("Log") or [])}


def cut_output(output: bytes) -> str:
    text = output[:MAX_OUTPUT].decode(errors="replace")
    return text + "..." if len(output) > MAX_OUTPUT else text


def record(health: dict, config: dict, exit_code: int, output: str, start_ns: int, end_ns: int,
           container_started_ns: int) -> dict:
    """One probe's result -> the new State.Health (moby's handleProbeResult)."""
    log = (list(health.get("Log") or []) + [{"Start": rfc3339nano(start_ns), "End": rfc3339nano(end_ns),
                                            "ExitCode": exit_code, "Output": output}])[-MAX_LOG_ENTRIES:]
    status, streak = health.get("Status", STARTING), health.get("FailingStreak", 0)
    if exit_code == 0:
        status, streak = HEALTHY, 0
    else:
        in_start_period = status == STARTING and start_ns - container_started_ns < (config.get("StartPeriod") or 0)
        if not in_start_period:
            streak += 1
            if streak >= (config.get("Retries") or DEFAULT_RETRIES):
                status = UNHEALTHY
    return {"Status": status, "FailingStreak": streak, "Log": log}


def status_of(state: dict) -> str:
    """What `ps --filter health=` compares: starting, healthy, unhealthy, or none."""
    health = state.get("Health")
    return health["Status"] if health else NONE
