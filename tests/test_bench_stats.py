"""The benchmark suite's pure helpers (benchmarks/stats.py): no root, no processes, fast."""
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:  # benchmarks/ is not part of the installed package
    sys.path.append(REPO)

from benchmarks import stats  # noqa: E402
from benchmarks.stats import Goal, Row  # noqa: E402

SMAPS = """\
560ca4e3a000-7ffef22f4000 ---p 00000000 00:00 0                          [rollup]
Rss:               15356 kB
Pss:               14183 kB
Pss_Dirty:          9628 kB
Pss_Anon:           9628 kB
Shared_Clean:       1592 kB
Private_Clean:        36 kB
Private_Dirty:       112 kB
"""

STATUS = "Name:\tsleep\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t13393\nPid:\t13393\nPPid:\t13371\n"

# a command name with a space and a parenthesis, as /proc/<pid>/stat allows
STAT = "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 0"

MOUNTINFO = """\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
90 22 0:50 / /tmp/mdbench-x/root/overlay2/abc/merged rw - overlay overlay rw,lowerdir=a
91 22 0:51 / /tmp/mdbench-x/root2 rw - tmpfs tmpfs rw
92 22 0:52 / /tmp/mdbench-x/root/with\\040space rw - tmpfs tmpfs rw
93 22 0:53 / /dev/shm rw - tmpfs tmpfs rw
"""

IP_LINK = """\
1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT qlen 1000\\    link/loopback
12: veth1a2b3c4@if11: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue master md12d6f00 state UP mode DEFAULT
13: vethdeadbee@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue master mdrd-abc123 state UP mode DEFAULT
14: veth0000000@if3: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN mode DEFAULT
15: md12d6f00: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT
"""


def test_median_and_ratio():
    assert stats.median([3, 1, 2]) == 2
    assert stats.median([1, 2, 3, 4]) == 2.5
    with pytest.raises(ValueError):
        stats.median([])
    assert stats.ratio(0.2, 0.4) == 0.5
    assert stats.ratio(1, 0) is None
    assert stats.ratio(None, 1) is None
    assert stats.ratio(1, float("nan")) is None


def test_formatting():
    assert stats.fmt_time(0.0005) == "500 us"
    assert stats.fmt_time(0.2701) == "270.1 ms"
    assert stats.fmt_time(1.234) == "1.23 s"
    assert stats.fmt_time(None) == "-"
    assert stats.fmt_ratio(0.6123, "docker") == "0.61x docker"
    assert stats.fmt_ratio(None, "docker") == "-"
    assert stats.fmt_mib(12 * 1024) == "12.0 MiB"
    assert stats.fmt_rate(250e6) == "250 MB/s"
    assert stats.describe([0.3, 0.1, 0.2]) == "median 200.0 ms, min 100.0 ms (n=3)"
    assert stats.spread(0.2, [0.2] * 99 + [0.3], 0.3) == "first 200.0 ms, median 200.0 ms, 100th 300.0 ms"
    assert stats.spread(1, [1, 1], 1).endswith("2nd 1.00 s")
    assert stats.spread(1, [1] * 11, 1).endswith("11th 1.00 s")


def test_goals_lower_and_higher_is_better():
    g = Goal("<=", 0.3, "x docker")
    assert str(g) == "<= 0.3x docker"
    assert g.met(0.3) and not g.met(0.31)
    assert g.met(None) is None
    h = Goal(">=", 0.7, "x tar")
    assert h.met(0.7) and not h.met(0.69)
    with pytest.raises(ValueError):
        Goal("<", 1)


def test_verdict_names_a_disagreeing_best():
    g = Goal("<=", 1, "x docker")
    assert stats.verdict(g, 0.5) == "PASS"
    assert stats.verdict(g, 1.5) == "MISS"
    assert stats.verdict(g, 1.5, best=0.9) == "MISS (PASS by mins)"
    assert stats.verdict(g, 0.9, best=1.2, best_is="last/first 10") == "PASS (MISS by last/first 10)"
    assert stats.verdict(g, 0.9, best=0.5) == "PASS"
    assert stats.verdict(g, None) == "n/a"
    assert stats.verdict(None, 0.5) == ""


def test_goal_row_ratio_and_absolute_goal():
    r = stats.goal_row("run", minidocker="100.0 ms", docker="300.0 ms", value=1 / 3, against="docker",
                       goal=Goal("<=", 0.3, "x docker"))
    assert r.cells() == ("run", "100.0 ms", "300.0 ms", "-", "0.33x docker", "<= 0.3x docker", "MISS")
    # the goal on an absolute figure (MiB), the ratio cell on another
    m = stats.goal_row("pss", value=10.0, ratio_value=0.85, against="docker", goal=Goal("<=", 12, " MiB"))
    assert (m.ratio, m.goal, m.verdict) == ("0.85x docker", "<= 12 MiB", "PASS")
    assert stats.goal_row("info", value=2.0).cells()[4:] == ("-", "", "")


def test_table_pads_columns_and_tally_counts():
    rows = [Row("a", "1", verdict="PASS", goal="g"), Row("longer figure", "22", verdict="MISS (PASS by mins)"),
            Row("x", verdict="n/a"), Row("info")]
    text = stats.table(rows)
    lines = text.splitlines()
    assert lines[0].startswith("figure") and "PASS/MISS" in lines[0]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].index("1") == lines[3].index("22") == lines[0].index("minidocker")
    assert stats.tally(rows) == "1 PASS, 1 MISS, 1 n/a"
    assert stats.tally(rows[:1]) == "1 PASS, 0 MISS"


def test_parse_sections():
    known = ["run", "bridge", "memory", "notebooks"]
    default = known[:3]
    assert stats.parse_sections(None, known, default) == default
    assert stats.parse_sections("memory,run", known, default) == ["run", "memory"]  # the suite's order
    assert stats.parse_sections("notebooks", known, default) == ["notebooks"]
    with pytest.raises(ValueError, match="unknown section"):
        stats.parse_sections("run,fast", known, default)
    with pytest.raises(ValueError):
        stats.parse_sections(" , ", known, default)


def test_proc_parsers():
    assert stats.pss_kib(SMAPS) == 14183
    fields = stats.smaps_kib(SMAPS)
    assert fields["Rss"] == 15356 and fields["Pss_Anon"] == 9628
    assert stats.uss_kib(fields) == 148
    with pytest.raises(ValueError):
        stats.pss_kib("Rss: 1 kB\n")
    assert stats.status_field(STATUS, "PPid") == "13371"
    assert stats.status_field(STATUS, "State") == "S (sleeping)"
    with pytest.raises(ValueError):
        stats.status_field(STATUS, "Nope")
    assert stats.stat_start_time(STAT) == 987654
    assert stats.stat_state(STAT) == "S"


def test_mountinfo_parsers():
    assert stats.mounts_under(MOUNTINFO, "/tmp/mdbench-x/root/") == [
        "/tmp/mdbench-x/root/overlay2/abc/merged", "/tmp/mdbench-x/root/with space"]
    assert stats.mounts_under(MOUNTINFO, "/nowhere") == []
    assert stats.cgroup_mounts(MOUNTINFO) == ["/sys/fs/cgroup/cpu", "/sys/fs/cgroup/unified"]
    assert stats.fstype_at(MOUNTINFO, "/tmp/mdbench-x") == "ext4"
    assert stats.fstype_at(MOUNTINFO, "/dev/shm/mdbench-layer-1") == "tmpfs"
    assert stats.fstype_at(MOUNTINFO, "/dev/shmem") == "ext4"  # a prefix of a name is not a parent


def test_links_and_veths_on_a_bridge():
    assert stats.links(IP_LINK)[:2] == [("lo", None), ("veth1a2b3c4", "md12d6f00")]
    assert stats.veths_on(IP_LINK, {"md12d6f00"}) == ["veth1a2b3c4"]
    assert stats.veths_on(IP_LINK, {"md12d6f00", "mdrd-abc123"}) == ["veth1a2b3c4", "vethdeadbee"]
    assert stats.veths_on(IP_LINK, {"nobridge"}) == []
