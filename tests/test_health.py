"""Health checks for real, as root, beside the private real dockerd: the probe runs inside the
container on schedule (as its user), State.Health and the ps column flip as Docker's do, a slow
probe is killed at its timeout, the image's HEALTHCHECK merges with the flags, bad flags fail
with Docker's exit codes."""
from __future__ import annotations

import json
import time

import pytest

pytestmark = [pytest.mark.root]

N = ["--network", "none"]


def inspect(runtime, name: str) -> dict:
    out = runtime.ok("inspect", name) if hasattr(runtime, "ok") else runtime("inspect", name).stdout
    return json.loads(out)[0]


def ps_status(runtime, name: str) -> str:
    args = ("ps", "-a", "--format", "{{.Status}}", "-f", f"name={name}")
    return (runtime.ok(*args) if hasattr(runtime, "ok") else runtime(*args).stdout).strip()


def shape(h: dict | None) -> dict | None:
    """State.Health without its times (they differ between runs)."""
    if h is None:
        return None
    return {"Status": h["Status"], "FailingStreak": h["FailingStreak"],
            "Log": [{"ExitCode": e["ExitCode"], "Output": e["Output"]} for e in h["Log"]]}


def run_both(md, dk, made, name, *flags, cmd=("sleep", "100"), right_after=None):
    made.append(name)
    for rt in (md, dk):
        r = rt("run", "-d", "--name", name, *N, *flags, "busybox", *cmd)
        assert r.returncode == 0, r.stderr
        if right_after:
            right_after(rt)


def just_started(rt):  # no probe before the first interval
    assert ps_status(rt, "hc-ok").endswith("(health: starting)")
    assert inspect(rt, "hc-ok")["State"]["Health"] == {"Status": "starting", "FailingStreak": 0, "Log": []}


def test_healthy_unhealthy_and_the_ps_column(both):
    md, dk, made = both
    run_both(md, dk, made, "hc-ok", "--health-cmd", "echo hi; exit 0", "--health-interval", "1s",
             right_after=just_started)
    run_both(md, dk, made, "hc-bad", "--health-cmd", "echo bad; exit 1", "--health-interval", "1s",
             "--health-retries", "2")
    time.sleep(3.6)
    for name in ("hc-ok", "hc-bad"):
        ours, theirs = inspect(md, name), inspect(dk, name)
        assert ours["Config"]["Healthcheck"] == theirs["Config"]["Healthcheck"]
        o, t = shape(ours["State"]["Health"]), shape(theirs["State"]["Health"])
        assert o["Status"] == t["Status"] and o["Log"][0] == t["Log"][0], (o, t)
        assert abs(len(o["Log"]) - len(t["Log"])) <= 1 and abs(o["FailingStreak"] - t["FailingStreak"]) <= 1
    assert shape(inspect(md, "hc-ok")["State"]["Health"])["Log"][0] == {"ExitCode": 0, "Output": "hi\n"}
    assert inspect(md, "hc-bad")["State"]["Health"]["Status"] == "unhealthy"
    for rt in (md, dk):
        assert ps_status(rt, "hc-ok").endswith("(healthy)") and ps_status(rt, "hc-bad").endswith("(unhealthy)")
        names = lambda f: (rt.ok if hasattr(rt, "ok") else lambda *a: rt(*a).stdout)(  # noqa: E731
            "ps", "--format", "{{.Names}}", "-f", f"health={f}").split()
        assert "hc-bad" in names("unhealthy") and "hc-ok" not in names("unhealthy") and "hc-ok" in names("healthy")
    # stopped: `unhealthy`, no streak, the log kept (and `starting` again on the next start)
    for rt in (md, dk):
        rt("stop", "-t", "0", "hc-ok")
    o, t = shape(inspect(md, "hc-ok")["State"]["Health"]), shape(inspect(dk, "hc-ok")["State"]["Health"])
    assert (o["Status"], o["FailingStreak"]) == (t["Status"], t["FailingStreak"]) == ("unhealthy", 0)
    assert o["Log"] and o["Log"][0] == {"ExitCode": 0, "Output": "hi\n"}


def test_a_slow_probe_is_killed_at_its_timeout(both):
    md, dk, made = both
    run_both(md, dk, made, "hc-slow", "--health-cmd", "sleep 7", "--health-timeout", "1s",
             "--health-interval", "1s")
    time.sleep(3.5)
    for rt in (md, dk):
        log = inspect(rt, "hc-slow")["State"]["Health"]["Log"]
        assert log and log[0]["ExitCode"] == -1 and log[0]["Output"] == "Health check exceeded timeout (1s)", log
    r = md("exec", "hc-slow", "ps", "-o", "args")
    assert r.stdout.count("sleep 7") <= 1, r.stdout   # the killed probes are gone (one may be running)


def test_the_probe_runs_as_the_containers_user_and_in_its_namespaces(both):
    md, dk, made = both
    run_both(md, dk, made, "hc-user", "-u", "nobody", "--hostname", "probed", "--health-cmd",
             "id -u; hostname", "--health-interval", "1s")
    time.sleep(1.8)
    for rt in (md, dk):
        assert inspect(rt, "hc-user")["State"]["Health"]["Log"][0]["Output"] == "65534\nprobed\n"


def test_the_images_healthcheck_and_the_flags_merge(both, tmp_path, monkeypatch):
    md, dk, made = both
    monkeypatch.setenv("DOCKER_BUILDKIT", "0")
    (tmp_path / "Dockerfile").write_text(
        'FROM busybox\nHEALTHCHECK --interval=1s --retries=1 CMD ["sh", "-c", "exit 3"]\n')
    for rt in (md, dk):
        assert rt("build", "-q", "-t", "hc-image:1", str(tmp_path)).returncode == 0
    try:
        made += ["hc-img", "hc-img-flag", "hc-img-off"]
        for rt in (md, dk):
            rt("run", "-d", "--name", "hc-img", *N, "hc-image:1", "sleep", "100")
            rt("create", "--name", "hc-img-flag", *N, "--health-interval", "2s", "hc-image:1")
            rt("create", "--name", "hc-img-off", *N, "--no-healthcheck", "hc-image:1")
        time.sleep(2.6)
        for name in ("hc-img", "hc-img-flag", "hc-img-off"):
            assert inspect(md, name)["Config"]["Healthcheck"] == inspect(dk, name)["Config"]["Healthcheck"]
        # (dockerd merges even then: Test NONE, with the image's Interval and Retries)
        assert inspect(md, "hc-img-off")["Config"]["Healthcheck"]["Test"] == ["NONE"]
        o, t = inspect(md, "hc-img")["State"]["Health"], inspect(dk, "hc-img")["State"]["Health"]
        assert o["Status"] == t["Status"] == "unhealthy" and o["Log"][0]["ExitCode"] == t["Log"][0]["ExitCode"] == 3
    finally:
        for name in made:
            md("rm", "-f", name), dk("rm", "-f", name, check=False)
        md("rmi", "hc-image:1"), dk("rmi", "hc-image:1", check=False)


@pytest.mark.parametrize("flags", [
    ["--health-interval", "-1s"], ["--health-retries", "-1"], ["--health-interval", "100us"],
    ["--health-timeout", "0.5ms"], ["--health-start-period", "-2s"], ["--health-interval", "abc"],
    ["--health-retries", "x"], ["--no-healthcheck", "--health-cmd", "true"],
])
@pytest.mark.parametrize("verb", ["run", "create"])
def test_bad_health_flags_fail_as_in_docker(md, docker, verb, flags):
    argv = [verb, *N, *flags, "busybox", "true"]
    m, d = md(*argv), docker.docker(*argv, check=False)
    assert m.returncode == d.returncode != 0, (m.stderr, d.stderr)
    assert len(m.stderr.strip().splitlines()) == 1 and "Traceback" not in m.stderr


def docker_unchecked(dk):
    return lambda *a: dk(*a, check=False)


def test_ps_filters_as_dockerd_reads_them(both):
    """Values of one key are alternatives, keys combine; a status filter shows stopped ones
    without -a; ancestor= takes the image's name; unknown values fail with exit 1."""
    md, dk, made = both
    made += ["pf-created", "pf-exited"]
    for rt in (md, docker_unchecked(dk)):
        rt("create", "--name", "pf-created", *N, "busybox", "true")
        rt("run", "--name", "pf-exited", *N, "busybox", "sh", "-c", "exit 3")

    def names(rt, *filters):
        argv = ["ps", "--format", "{{.Names}}"] + [x for f in filters for x in ("-f", f)]
        out = rt.ok(*argv) if hasattr(rt, "ok") else rt(*argv).stdout
        return sorted(n for n in out.split() if n.startswith("pf-"))
    for filters in (["status=exited"], ["status=exited", "status=created"], ["exited=3"],
                    ["status=exited", "name=pf-created"], ["ancestor=busybox", "status=created"]):
        assert names(md, *filters) == names(dk, *filters), filters
    assert names(md, "status=exited", "status=created") == ["pf-created", "pf-exited"]
    for bad in ("health=sick", "status=sleeping", "colour=red"):
        assert md("ps", "-f", bad).returncode == dk("ps", "-f", bad, check=False).returncode == 1
