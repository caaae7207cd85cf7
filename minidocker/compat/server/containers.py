"""/containers/...: the container verbs, as dockerd answers them.

`docker run` is four requests: create, attach (the connection is hijacked and waits), start,
wait. The attach must be in place before the start, or the first output would be lost: so
an attach to a container that has not started parks its connection here, and the start that
follows gives the monitor pipes whose other ends that connection reads and writes
(streams.relay). An attach to a running container goes through the monitor's own attach
socket (engine/attach.py), as `minidocker attach` does.
"""
from __future__ import annotations

import os
import select
import signal
import socket
import threading
import time

from ...container import logs as logsmod
from ...container import state as st
from ...errors import InvalidArgument, InvalidState, MinidockerError, NotFound
from . import streams, translate


# ---------------------------------------------------------------- create, list, inspect
def create(srv, req, resp) -> None:
    body = req.json({}) or {}
    image, cmd, kw = translate.create_kwargs(body, req.arg("name"))
    rt = srv.runtime()
    try:
        rt.image(image, pull=False)
    except NotFound:
        from ...images import reference
        raise NotFound(f"No such image: {reference.parse(image)}") from None
    cid = rt.create(image, cmd, **kw)
    resp.json({"Id": cid, "Warnings": []}, status=201)


def list_containers(srv, req, resp) -> None:
    from ..cli.containers import _ancestor_ids, _ps_filter, parse_ps_filters
    rt = srv.runtime()
    groups = parse_ps_filters(translate.list_filters(req.json_arg("filters", {})))
    recs = rt.list(all=req.flag("all") or "status" in groups)
    recs = [r for r in recs if _ps_filter(r, groups, _ancestor_ids(rt))]
    limit = req.int_arg("limit", -1)
    if limit is not None and limit > 0:
        recs = recs[:limit]
    now = time.time()
    resp.json([translate.summary(r, now) for r in recs])


def inspect(srv, req, resp) -> None:
    resp.json(srv.runtime().inspect(req.params["id"]))


def top(srv, req, resp) -> None:
    from ...core.linux import procfs
    from ..cli.containers import top_rows
    rt = srv.runtime()
    rec = rt.inspect(req.params["id"])
    if not rec["State"]["Running"]:
        raise InvalidState(f"Container {rec['Id']} is not running")
    pids = rt.cgroups().processes(rec["Id"]) or [rec["State"]["Pid"]]
    rows = top_rows(pids, time.time(), procfs.boot_time(), os.sysconf("SC_CLK_TCK"))
    resp.json({"Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], "Processes": rows})


# ---------------------------------------------------------------- start, attach
class Parked:
    """An attach connection waiting for its container's start."""

    def __init__(self, sock: socket.socket, stdin: bool):
        self.sock, self.stdin = sock, stdin
        self.ready = threading.Event()
        self.stdin_w: int | None = None
        self.outputs: dict[int, str | None] = {}
        self.started = None


def start(srv, req, resp) -> None:
    rt = srv.runtime()
    cid = rt.resolve(req.params["id"])
    rec = rt.inspect(cid)
    if not st.check_start(rec["State"], cid) and not rec["State"].get("Restarting"):  # (a paused one: 409)
        resp.send(304)
        return
    with srv.parked_lock:
        waiting = srv.parked.pop(cid, [])
    session = waiting[0] if waiting else None
    for other in waiting[1:]:  # (a second early attach: it joins through the monitor's socket)
        other.ready.set()
    try:
        if session is None:
            resp.send(204 if rt.start(cid) is not None else 304)
        else:
            _start_attached(rt, cid, rec, session)
            resp.send(204)
    except MinidockerError:
        if rec["HostConfig"].get("AutoRemove"):  # (dockerd removes an --rm container it could not start)
            try:
                rt.remove(cid, force=True)
            except MinidockerError:
                pass
        raise


def _start_attached(rt, cid: str, rec: dict, session: Parked) -> None:
    tty = bool(rec["Config"].get("Tty"))
    in_r, in_w = os.pipe() if session.stdin else (-1, None)
    out_r, out_w = os.pipe()
    err_r, err_w = (os.pipe() if not tty else (None, out_w))
    try:
        started = rt.start(cid, attach=(in_r, out_w, err_w))
    except BaseException:
        for fd in (in_r, in_w, out_r, out_w, err_r, err_w if err_w != out_w else None):
            if fd is not None and fd >= 0:
                os.close(fd)
        session.ready.set()  # (with no outputs: the attach ends)
        raise
    for fd in (in_r, out_w, err_w if err_w != out_w else None):
        if fd is not None and fd >= 0:
            os.close(fd)
    session.stdin_w = in_w
    session.outputs = {out_r: None} if tty else {out_r: "stdout", err_r: "stderr"}
    session.started = started
    session.ready.set()


def attach(srv, req, resp) -> None:
    rt = srv.runtime()
    cid = rt.resolve(req.params["id"])
    rec = rt.inspect(cid)
    tty = bool(rec["Config"].get("Tty"))
    want_stdin = req.flag("stdin") and bool(rec["Config"].get("OpenStdin"))
    if not req.flag("stream") and not req.flag("logs"):
        raise InvalidArgument("either logs or stream must be set")
    from ...engine.attach import DETACH_KEYS, parse_detach_keys
    keys = parse_detach_keys(req.arg("detachKeys")) if req.arg("detachKeys") else DETACH_KEYS
    session = None
    if req.flag("stream") and not rec["State"]["Running"]:
        # parked before the answer: the client sends its start as soon as it has the answer
        session = Parked(req.conn, want_stdin)
        with srv.parked_lock:
            srv.parked.setdefault(cid, []).append(session)
    sock = resp.hijack(req, streams.content_type(tty, req.version))
    try:
        if req.flag("logs"):
            _send_logs(sock, rec, tty, req.flag("stdout"), req.flag("stderr"))
        if not req.flag("stream"):
            return
        if session is not None:
            while not session.ready.wait(0.5):
                if _client_gone(sock):
                    with srv.parked_lock:
                        if session in srv.parked.get(cid, []):
                            srv.parked[cid].remove(session)
                    return
            if session.outputs:
                streams.relay(sock, session.stdin_w, session.outputs, keys)
                if session.started is not None:
                    session.started.wait_exit()  # (reads the monitor's last word, closes its pipe)
                return
        _through_monitor(rt, cid, sock, want_stdin, keys)
    finally:
        streams.close_hijacked(sock)


def _client_gone(sock: socket.socket) -> bool:
    """Has the client hung up? Not just "sent all its input": a client with nothing to send
    closes its writing half at once (shutdown), and wants the output all the same. Only a
    socket closed on both sides reports POLLHUP (a unix socket's peer that closed: at once;
    over TCP only once we write)."""
    p = select.poll()
    p.register(sock, select.POLLHUP | select.POLLERR)
    return any(ev & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, ev in p.poll(0))


def _through_monitor(rt, cid: str, sock: socket.socket, want_stdin: bool, keys: bytes) -> None:
    """A running container: the monitor's attach socket speaks the same framing as the API."""
    import json
    from ...engine.attach import short_path
    dirfd = os.open(rt.containers.dir(cid), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    mon = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        mon.connect(short_path(dirfd, "attach.sock"))
    except OSError:
        mon.close()
        return  # it ended meanwhile: nothing to stream
    finally:
        os.close(dirfd)
    try:
        mon.sendall((json.dumps({"stdin": want_stdin}) + "\n").encode())
        streams.splice(sock, mon, keys if want_stdin else None)
    finally:
        mon.close()


def _send_logs(sock: socket.socket, rec: dict, tty: bool, stdout: bool, stderr: bool) -> None:
    from ...engine.attach import frame
    for r in logsmod.read(rec["LogPath"]) if rec.get("LogPath") and os.path.exists(rec["LogPath"]) else []:
        stream = r.get("stream", "stdout")
        if (stream == "stdout" and stdout) or (stream == "stderr" and stderr):
            data = r["log"].encode()
            sock.sendall(data if tty else frame(stream, data))


# ---------------------------------------------------------------- wait
def wait(srv, req, resp) -> None:
    """The answer's headers go out at once (the client then knows it is waiting, and starts
    the container); the body when the condition is met."""
    rt = srv.runtime()
    cid = rt.resolve(req.params["id"])
    condition = req.arg("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise InvalidArgument(f"invalid condition: {condition!r}")
    first = rt.containers.read(cid)
    since = time.time_ns()
    out = resp.stream("application/json")
    last = first
    started_at = first["State"].get("StartedAt")
    finished_at = first["State"].get("FinishedAt")
    while True:
        try:
            rec = rt.inspect(cid)
        except NotFound:  # removed (--rm): its "die" event kept the exit code
            from ... import events
            died = [m for m in events.read(rt.root, since) if m.get("id") == cid and m.get("Action") == "die"]
            if died:
                code = int(died[-1]["Actor"]["Attributes"].get("exitCode", 0))
                last = {"State": {**last["State"], "ExitCode": code}}
            break
        else:
            last = rec
            s = rec["State"]
            idle = not s["Running"] and not rt.containers.shim_alive(cid)
            if condition == "not-running" and (idle or s.get("Restarting")):
                break
            if condition == "next-exit" and (idle or s.get("Restarting")) and \
                    (s.get("FinishedAt") != finished_at or s.get("StartedAt") != started_at):
                break
        time.sleep(0.02)
    s = last["State"]
    error = {"Message": s["Error"]} if s.get("Error") else None
    out.json({"StatusCode": s.get("ExitCode", 0), "Error": error})
    out.close()


# ---------------------------------------------------------------- logs
def logs(srv, req, resp) -> None:
    rt = srv.runtime()
    rec = rt.inspect(req.params["id"])
    if (rec["HostConfig"].get("LogConfig") or {}).get("Type") == "none":
        raise MinidockerError("configured logging driver does not support reading")
    want = {"stdout": req.flag("stdout"), "stderr": req.flag("stderr")}
    if not any(want.values()):
        raise InvalidArgument("Bad parameters: you must choose at least one stream")
    tty = bool(rec["Config"].get("Tty"))
    tail = req.arg("tail")
    tail_n = None if tail in (None, "", "all") else int(tail)
    since = float(req.arg("since")) if req.arg("since") not in (None, "", "0") else None
    until = float(req.arg("until")) if req.arg("until") not in (None, "", "0") else None
    timestamps = req.flag("timestamps")
    path = rec["LogPath"]
    # What is logged so far is read before the answer goes out: a client may remove the
    # container as soon as it has the answer's head (docker-py's run() does), log file and all.
    size = logsmod.snapshot_size(path)
    recs = logsmod.read(path, tail=None if tail_n is None or tail_n < 0 else tail_n, since=since, until=until,
                        upto=size)
    out = resp.stream(streams.content_type(tty, req.version))

    def emit(r: dict) -> None:
        stream = r.get("stream", "stdout")
        if want.get(stream):
            data = logsmod.format_record(r, timestamps).encode()
            out.write(data if tty else streams.frame(stream, data))
    for r in recs:
        emit(r)
    if req.flag("follow"):
        cid = rec["Id"]
        for r in logsmod.follow(path, size, lambda: rt.containers.shim_alive(cid)):
            emit(r)
    out.close()


# ---------------------------------------------------------------- stop, kill, rm, ...
def stop(srv, req, resp) -> None:
    rt = srv.runtime()
    rec = rt.inspect(req.params["id"])
    if not rec["State"]["Running"]:
        resp.send(304)
        return
    rt.stop(rec["Id"], req.int_arg("t"))
    resp.send(204)


def restart(srv, req, resp) -> None:
    srv.runtime().restart(req.params["id"], req.int_arg("t"))
    resp.send(204)


def kill(srv, req, resp) -> None:
    srv.runtime().kill(req.params["id"], req.arg("signal") or "KILL")
    resp.send(204)


def pause(srv, req, resp) -> None:
    srv.runtime().pause(req.params["id"])
    resp.send(204)


def unpause(srv, req, resp) -> None:
    srv.runtime().unpause(req.params["id"])
    resp.send(204)


def remove(srv, req, resp) -> None:
    srv.runtime().remove(req.params["id"], force=req.flag("force"), volumes=req.flag("v"))
    resp.send(204)


def rename(srv, req, resp) -> None:
    from ...container import runconfig
    rt = srv.runtime()
    cid = rt.resolve(req.params["id"])
    new = req.arg("name") or ""
    rt.containers.rename(cid, runconfig.validate_name(new))
    resp.send(204)


def resize(srv, req, resp) -> None:
    """The client's terminal changed size: the monitor sets the container's pty to it."""
    rt = srv.runtime()
    cid = rt.resolve(req.params["id"])
    h, w = req.int_arg("h", 0), req.int_arg("w", 0)
    pid = rt.containers.monitor_pid(cid)
    if not pid:
        raise InvalidState(f"Container {cid} is not running")
    from ...core.shim import WINSIZE_FILE
    with open(os.path.join(rt.containers.dir(cid), WINSIZE_FILE), "w") as f:
        f.write(f"{h} {w}\n")
    os.kill(pid, signal.SIGWINCH)
    resp.send(200, b"", content_type="text/plain")


def stats(srv, req, resp) -> None:
    """`docker stats`: Docker's stats JSON, every second (stream) or once. The client computes
    the percentages from this sample and the previous one (precpu_stats)."""
    from ... import gotime
    from ...core.cgroups import stats as statsmod
    rt = srv.runtime()
    rec = rt.inspect(req.params["id"])
    cid = rec["Id"]
    stream = req.flag("stream", True)
    prev = None
    if not stream and not req.flag("one-shot"):
        prev = _sample(rt, cid)  # (one answer, but with a CPU delta: two samples a second apart)
        time.sleep(1.0)
    out = resp.stream("application/json")
    while True:
        cur = _sample(rt, cid)
        if cur is None and stream:
            break
        out.json(_stats_json(rec, cur, prev, gotime, statsmod))
        if not stream:
            break
        prev = cur
        time.sleep(1.0)
    out.close()


def _sample(rt, cid: str) -> dict | None:
    try:
        return rt.stats_sample(cid)
    except MinidockerError:
        return None


def _stats_json(rec: dict, cur: dict | None, prev: dict | None, gotime, statsmod) -> dict:
    def cpu(s):
        if not s:
            return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                    "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
        return {"cpu_usage": {"total_usage": s["cpu_usage_ns"], "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                "system_cpu_usage": s["system_cpu_ns"], "online_cpus": s["online_cpus"],
                "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
    when = lambda s: gotime.rfc3339nano(int(s["time"] * 1e9)) if s else "0001-01-01T00:00:00Z"  # noqa: E731
    out = {"read": when(cur), "preread": when(prev), "pids_stats": {}, "blkio_stats": {}, "num_procs": 0,
           "storage_stats": {}, "cpu_stats": cpu(cur), "precpu_stats": cpu(prev), "memory_stats": {},
           "name": rec["Name"], "id": rec["Id"]}
    if cur:
        out["pids_stats"] = {"current": cur["pids_current"], **({"limit": cur["pids_limit"]}
                                                                if cur["pids_limit"] > 0 else {})}
        out["memory_stats"] = {"usage": cur["memory_usage"], "limit": statsmod.memory_limit(cur),
                               "stats": {"inactive_file": cur["memory_inactive_file"]}}
        out["blkio_stats"] = {"io_service_bytes_recursive": [
            {"major": 0, "minor": 0, "op": "read", "value": cur["blkio_read"]},
            {"major": 0, "minor": 0, "op": "write", "value": cur["blkio_write"]}]}
        out["networks"] = {"eth0": {"rx_bytes": cur["net_rx"], "tx_bytes": cur["net_tx"], "rx_packets": 0,
                                    "tx_packets": 0, "rx_errors": 0, "tx_errors": 0, "rx_dropped": 0,
                                    "tx_dropped": 0}}
    return out


# ---------------------------------------------------------------- files: cp, changes, export, commit
def _path_stat_header(info: dict) -> dict[str, str]:
    import base64
    import json
    from ... import gotime
    stat_ = {"name": info["name"], "size": info["size"], "mode": translate.go_file_mode(info["mode"]),
             "mtime": gotime.rfc3339nano(info["mtime_ns"]), "linkTarget": info.get("link") or ""}
    return {"X-Docker-Container-Path-Stat": base64.b64encode(json.dumps(stat_).encode()).decode()}


def archive_head(srv, req, resp) -> None:
    from ...engine import cp
    info = cp.stat_path(srv.runtime(), req.params["id"], _archive_path(req))
    resp.send(200, b"", content_type="application/json", headers=_path_stat_header(info))


def archive_get(srv, req, resp) -> None:
    from ...engine import cp
    state = {}

    def on_info(info: dict) -> None:  # (the header goes out before the tar)
        h = _path_stat_header(info)
        resp.common = {**resp.common, **h}
        state["out"] = resp.stream("application/x-tar")
    writer = _LazyWriter(state)
    cp.copy_from_container(srv.runtime(), req.params["id"], _archive_path(req), "-", out=writer, on_info=on_info)
    state["out"].close()


class _LazyWriter:
    def __init__(self, state: dict):
        self.state = state

    def write(self, data: bytes) -> int:
        self.state["out"].write(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


def archive_put(srv, req, resp) -> None:
    from ...engine import cp
    cp.copy_to_container(srv.runtime(), req.params["id"], "-", _archive_path(req), out_of_stdin=req.body_file())
    resp.send(200, b"", content_type="text/plain")


def _archive_path(req) -> str:
    path = req.arg("path")
    if not path:
        raise InvalidArgument("path is required")
    return path


def changes(srv, req, resp) -> None:
    from ...engine import changes as ch
    kinds = {"C": 0, "A": 1, "D": 2}
    resp.json([{"Path": path, "Kind": kinds[kind]} for kind, path in ch.diff(srv.runtime(), req.params["id"])]
              or None)


def export(srv, req, resp) -> None:
    from ...engine import changes as ch
    rt = srv.runtime()
    rt.resolve(req.params["id"])  # (404 before the stream)
    out = resp.stream("application/x-tar")
    ch.export(rt, req.params["id"], _LazyWriter({"out": out}))
    out.close()


def commit(srv, req, resp) -> None:
    from ...engine import changes as ch
    from ..cli.images import changes_to_config
    cfg = changes_to_config(list(req.query.get("changes") or []))
    repo = req.arg("repo") or None
    if repo and req.arg("tag"):
        repo = f"{repo}:{req.arg('tag')}"
    image_id = ch.commit(srv.runtime(), req.arg("container") or "", repo, req.arg("comment") or "",
                         req.arg("author") or "", cfg, pause=req.flag("pause", True))
    resp.json({"Id": image_id}, status=201)


def update(srv, req, resp) -> None:
    from ...container import restart as restartmod
    body = req.json({}) or {}
    resources = {k: body[k] for k in translate.RESOURCE_KEYS if k in body and body[k] not in (None,)}
    resources = {k: v for k, v in resources.items() if v != 0 or k == "PidsLimit"}
    if body.get("RestartPolicy", {}).get("Name"):
        resources["RestartPolicy"] = restartmod.validate(body["RestartPolicy"])
    srv.runtime().update(req.params["id"], resources)
    resp.json({"Warnings": []})


def prune(srv, req, resp) -> None:
    removed, space = srv.runtime().prune()
    resp.json({"ContainersDeleted": removed or None, "SpaceReclaimed": space})


ROUTES = [
    ("POST", "/containers/create", create),
    ("GET", "/containers/json", list_containers),
    ("POST", "/containers/prune", prune),
    ("GET", "/containers/{id}/json", inspect),
    ("GET", "/containers/{id}/top", top),
    ("GET", "/containers/{id}/stats", stats),
    ("POST", "/containers/{id}/start", start),
    ("POST", "/containers/{id}/attach", attach),
    ("POST", "/containers/{id}/wait", wait),
    ("GET", "/containers/{id}/logs", logs),
    ("POST", "/containers/{id}/stop", stop),
    ("POST", "/containers/{id}/restart", restart),
    ("POST", "/containers/{id}/kill", kill),
    ("POST", "/containers/{id}/pause", pause),
    ("POST", "/containers/{id}/unpause", unpause),
    ("POST", "/containers/{id}/rename", rename),
    ("POST", "/containers/{id}/resize", resize),
    ("DELETE", "/containers/{id}", remove),
    ("HEAD", "/containers/{id}/archive", archive_head),
    ("GET", "/containers/{id}/archive", archive_get),
    ("PUT", "/containers/{id}/archive", archive_put),
    ("GET", "/containers/{id}/changes", changes),
    ("GET", "/containers/{id}/export", export),
    ("POST", "/containers/{id}/update", update),
    ("POST", "/commit", commit),
]
