"""--init for real, as root, beside the private real dockerd (whose --init is tini): without an
init, an orphan's zombie stays and `stop` waits out its 10 seconds; with one, the zombie is
reaped, SIGTERM reaches the program, the program's exit code is the container's."""
from __future__ import annotations

import json
import time

import pytest

pytestmark = [pytest.mark.root]

N = ["--network", "none"]
ORPHAN = ["sh", "-c", "(sleep 0.1 &); exec sleep 100"]   # the subshell's child is orphaned at once


def ps_rows(rt, name: str) -> list[tuple[str, str, str]]:
    out = (rt.ok if hasattr(rt, "ok") else lambda *a: rt(*a).stdout)("exec", name, "ps", "-o", "pid,stat,args")
    return [tuple(line.split(None, 2)) for line in out.splitlines()[1:] if "ps -o" not in line]


def test_zombies_pile_up_without_an_init_and_not_with_one(both):
    md, dk, made = both
    made += ["init-no", "init-yes"]
    for rt in (md, dk):
        assert rt("run", "-d", "--name", "init-no", *N, "busybox", *ORPHAN).returncode == 0
        assert rt("run", "-d", "--name", "init-yes", "--init", *N, "busybox", *ORPHAN).returncode == 0
    time.sleep(1)
    for rt in (md, dk):
        without, with_init = ps_rows(rt, "init-no"), ps_rows(rt, "init-yes")
        assert without[0][0] == "1" and without[0][2] == "sleep 100"              # the program is PID 1
        assert any(stat.startswith("Z") for _, stat, _ in without), without       # nobody reaps the orphan
        assert with_init[0][0] == "1" and with_init[0][2].endswith("-- sh -c (sleep 0.1 &); exec sleep 100")
        assert [a for p, s, a in with_init if p != "1" and s.startswith("S")] == ["sleep 100"]  # its child
        assert not any(stat.startswith("Z") for _, stat, _ in with_init), with_init
    for name in ("init-no", "init-yes"):
        ours = json.loads(md.ok("inspect", name))[0]["HostConfig"].get("Init")
        theirs = json.loads(dk("inspect", name).stdout)[0]["HostConfig"].get("Init")
        assert ours == theirs


def test_stop_reaches_the_program_through_the_init(both):
    md, dk, made = both
    made.append("init-stop")
    for rt in (md, dk):
        rt("run", "-d", "--name", "init-stop", "--init", *N, "busybox", "sleep", "100")
        t = time.monotonic()
        rt("stop", "init-stop")
        assert time.monotonic() - t < 5   # not the 10 s a PID 1 without a SIGTERM handler costs
    codes = [json.loads(out)[0]["State"]["ExitCode"]
             for out in (md.ok("inspect", "init-stop"), dk("inspect", "init-stop").stdout)]
    assert codes == [143, 143]            # 128 + SIGTERM, passed on by the init


@pytest.mark.parametrize("cmd,code", [(["sh", "-c", "exit 3"], 3), (["sh", "-c", "kill -9 $$"], 137)])
def test_the_programs_exit_status_is_the_containers(md, docker, cmd, code):
    for rt in (md, lambda *a: docker.docker(*a, check=False)):
        assert rt("run", "--rm", "--init", *N, "busybox", *cmd).returncode == code


def test_no_signal_is_left_ignored_in_the_container(md, docker):
    """(The monitor ignores SIGQUIT and friends; an ignored signal survives execve, so the init
    resets them: a container's program starts with none ignored, as in Docker.)"""
    for args in ([], ["--init"]):
        argv = ["run", "--rm", *args, *N, "busybox", "grep", "SigIgn", "/proc/self/status"]
        assert md.ok(*argv) == docker.docker(*argv).stdout == "SigIgn:\t0000000000000000\n"
