"""The container state machine of notebook 09 (生命周期), as Docker defines it: the states, which
command (or event) leads from which state to which, what Docker refuses, what an exit code
means, and where each state sits in the drawing.

    from minidocker.lab import lifecycle
    lifecycle.after("paused", "unpause")          # 'running'
    lifecycle.after("paused", "start")            # raises Refused("cannot start a paused ...")
    walk = lifecycle.Walk()                        # the trail of a live container
    walk.observe("create", "created")             # checks that (none) -create-> created is an edge
    lifecycle.draw(ax, current="running", trail=walk.trail)   # matplotlib, states laid out by hand

The states are Docker's seven (container/state.py: `docker inspect -f '{{.State.Status}}'`),
plus two ends that are not states: NEW (before `create`) and GONE (after `rm`). Everything but
draw() is pure and unit-tested without root (tests/test_lab_lifecycle.py); the notebook checks
that every transition it observes on a real container is an edge of this model.
"""
from __future__ import annotations

import signal as _signal
from typing import NamedTuple

from ..container.state import CREATED, DEAD, EXITED, PAUSED, REMOVING, RESTARTING, RUNNING, STATES  # noqa: F401 (STATES: for the notebook)

NEW, GONE = "(new)", "(gone)"


class Edge(NamedTuple):
    src: str
    dst: str
    command: str      # a user's command, or what happens by itself (in parentheses)
    note: str = ""


# Docker's transitions (moby daemon/{create,start,stop,kill,pause,restart,delete,monitor}.go).
# "(exits)": the container's main process ends by itself (or by a signal);
# "(policy)": it ended and its restart policy starts it again after the back-off.
EDGES: tuple[Edge, ...] = (
    Edge(NEW, CREATED, "create", "docker create (run = create + start)"),
    Edge(CREATED, RUNNING, "start"),
    Edge(CREATED, RUNNING, "restart", "restart of a container that never ran: a start"),
    Edge(RUNNING, PAUSED, "pause", "the cgroup freezer"),
    Edge(PAUSED, RUNNING, "unpause"),
    Edge(RUNNING, EXITED, "stop", "StopSignal, the grace period, then SIGKILL"),
    Edge(RUNNING, EXITED, "kill", "SIGKILL, or -s SIGNAL if the process dies of it"),
    Edge(RUNNING, EXITED, "(exits)", "the main process ended: its exit code"),
    Edge(PAUSED, EXITED, "stop", "the signal is sent, the cgroup thawed"),
    Edge(PAUSED, EXITED, "kill"),
    Edge(RUNNING, RUNNING, "restart", "stop, then start: a new process"),
    Edge(RUNNING, RESTARTING, "(exits)", "the restart policy says again: a back-off first"),
    Edge(RESTARTING, RUNNING, "(policy)", "the back-off is over: started again"),
    Edge(RESTARTING, EXITED, "stop", "a user's stop cancels the restart"),
    Edge(RESTARTING, EXITED, "kill"),
    Edge(RESTARTING, RUNNING, "restart", "stop (cancels the back-off), then start"),
    Edge(EXITED, RUNNING, "start"),
    Edge(EXITED, RUNNING, "restart"),
    Edge(CREATED, REMOVING, "rm"),
    Edge(EXITED, REMOVING, "rm"),
    Edge(RUNNING, REMOVING, "rm -f", "SIGKILL first"),
    Edge(PAUSED, REMOVING, "rm -f"),
    Edge(RESTARTING, REMOVING, "rm -f"),
    Edge(REMOVING, GONE, "(removed)", "its files and layers are deleted"),
    Edge(REMOVING, DEAD, "(removal fails)", "e.g. a mount still busy: only rm is left"),
    Edge(DEAD, REMOVING, "rm"),
)

# What Docker refuses (the state does not change), with dockerd's words ({id}: the container's).
REFUSED: dict[tuple[str, str], str] = {
    (PAUSED, "start"): "cannot start a paused container, try unpause instead",
    (RUNNING, "unpause"): "Container {id} is not paused",
    (CREATED, "unpause"): "Container {id} is not paused",
    (EXITED, "unpause"): "Container {id} is not paused",
    (PAUSED, "pause"): "Container {id} is already paused",
    (CREATED, "pause"): "Container {id} is not running",
    (EXITED, "pause"): "Container {id} is not running",
    (RESTARTING, "pause"): "Container {id} is restarting, wait until the container is running",
    (CREATED, "kill"): "Container {id} is not running",
    (EXITED, "kill"): "Container {id} is not running",
    (RUNNING, "rm"): "container is running: stop the container before removing or force remove",
    (PAUSED, "rm"): ("container is paused and running: unpause and then stop the container before removing "
                     "or force remove"),
    (DEAD, "start"): "container {id} is marked as dead and cannot be started",
    (REMOVING, "start"): "container is marked for removal and cannot be started",
}

# Commands that succeed and change nothing.
NO_OPS = {(CREATED, "stop"), (EXITED, "stop"), (RUNNING, "start")}

COMMANDS = ("create", "start", "restart", "pause", "unpause", "stop", "kill", "rm", "rm -f")


class Refused(Exception):
    """Docker refuses the command in this state (the message is dockerd's)."""


def edges_from(state: str) -> list[Edge]:
    return [e for e in EDGES if e.src == state]


def _by(edge: Edge, command: str | None) -> bool:
    """Is `command` one that takes `edge`? (rm -f also does what rm does.)"""
    return command is None or edge.command == command or (edge.command == "rm" and command == "rm -f")


def is_edge(src: str, dst: str, command: str | None = None) -> bool:
    """Is src -> dst a transition of the model (by `command`, if given)?"""
    return any(e.src == src and e.dst == dst and _by(e, command) for e in EDGES)


def after(state: str, command: str, cid: str = "<id>") -> str:
    """The state a user's `command` leaves a container in, from `state` (Refused if Docker
    refuses it; rm and rm -f lead to GONE, through removing). `stop` and `kill` are the edges to
    `exited` (with a restart policy a kill by the user cancels the restart: still `exited`)."""
    if (state, command) in REFUSED:
        raise Refused(REFUSED[state, command].format(id=cid))
    if (state, command) in NO_OPS:
        return state
    if command in ("rm", "rm -f") and is_edge(state, REMOVING, command):
        return GONE
    targets = [e.dst for e in EDGES if e.src == state and e.command == command]
    if not targets:
        raise KeyError(f"no transition from {state!r} by {command!r} in the model")
    return targets[0]


def path_of(state: str, command: str) -> list[str]:
    """The states a command passes through (rm: removing, then gone)."""
    end = after(state, command)
    return [REMOVING, GONE] if end == GONE and state != REMOVING else [end]


class Walk:
    """The trail of one live container: each observation must be an edge of the model."""

    def __init__(self):
        self.state = NEW
        self.trail: list[Edge] = []

    def observe(self, command: str, status: str) -> Edge:
        """After `command` the container's status is `status` (GONE once removed): record the
        edge, or raise ValueError if the model has no such transition."""
        if command in ("rm", "rm -f") and status == GONE and self.state != REMOVING:
            if not is_edge(self.state, REMOVING, command):
                raise ValueError(f"{self.state} --{command}--> removing is not a transition of Docker's state machine")
            self.trail.append(Edge(self.state, REMOVING, command))
            self.state = REMOVING
            command = "(removed)"
        if status == self.state and (self.state, command) in NO_OPS:
            edge = Edge(self.state, status, command, "no change")
        elif is_edge(self.state, status, command):
            edge = next(e for e in EDGES if (e.src, e.dst) == (self.state, status) and _by(e, command))
        else:
            raise ValueError(f"{self.state} --{command}--> {status} is not a transition of Docker's state machine")
        self.trail.append(edge)
        self.state = status
        return edge


# ---------------------------------------------------------------- exit codes
EXIT_CODES = {
    0: "the program succeeded",
    1: "the program failed (its own error: read the logs)",
    125: "the docker command itself failed (bad flag, invalid config, daemon error): no program ran",
    126: "the command was found but cannot be run (not executable, permission denied)",
    127: "the command was not found (not in $PATH, no such file)",
    137: "killed by SIGKILL (128 + 9): docker kill, stop's grace period ran out, or the OOM killer",
    143: "ended by SIGTERM (128 + 15): docker stop, and the program died of it",
}


def exit_code_of(status: int) -> int:
    """Docker's exit code from a wait status as os.waitstatus_to_exitcode gives it
    (-N: killed by signal N -> 128 + N)."""
    return 128 - status if status < 0 else status


def describe_exit(code: int) -> str:
    """What an exit code says (Docker's and the shell's conventions)."""
    if code in EXIT_CODES:
        return EXIT_CODES[code]
    if 128 < code < 128 + 65:
        try:
            name = _signal.Signals(code - 128).name
        except ValueError:
            name = f"signal {code - 128}"
        return f"killed by {name} (128 + {code - 128})"
    return "the program's own exit code"


# ---------------------------------------------------------------- the drawing
# Positions laid out by hand (x, y): the normal life left to right in the middle row,
# pause above running, the restart loop above exited, removal below.
LAYOUT: dict[str, tuple[float, float]] = {
    NEW: (0.0, 2.0), CREATED: (1.6, 2.0), RUNNING: (4.0, 2.0), EXITED: (6.6, 2.0),
    PAUSED: (4.0, 3.7), RESTARTING: (6.6, 3.7), REMOVING: (4.0, 0.3), DEAD: (6.6, 0.3), GONE: (1.6, 0.3),
}
CHINESE = {CREATED: "已创建", RUNNING: "运行中", PAUSED: "已暂停", RESTARTING: "重启中", EXITED: "已退出",
           REMOVING: "删除中", DEAD: "死亡", NEW: "", GONE: ""}


HALF_W, HALF_H = 0.62, 0.27      # a state's box, around its position
HIDDEN = {(PAUSED, REMOVING), (RESTARTING, REMOVING), (PAUSED, EXITED)}   # notes on running's arrows


def drawn_edges() -> list[tuple[str, str, str]]:
    """One arrow per (src, dst) pair, its label the commands joined: what draw() draws
    (rm -f from paused and restarting, stop / kill from paused: notes on running's arrows, not
    three more crossing ones)."""
    labels: dict[tuple[str, str], list[str]] = {}
    for e in EDGES:
        if (e.src, e.dst) in HIDDEN:
            continue
        labels.setdefault((e.src, e.dst), [])
        if e.command not in labels[e.src, e.dst]:
            labels[e.src, e.dst].append(e.command)
    out = []
    for (s, d), c in labels.items():
        label = " / ".join(c)
        if (s, d) == (RUNNING, REMOVING):
            label += "\n(also from paused, restarting)"
        if (s, d) == (RUNNING, EXITED):
            label += "\n(stop / kill: also from paused)"
        out.append((s, d, label))
    return out


def both_ways(src: str, dst: str) -> bool:
    pairs = {(s, d) for s, d, _ in drawn_edges()}
    return (dst, src) in pairs


def _border(x: float, y: float, ux: float, uy: float, node: str) -> tuple[float, float]:
    """Where the ray from (x, y) in direction (ux, uy) leaves `node`'s box (or its dot)."""
    if node in (NEW, GONE):
        return x + ux * 0.12, y + uy * 0.12
    t = min(HALF_W / abs(ux) if ux else 1e9, HALF_H / abs(uy) if uy else 1e9)
    return x + ux * (t + 0.04), y + uy * (t + 0.04)


def arrow_geometry(src: str, dst: str) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float], str]:
    """(start, end, label position, label alignment) of the arrow src -> dst: straight, from box border to box
    border; a pair drawn both ways is two parallel arrows, each shifted to its own right."""
    import math
    (x1, y1), (x2, y2) = LAYOUT[src], LAYOUT[dst]
    dx, dy = x2 - x1, y2 - y1
    n = math.hypot(dx, dy)
    ux, uy = dx / n, dy / n
    px, py = uy, -ux                              # the right-hand side of the direction
    off = 0.09 if both_ways(src, dst) else 0.0
    a = _border(x1 + px * off, y1 + py * off, ux, uy, src)
    b = _border(x2 + px * off, y2 + py * off, -ux, -uy, dst)
    side = 1 if off else (1 if abs(uy) > 0.5 else -1)   # labels of vertical lines to the right, others above
    push = 0.17 if abs(uy) < 0.5 else 0.12
    lx, ly = (a[0] + b[0]) / 2 + px * push * side, (a[1] + b[1]) / 2 + py * push * side
    if not off and abs(uy) <= 0.5:                      # a lone horizontal-ish arrow: label above it
        lx, ly = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2 + 0.14
    align = "center"
    if abs(uy) > 0.9:                                   # (nearly) vertical: the label beside, not on, it
        align = "left" if px * side > 0 else "right"
        lx += (-0.05 if align == "left" else 0.05)
    return a, b, (lx, ly), align


def draw(ax, current: str | None = None, trail: list[Edge] | tuple = (), title: str | None = None):
    """The state diagram on a matplotlib Axes: `current` filled, the edges of `trail` numbered
    in the order they were taken (the last one red)."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    taken = [(e.src, e.dst) for e in trail]
    ax.set_xlim(-0.5, 7.5)
    ax.set_ylim(-0.3, 4.3)
    ax.set_axis_off()
    for state, (x, y) in LAYOUT.items():
        if state in (NEW, GONE):
            ax.plot([x], [y], "o", ms=9, color="black" if state == NEW else "white", mec="black", zorder=3)
            ax.text(x, y - 0.25, "new" if state == NEW else "gone", ha="center", va="top", fontsize=7, color="gray")
            continue
        on = state == current
        ax.add_patch(FancyBboxPatch((x - HALF_W, y - HALF_H), 2 * HALF_W, 2 * HALF_H, boxstyle="round,pad=0.03",
                                    fc="#f4a261" if on else "#eef2f7", ec="#c0392b" if on else "#5b6b7f",
                                    lw=2.5 if on else 1, zorder=2))
        ax.text(x, y + 0.07, state, ha="center", va="center", fontsize=9, weight="bold" if on else "normal", zorder=4)
        ax.text(x, y - 0.14, CHINESE[state], ha="center", va="center", fontsize=7, color="#444", zorder=4)
    for src, dst, label in drawn_edges():
        steps = [i + 1 for i, t in enumerate(taken) if t == (src, dst)]
        last = bool(taken) and taken[-1] == (src, dst)
        color = "#c0392b" if last else ("#2a6f97" if steps else "#9aa5b1")
        lw = 2.0 if steps else 0.9
        if src == dst:  # restart of a running container: a loop on its top left corner
            x, y = LAYOUT[src]
            ax.add_patch(FancyArrowPatch((x - 0.45, y + HALF_H + 0.03), (x - HALF_W - 0.03, y + 0.08),
                                         connectionstyle="arc3,rad=1.9", arrowstyle="-|>", mutation_scale=10,
                                         color=color, lw=lw, zorder=1))
            lx, ly, align = x - 0.95, y + 0.5, "center"
        else:
            a, b, (lx, ly), align = arrow_geometry(src, dst)
            ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=11, shrinkA=0, shrinkB=0,
                                         color=color, lw=lw, zorder=1))
        text = label + (f" [{','.join(map(str, steps))}]" if steps else "")
        ax.text(lx, ly, text, ha=align, va="center", fontsize=6.5, color=color,
                bbox={"fc": "white", "ec": "none", "alpha": 0.85, "pad": 0.3}, zorder=5)
    if title:
        ax.set_title(title, fontsize=10)
    return ax
