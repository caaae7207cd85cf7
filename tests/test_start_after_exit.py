"""`start` right after the container's process exited by itself: the record says exited while
its monitor may still be finishing up; Docker starts it (no "already running"). Found by
notebook 09's exercise (kill -s TERM to a trap, then start)."""
from __future__ import annotations

import json
import time

import pytest

pytestmark = [pytest.mark.root]

TRAP = ["sh", "-c", 'trap "exit 3" TERM; while :; do sleep 0.1; done']


def status(md, name):
    s = json.loads(md.ok("inspect", name))[0]["State"]
    return s["Status"], s["ExitCode"], s["Running"]


def test_start_as_soon_as_the_record_says_exited(md):
    md.ok("run", "-d", "--name", "sae", "--network", "none", "busybox", *TRAP)
    try:
        for _ in range(5):
            md.ok("kill", "-s", "TERM", "sae")
            deadline = time.monotonic() + 5
            while status(md, "sae")[2] and time.monotonic() < deadline:
                time.sleep(0.01)
            assert status(md, "sae") == ("exited", 3, False)
            r = md("start", "sae")          # at once: its monitor may not have finished yet
            assert r.returncode == 0, r.stderr
            assert status(md, "sae")[:2] == ("running", 0)
    finally:
        md("rm", "-f", "sae")
