"""`events`: the journal every verb and monitor appends to, beside the private dockerd's."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from minidocker import events

N = ["--network", "none"]


def test_messages_filters_and_lines():
    msg = events.message("container", "die", "ab" * 32, {"image": "busybox", "name": "web", "exitCode": 3},
                         when_ns=1_764_630_000_123_456_789)
    assert msg["status"] == "die" and msg["from"] == "busybox" and msg["time"] == 1_764_630_000
    assert events.format_line(msg) == ("2025-12-01T23:00:00.123456789Z container die " + "ab" * 32 +
                                       " (exitCode=3, image=busybox, name=web)")
    assert events.matches(msg, {"event": ["start", "die"], "container": ["web"]})
    assert not events.matches(msg, {"type": ["image"]}) and events.matches(msg, {"image": ["busybox"]})
    health = events.message("container", "health_status: healthy", "x" * 64, {})
    assert events.matches(health, {"event": ["health_status"]})


@pytest.mark.root
@pytest.mark.docker
def test_a_containers_life_in_events_as_dockers(md, docker):
    dk = lambda *a: docker.docker(*a, check=False)  # noqa: E731
    start = f"{time.time() - 1:.3f}"
    for rt in (md, dk):
        rt("run", "--rm", "--name", "ev-once", *N, "busybox", "true")
        rt("run", "-d", "--name", "ev-life", *N, "busybox", "sleep", "100")
        rt("pause", "ev-life")
        rt("unpause", "ev-life")
        rt("stop", "-t", "1", "ev-life")
        rt("rename", "ev-life", "ev-renamed")
        rt("start", "ev-renamed")
        rt("kill", "ev-renamed")
        rt("rm", "ev-renamed")
    time.sleep(0.5)
    until = f"{time.time():.3f}"
    fmt = "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}{{.Actor.Attributes.signal}}"
    argv = ["events", "--since", start, "--until", until, "--filter", "type=container", "--format", fmt]
    ours = [line for line in md.ok(*argv).splitlines() if " ev-" in line]
    theirs = [line for line in docker.docker(*argv).stdout.splitlines() if " ev-" in line]
    assert ours == theirs, (ours, theirs)
    nv = "<no value>"   # (Go's text for a missing map key: both print it)
    assert ours[:5] == [f"create ev-once {nv}{nv}", f"attach ev-once {nv}{nv}", f"start ev-once {nv}{nv}",
                        f"die ev-once 0{nv}", f"destroy ev-once {nv}{nv}"]
    assert "kill ev-life <no value>15" in ours and "die ev-renamed 137<no value>" in ours


@pytest.mark.root
def test_events_follows_until_its_until(md):
    until = f"{time.time() + 4:.3f}"
    p = subprocess.Popen([sys.executable, "-m", "minidocker", "events", "--until", until, "--filter",
                          "container=ev-follow", "--format", "{{.Action}}"], env=md.env, stdout=subprocess.PIPE,
                         text=True)
    try:
        time.sleep(1)
        md.ok("run", "--rm", "--name", "ev-follow", *N, "busybox", "true")
        out, _ = p.communicate(timeout=20)
        assert out.split() == ["create", "attach", "start", "die", "destroy"], out
    finally:
        if p.poll() is None:
            p.kill()


@pytest.mark.root
@pytest.mark.docker
def test_image_volume_and_network_events_as_dockers(md, docker):
    dk = lambda *a: docker.docker(*a, check=False)  # noqa: E731
    start = f"{time.time() - 1:.3f}"
    for rt in (md, dk):
        rt("tag", "busybox", "ev-image:1")
        rt("rmi", "ev-image:1")
        rt("volume", "create", "ev-volume")
        rt("volume", "rm", "ev-volume")
        rt("network", "create", "ev-network")
        rt("network", "rm", "ev-network")
    time.sleep(0.5)
    argv = ["events", "--since", start, "--until", f"{time.time():.3f}", "--filter", "type=image", "--filter",
            "type=volume", "--filter", "type=network", "--format", "{{.Type}} {{.Action}} {{.Actor.ID}} "
            "{{.Actor.Attributes.name}} {{.Actor.Attributes.driver}}"]

    def shown(out: str) -> list[str]:  # (ids differ between the two: kept as their kind)
        lines = [line for line in out.splitlines() if "ev-" in line or " untag " in line or " delete " in line]
        return [" ".join("<id>" if w.startswith("sha256:") or len(w) == 64 else w for w in line.split())
                for line in lines]
    ours, theirs = shown(md.ok(*argv)), shown(docker.docker(*argv).stdout)
    assert ours == theirs, (ours, theirs)
    assert "volume create ev-volume <no value> local" in ours and "network destroy <id> ev-network <no value>" in ours
