"""The health prober: runs a container's HEALTHCHECK from its monitor (dockerd's health.go).

Taught in notebook 09 (lifecycle). The rules are in container/health.py; this is the doing.
The monitor is one thread in an event loop (core/shim.py pumps the container's output), and it
must not fork more than it does (a thread would make its next restart's fork unsafe). So the
prober lives in that loop: before each wait the shim asks it `poll(sel)`, and it answers how
long until it needs the loop again. Each probe is a `docker exec` (engine/exec.py: a helper
process joins the container's namespaces), its stdout and stderr one pipe read from the loop;
the helper kills the command when Timeout passes.
"""
from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time

from ..container import health as rules
from ..errors import MinidockerError


class Prober:
    def __init__(self, rt, cid: str, config: dict, shell: list[str] | None, started_ns: int):
        self.rt, self.cid, self.config = rt, cid, config
        self.argv = rules.probe_argv(config, shell)
        self.started_ns = started_ns
        self.next_at = time.monotonic() + rules.interval(config)   # the first probe: one interval in
        self.proc: subprocess.Popen | None = None
        self.sel = None
        self.fd = -1

    def poll(self, sel: selectors.BaseSelector) -> float:
        """Start a probe if one is due; seconds until the loop should call again."""
        now = time.monotonic()
        if self.proc is None and now >= self.next_at:
            self._launch(sel)
            now = time.monotonic()
        if self.proc is not None:
            if now >= self.deadline + 5:  # the helper kills the probe at the deadline; if it is stuck too
                self._finish(timed_out=True)
                return max(0.0, self.next_at - now)
            return self.deadline + 5 - now  # (the probe's end wakes the loop through its pipe)
        return max(0.0, self.next_at - now)

    def _launch(self, sel) -> None:
        from .exec import exec_start
        self.start_ns = time.time_ns()
        # (before the helper arms its own timer: a probe it kills always ends past this deadline)
        self.deadline = time.monotonic() + rules.timeout(self.config)
        r, w = os.pipe()
        try:
            self.proc = exec_start(self.rt, self.cid, self.argv, stdio=(-1, w, w),
                                   kill_after=rules.timeout(self.config))
        except MinidockerError as e:  # e.g. paused: dockerd records the error as the probe's result
            os.close(r)
            self._save(-1, str(e))
            return
        finally:
            os.close(w)
        self.sel, self.fd, self.output = sel, r, b""
        sel.register(r, selectors.EVENT_READ, ("hook", self._read))

    def _read(self, fd: int) -> None:
        data = os.read(fd, 65536)
        if data:
            if len(self.output) <= rules.MAX_OUTPUT:
                self.output += data[:rules.MAX_OUTPUT + 1 - len(self.output)]
            return
        self._finish(timed_out=time.monotonic() >= self.deadline)

    def _finish(self, timed_out: bool) -> None:
        if self.sel is not None and self.fd >= 0:
            self.sel.unregister(self.fd)
            os.close(self.fd)
        self.fd = -1
        if timed_out and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        code = self.proc.wait()
        self.proc = None
        if timed_out:
            self._save(-1, rules.timeout_message(self.config))
        else:
            self._save(code, rules.cut_output(self.output))

    def _save(self, code: int, output: str) -> None:
        end = time.time_ns()
        with self.rt.containers.update(self.cid) as r:
            s = r["State"]
            if s.get("Running") and not s.get("Restarting") and s.get("Health"):
                before = s["Health"]["Status"]
                s["Health"] = rules.record(s["Health"], self.config, code, output, self.start_ns, end,
                                           self.started_ns)
                if s["Health"]["Status"] != before:
                    from .. import events
                    events.emit(self.rt.root, "container", f"health_status: {s['Health']['Status']}", self.cid,
                                events.container_attributes(r))
        self.next_at = time.monotonic() + rules.interval(self.config)

    def stop(self) -> None:
        """The container ended: a probe still running goes with it."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None
        if self.fd >= 0:
            if self.sel is not None:
                try:
                    self.sel.unregister(self.fd)
                except (KeyError, ValueError):
                    pass
            os.close(self.fd)
            self.fd = -1
