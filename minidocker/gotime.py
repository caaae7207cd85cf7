"""Time as Docker's Go code prints and parses it: RFC 3339 with nanoseconds, Go's zero time,
go-units' human durations ("Up 5 seconds", "About a minute ago"), and Go's own durations
("1m30s": time.ParseDuration and Duration.String, for --health-interval and HEALTHCHECK).

A bottom helper (no minidocker imports): containers, images, networks, volumes and logs all
carry timestamps in this form. Pure functions; tested without root.
"""
from __future__ import annotations

import json
import re
import time

ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's time.Time{}: "never" (e.g. FinishedAt of a running container)


def rfc3339nano(ns: int) -> str:
    """Go's time.RFC3339Nano: nanoseconds with trailing zeros trimmed, UTC 'Z'."""
    sec, frac = divmod(ns, 1_000_000_000)
    base = _utc_seconds(sec)
    frac_s = f"{frac:09d}".rstrip("0")
    return f"{base}.{frac_s}Z" if frac_s else f"{base}Z"


def rfc3339nano_fixed(ns: int) -> str:
    """docker logs -t: always nine fractional digits (jsonmessage.RFC3339NanoFixed)."""
    sec, frac = divmod(ns, 1_000_000_000)
    return _utc_seconds(sec) + f".{frac:09d}Z"


def _utc_seconds(sec: int) -> str:
    # (time, not datetime: every container's create, start and exit stamps a time, and
    # importing datetime costs ~3 ms of each; issue 23)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))


def parse_rfc3339(s: str) -> float | None:
    """Seconds since the epoch, or None for Go's zero time."""
    if not s or s.startswith("0001-01-01"):
        return None
    from datetime import datetime, timezone
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


# ---------------------------------------------------------------- Go's time.Duration
_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
                   "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_DURATION_PART = re.compile(r"(\d*)(\.\d*)?([^\d.]*)")


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # Go's %q, near enough


def parse_duration(text: str) -> int:
    """Go's time.ParseDuration, in nanoseconds: "30s", "1m30s", "1.5h", "250ms"."""
    s, sign = text, 1
    if s[:1] in ("-", "+"):
        sign, s = (-1 if s[0] == "-" else 1), s[1:]
    if s == "0":
        return 0
    if s == "":
        raise ValueError(f"time: invalid duration {_quote(text)}")
    total, pos = 0, 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        whole, frac, unit = m.group(1), (m.group(2) or "")[1:], m.group(3)
        if not whole and not frac:
            raise ValueError(f"time: invalid duration {_quote(text)}")
        if not unit:
            raise ValueError(f"time: missing unit in duration {_quote(text)}")
        if unit not in _DURATION_UNITS:
            raise ValueError(f"time: unknown unit {_quote(unit)} in duration {_quote(text)}")
        scale = _DURATION_UNITS[unit]
        total += int(whole or 0) * scale
        if frac:
            total += int(frac) * scale // 10 ** len(frac)
        pos = m.end()
    return sign * total


def _decimal(value: int, scale: int) -> str:
    """value/scale with the fraction's trailing zeros trimmed: 1500, 1000 -> "1.5"."""
    whole, frac = divmod(value, scale)
    digits = len(str(scale)) - 1
    frac_s = f"{frac:0{digits}d}".rstrip("0") if digits else ""
    return f"{whole}.{frac_s}" if frac_s else str(whole)


def format_duration(ns: int) -> str:
    """Go's Duration.String: "0s", "500ms", "1.5s", "1m30s", "1h0m0s"."""
    if ns == 0:
        return "0s"
    sign, u = ("-" if ns < 0 else ""), abs(ns)
    if u < 1_000:
        return f"{sign}{u}ns"
    if u < 1_000_000:
        return f"{sign}{_decimal(u, 1_000)}µs"
    if u < 1_000_000_000:
        return f"{sign}{_decimal(u, 1_000_000)}ms"
    hours, rest = divmod(u, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    out = f"{_decimal(rest, 1_000_000_000)}s"
    if hours or minutes:
        out = f"{minutes}m{out}"
    if hours:
        out = f"{hours}h{out}"
    return sign + out
