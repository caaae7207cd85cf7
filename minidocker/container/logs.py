"""The json-file log driver: what `docker logs` reads.

Docker never stores a container's output as plain text. Each line becomes one JSON object
in containers/<id>/<id>-json.log:

    {"log":"hello\\n","stream":"stdout","time":"2026-11-28T02:02:59.391086706Z"}

so `docker logs` can separate stdout from stderr, show timestamps (-t), and `--tail`.
A line longer than 16 KiB, or a last line with no newline, is written without its "\\n".

`--log-opt max-size=10m --log-opt max-file=3` rotate it: once the file has reached max-size,
it becomes <id>-json.log.1 (the .1 before it .2, ...; the oldest beyond max-file is gone) and
a new file starts; `logs` reads them oldest first. `--log-driver none` keeps nothing.
"""
from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Iterator

from ..errors import InvalidArgument
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


DRIVERS = ("json-file", "none")
JSON_FILE_OPTS = ("max-size", "max-file", "compress", "labels", "labels-regex", "env", "env-regex", "tag")
DECIMAL = {"": 1, "k": 1000, "m": 1000 ** 2, "g": 1000 ** 3, "t": 1000 ** 4, "p": 1000 ** 5}


def human_size(text: str) -> int:
    """go-units FromHumanSize (decimal: 10k = 10000 bytes), what json-file reads max-size with."""
    import re
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?) ?([kKmMgGtTpP])?[bB]?", text)
    if not m:
        raise InvalidArgument(f"invalid size: '{text}'")
    return int(float(m.group(1)) * DECIMAL[(m.group(2) or "").lower()])


def log_config(driver: str | None, opts: list[str]) -> dict:
    """--log-driver and --log-opt -> HostConfig.LogConfig, refused with dockerd's words (a daemon's
    refusal: exit 1, `run` makes it 125)."""
    driver = driver or "json-file"
    config = {}
    for opt in opts:
        key, eq, value = opt.partition("=")
        if not eq:
            raise InvalidArgument(f"invalid key value pair format in logging opts: {opt}")
        config[key] = value
    if driver in ("local", "syslog", "journald", "gelf", "fluentd", "awslogs", "splunk", "etwlogs", "gcplogs",
                  "logentries"):
        raise InvalidArgument(f"log driver '{driver}' is one of Docker's, but minidocker has only "
                              f"{' and '.join(DRIVERS)}", exit_code=1)
    if driver not in DRIVERS:
        raise InvalidArgument(f"logger: no log driver named '{driver}' is registered", exit_code=1)
    if driver == "none" and config:
        raise InvalidArgument(f"unknown log opt '{next(iter(config))}' for none log driver", exit_code=1)
    for key in config:
        if key not in JSON_FILE_OPTS:
            raise InvalidArgument(f"unknown log opt '{key}' for json-file log driver", exit_code=1)
    limits(config)  # (the values too, now rather than at start)
    return {"Type": driver, "Config": config}


def limits(config: dict) -> tuple[int, int]:
    """(max size in bytes or -1, max files) of a json-file LogConfig.Config."""
    size, files = -1, 1
    if config.get("max-size"):
        size = human_size(config["max-size"])
        if size <= 0:
            raise InvalidArgument("max-size must be a positive number", exit_code=1)
    if config.get("max-file"):
        try:
            files = int(config["max-file"])
        except ValueError:
            raise InvalidArgument(f'strconv.Atoi: parsing "{config["max-file"]}": invalid syntax',
                                  exit_code=1) from None
        if files < 1:
            raise InvalidArgument("max-file cannot be less than 1", exit_code=1)
        if files > 1 and size == -1:
            raise InvalidArgument("max-file can only be set if max-size is set", exit_code=1)
    if config.get("compress") not in (None, "", "false"):
        raise InvalidArgument("compress is not supported by minidocker's json-file driver", exit_code=1)
    return size, files


def log_files(path: str, max_files: int = 99) -> list[str]:
    """The files of one container's log, oldest first: <path>.N ... <path>.1, <path>."""
    rotated = [f"{path}.{i}" for i in range(max_files, 0, -1) if os.path.exists(f"{path}.{i}")]
    return rotated + [path]


class JsonFileWriter:
    def __init__(self, path: str, max_size: int = -1, max_files: int = 1):
        self.path, self.max_size, self.max_files = path, max_size, max_files
        self._open(os.O_APPEND)

    def _open(self, extra: int) -> None:
        # O_APPEND: each record lands whole at the end, even if two writers race.
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | extra, 0o640)
        self.size = os.fstat(self.fd).st_size

    def write(self, line: bytes, stream: str) -> None:
        if self.max_size > 0 and self.size >= self.max_size:
            self._rotate()
        self.size += os.write(self.fd, encode(line, stream, time.time_ns()))

    def _rotate(self) -> None:
        """moby's LogFile rotation: shift .1 -> .2 ..., the file -> .1, start an empty one
        (with max-file 1: just start the one file again)."""
        os.close(self.fd)
        if self.max_files >= 2:
            for i in range(self.max_files - 1, 1, -1):
                if os.path.exists(f"{self.path}.{i - 1}"):
                    os.replace(f"{self.path}.{i - 1}", f"{self.path}.{i}")
            os.replace(self.path, f"{self.path}.1")
        self._open(os.O_TRUNC)

    def close(self) -> None:
        os.close(self.fd)


class NoLog:
    """--log-driver none: the output goes to an attached caller, and nowhere else."""

    def feed(self, stream: str, data: bytes) -> None: ...
    def end(self, stream: str) -> None: ...
    def close(self) -> None: ...


def open_driver(log_config_: dict | None, path: str):
    """The log the monitor writes to, from HostConfig.LogConfig."""
    cfg = log_config_ or {"Type": "json-file", "Config": {}}
    if cfg.get("Type") == "none":
        return NoLog()
    size, files = limits(cfg.get("Config") or {})
    return JsonFileLog(path, size, files)


class JsonFileLog:
    """The log driver the monitor writes to: raw output in, one JSON record per line out."""

    def __init__(self, path: str, max_size: int = -1, max_files: int = 1):
        self.writer = JsonFileWriter(path, max_size, max_files)
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


def snapshot_size(path: str) -> int:
    """Where `logs -f` goes on after what it read first: the end of the last complete line of
    `path` now (0 without a file). read(path, upto=it) then follow(path, it) gives every record
    once: one written between the two is the follow's alone (reading the whole file after
    taking its size sent such a record twice)."""
    try:
        with open(path, "rb") as f:
            return f.read().rfind(b"\n") + 1
    except FileNotFoundError:
        return 0


def read(path: str, tail: int | None = None, since: float | None = None,
         until: float | None = None, upto: int | None = None) -> list[dict]:
    """All records (or the last `tail`), across the rotated files, as dicts; of the current
    file `path` only its first `upto` bytes when given (see snapshot_size)."""
    lines = []
    for name in log_files(path):
        try:
            with open(name, "rb") as f:
                lines += (f.read(upto) if upto is not None and name == path else f.read()).split(b"\n")
        except FileNotFoundError:
            continue  # rotated away while we listed
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
    file is drained (docker logs -f stops when the container stops). A rotation (the file
    replaced by a new one) is followed into the new file."""
    pos = start_offset
    partial = b""
    try:
        inode = os.stat(path).st_ino
    except FileNotFoundError:
        return
    while True:
        try:
            with open(path, "rb") as f:
                now = os.fstat(f.fileno()).st_ino
                if now != inode:  # rotated: what the old file still had, then the new one from 0
                    for name in (f"{path}.1",):
                        try:
                            with open(name, "rb") as old:
                                if os.fstat(old.fileno()).st_ino == inode:
                                    old.seek(pos)
                                    partial += old.read()
                        except FileNotFoundError:
                            pass
                    inode, pos = now, 0
                elif os.fstat(f.fileno()).st_size < pos:  # max-file 1: truncated in place
                    pos = 0
                f.seek(pos)
                chunk = f.read()
        except FileNotFoundError:
            if alive():  # between a rotation's rename and the new file
                time.sleep(poll)
                continue
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
            try:
                with open(path, "rb") as f:
                    f.seek(pos)
                    rest = partial + f.read()
            except FileNotFoundError:  # removed with its container meanwhile (run --rm, rm -f)
                rest = partial
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
