"""Log drivers for real, beside the private real dockerd: json-file rotation at max-size
(max-file files kept, `logs` reading across them, oldest first), and `none`."""
from __future__ import annotations

import json
import os

import pytest

from minidocker.container import logs
from minidocker.errors import InvalidArgument

N = ["--network", "none"]
HUNDRED = ["sh", "-c", 'i=0; while [ $i -lt 100 ]; do echo "line $i"; i=$((i+1)); done']


def test_log_config_is_checked_as_dockerd_checks_it():
    assert logs.log_config(None, []) == {"Type": "json-file", "Config": {}}
    assert logs.log_config("json-file", ["max-size=1k", "max-file=3"])["Config"] == {"max-size": "1k",
                                                                                     "max-file": "3"}
    assert logs.limits({"max-size": "10k", "max-file": "2"}) == (10_000, 2)   # decimal, as go-units' FromHumanSize
    for driver, opts, message in [
        ("bogus", [], "logger: no log driver named 'bogus' is registered"),
        (None, ["colour=red"], "unknown log opt 'colour' for json-file log driver"),
        (None, ["max-file=2"], "max-file can only be set if max-size is set"),
        (None, ["max-size=1k", "max-file=0"], "max-file cannot be less than 1"),
        (None, ["max-size=0"], "max-size must be a positive number"),
        (None, ["max-size=lots"], "invalid size: 'lots'"),
        ("none", ["max-size=1k"], "unknown log opt 'max-size' for none log driver"),
    ]:
        with pytest.raises(InvalidArgument) as e:
            logs.log_config(driver, opts)
        assert str(e.value) == message


@pytest.mark.root
@pytest.mark.docker
def test_json_file_rotates_as_dockers_does(md, docker):
    argv = ["run", "--name", "logs-rotate", *N, "--log-opt", "max-size=1k", "--log-opt", "max-file=3",
            "busybox", *HUNDRED]
    try:
        assert md(*argv).returncode == 0 and docker.docker(*argv, check=False).returncode == 0
        files = {}
        for name, rt in (("ours", md), ("theirs", docker.docker)):
            path = json.loads(md.ok("inspect", "logs-rotate") if rt is md else rt("inspect", "logs-rotate").stdout)[0]
            files[name] = [os.path.getsize(f) for f in logs.log_files(path["LogPath"]) if os.path.exists(f)]
        assert len(files["ours"]) == len(files["theirs"]) == 3, files       # the file and two rotated ones
        # rotated once past 1000 bytes (1k is decimal there: a 1024 threshold would leave files >= 1024)
        assert all(1000 <= size < 1024 for size in files["ours"][:-1] + files["theirs"][:-1]), files
        ours, theirs = md.ok("logs", "logs-rotate"), docker.docker("logs", "logs-rotate").stdout
        assert ours.endswith("line 98\nline 99\n") and theirs.endswith("line 98\nline 99\n")
        assert abs(len(ours.splitlines()) - len(theirs.splitlines())) <= 2      # (record sizes differ a little)
        assert md.ok("logs", "--tail", "3", "logs-rotate") == docker.docker("logs", "--tail", "3",
                                                                            "logs-rotate").stdout
    finally:
        md("rm", "-f", "logs-rotate"), docker.docker("rm", "-f", "logs-rotate", check=False)


@pytest.mark.root
@pytest.mark.docker
def test_the_none_driver_keeps_nothing(md, docker):
    try:
        for rt in (md, lambda *a: docker.docker(*a, check=False)):
            r = rt("run", "--name", "logs-none", *N, "--log-driver", "none", "busybox", "echo", "attached")
            assert r.returncode == 0 and r.stdout == "attached\n"   # an attached run still sees it
        m, d = md("logs", "logs-none"), docker.docker("logs", "logs-none", check=False)
        assert m.returncode == d.returncode == 1
        assert "configured logging driver does not support reading" in m.stderr and \
            "configured logging driver does not support reading" in d.stderr
        for rt in (md.ok, lambda *a: docker.docker(*a).stdout):
            assert json.loads(rt("inspect", "logs-none"))[0]["HostConfig"]["LogConfig"] == {"Type": "none",
                                                                                           "Config": {}}
    finally:
        md("rm", "-f", "logs-none"), docker.docker("rm", "-f", "logs-none", check=False)


@pytest.mark.root
def test_follow_goes_on_across_a_rotation(md):
    import subprocess
    import sys
    md.ok("run", "-d", "--name", "logs-follow", *N, "--log-opt", "max-size=500", "--log-opt", "max-file=2",
          "busybox", "sh", "-c", 'sleep 1; i=0; while [ $i -lt 60 ]; do echo "line $i"; i=$((i+1)); '
                                 'sleep 0.01; done')
    try:
        p = subprocess.run([sys.executable, "-m", "minidocker", "logs", "-f", "logs-follow"], env=md.env,
                           capture_output=True, text=True, timeout=30)
        assert p.stdout.splitlines() == [f"line {i}" for i in range(60)], p.stdout
    finally:
        md("rm", "-f", "logs-follow")
