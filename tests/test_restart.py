"""Restart policies for real, as root, each beside the private real dockerd: on-failure:N,
always and its back-off, the `restarting` state, stop/kill by the user, update --restart, and
what comes back when the host boots (`minidocker system restore` vs a restarted dockerd)."""
from __future__ import annotations

import json
import os
import re
import signal
import time

import pytest

pytestmark = [pytest.mark.root]

N = ["--network", "none"]


def state(runtime, name: str) -> dict:
    """(Status, RestartCount, ExitCode) of a container, by either runtime's inspect."""
    out = runtime("inspect", name, check=True).stdout if not hasattr(runtime, "ok") else runtime.ok("inspect", name)
    rec = json.loads(out)[0]
    return {"Status": rec["State"]["Status"], "RestartCount": rec["RestartCount"],
            "ExitCode": rec["State"]["ExitCode"], "Policy": rec["HostConfig"]["RestartPolicy"]}


def settle(runtime, name: str, until, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        s = state(runtime, name)
        if until(s) or time.monotonic() > deadline:
            return s
        time.sleep(0.1)


def test_on_failure_2_restarts_twice_and_the_attached_run_returns_the_first_exit(both):
    md, dk, made = both
    made.append("rs-of2")
    argv = ["run", "--name", "rs-of2", *N, "--restart", "on-failure:2", "busybox", "sh", "-c", "echo run; exit 3"]
    m, d = md(*argv), dk(*argv, check=False)
    assert (m.returncode, m.stdout) == (d.returncode, d.stdout) == (3, "run\n")
    done = lambda s: s["Status"] == "exited" and s["RestartCount"] == 2  # noqa: E731
    assert settle(md, "rs-of2", done) == settle(dk, "rs-of2", done) == {
        "Status": "exited", "RestartCount": 2, "ExitCode": 3, "Policy": {"Name": "on-failure", "MaximumRetryCount": 2}}
    assert md.ok("logs", "rs-of2") == dk("logs", "rs-of2").stdout == "run\nrun\nrun\n"
    # a start by the user counts afresh: two more restarts, not none
    md.ok("start", "rs-of2"), dk("start", "rs-of2")
    time.sleep(0.2)
    assert settle(md, "rs-of2", done)["RestartCount"] == settle(dk, "rs-of2", done)["RestartCount"] == 2
    assert md.ok("logs", "rs-of2").count("run") == dk("logs", "rs-of2").stdout.count("run") == 6


def test_success_is_not_a_failure(both):
    md, dk, made = both
    made.append("rs-ok")
    argv = ["run", "--name", "rs-ok", *N, "--restart", "on-failure", "busybox", "true"]
    assert md(*argv).returncode == dk(*argv, check=False).returncode == 0
    time.sleep(1)
    assert state(md, "rs-ok")["RestartCount"] == state(dk, "rs-ok")["RestartCount"] == 0


def test_always_backs_off_and_a_stop_ends_it(md):
    """Docker's back-off: 100 ms, doubling. The restarts' own start times (logs -t) show it."""
    md.ok("run", "-d", "--name", "rs-always", "--restart", "always", *N, "busybox", "sh", "-c", "echo x; exit 4")
    try:
        s = settle(md, "rs-always", lambda s: s["RestartCount"] >= 5)
        assert s["RestartCount"] >= 5
        from minidocker.gotime import parse_rfc3339
        stamps = [parse_rfc3339(line.split()[0]) for line in md.ok("logs", "-t", "rs-always").splitlines()]
        gaps = [b - a for a, b in zip(stamps, stamps[1:])][:5]
        for gap, delay in zip(gaps, (0.1, 0.2, 0.4, 0.8, 1.6)):
            assert delay <= gap < delay + 1.0, gaps   # at least the back-off; then a start's cost
        # it spends most of its time `restarting` now: ps and inspect say so, exec is refused
        s = settle(md, "rs-always", lambda s: s["Status"] == "restarting")
        assert s["Status"] == "restarting"
        assert md.ok("ps", "--format", "{{.Status}}", "-f", "name=rs-always").startswith("Restarting (4) ")
        assert md.ok("ps", "-q", "-f", "status=restarting", "-f", "name=rs-always").strip()
        r = md("exec", "rs-always", "true")
        assert r.returncode == 1 and "is restarting, wait until the container is running" in r.stderr
        t = time.monotonic()
        md.ok("stop", "rs-always")            # during the back-off: no process to signal
        assert time.monotonic() - t < 3
        count = state(md, "rs-always")["RestartCount"]
        time.sleep(2)                         # and it stays stopped
        assert state(md, "rs-always") == {"Status": "exited", "RestartCount": count, "ExitCode": 4,
                                          "Policy": {"Name": "always", "MaximumRetryCount": 0}}
    finally:
        md("rm", "-f", "rs-always")


def test_wait_returns_at_an_exit_even_one_that_is_restarted(both):
    """dockerd wakes `docker wait` when the container ends, whether or not it restarts then."""
    md, dk, made = both
    made.append("rs-wait")
    for rt in (md, dk):
        rt("run", "-d", "--name", "rs-wait", "--restart", "always", *N, "busybox", "sh", "-c", "sleep 1; exit 2")
        t = time.monotonic()
        r = rt("wait", "rs-wait")
        assert (r.returncode, r.stdout) == (0, "2\n") and time.monotonic() - t < 5
    r = md("attach", "rs-wait")   # (during a back-off or the next run: either way an answer, not a hang)
    assert r.returncode in (1, 2), r.stderr


@pytest.mark.parametrize("policy", ["always", "unless-stopped", "on-failure"])
def test_a_kill_by_the_user_is_not_restarted(both, policy):
    md, dk, made = both
    name = f"rs-kill-{policy}"
    made.append(name)
    for rt in (md, dk):
        r = rt("run", "-d", "--name", name, *N, "--restart", policy, "busybox", "sleep", "1000")
        assert r.returncode == 0, r.stderr
        time.sleep(0.3)
        assert rt("kill", name).returncode == 0
    time.sleep(1.5)
    assert state(md, name) == state(dk, name) == {"Status": "exited", "RestartCount": 0, "ExitCode": 137,
                                                  "Policy": {"Name": policy, "MaximumRetryCount": 0}}


def test_kill_with_another_signal_cancels_it_too_without_a_stop_signal(both):
    md, dk, made = both
    made.append("rs-term")
    for rt in (md, dk):
        rt("run", "-d", "--name", "rs-term", *N, "--restart", "always", "busybox", "sh", "-c",
           "trap 'exit 5' TERM; while true; do sleep 0.1; done")
        time.sleep(0.5)
        rt("kill", "-s", "TERM", "rs-term")
    time.sleep(1.5)
    assert state(md, "rs-term") == state(dk, "rs-term") == {
        "Status": "exited", "RestartCount": 0, "ExitCode": 5, "Policy": {"Name": "always", "MaximumRetryCount": 0}}


def test_rm_force_of_an_always_container_leaves_nothing(md, state_root):
    md.ok("run", "-d", "--name", "rs-rm", "--restart", "always", "busybox", "sh", "-c", "exit 1")
    time.sleep(1)
    md.ok("rm", "-f", "rs-rm")
    assert md("inspect", "rs-rm").returncode == 1
    from conftest import shim_processes
    time.sleep(0.5)
    assert not any("rs-rm" in open(f"/proc/{p}/cmdline").read() for p in shim_processes(state_root)
                   if os.path.exists(f"/proc/{p}"))


def test_update_restart(both):
    md, dk, made = both
    made += ["rs-upd", "rs-upd-rm"]
    for rt in (md, dk):
        rt("create", "--name", "rs-upd", *N, "busybox", "true")
        rt("create", "--rm", "--name", "rs-upd-rm", *N, "busybox", "true")
    for argv, rc in ((["update", "--restart", "on-failure:3", "rs-upd"], 0),
                     (["update", "--restart", "bogus", "rs-upd"], 1),
                     (["update", "--restart", "always", "rs-upd-rm"], 1)):
        m, d = md(*argv), dk(*argv, check=False)
        assert m.returncode == d.returncode == rc, (argv, m.stderr, d.stderr)
        if rc:  # the same words (each names its own container id)
            words = [re.sub("[0-9a-f]{64}", "<id>", p.stderr.strip()) for p in (m, d)]
            assert words[0].removeprefix("Error: ") == words[1].removeprefix("Error response from daemon: ")
    assert state(md, "rs-upd")["Policy"] == state(dk, "rs-upd")["Policy"] == {"Name": "on-failure",
                                                                              "MaximumRetryCount": 3}


@pytest.mark.parametrize("argv,rc", [
    (["run", *N, "--rm", "--restart", "always", "busybox", "true"], 125),
    (["run", *N, "--restart", "bogus", "busybox", "true"], 125),
    (["run", *N, "--restart", "always:2", "busybox", "true"], 125),
    (["run", *N, "--restart", "on-failure:-1", "busybox", "true"], 125),
    (["run", *N, "--restart", "on-failure:x", "busybox", "true"], 125),
])
def test_bad_policies_are_refused_as_docker_refuses_them(md, docker, argv, rc):
    m, d = md(*argv), docker.docker(*argv, check=False)
    assert m.returncode == d.returncode == rc
    assert len(m.stderr.strip().splitlines()) == 1 and "Traceback" not in m.stderr
    # docker: "docker: [Error response from daemon: ]<message>.\nSee 'docker run --help'."
    said = d.stderr.splitlines()[0].removeprefix("docker: ").removeprefix("Error response from daemon: ")
    assert m.stderr.strip().removeprefix("minidocker: ") == said.rstrip(".")


def crash(md, state_root, name: str) -> None:
    """What a power cut does to a running container: its monitor and its processes die at once."""
    from minidocker.container.store import ContainerStore
    from minidocker.paths import StateRoot
    cid = md.ok("inspect", "-f", "{{.Id}}", name).strip()
    pid = int(md.ok("inspect", "-f", "{{.State.Pid}}", name))
    monitor = ContainerStore(StateRoot(state_root)).monitor_pid(cid)
    os.kill(monitor, signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)


BOOT = {  # name: (policy, what the user did before the host went down)
    "rs-b-always-stopped": ("always", "stop"),
    "rs-b-unless-stopped": ("unless-stopped", "stop"),
    "rs-b-unless-running": ("unless-stopped", "running"),
    "rs-b-onfail-killed": ("on-failure", "kill"),
    "rs-b-onfail-running": ("on-failure", "running"),
    "rs-b-onfail-used-up": ("on-failure:1", "fail"),
    "rs-b-no-running": ("no", "running"),
}


def test_what_comes_back_when_the_host_boots(md, docker, state_root):
    """dockerd restarted on the same data vs `minidocker system restore` after every monitor died."""
    dk = docker.docker
    try:
        for name, (policy, done) in BOOT.items():
            argv = ["run", "-d", "--name", name, *N, "--restart", policy, "busybox"]
            argv += ["sh", "-c", "exit 1"] if done == "fail" else ["sleep", "1000"]
            for rt in (md, dk):
                assert rt(*argv).returncode == 0
                if done == "stop":
                    rt("stop", "-t", "0", name)
                elif done == "kill":
                    rt("kill", name)
        time.sleep(1.5)  # (the failing one: its one restart)
        docker.restart_daemon()
        for name, (_, done) in BOOT.items():
            if done == "running":
                crash(md, state_root, name)
        r = md("system", "restore")
        assert r.returncode == 0, r.stderr
        time.sleep(1)
        ours = {name: state(md, name)["Status"] for name in BOOT}
        theirs = {name: state(dk, name)["Status"] for name in BOOT}
        assert ours == theirs == {
            "rs-b-always-stopped": "running", "rs-b-unless-stopped": "exited", "rs-b-unless-running": "running",
            "rs-b-onfail-killed": "running", "rs-b-onfail-running": "running", "rs-b-onfail-used-up": "exited",
            "rs-b-no-running": "exited"}
        assert sorted(r.stdout.split()) == sorted(n for n, s in ours.items() if s == "running")
    finally:
        for name in BOOT:
            md("rm", "-f", name)
            dk("rm", "-f", name, check=False)


def test_the_python_api_takes_docker_pys_restart_policy(state_root):
    import minidocker
    client = minidocker.from_env(state_root)
    c = client.containers.run("busybox", ["sh", "-c", "exit 7"], detach=True, network_mode="none",
                              restart_policy={"Name": "on-failure", "MaximumRetryCount": 1})
    try:
        deadline = time.monotonic() + 20
        while c.reload().attrs["RestartCount"] < 1 or c.attrs["State"]["Status"] != "exited":
            assert time.monotonic() < deadline, c.attrs["State"]
            time.sleep(0.1)
        assert c.attrs["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 1}
        assert c.attrs["State"]["ExitCode"] == 7
    finally:
        c.remove(force=True)


def test_a_clean_shutdown_is_no_users_stop(md):
    """`system shutdown` (the VM unit's ExecStop) stops everything as dockerd does when it stops:
    at boot `system restore` brings back unless-stopped containers too, not the ones a user stopped."""
    names = ["rs-sd-unless", "rs-sd-always", "rs-sd-user"]
    try:
        for name in names:
            md.ok("run", "-d", "--name", name, *N, "--restart",
                  "always" if name == "rs-sd-always" else "unless-stopped", "busybox", "sleep", "1000")
        md.ok("stop", "-t", "0", "rs-sd-user")
        t = time.monotonic()
        out = md.ok("system", "shutdown", "-t", "1")
        assert time.monotonic() - t < 10 and sorted(n for n in out.split() if n.startswith("rs-sd")) == \
            ["rs-sd-always", "rs-sd-unless"]
        assert {n: state(md, n)["Status"] for n in names} == dict.fromkeys(names, "exited")
        md.ok("system", "restore")
        assert {n: state(md, n)["Status"] for n in names} == {"rs-sd-unless": "running", "rs-sd-always": "running",
                                                              "rs-sd-user": "exited"}
    finally:
        md("rm", "-f", *names)
