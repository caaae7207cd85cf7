"""The netlink helper: a short-lived process that plugs a container into its bridge, so that
the long-lived monitor never imports pyroute2.

pyroute2 takes ~0.2 s to import (asyncio, and a socket class for every netlink family) and
~20 MiB that a monitor would then hold for the container's whole life: 100 containers on a
bridge would keep 2 GB of it. So whoever starts a bridge-attached container spawns this
helper first (`run`, before it even creates the container; engine/start.py for any other
start; the monitor itself when a restart policy runs the container again). It imports
pyroute2 on the other CPU while the container is created, the monitor starts, mounts the
rootfs and the container's init makes its namespaces; then it does, for the monitor, the
calls of network/bridge.py and network/nft.py a start needs, and exits when the monitor
closes the pipe. (libnftables, ~1.5 MiB, is then only loaded by the monitor at the exit.)

    monitor ── {"call": "plug_container", "args": [...]} ──> helper (pyroute2, netlink)
            <── {"value": "veth1a2b3c4"}  or  {"error": "..."} ──

Docker has the same split, for the same reason: dockerd (libnetwork) plugs the veth in, the
shim that stays with the container does not link any of it.
"""
from __future__ import annotations

import os
import sys

from . import delegate

HELPER_ENV = "MINIDOCKER_NETLINK_HELPER"      # "W,R": the monitor's ends of a spawned helper's pipes


class HelperError(RuntimeError):
    """A call that failed in the helper; its message is the original error's."""


def needed(rec: dict) -> bool:
    """Does this container get a veth (the default bridge or a user network)? (network/modes.py's
    parse_mode says the same; not imported here: the CLI asks before it needs anything else.)"""
    mode = rec["HostConfig"].get("NetworkMode") or "default"
    return mode not in ("none", "host") and not mode.startswith("container:")


class NetlinkHelper:
    """The monitor's end: a pipe to the helper and one back."""

    def __init__(self, to_helper: int, from_helper: int):
        self.w, self.r = to_helper, from_helper
        self._buf = b""
        self.pid = None  # (spawn(reap_later=True): its short-lived parent, not yet reaped)

    @classmethod
    def spawn(cls, env: dict | None = None, stderr: int | None = None, reap_later: bool = False) -> "NetlinkHelper":
        """Start a helper (`stderr`: an fd of ours for its errors; None: /dev/null). It
        daemonizes at once, so nobody is left to reap it; but "at once" is after Python's start
        (~10 ms): with `reap_later` we do not wait for that here, and the caller reaps it later
        (`reap()`)."""
        from ..spawn import spawn as spawn_process
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        try:
            pid = spawn_process([sys.executable, "-S", "-m", __name__, str(req_r), str(resp_w)], env,
                                stderr=stderr, keep=(req_r, resp_w))
            if not reap_later:
                os.waitpid(pid, 0)
        except BaseException:
            os.close(req_w)
            os.close(resp_r)
            raise
        finally:
            os.close(req_r)
            os.close(resp_w)
        helper = cls(req_w, resp_r)
        helper.pid = pid if reap_later else None
        return helper

    @classmethod
    def from_fds(cls, text: str) -> "NetlinkHelper":
        """The helper a caller spawned for us ("W,R": our ends of its pipes)."""
        w, r = (int(x) for x in text.split(","))
        return cls(w, r)

    def fds(self) -> tuple[int, int]:
        return self.w, self.r

    def call(self, name: str, *args, **kwargs):
        import json  # (here: `run` imports this module before its monitor starts, json costs ~10 ms)
        try:
            os.write(self.w, json.dumps({"call": name, "args": args, "kwargs": kwargs}).encode() + b"\n")
            while b"\n" not in self._buf:
                chunk = os.read(self.r, 65536)
                if not chunk:
                    raise EOFError
                self._buf += chunk
        except (OSError, EOFError):
            raise HelperError("the netlink helper died") from None
        line, self._buf = self._buf.split(b"\n", 1)
        answer = json.loads(line)
        if "error" in answer:
            raise HelperError(answer["error"])
        return answer.get("value")

    def close(self) -> None:
        for fd in (self.w, self.r):
            if fd >= 0:
                os.close(fd)
        self.w = self.r = -1

    def reap(self) -> None:
        if self.pid is not None:
            os.waitpid(self.pid, 0)
            self.pid = None


def _import_iproute_alone() -> None:
    """Load pyroute2's IPRoute, and only it. The package's __init__ imports all of pyroute2
    (IPDB, NDB, conntrack, wireguard, nl80211...): 0.17 s, against 0.09 s for the IPRoute module
    alone. So, in this short-lived process only (nothing else here wants the rest), the package
    is registered as a bare one before its submodule is imported, and given IPRoute."""
    import importlib.util
    import sys
    import types
    if "pyroute2" not in sys.modules:
        spec = importlib.util.find_spec("pyroute2")
        if spec is not None and spec.submodule_search_locations:
            package = types.ModuleType("pyroute2")
            package.__spec__, package.__path__ = spec, list(spec.submodule_search_locations)
            sys.modules["pyroute2"] = package
            from pyroute2.iproute.linux import IPRoute
            package.IPRoute = IPRoute
    from . import bridge
    bridge._IPRoute()


def serve(r: int, w: int) -> None:
    """The helper's loop: one JSON request per line, one answer per line, until EOF."""
    import importlib
    import json
    broken = None
    try:
        _import_iproute_alone()  # now, while the monitor is busy elsewhere
    except Exception as e:  # noqa: BLE001 -- said in each answer: our stderr may be nowhere
        broken = f"the netlink helper cannot load pyroute2: {e}"
    with os.fdopen(r, "rb") as requests:
        for line in requests:
            req = json.loads(line)
            try:
                if broken:
                    raise HelperError(broken)
                if req["call"] not in delegate.CALLS:
                    raise HelperError(f"unknown call {req['call']!r}")
                module, name = req["call"].split(".")
                fn = getattr(importlib.import_module(f"{__package__}.{module}"), name)
                answer = {"value": fn(*req["args"], **req["kwargs"])}
            except Exception as e:  # noqa: BLE001 -- every error goes back to the monitor
                answer = {"error": str(e) or type(e).__name__}
            os.write(w, json.dumps(answer).encode() + b"\n")


def main(argv: list[str]) -> int:
    if os.fork() > 0:  # daemonize: whoever spawned us reaps our parent at once
        os._exit(0)
    serve(int(argv[0]), int(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
