"""System commands: system prune (and the leftovers only a crash leaves behind), system restore
(what dockerd does when it starts: run at boot)."""
from __future__ import annotations

from ...engine.runtime import Runtime
from . import format as fmt

PRUNE_WARNING = """WARNING! This will remove:
  - all stopped containers
  - all networks not used by at least one container
  - all dangling images
  - all dangling build cache
  - what a crash may leave: mounts, layers, cgroups, bridges, firewall rules, temporary files"""


def cmd_system_prune(args) -> int:
    from .common import confirm, print_section
    if not confirm(PRUNE_WARNING, args.force):
        return 0
    rt = Runtime()
    from ...images import manage
    removed, space = rt.prune()
    print_section("Deleted Containers:", removed)
    lines, image_space = manage.prune(rt, all_images=args.all)
    print_section("Deleted Images:", lines)
    space += image_space
    if args.volumes:  # anonymous volumes no container uses
        from .volumes import prune_volumes
        gone, volume_space = prune_volumes(rt)
        space += volume_space
        print_section("Deleted Volumes:", gone)
    print_section("Cleaned up leftovers:", rt.cleanup_leftovers())
    print(f"Total reclaimed space: {fmt.human_size(space, 4)}")
    return 0


API_VERSION = "1.41"  # the Engine API version minidocker's replies follow (docker 20.10's)


def version_info() -> dict:
    """`docker version`'s data, for a daemonless runtime: the client and the "server" are
    this one program (the Engine API of `minidocker serve` answers with the same)."""
    import platform
    import sys
    from ... import __version__
    from ...images.platform import host_architecture
    now = platform.uname()
    common = {"Version": __version__, "ApiVersion": API_VERSION, "GitCommit": "",
              "GoVersion": f"python{sys.version.split()[0]}", "Os": "linux", "Arch": host_architecture()}
    return {
        "Client": {"Platform": {"Name": "minidocker"}, **common, "DefaultAPIVersion": API_VERSION,
                   "BuildTime": "", "Context": "default", "Experimental": False},
        "Server": {"Platform": {"Name": "minidocker (daemonless)"},
                   "Components": [{"Name": "Engine", "Version": __version__,
                                   "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": "1.12",
                                               "Os": "linux", "Arch": host_architecture(),
                                               "KernelVersion": now.release}},
                                  {"Name": "runtime", "Version": __version__,
                                   "Details": {"note": "minidocker's own low-level runtime (core/runc.py)"}}],
                   **common, "MinAPIVersion": "1.12", "KernelVersion": now.release, "BuildTime": ""},
    }


VERSION_TEMPLATE = """Client:
 Version:           {{.Client.Version}}
 API version:       {{.Client.ApiVersion}}
 Python version:    {{.Client.GoVersion}}
 OS/Arch:           {{.Client.Os}}/{{.Client.Arch}}
 Context:           {{.Client.Context}}

Server: {{.Server.Platform.Name}}
 Engine:
  Version:          {{.Server.Version}}
  API version:      {{.Server.ApiVersion}} (minimum version {{.Server.MinAPIVersion}})
  OS/Arch:          {{.Server.Os}}/{{.Server.Arch}}
  Kernel:           {{.Server.KernelVersion}}
 runtime:
  Version:          {{.Server.Version}} (core/runc.py: no runc, no containerd, no shim binary)"""


def cmd_version(args) -> int:
    from .common import parse_format, print_inspect
    template = parse_format(args.format or VERSION_TEMPLATE)
    return print_inspect([version_info()], template)


def info_dict(rt: Runtime) -> dict:
    """`docker info`'s data (the fields of GET /info that apply), from the state root and the host."""
    import os
    import platform
    from ... import __version__
    from ...core import cgroups
    recs = rt.list(all=True)
    running = sum(1 for r in recs if r["State"]["Running"] and not r["State"].get("Paused"))
    paused = sum(1 for r in recs if r["State"].get("Paused"))
    from ...core import userns
    layout = cgroups.layout()
    rootless = userns.running_in_user_namespace()  # (core/rootless.py)
    os_name = "Linux"
    try:
        with open("/etc/os-release") as f:
            fields = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
        os_name = fields.get("PRETTY_NAME", os_name).strip('"')
    except OSError:
        pass
    with open("/proc/meminfo") as f:
        mem = int(next(line.split()[1] for line in f if line.startswith("MemTotal:"))) * 1024
    return {
        "ID": rt.root.root, "Containers": len(recs), "ContainersRunning": running,
        "ContainersPaused": paused, "ContainersStopped": len(recs) - running - paused,
        "Images": len(rt.images.image_ids()), "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", _fs_type(rt.images.driver.home)], ["Supports d_type", "true"],
                         ["Native Overlay Diff", "true"], ["userxattr", "true" if rootless else "false"]],
        "Debug": False, "LoggingDriver": "json-file", "CgroupDriver": "none" if rootless else "cgroupfs",
        "CgroupVersion": "2" if layout == "v2" else "1",
        "KernelVersion": platform.release(), "OperatingSystem": os_name, "OSType": "linux",
        "Architecture": platform.machine(), "NCPU": os.cpu_count(), "MemTotal": mem,
        "DockerRootDir": rt.root.root, "Name": platform.node(), "ServerVersion": __version__,
        "Runtimes": {"minidocker": {"path": "minidocker.core.runc"}}, "DefaultRuntime": "minidocker",
        "SecurityOptions": _security_options(rt.root.root, rootless), "Swarm": {"LocalNodeState": "inactive"},
        "Warnings": _warnings(layout, rootless),
    }


def _warnings(layout: str, rootless: bool) -> list[str]:
    if rootless:  # dockerd's words for its "none" cgroup driver
        return ["WARNING: Running in rootless-mode without cgroups. " +
                ("Systemd is required to enable cgroups in rootless-mode." if layout == "v2" else
                 "To enable cgroups in rootless-mode, you need to boot the system in cgroup v2 mode.")]
    if layout == "hybrid":
        return ["WARNING: cgroups are hybrid here (v1 controllers): Docker uses v1 on such hosts, so does minidocker"]
    return []


def _security_options(root: str, rootless: bool = False) -> list[str]:
    """What `docker info` lists under Security Options: apparmor when the host has it (every
    container then runs under a profile: core/apparmor.py), seccomp with the default profile
    when the kernel and libseccomp can do it, userns in a --userns-remap state root,
    cgroupns (no SELinux in minidocker)."""
    from ...storage import shift
    from ...core import apparmor
    from ...core.linux import libseccomp
    opts = ["name=apparmor"] if apparmor.enabled() else []
    with open("/proc/self/status") as f:
        kernel_has_it = "Seccomp:" in f.read()
    if kernel_has_it and libseccomp.available():
        opts.append("name=seccomp,profile=default")
    if shift.idmaps(root):
        opts.append("name=userns")
    if rootless:
        opts.append("name=rootless")
    return opts + ["name=cgroupns"]


def _security_lines(opts: list[str]) -> list[str]:
    """"name=seccomp,profile=default" -> "  seccomp" and "   Profile: default", as docker info prints it."""
    lines = []
    for opt in opts:
        fields = dict(kv.split("=", 1) for kv in opt.split(",") if "=" in kv)
        lines.append(f"  {fields.get('name', opt)}")
        lines += [f"   {k.capitalize()}: {v}" for k, v in fields.items() if k != "name"]
    return lines


def _fs_type(path: str) -> str:
    from ...core.linux import procfs
    best = ("", "")
    for m in procfs.mountinfo():
        if (path + "/").startswith(m["target"].rstrip("/") + "/") and len(m["target"]) >= len(best[0]):
            best = (m["target"], m["fstype"])
    return best[1] or "unknown"


INFO_TEMPLATE = """Client:
 Context:    default
 Debug Mode: false

Server:
 Containers: {{.Containers}}
  Running: {{.ContainersRunning}}
  Paused: {{.ContainersPaused}}
  Stopped: {{.ContainersStopped}}
 Images: {{.Images}}
 Server Version: {{.ServerVersion}} (minidocker, daemonless: each container has its own monitor)
 Storage Driver: {{.Driver}}
{{range .DriverStatus}}  {{index . 0}}: {{index . 1}}
{{end}} Logging Driver: {{.LoggingDriver}}
 Cgroup Driver: {{.CgroupDriver}}
 Cgroup Version: {{.CgroupVersion}}
 Default Runtime: {{.DefaultRuntime}}
 Security Options:
{{range .SecurityOptionsShown}}{{.}}
{{end}} Kernel Version: {{.KernelVersion}}
 Operating System: {{.OperatingSystem}}
 OSType: {{.OSType}}
 Architecture: {{.Architecture}}
 CPUs: {{.NCPU}}
 Total Memory: {{.MemTotalHuman}}
 Name: {{.Name}}
 Docker Root Dir: {{.DockerRootDir}}
{{range .Warnings}}{{.}}
{{end}}"""


def cmd_info(args) -> int:
    from .common import parse_format, print_inspect
    data = info_dict(Runtime())
    if args.format:
        return print_inspect([data], parse_format(args.format))
    shown = dict(data, MemTotalHuman=fmt.bytes_size(data["MemTotal"]),
                 SecurityOptionsShown=_security_lines(data["SecurityOptions"]))
    print(parse_format(INFO_TEMPLATE).execute(shown).rstrip("\n"))
    return 0


def _event_time(value: str | None) -> int | None:
    """--since/--until: a unix time ("1764630000.5"), an RFC 3339 date, or a duration back from
    now ("10m", "1h30m": Go's), as docker events takes them."""
    import time
    from ... import gotime
    from ...errors import InvalidArgument
    if not value:
        return None
    try:
        return int(float(value) * 1e9)
    except ValueError:
        pass
    try:
        return time.time_ns() - gotime.parse_duration(value)
    except ValueError:
        pass
    t = gotime.parse_rfc3339(value if value.endswith("Z") or "+" in value else value + "Z")
    if t is None:
        raise InvalidArgument(f"invalid value for time: {value}")
    return int(t * 1e9)


def cmd_events(args) -> int:
    import time
    from ... import events
    from ...errors import InvalidArgument
    from .common import parse_format
    filters: dict[str, list[str]] = {}
    for f in args.filter:
        key, _, value = f.partition("=")
        if key not in events.FILTER_KEYS:
            raise InvalidArgument(f"Invalid filter '{key}'", exit_code=1)
        filters.setdefault(key, []).append(value)
    template = parse_format(args.format)
    rt = Runtime()
    since, until = _event_time(args.since), _event_time(args.until)
    start_ns = time.time_ns()

    def show(msg: dict) -> None:
        if events.matches(msg, filters):
            print(template.execute(msg) if template else events.format_line(msg), flush=True)
    seen = 0
    past = events.read(rt.root, since, until) if since is not None else []
    for msg in past:
        show(msg)
    if until is not None and until <= time.time_ns():
        return 0
    # then follow: what is appended from now on (until --until, or ^C)
    last = max([m["timeNano"] for m in past] + [start_ns - 1])
    while until is None or time.time_ns() < until:
        fresh = [m for m in events.read(rt.root, last + 1, until) if m["timeNano"] > last]
        for msg in fresh:
            show(msg)
            last = max(last, msg["timeNano"])
        seen += len(fresh)
        time.sleep(0.1)
    return 0


def disk_usage(rt: Runtime) -> dict:
    """`docker system df`'s numbers: images (each layer counted once), containers' writable
    layers, volumes; active = in use by a container (running, for containers)."""
    import os
    from ... import fsutil
    from ...images.store import chain_ids
    from ...volumes import VolumeStore
    from .volumes import _users
    store = rt.images
    recs = rt.list(all=True)
    used_images = {r["Image"] for r in recs}
    images = [store.get(i) for i in store.image_ids()]
    layers = {c: store.layer_size(c) for img in images for c in chain_ids(img.diff_ids)}
    active_layers = {c for img in images if img.id in used_images for c in chain_ids(img.diff_ids)}
    image_total = sum(layers.values())
    image_reclaim = sum(size for c, size in layers.items() if c not in active_layers)

    def upper(rec):
        d = ((rec.get("GraphDriver") or {}).get("Data") or {}).get("UpperDir")
        return fsutil.dir_size(d) if d and os.path.isdir(d) else 0
    containers = [(r, upper(r)) for r in recs]
    vs = VolumeStore(rt.root)
    volumes = [(n, fsutil.dir_size(vs.path(n)), bool(_users(rt, n))) for n in vs.names()]
    return {
        "images": images, "used_images": used_images, "containers": containers, "volumes": volumes,
        "rows": [
            ("Images", len(images), sum(1 for i in images if i.id in used_images), image_total, image_reclaim),
            ("Containers", len(recs), sum(1 for r in recs if r["State"]["Running"]),
             sum(size for _, size in containers), sum(size for r, size in containers if not r["State"]["Running"])),
            ("Local Volumes", len(volumes), sum(1 for v in volumes if v[2]), sum(v[1] for v in volumes),
             sum(v[1] for v in volumes if not v[2])),
            ("Build Cache", 0, 0, 0, 0),  # (the classic builder's cache is its images)
        ],
    }


def cmd_system_df(args) -> int:
    import sys
    from .common import render_table, unescape_format
    du = disk_usage(Runtime())
    rows = []
    for kind, total, active, size, reclaim in du["rows"]:
        pct = ""
        if kind != "Build Cache" and (size or kind == "Images"):  # (docker's column: a share where it has one)
            pct = f" ({int(100 * reclaim / size) if size else 0}%)"
        rows.append({"Type": kind, "TotalCount": str(total), "Active": str(active), "Size": fmt.human_size(size),
                     "Reclaimable": fmt.human_size(reclaim) + pct})
    headers = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"}
    if args.format:
        sys.stdout.write(render_table(unescape_format(args.format), rows, headers))
        return 0
    if not args.verbose:
        sys.stdout.write(render_table("table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
                                      rows, headers))
        return 0
    store = Runtime().images
    print("Images space usage:\n")
    img_rows = []
    for img in du["images"]:
        tags = store.tags_of(img.id) or ["<none>:<none>"]
        for t in tags:
            repo, _, tag = t.rpartition(":")
            img_rows.append({"Repository": repo, "Tag": tag, "ID": img.short_id,
                             "Size": fmt.human_size(store.size(img)),
                             "Containers": str(sum(1 for r, _ in du["containers"] if r["Image"] == img.id))})
    sys.stdout.write(render_table("table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}\t{{.Containers}}", img_rows,
                                  {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Size": "SIZE",
                                   "Containers": "CONTAINERS"}))
    print("\nContainers space usage:\n")
    c_rows = [{"ID": r["Id"][:12], "Image": r["Config"].get("Image", ""), "Size": fmt.human_size(size),
               "Status": r["State"]["Status"], "Names": r["Name"].lstrip("/")} for r, size in du["containers"]]
    sys.stdout.write(render_table("table {{.ID}}\t{{.Image}}\t{{.Size}}\t{{.Status}}\t{{.Names}}", c_rows,
                                  {"ID": "CONTAINER ID", "Image": "IMAGE", "Size": "SIZE", "Status": "STATUS",
                                   "Names": "NAMES"}))
    print("\nLocal Volumes space usage:\n")
    v_rows = [{"Name": n, "Links": "1" if used else "0", "Size": fmt.human_size(size)}
              for n, size, used in du["volumes"]]
    sys.stdout.write(render_table("table {{.Name}}\t{{.Links}}\t{{.Size}}", v_rows,
                                  {"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"}))
    return 0


def cmd_system_shutdown(args) -> int:
    from ...engine.restore import shutdown
    shutdown(Runtime(), args.time)
    return 0


def cmd_system_restore(args) -> int:
    from ...engine.restore import restore
    _, failed = restore(Runtime())
    return 1 if failed else 0


def register(sub, management: bool = False) -> None:
    from .common import Parser
    if management:
        return
    for name, func, help_text in (("version", cmd_version, "Show the minidocker version information"),
                                  ("info", cmd_info, "Display system-wide information")):
        p = sub.add_parser(name, help=help_text)
        p.set_defaults(func=func, needs_root=name != "version")
        p.add_argument("-f", "--format", default=None, help="Format the output using the given Go template")
    for parent in (sub,):
        p = parent.add_parser("events", help="Get real time events from the server")
        p.set_defaults(func=cmd_events)
        p.add_argument("-f", "--filter", action="append", default=[],
                       help="Filter output based on conditions provided (container=, event=, image=, label=, "
                            "type=, volume=, network=)")
        p.add_argument("--format", default=None, help="Format the output using the given Go template")
        p.add_argument("--since", default=None, help="Show all events created since timestamp")
        p.add_argument("--until", default=None, help="Stream events until this timestamp")
    gp = sub.add_parser("system", help="Manage minidocker")
    gsub = gp.add_subparsers(dest="subcommand", metavar="COMMAND", parser_class=Parser)
    p = gsub.add_parser("df", help="Show minidocker disk usage")
    p.set_defaults(func=cmd_system_df)
    p.add_argument("-v", "--verbose", action="store_true", help="Show detailed information on space usage")
    p.add_argument("--format", default=None, help="Pretty-print using a Go template")
    p = gsub.add_parser("shutdown", help="Before the host shuts down: stop every container as dockerd does "
                                         "when it stops (restart policies bring them back at boot)")
    p.set_defaults(func=cmd_system_shutdown)
    p.add_argument("-t", "--time", type=int, default=15, help="Seconds to wait for each container to stop")
    p = gsub.add_parser("restore", help="At boot: start the containers whose restart policy says so "
                                        "(what dockerd does when it starts)")
    p.set_defaults(func=cmd_system_restore)
    p = gsub.add_parser("prune", help="Remove unused data")
    p.set_defaults(func=cmd_system_prune)
    p.add_argument("-a", "--all", action="store_true", help="Remove all unused images not just dangling ones")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    p.add_argument("--volumes", action="store_true", help="Prune volumes")
