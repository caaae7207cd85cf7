"""ENTRYPOINT/CMD, environment, users and signals: pure rules, no root needed."""
import pytest

from minidocker.container import runconfig as spec
from minidocker.errors import InvalidArgument, MinidockerError

SH = ["/bin/sh", "-c"]


# Docker's table (runtime-facts section 4): image config x run arguments -> argv
@pytest.mark.parametrize("ep,cmd,expected", [
    (None, ["echo", "cmd"], ["echo", "cmd"]),                                  # no EP + exec CMD
    (["ep", "a"], ["x", "y"], ["ep", "a", "x", "y"]),                          # exec EP + exec CMD
    (SH + ["ep a"], ["x"], SH + ["ep a", "x"]),                                # shell EP: sh ignores CMD
    (["ep"], SH + ["cmd b"], ["ep", "/bin/sh", "-c", "cmd b"]),                # exec EP + shell CMD
    (["ep"], None, ["ep"]),
])
def test_entrypoint_cmd_table(ep, cmd, expected):
    e, c = spec.merge_command({"Entrypoint": ep, "Cmd": cmd}, None, None)
    assert spec.argv(e, c) == expected


def test_run_args_replace_cmd_only():
    e, c = spec.merge_command({"Entrypoint": ["ep"], "Cmd": ["default"]}, ["mine"], None)
    assert (e, c) == (["ep"], ["mine"])


def test_entrypoint_flag_drops_image_cmd():
    e, c = spec.merge_command({"Entrypoint": ["ep"], "Cmd": ["default"]}, None, "echo")
    assert (e, c) == (["echo"], None)
    e, c = spec.merge_command({"Entrypoint": ["ep"], "Cmd": ["default"]}, ["hi"], "echo")
    assert spec.argv(e, c) == ["echo", "hi"]


def test_empty_entrypoint_resets():
    e, c = spec.merge_command({"Entrypoint": ["ep"], "Cmd": ["default"]}, ["ls"], "")
    assert (e, c) == (None, ["ls"])


def test_no_command():
    e, c = spec.merge_command({}, None, None)
    with pytest.raises(InvalidArgument, match="no command specified"):
        spec.argv(e, c)
    e, c = spec.merge_command({"Cmd": ["sh"]}, None, "")
    with pytest.raises(InvalidArgument):
        spec.argv(e, c)


def test_env_replace_or_append_keeps_order():
    assert spec.container_env(["PATH=/bin", "A=1"], ["A=2", "B=3"]) == ["PATH=/bin", "A=2", "B=3"]
    assert spec.replace_or_append(["A=1", "B=2"], ["A"]) == ["B=2"]


def test_process_env_adds_hostname_and_home_like_docker():
    env = spec.process_env(["PATH=/x", "FOO=bar"], "abc", tty=False, home="/root")
    assert env == ["PATH=/x", "HOSTNAME=abc", "FOO=bar", "HOME=/root"]
    env = spec.process_env(["HOME=/h"], "abc", tty=True, home="/root")
    assert env == [f"PATH={spec.DEFAULT_PATH}", "HOSTNAME=abc", "TERM=xterm", "HOME=/h"]


def test_env_opt_from_host():
    assert spec.parse_env_opt("A=1", {}) == "A=1"
    assert spec.parse_env_opt("A", {"A": "x"}) == "A=x"
    assert spec.parse_env_opt("A", {}) is None
    with pytest.raises(InvalidArgument):
        spec.parse_env_opt("=x", {})


def test_env_file():
    text = "\ufeff# comment\n\n  A=1\nB= spaced \nC\nD\nE=\n"
    assert spec.parse_env_file(text, {"C": "fromhost"}) == ["A=1", "B= spaced ", "C=fromhost", "E="]
    with pytest.raises(InvalidArgument, match="whitespaces"):
        spec.parse_env_file("A B=1\n", {})
    with pytest.raises(InvalidArgument, match="no variable name"):
        spec.parse_env_file("=1\n", {})


PASSWD = ("root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
          "nobody:x:65534:65534:nobody:/home:/bin/false\n")
GROUP = "root:x:0:\ndaemon:x:1:\nwheel:x:10:root\nstaff:x:50:daemon,other\nnogroup:x:65534:\n"


@pytest.mark.parametrize("user,expected", [
    ("", (0, 0, [0, 10], "/root")),
    ("root", (0, 0, [0, 10], "/root")),
    ("daemon", (1, 1, [1, 50], "/usr/sbin")),
    ("1", (1, 1, [1, 50], "/usr/sbin")),
    ("1234", (1234, 0, [0], "/")),
    ("1234:5678", (1234, 5678, [5678], "/")),
    ("daemon:staff", (1, 50, [50], "/usr/sbin")),
    ("nobody:0", (65534, 0, [0], "/home")),
])
def test_resolve_user(user, expected):
    assert spec.resolve_user(user, PASSWD, GROUP) == expected


def test_resolve_user_errors():
    with pytest.raises(MinidockerError, match="unable to find user ghost: no matching entries in passwd file"):
        spec.resolve_user("ghost", PASSWD, GROUP)
    with pytest.raises(MinidockerError, match="unable to find group nog"):
        spec.resolve_user("root:nog", PASSWD, GROUP)


@pytest.mark.parametrize("s,n", [("KILL", 9), ("SIGKILL", 9), ("kill", 9), ("9", 9), ("TERM", 15),
                                 ("SIGUSR1", 10), ("RTMIN+1", 35)])
def test_parse_signal(s, n):
    assert spec.parse_signal(s) == n


@pytest.mark.parametrize("bad", ["BOGUS", "0", "65", "SIGFOO", ""])
def test_parse_signal_bad(bad):
    with pytest.raises(InvalidArgument, match="Invalid signal"):
        spec.parse_signal(bad)


def test_validate_name():
    assert spec.validate_name("web-1") == "web-1"
    assert spec.validate_name("/web") == "web"
    for bad in ("a", "-x", "a b", "x/y", "ü"):
        with pytest.raises(InvalidArgument):
            spec.validate_name(bad)
