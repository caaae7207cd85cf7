"""User namespaces: root inside the container, an unprivileged uid outside.

Taught in notebook 03 (namespaces: its user-namespace cells), and in the security notebook to come.

Without a user namespace, uid 0 in a container *is* uid 0 on the host: only capabilities,
seccomp and masked paths stand between it and the machine. A user namespace maps ids: with
the map "0 100000 65536", uid 0 inside is uid 100000 outside, 1 is 100001, ... and a host
file owned by real root is owned by "nobody" (65534) for the container, whatever its
capabilities, which now only count inside its own namespaces.

Who may write the map matters: a process that made the namespace may map only its own uid;
a privileged parent (the runtime, root on the host) may map any range, which is why runc's
init asks its parent to do it. `--userns-remap` (engine/remap.py) takes the range from
/etc/subuid and /etc/subgid, the files `newuidmap` reads for rootless users too.

Pure logic here (maps, /etc/subuid); the runtime writes /proc/<pid>/{uid,gid}_map
(core/runc.py) and the container's init does the rest inside (core/init.py).
"""
from __future__ import annotations


class IdMap:
    """A list of (container id, host id, size) ranges, as in /proc/<pid>/uid_map and the OCI
    spec's linux.uidMappings ([{"containerID", "hostID", "size"}])."""

    def __init__(self, ranges: list[tuple[int, int, int]]):
        self.ranges = [(int(c), int(h), int(n)) for c, h, n in ranges]

    @classmethod
    def from_oci(cls, mappings: list[dict] | None) -> "IdMap":
        return cls([(m["containerID"], m["hostID"], m["size"]) for m in mappings or []])

    def oci(self) -> list[dict]:
        return [{"containerID": c, "hostID": h, "size": n} for c, h, n in self.ranges]

    def proc_text(self) -> str:
        """What /proc/<pid>/uid_map takes: one "inside outside count" line per range."""
        return "".join(f"{c} {h} {n}\n" for c, h, n in self.ranges)

    def to_host(self, cid: int) -> int:
        """The host id of container id `cid` (an unmapped id has none: ValueError)."""
        for c, h, n in self.ranges:
            if c <= cid < c + n:
                return h + cid - c
        raise ValueError(f"container id {cid} is not mapped")

    def to_container(self, hid: int, overflow: int = 65534) -> int:
        """The id a host id shows as inside (the kernel's overflow id, 65534, when unmapped)."""
        for c, h, n in self.ranges:
            if h <= hid < h + n:
                return c + hid - h
        return overflow

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def __eq__(self, other) -> bool:
        return isinstance(other, IdMap) and other.ranges == self.ranges

    def __repr__(self) -> str:
        return f"IdMap({self.ranges})"


def parse_proc_map(text: str) -> IdMap:
    """/proc/<pid>/uid_map -> IdMap ("0 0 4294967295": the host's own, identity map)."""
    return IdMap([tuple(int(x) for x in line.split()) for line in text.splitlines() if line.strip()])


def is_host_map(idmap: IdMap) -> bool:
    """The host's own namespace maps every id to itself: "0 0 4294967295"."""
    return idmap.ranges == [(0, 0, 4294967295)]


_answer: list[bool] = []


def running_in_user_namespace() -> bool:
    """Is this process in a user namespace other than the host's? (runc asks the same,
    RunningInUserNS: mknod, cgroups and some mounts are then out of reach.) Asked once per
    process: a command joins rootless mode's namespaces before it asks."""
    if not _answer:
        try:
            with open("/proc/self/uid_map") as f:
                _answer.append(not is_host_map(parse_proc_map(f.read())))
        except OSError:
            _answer.append(False)
    return _answer[0]


def subid_ranges(text: str, name: str, number: int | None = None) -> list[tuple[int, int]]:
    """The (start, count) ranges /etc/subuid (or /etc/subgid) gives user `name` (lines
    "name:start:count"; shadow-utils also accepts the numeric id in place of the name)."""
    out = []
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) != 3 or line.lstrip().startswith("#"):
            continue
        who, start, count = parts
        if who == name or (number is not None and who == str(number)):
            try:
                out.append((int(start), int(count)))
            except ValueError:
                continue
    return out


def map_from_subids(ranges: list[tuple[int, int]]) -> IdMap:
    """Docker's createIDMap: the ranges one after the other from container id 0."""
    out, inside = [], 0
    for start, count in sorted(ranges):
        out.append((inside, start, count))
        inside += count
    return IdMap(out)


def free_range(texts: list[str], size: int = 65536, first: int = 100000) -> int:
    """The lowest start >= `first` of `size` ids overlapping no range in the given
    /etc/subuid and /etc/subgid texts (where Docker puts a new dockremap range)."""
    used = []
    for text in texts:
        for line in text.splitlines():
            parts = line.strip().split(":")
            if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                used.append((int(parts[1]), int(parts[1]) + int(parts[2])))
    start = first
    for lo, hi in sorted(used):
        if lo < start + size and start < hi:
            start = hi
    return start
