"""Two drawings for notebook 11 (architecture): the stack from the client down to the container
process, Docker's beside minidocker's, and a sequence diagram of requests captured by the API
proxy (lab/apiproxy.py).

    fig, ax = plt.subplots(figsize=(11, 6.5)); stackview.draw_stack(ax)
    fig, ax = plt.subplots(figsize=(10, 4)); stackview.draw_sequence(ax, entries, "docker CLI", "dockerd")

Pure drawing on a matplotlib Axes: nothing is run; the functions return what they drew (labels,
rows) so that tests/test_lab_apiproxy.py can check them without looking at pixels.
"""
from __future__ import annotations

from . import apiproxy

# (key, label, what it does) from top to bottom; None: no such layer in that column
DOCKER = [
    ("client", "docker CLI / docker-py / compose", "客户端: turns a command into HTTP requests"),
    ("api", "REST: Engine API on /var/run/docker.sock", "HTTP/1.1 over a unix socket (or TCP, ssh)"),
    ("daemon", "dockerd", "守护进程: images, containers, networks, volumes, builds"),
    ("containerd", "containerd", "gRPC: containers, tasks, snapshots (namespace moby)"),
    ("shim", "containerd-shim-runc-v2 (one per container)", "holds stdio, waits for the exit; parent: PID 1"),
    ("runtime", "runc create / start / delete --bundle", "reads config.json, makes namespaces + cgroup, exits"),
    ("process", "container process (PID 1 inside)", "namespaces, cgroup, rootfs, execve"),
]
MINIDOCKER = [
    ("client", "docker CLI / docker-py  |  minidocker CLI, Python API", "the same requests, served in-process"),
    ("api", "REST: `minidocker serve -H unix://...`", "compat/server: the same Engine API"),
    ("daemon", "engine/ (in the serving or the CLI process)", "no daemon: state on disk, file locks"),
    ("containerd", None, "(no containerd: the engine spawns\n the monitor itself)"),
    ("shim", "monitor: engine/monitor.py + core/shim.py", "one per container: stdio, logs, exit, restarts"),
    ("runtime", "core/runc.py  (minidocker-runc: the CLI)", "reads config.json, makes namespaces + cgroup"),
    ("process", "container process (PID 1 inside)", "namespaces, cgroup, rootfs, execve"),
]
LINKS = {"client": "HTTP", "api": "", "daemon": "gRPC", "containerd": "start shim", "shim": "exec runc",
         "runtime": "clone, execve"}


def draw_stack(ax, highlight=(), title: str | None = None) -> list[str]:
    """Docker's stack (left) and minidocker's (right), the registry beside the daemons.
    `highlight`: layer keys to draw in red. Returns the labels drawn."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
    drawn = []
    rows = len(DOCKER)
    ax.set_xlim(0, 11.5)
    ax.set_ylim(-0.7, rows + 0.2)
    ax.axis("off")
    for col, (x0, layers, head) in enumerate(((0.1, DOCKER, "Docker"), (6.2, MINIDOCKER, "minidocker"))):
        ax.text(x0 + 2.6, rows - 0.05, head, ha="center", va="bottom", fontsize=11, weight="bold")
        for i, (key, label, note) in enumerate(layers):
            y = rows - 1 - i
            if label is None:
                ax.text(x0 + 0.1, y + 0.39, note, ha="left", va="center", fontsize=7.5, color="#7f8c8d",
                        style="italic", bbox=dict(fc="white", ec="none", pad=0.5))
                continue
            hot = key in highlight
            box = FancyBboxPatch((x0, y + 0.08), 5.2, 0.62, boxstyle="round,pad=0.02,rounding_size=0.08",
                                 fc="#fadbd8" if hot else ("#eaf2f8" if key != "api" else "#fdfefe"),
                                 ec="#c0392b" if hot else "#5d6d7e", lw=1.6 if hot else 1)
            ax.add_patch(box)
            ax.text(x0 + 2.6, y + 0.49, label, ha="center", va="center", fontsize=8.5,
                    weight="bold" if key in ("daemon", "shim", "runtime") else "normal")
            ax.text(x0 + 2.6, y + 0.24, note, ha="center", va="center", fontsize=7, color="#34495e")
            drawn.append(label)
            below = next((j for j in range(i + 1, rows) if layers[j][1] is not None), None)
            if below is not None:
                yb = rows - 1 - below
                ax.add_patch(FancyArrowPatch((x0 + 2.6, y + 0.08), (x0 + 2.6, yb + 0.7), arrowstyle="-|>",
                                             mutation_scale=10, color="#5d6d7e", lw=1))
                link = LINKS.get(key, "") if col == 0 or key not in ("daemon", "containerd") else "spawn monitor"
                if link:
                    ym = (y + 0.08 + yb + 0.7) / 2 if below == i + 1 else y - 0.25
                    ax.text(x0 + 2.7, ym, link, fontsize=6.5, va="center", color="#5d6d7e")
    # the registry, beside both daemons: only a daemon talks to it
    y = rows - 3
    reg = FancyBboxPatch((5.45, y - 0.95), 0.6, 0.75, boxstyle="round,pad=0.02", fc="#e8f8f5", ec="#117a65")
    ax.add_patch(reg)
    ax.text(5.75, y - 0.57, "Registry\n镜像仓库", ha="center", va="center", fontsize=7)
    for xa, xb in ((5.3, 5.47), (6.2, 6.03)):
        ax.add_patch(FancyArrowPatch((xa, y + 0.3), (xb, y - 0.3), arrowstyle="<|-|>", mutation_scale=8,
                                     color="#117a65", lw=1))
    ax.text(5.75, y - 1.1, "/v2/ HTTPS:\npull, push", ha="center", va="top", fontsize=6.5, color="#117a65")
    drawn.append("Registry")
    if title:
        ax.set_title(title)
    return drawn


LANE_COLORS = ["#2874a6", "#c0392b", "#229954", "#7d3c98", "#b9770e", "#17a589", "#5d6d7e"]


def held_open(entry: dict) -> bool:
    """An answer that keeps its connection after its head: a hijacked stream, a wait (its body
    comes when the container is done), a followed log or event stream."""
    _, path, query = apiproxy.split_target(entry.get("target", ""))
    return bool(entry.get("hijacked")) or path.endswith("/wait") or "follow=1" in query or path == "/events"


def draw_sequence(ax, entries: list[dict], client: str = "client", server: str = "daemon",
                  names: dict[str, str] | None = None, title: str | None = None) -> list[str]:
    """A sequence diagram: one row per request (in the order they came), an arrow to the daemon
    and the status back, colored by connection; a connection that stays open (a hijacked
    stream, a wait) is drawn as a bar down to the end. Returns the rows' labels."""
    rows = [apiproxy.describe(e, names, status=False) for e in entries]
    n = len(rows)
    ax.set_xlim(0, 10)
    ax.set_ylim(-1.6, n + 0.3)
    ax.axis("off")
    xc, xs = 1.0, 8.2
    for x, label in ((xc, client), (xs, server)):
        ax.plot([x, x], [-1.2, n], color="#2c3e50", lw=1)
        ax.text(x, n + 0.05, label, ha="center", va="bottom", fontsize=10, weight="bold")
    conns = {}
    for e in entries:
        conns.setdefault(e.get("conn"), len(conns))
    for i, (e, label) in enumerate(zip(entries, rows)):
        y = n - 1 - i
        lane = conns[e.get("conn")]
        color = LANE_COLORS[lane % len(LANE_COLORS)]
        ax.annotate("", xy=(xs, y + 0.15), xytext=(xc, y + 0.15),
                    arrowprops=dict(arrowstyle="-|>", color=color, lw=1.2))
        ax.text((xc + xs) / 2, y + 0.22, label, ha="center", va="bottom", fontsize=7.5, color=color)
        status = e.get("status")
        back = f"{status}" + (" UPGRADED: raw stdout/stderr" if e.get("hijacked") else "")
        ax.annotate("", xy=(xc, y - 0.15), xytext=(xs, y - 0.15),
                    arrowprops=dict(arrowstyle="-|>", color=color, lw=0.9, ls="--"))
        ax.text(xs - 0.1, y - 0.1, back, ha="right", va="bottom", fontsize=6.5, color=color)
        ax.text(xc - 0.15, y, f"#{lane + 1}", ha="right", va="center", fontsize=7, color=color)
        if held_open(e):
            x = xs + 0.25 + 0.22 * lane
            ax.plot([x, x], [y - 0.15, -0.9], color=color, lw=4, alpha=0.35, solid_capstyle="butt")
    ax.text((xc + xs) / 2, -1.0, "the container exits: the held answers end (wait's body, the streams' EOF)",
            ha="center", va="center", fontsize=7, style="italic", color="#2c3e50")
    ax.text(xs + 0.3, -1.4, "bars: connections\nheld open", fontsize=6.5, color="#5d6d7e", va="center")
    if title:
        ax.set_title(title)
    return rows
