"""/containers/{id}/exec and /exec/{id}/...: `docker exec` in two steps, as the API has it.

POST /containers/{id}/exec only records what to run (an "exec instance", kept in memory as
dockerd keeps them); POST /exec/{id}/start runs it (engine/exec.py: a helper process joins
the container's namespaces), on the hijacked connection unless Detach; GET /exec/{id}/json
then says how it ended (ExitCode).
"""
from __future__ import annotations

import os
import secrets
import threading

from ...errors import InvalidArgument, MinidockerError, NotFound
from . import streams


def create(srv, req, resp) -> None:
    rt = srv.runtime()
    rec = rt.inspect(req.params["id"])
    body = req.json({}) or {}
    cmd = body.get("Cmd") or []
    if isinstance(cmd, str):
        cmd = [cmd]
    if not cmd:
        raise InvalidArgument("No exec command specified")
    if not rec["State"]["Running"]:
        from ...errors import Conflict
        raise Conflict(f"Container {rec['Id']} is not running")
    eid = secrets.token_hex(32)
    inst = {"ID": eid, "ContainerID": rec["Id"], "Running": False, "ExitCode": None, "Pid": 0,
            "OpenStdin": bool(body.get("AttachStdin")), "OpenStdout": bool(body.get("AttachStdout")),
            "OpenStderr": bool(body.get("AttachStderr")), "CanRemove": False, "DetachKeys": "",
            "ProcessConfig": {"tty": bool(body.get("Tty")), "entrypoint": cmd[0], "arguments": cmd[1:],
                              "privileged": bool(body.get("Privileged")), "user": body.get("User") or ""},
            "_env": list(body.get("Env") or []), "_workdir": body.get("WorkingDir") or None,
            "_done": threading.Event(), "_lock": threading.Lock()}
    with srv.execs_lock:
        srv.execs[eid] = inst
    resp.json({"Id": eid}, status=201)


def _instance(srv, eid: str) -> dict:
    with srv.execs_lock:
        inst = srv.execs.get(eid)
    if inst is None:
        raise NotFound(f"No such exec instance: {eid}")
    return inst


def start(srv, req, resp) -> None:
    inst = _instance(srv, req.params["id"])
    body = req.json({}) or {}
    if inst["Running"] or inst["ExitCode"] is not None:
        from ...errors import Conflict
        raise Conflict(f"Exec {inst['ID']} has already run")
    rt = srv.runtime()
    pc = inst["ProcessConfig"]
    tty = pc["tty"]  # the exec's own Tty: a terminal or not
    framed = not body.get("Tty")  # the start's Tty: output framed or raw (dockerd's split, too)
    argv = [pc["entrypoint"], *pc["arguments"]]
    kw = dict(user=pc["user"] or None, workdir=inst["_workdir"], env=inst["_env"], tty=tty)
    if body.get("Detach"):
        proc = rt.exec_start(inst["ContainerID"], argv, detach=True, **kw)
        _running(srv, inst, proc)
        resp.send(204)
        return
    # Answer first, then start: the client takes the socket over after the answer's headers,
    # and output sent before it did could be lost in its HTTP library's buffer (dockerd's order).
    sock = resp.hijack(req, streams.content_type(not framed, req.version))
    try:
        in_r, in_w = os.pipe() if inst["OpenStdin"] else (-1, None)
        out_r, out_w = os.pipe()
        err_r, err_w = (None, out_w) if tty else os.pipe()
        ctl_r, ctl_w = os.pipe() if tty else (None, None)  # (resizes of its terminal: see resize)
        inst["_resize_w"] = ctl_w  # (a resize may come before the start is done: the pipe keeps it)
        try:
            proc = rt.exec_start(inst["ContainerID"], argv, interactive=inst["OpenStdin"],
                                 stdio=(in_r, out_w, err_w), resize_fd=ctl_r, **kw)
        except MinidockerError as e:  # (the runtime's words on the stream, the code in the inspect)
            with inst["_lock"]:
                inst.pop("_resize_w", None)
            for fd in (in_r, in_w, out_r, err_r, ctl_w):
                if fd is not None and fd >= 0:
                    os.close(fd)
            msg = (str(e) + "\r\n").encode()
            sock.sendall(streams.frame("stdout", msg) if framed else msg)
            inst.update(Running=False, ExitCode=e.exit_code)
            inst["_done"].set()
            return
        finally:
            for fd in (in_r, out_w, err_w if err_w != out_w else None, ctl_r):
                if fd is not None and fd >= 0:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
        _running(srv, inst, proc)
        outputs = ({out_r: "stdout" if framed else None} if tty else
                   {out_r: "stdout", err_r: "stderr"} if framed else {out_r: None, err_r: None})
        streams.relay(sock, in_w, outputs)
        inst["_done"].wait(30)  # (the exit code is known before the client asks for it)
    finally:
        streams.close_hijacked(sock)


def _running(srv, inst: dict, proc) -> None:
    inst.update(Running=True, Pid=proc.pid)

    def reap() -> None:
        code = proc.wait()
        inst.update(Running=False, ExitCode=code if code >= 0 else 128 - code)
        with inst["_lock"]:  # (never a write to the number of a closed fd: see resize)
            w = inst.pop("_resize_w", None)
            if w is not None:
                os.close(w)
        inst["_done"].set()
    threading.Thread(target=reap, daemon=True).start()


def resize(srv, req, resp) -> None:
    """The client's terminal changed size: the exec's terminal follows (through its helper)."""
    inst = _instance(srv, req.params["id"])
    with inst["_lock"]:
        w = inst.get("_resize_w")
        if not inst["ProcessConfig"]["tty"] or w is None:
            from ...errors import Conflict
            raise Conflict(f"Exec {inst['ID']} is not running with a terminal")
        try:
            os.write(w, f"{req.int_arg('h', 0)} {req.int_arg('w', 0)}\n".encode())
        except OSError:
            pass  # (it just ended)
    resp.send(200, b"", content_type="text/plain")


def inspect(srv, req, resp) -> None:
    inst = _instance(srv, req.params["id"])
    resp.json({k: v for k, v in inst.items() if not k.startswith("_")})


ROUTES = [
    ("POST", "/containers/{id}/exec", create),
    ("POST", "/exec/{id}/start", start),
    ("GET", "/exec/{id}/json", inspect),
    ("POST", "/exec/{id}/resize", resize),
]
