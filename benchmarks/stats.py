"""Pure helpers of the benchmark suite: medians, ratios, goals, the summary table, and the
parsing of what /proc and `ip` print. No I/O here: tests/test_bench_stats.py tests it all
without root."""
from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass


# ---------------------------------------------------------------- numbers
def median(samples: list[float]) -> float:
    if not samples:
        raise ValueError("no samples")
    return statistics.median(samples)


def ratio(value: float | None, reference: float | None) -> float | None:
    """value / reference, or None when either is missing or the reference is not positive."""
    if value is None or reference is None or reference <= 0 or math.isnan(value) or math.isnan(reference):
        return None
    return value / reference


def fmt_time(seconds: float | None) -> str:
    """'-' / '870 us' / '42.0 ms' / '1.23 s'."""
    if seconds is None:
        return "-"
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


def fmt_mib(kib: float | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.1f} MiB"


def fmt_rate(bytes_per_second: float | None) -> str:
    return "-" if bytes_per_second is None else f"{bytes_per_second / 1e6:.0f} MB/s"


def fmt_ratio(r: float | None, against: str) -> str:
    """0.612, "docker" -> '0.61x docker' (lower is better when the figure is a time)."""
    return "-" if r is None else f"{r:.2f}x {against}"


def describe(samples: list[float]) -> str:
    """'median 270.1 ms, min 251.0 ms (n=15)'."""
    return f"median {fmt_time(median(samples))}, min {fmt_time(min(samples))} (n={len(samples)})"


# ---------------------------------------------------------------- goals
@dataclass(frozen=True)
class Goal:
    """`value op limit`: Goal("<=", 0.3, "x docker") reads '<= 0.3x docker'; Goal("<=", 12, " MiB")."""
    op: str
    limit: float
    unit: str = ""

    def __post_init__(self):
        if self.op not in ("<=", ">="):
            raise ValueError(f"goal operator must be <= or >=, not {self.op!r}")

    def met(self, value: float | None) -> bool | None:
        if value is None or math.isnan(value):
            return None
        return value <= self.limit if self.op == "<=" else value >= self.limit

    def __str__(self) -> str:
        return f"{self.op} {self.limit:g}{self.unit}"


def verdict(goal: Goal | None, value: float | None, best: float | None = None, best_is: str = "mins") -> str:
    """PASS / MISS on the median `value`; `best` (the same figure from the minimums, or from
    what `best_is` names) is only mentioned when it disagrees, so that a verdict that noise
    could flip shows it."""
    if goal is None:
        return ""
    met = goal.met(value)
    if met is None:
        return "n/a"
    text = "PASS" if met else "MISS"
    other = goal.met(best)
    if other is not None and other != met:
        text += f" ({'PASS' if other else 'MISS'} by {best_is})"
    return text


# ---------------------------------------------------------------- the summary table
COLUMNS = ("figure", "minidocker", "docker", "runc", "ratio", "goal", "PASS/MISS")


@dataclass
class Row:
    figure: str
    minidocker: str = "-"
    docker: str = "-"
    runc: str = "-"
    ratio: str = "-"
    goal: str = ""
    verdict: str = ""
    section: str = ""

    def cells(self) -> tuple[str, ...]:
        return (self.figure, self.minidocker, self.docker, self.runc, self.ratio, self.goal, self.verdict)


def goal_row(figure: str, *, minidocker: str = "-", docker: str = "-", runc: str = "-",
             value: float | None = None, best: float | None = None, against: str = "",
             goal: Goal | None = None, ratio_value: float | None = None, best_is: str = "mins",
             section: str = "") -> Row:
    """A summary row. The goal is checked on `value` (the medians' figure; `best` is the same
    from the minimums). The ratio cell shows `ratio_value` if given, else `value`, as
    'N.NNx <against>'; '-' without `against`."""
    shown = value if ratio_value is None else ratio_value
    return Row(figure, minidocker, docker, runc, fmt_ratio(shown, against) if against else "-",
               str(goal) if goal else "", verdict(goal, value, best, best_is), section)


def table(rows: list[Row], header: tuple[str, ...] = COLUMNS) -> str:
    """A plain-text table, columns padded to their widest cell."""
    cells = [header] + [r.cells() for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(c.ljust(w) for c, w in zip(header, widths)).rstrip(), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells[1:]]
    return "\n".join(out)


def tally(rows: list[Row]) -> str:
    """'5 PASS, 3 MISS, 1 n/a' over the rows that have a goal."""
    counts = {"PASS": 0, "MISS": 0, "n/a": 0}
    for r in rows:
        key = r.verdict.split(" ")[0]
        if key in counts:
            counts[key] += 1
    return ", ".join(f"{v} {k}" for k, v in counts.items() if v or k != "n/a")


# ---------------------------------------------------------------- command line
def parse_sections(spec: str | None, known: list[str], default: list[str]) -> list[str]:
    """'--only run,memory' -> ['run', 'memory'] in the suite's order; None -> default."""
    if not spec:
        return list(default)
    wanted = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise ValueError(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(known)}")
    if not wanted:
        raise ValueError("no section named")
    return [s for s in known if s in wanted]


# ---------------------------------------------------------------- what /proc and ip print
def pss_kib(smaps_rollup: str) -> int:
    """The "Pss:" line of /proc/<pid>/smaps_rollup, in KiB (Pss_Anon etc. are not it)."""
    m = re.search(r"^Pss:\s+(\d+) kB", smaps_rollup, re.M)
    if not m:
        raise ValueError("no Pss: line")
    return int(m.group(1))


def smaps_kib(smaps_rollup: str) -> dict[str, int]:
    """Every 'Name: N kB' line of /proc/<pid>/smaps_rollup, in KiB."""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+):\s+(\d+) kB", smaps_rollup, re.M)}


def uss_kib(fields: dict[str, int]) -> int:
    """The unique set size: the pages no other process maps (private clean + private dirty)."""
    return fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)


def status_field(status: str, name: str) -> str:
    """A field of /proc/<pid>/status, e.g. status_field(text, "PPid") -> '1234'."""
    m = re.search(rf"^{re.escape(name)}:\s*(.*)$", status, re.M)
    if not m:
        raise ValueError(f"no {name}: line")
    return m.group(1).strip()


def stat_start_time(stat: str) -> int:
    """Field 22 (starttime) of /proc/<pid>/stat; the command name (field 2) may hold spaces
    and parentheses, so count from the last ')'."""
    return int(stat[stat.rindex(")") + 2:].split()[19])


def stat_state(stat: str) -> str:
    """Field 3 (state) of /proc/<pid>/stat: R, S, D, Z (exited, not yet reaped), ..."""
    return stat[stat.rindex(")") + 2:].split()[0]


def _unescape_mountinfo(path: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def mounts_under(mountinfo: str, root: str) -> list[str]:
    """Mount points (field 5 of /proc/self/mountinfo) at or below `root`."""
    root = root.rstrip("/")
    out = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        target = _unescape_mountinfo(fields[4])
        if target == root or target.startswith(root + "/"):
            out.append(target)
    return out


def fstype_at(mountinfo: str, path: str) -> str:
    """The file system type of the mount holding `path` (the longest mount point above it;
    the last one mounted there wins)."""
    best, fstype = "", "?"
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep or len(left.split()) < 5 or not right.split():
            continue
        target = _unescape_mountinfo(left.split()[4])
        inside = path == target or path.startswith(target.rstrip("/") + "/")
        if inside and len(target) >= len(best):
            best, fstype = target, right.split()[0]
    return fstype


def cgroup_mounts(mountinfo: str) -> list[str]:
    """Mount points of every cgroup (v1) and cgroup2 hierarchy."""
    out = []
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fstype = right.split()[0] if right.split() else ""
        if fstype in ("cgroup", "cgroup2"):
            out.append(_unescape_mountinfo(left.split()[4]))
    return out


def links(ip_o_link: str) -> list[tuple[str, str | None]]:
    """(name, master or None) for each line of `ip -o link` output."""
    out = []
    for line in ip_o_link.splitlines():
        m = re.match(r"^\d+:\s+([^:@\s]+)(?:@[^:\s]+)?:\s", line)
        if not m:
            continue
        master = re.search(r"\smaster\s(\S+)", line)
        out.append((m.group(1), master.group(1) if master else None))
    return out


def veths_on(ip_o_link: str, masters: set[str]) -> list[str]:
    """Names of the links whose master is one of `masters` (feed it `ip -o link show type veth`)."""
    return sorted(name for name, master in links(ip_o_link) if master in masters)


def spread(first: float, samples: list[float], last: float) -> str:
    """'first 310.0 ms, median 290.1 ms, 100th 350.2 ms'."""
    return (f"first {fmt_time(first)}, median {fmt_time(median(samples))}, "
            f"{_ordinal(len(samples))} {fmt_time(last)}")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
