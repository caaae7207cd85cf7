"""The json-file log driver: what `docker logs` reads.

Docker never stores a container's output as plain text. Each line becomes one JSON object
in containers/<id>/<id>-json.log:

    {"log":"hello\\n","stream":"stdout","time":"2026-11-28T02:02:59.391086706Z"}

so `docker logs` can separate stdout from stderr, show timestamps (-t), and `--tail`.
A line longer than 16 KiB, or a last line with no newline, is written without its "\\n".
"""
from __future__ import annotations

import json
import os
import time
from collections import deque
from typing import Iterator

from ..gotime import parse_rfc3339, rfc3339nano, rfc3339nano_fixed

MAX_LINE = 16 * 1024


class LineSplitter:
    """Cuts a byte stream into log records at newlines (pure; fed by the shim)."""

    def __init__(self, stream: str):
        self.stream = stream
        self.buf = b""

    def feed(self, data: bytes) -> list[bytes]:
        self.buf += data
        out = []
        while True:
            nl = self.buf.find(b"\n")
            if nl < 0:
                break
            out.append(self.buf[:nl + 1])
            self.buf = self.buf[nl + 1:]
        while len(self.buf) >= MAX_LINE:
            out.append(self.buf[:MAX_LINE])
            self.buf = self.buf[MAX_LINE:]
        return out

    def flush(self) -> list[bytes]:
        out, self.buf = ([self.buf] if self.buf else []), b""
        return out


def encode(line: bytes, stream: str, when_ns: int) -> bytes:
    rec = {"log": line.decode("utf-8", "replace"), "stream": stream, "time": rfc3339nano(when_ns)}
    return (json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


class JsonFileWriter:
    def __init__(self, path: str):
        # O_APPEND: each record lands whole at the end, even if two writers race.
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)

    def write(self, line: bytes, stream: str) -> None:
        os.write(self.fd, encode(line, stream, time.time_ns()))

    def close(self) -> None:
        os.close(self.fd)


class JsonFileLog:
    """The log driver the monitor writes to: raw output in, one JSON record per line out."""

    def __init__(self, path: str):
        self.writer = JsonFileWriter(path)
        self.splitters = {"stdout": LineSplitter("stdout"), "stderr": LineSplitter("stderr")}

    def feed(self, stream: str, data: bytes) -> None:
        for line in self.splitters[stream].feed(data):
            self.writer.write(line, stream)

    def end(self, stream: str) -> None:
        """The stream closed: its last line, even without a newline, is a record too."""
        for line in self.splitters[stream].flush():
            self.writer.write(line, stream)

    def close(self) -> None:
        for stream in self.splitters:
            self.end(stream)
        self.writer.close()


def parse_line(raw: bytes) -> dict | None:
    try:
        return json.loads(raw)
    except ValueError:
        return None  # a torn last line while the writer is mid-write


def read(path: str, tail: int | None = None, since: float | None = None,
         until: float | None = None) -> list[dict]:
    """All records (or the last `tail`) as dicts."""
    try:
        with open(path, "rb") as f:
            lines = f.readlines()
    except FileNotFoundError:
        return []
    recs = (r for r in (parse_line(x) for x in lines) if r)
    if since is not None or until is not None:
        recs = (r for r in recs if _in_window(r, since, until))
    if tail is not None:
        return list(deque(recs, maxlen=tail)) if tail > 0 else []
    return list(recs)


def _in_window(rec: dict, since: float | None, until: float | None) -> bool:
    t = parse_rfc3339(rec.get("time", ""))
    if t is None:
        return True
    return (since is None or t >= since) and (until is None or t <= until)


def follow(path: str, start_offset: int, alive, poll: float = 0.05) -> Iterator[dict]:
    """Yield new records appended after `start_offset` until `alive()` is False and the
    file is drained (docker logs -f stops when the container stops)."""
    pos = start_offset
    partial = b""
    while True:
        try:
            with open(path, "rb") as f:
                f.seek(pos)
                chunk = f.read()
        except FileNotFoundError:
            return
        if chunk:
            pos += len(chunk)
            partial += chunk
            *lines, partial = partial.split(b"\n")
            for ln in lines:
                rec = parse_line(ln)
                if rec:
                    yield rec
            continue
        if not alive():
            # one last read: the writer may have flushed between our read and the check
            with open(path, "rb") as f:
                f.seek(pos)
                rest = partial + f.read()
            for ln in rest.split(b"\n"):
                rec = parse_line(ln) if ln.strip() else None
                if rec:
                    yield rec
            return
        time.sleep(poll)


def format_record(rec: dict, timestamps: bool) -> str:
    text = rec.get("log", "")
    if timestamps:
        t = rec.get("time", "")
        secs = parse_rfc3339(t)
        if secs is not None:
            frac = t.rstrip("Z").partition(".")[2]
            ns = int(secs) * 1_000_000_000 + int((frac + "000000000")[:9])
            t = rfc3339nano_fixed(ns)
        return f"{t} {text}"
    return text
