"""Time as Docker's Go code prints and parses it: RFC 3339 with nanoseconds, Go's zero time,
and go-units' human durations ("Up 5 seconds", "About a minute ago").

A bottom helper (no minidocker imports): containers, images, networks, volumes and logs all
carry timestamps in this form. Pure functions; tested without root.
"""
from __future__ import annotations

from datetime import datetime, timezone

ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's time.Time{}: "never" (e.g. FinishedAt of a running container)


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
