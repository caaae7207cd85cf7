"""The event journal: what `docker events` shows (事件).

dockerd keeps the last events in memory and streams new ones to `docker events`. minidocker has
no daemon: every command and every container's monitor that does something worth an event
appends one JSON line (Docker's own event message) to <root>/events.log, and `events` reads
and follows that file. One write(2) per event on an O_APPEND file: lines never interleave.

    {"status":"start","id":"3f1c..","from":"busybox","Type":"container","Action":"start",
     "Actor":{"ID":"3f1c..","Attributes":{"image":"busybox","name":"web"}},"scope":"local",
     "time":1764630000,"timeNano":1764630000123456789}

A bottom helper (no minidocker imports but paths): pure formatting and filters, tested
without root; the journal keeps the newest MAX_EVENTS when it grows past twice that.
"""
from __future__ import annotations

import fcntl
import json
import os
import time

from .gotime import rfc3339nano_fixed

MAX_EVENTS = 5000
FILTER_KEYS = ("container", "event", "image", "label", "type", "volume", "network")


def journal(root) -> str:
    return os.path.join(root.root if hasattr(root, "root") else root, "events.log")


def message(kind: str, action: str, actor_id: str, attributes: dict | None = None,
            when_ns: int | None = None) -> dict:
    """Docker's events.Message (with the old top-level status/id/from of container events)."""
    when_ns = time.time_ns() if when_ns is None else when_ns
    attrs = {k: str(v) for k, v in (attributes or {}).items()}
    msg: dict = {}
    if kind == "container":
        msg.update(status=action, id=actor_id, **({"from": attrs["image"]} if "image" in attrs else {}))
    msg.update(Type=kind, Action=action, Actor={"ID": actor_id, "Attributes": attrs}, scope="local",
               time=when_ns // 1_000_000_000, timeNano=when_ns)
    return msg


def emit(root, kind: str, action: str, actor_id: str, attributes: dict | None = None) -> None:
    """Append one event (never fails the operation that had it: an event is a by-product)."""
    try:
        line = (json.dumps(message(kind, action, actor_id, attributes), separators=(",", ":")) + "\n").encode()
        path = journal(root)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, line)
            if os.fstat(fd).st_size > 400 * MAX_EVENTS:  # (~2 * MAX_EVENTS lines of ~200 bytes)
                _trim(path)
        finally:
            os.close(fd)
    except OSError:
        pass


def _trim(path: str) -> None:
    with open(path + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with open(path, "rb") as f:
            lines = f.readlines()
        if len(lines) > MAX_EVENTS:
            tmp = path + ".tmp"
            with open(tmp, "wb") as f:
                f.writelines(lines[-MAX_EVENTS:])
            os.replace(tmp, path)


def container_attributes(rec: dict, **extra) -> dict:
    """A container event's Actor.Attributes: its image, name and labels (as dockerd adds them)."""
    attrs = dict((rec.get("Config") or {}).get("Labels") or {})
    attrs.update(image=(rec.get("Config") or {}).get("Image", ""), name=rec.get("Name", "").lstrip("/"))
    attrs.update({k: v for k, v in extra.items() if v is not None})
    return attrs


# ---------------------------------------------------------------- reading (pure but for the file)
def matches(msg: dict, filters: dict[str, list[str]]) -> bool:
    """docker events --filter: values of one key OR'ed, keys AND'ed."""
    attrs = msg["Actor"]["Attributes"]
    kind = msg["Type"]

    def one(key: str, value: str) -> bool:
        if key == "type":
            return kind == value
        if key == "event":
            return msg["Action"] == value or msg["Action"].split(":")[0] == value
        if key == "container":
            return kind == "container" and (msg["Actor"]["ID"].startswith(value) or attrs.get("name") == value)
        if key == "image":
            return attrs.get("image") == value or (kind == "image" and msg["Actor"]["ID"] == value)
        if key == "label":
            k, eq, v = value.partition("=")
            return k in attrs and (not eq or attrs[k] == v)
        if key in ("volume", "network"):
            return kind == key and (msg["Actor"]["ID"] == value or attrs.get("name") == value)
        return False
    return all(any(one(key, v) for v in values) for key, values in filters.items())


def format_line(msg: dict) -> str:
    """The default `docker events` line: time, type, action, id, (attributes sorted)."""
    attrs = ", ".join(f"{k}={v}" for k, v in sorted(msg["Actor"]["Attributes"].items()))
    when = rfc3339nano_fixed(msg["timeNano"])   # (docker prints local time: UTC here)
    return f"{when} {msg['Type']} {msg['Action']} {msg['Actor']['ID']}" + (f" ({attrs})" if attrs else "")


def read(root, since_ns: int | None = None, until_ns: int | None = None) -> list[dict]:
    try:
        with open(journal(root), "rb") as f:
            lines = f.readlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if (since_ns is None or msg["timeNano"] >= since_ns) and (until_ns is None or msg["timeNano"] <= until_ns):
            out.append(msg)
    return out
