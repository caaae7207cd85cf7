"""OCI hooks: programs the runtime runs at fixed moments, the container's state on stdin.

dockerd uses one: a `prestart` hook (`/proc/<dockerd pid>/exe libnetwork-setkey ...`) that
plugs the network into the container's namespace after it is made and before its program
runs. minidocker's own runtime passes a Python function at that moment instead (core/runc.py,
`on_created`); a bundle from anyone else gets its hooks run as the spec says.
"""
from __future__ import annotations

import json
import subprocess

from .state import RuncError


def run(hooks: dict, kind: str, state: dict) -> None:
    """Each hook of `kind` in order; one that fails (or outlives its timeout) fails the step."""
    for h in hooks.get(kind) or []:
        args = h.get("args") or [h["path"]]
        try:
            r = subprocess.run(args, executable=h["path"], input=json.dumps(state).encode(),
                               env=dict(e.split("=", 1) for e in h.get("env") or [] if "=" in e),
                               capture_output=True, timeout=h.get("timeout"))
        except subprocess.TimeoutExpired:
            raise RuncError(f"error running {kind} hook #0: timeout after {h.get('timeout')} seconds") from None
        except OSError as e:
            raise RuncError(f"error running {kind} hook: {e}") from None
        if r.returncode != 0:
            detail = (r.stderr or r.stdout).decode(errors="replace").strip()
            raise RuncError(f"error running {kind} hook: exit status {r.returncode}, stdout: "
                            f"{r.stdout.decode(errors='replace').strip()}, stderr: {detail}")
