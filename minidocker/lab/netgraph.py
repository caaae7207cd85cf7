"""A picture of the host's network for notebook 06: namespaces, interfaces, bridges and the
veth cables between them, redrawn as containers join.

Three steps, kept apart so that the middle one is plain data and testable without root:

    snap = collect({"host": "/proc/self/ns/net", "nb06-a": "/run/netns/nb06-a"})   # netlink, in a child
    g = graph(snap, host_prefixes=("nb06-", "md"))      # pure: nodes, veth pairs, bridge ports
    pos = layout(g)                                      # pure: x, y of every interface and namespace box
    draw(ax, g, pos, "after step 3")                     # matplotlib

`collect()` enters each network namespace with setns(2), so it must run in a process of its own
(`in_child`), never in the notebook's kernel. It returns plain dicts:

    {"namespaces": [{"name": "host", "inode": 4026531840, "links": [
        {"name": "nb06-br", "index": 7, "kind": "bridge", "master": None, "link": None,
         "link_netnsid": None, "up": True, "addrs": ["10.206.0.1/24"]}, ...]}, ...]}

How a veth's two ends are found again: each end's IFLA_LINK is the *other* end's ifindex, and
IFLA_LINK_NETNSID says the other end lives in another namespace (ifindexes are per namespace,
so an index alone is ambiguous). Two ends pair up when each names the other's index.
"""
from __future__ import annotations

HOST = "host"


# ------------------------------------------------------------------ the kernel (in a child)
def collect(namespaces: dict[str, str]) -> dict:
    """{label: path of a network namespace file} -> a snapshot (see the module docstring).
    Namespaces with the same inode (containers sharing one) are collected once, their labels
    joined with " + ". Runs netlink with setns(2): call it in a child process."""
    import os

    from pyroute2 import IPRoute

    from minidocker.core.linux import syscalls as sc  # (absolute: in_child runs this function's source)

    by_inode: dict[int, list[str]] = {}
    paths: dict[int, str] = {}
    for label, path in namespaces.items():
        try:
            ino = os.stat(path).st_ino
        except OSError:
            continue  # gone (a container that exited)
        by_inode.setdefault(ino, []).append(label)
        paths.setdefault(ino, path)
    own = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    out = []
    try:
        for ino, labels in by_inode.items():
            fd = os.open(paths[ino], os.O_RDONLY | os.O_CLOEXEC)
            try:
                sc.setns(fd, sc.CLONE_NEWNET)
                with IPRoute() as ipr:
                    addrs: dict[int, list[str]] = {}
                    for a in ipr.get_addr(family=2):
                        addrs.setdefault(a["index"], []).append(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}")
                    links = []
                    for ln in ipr.get_links():
                        info = ln.get_attr("IFLA_LINKINFO")
                        links.append({
                            "name": ln.get_attr("IFLA_IFNAME"), "index": ln["index"],
                            "kind": (info.get_attr("IFLA_INFO_KIND") if info else None) or
                                    ("loopback" if ln.get_attr("IFLA_IFNAME") == "lo" else "device"),
                            "master": ln.get_attr("IFLA_MASTER"), "link": ln.get_attr("IFLA_LINK"),
                            "link_netnsid": ln.get_attr("IFLA_LINK_NETNSID"),
                            "up": bool(ln["flags"] & 1), "addrs": addrs.get(ln["index"], []),
                        })
            finally:
                sc.setns(own, sc.CLONE_NEWNET)
                os.close(fd)
            out.append({"name": " + ".join(labels), "inode": ino, "links": links})
    finally:
        os.close(own)
    return {"namespaces": out}


# ------------------------------------------------------------------ pure: the model
def veth_pairs(snapshot: dict) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """Both ends of every veth pair whose two ends are in the snapshot:
    [((ns, ifname), (ns, ifname)), ...], each pair once."""
    ends = [(ns["name"], ln) for ns in snapshot["namespaces"] for ln in ns["links"] if ln["kind"] == "veth"]
    pairs, used = [], set()
    for i, (ns_a, a) in enumerate(ends):
        if i in used or a.get("link") is None:
            continue
        for j, (ns_b, b) in enumerate(ends):
            if j == i or j in used:
                continue
            other_ns = a.get("link_netnsid") is not None
            if (ns_b != ns_a) != other_ns:
                continue  # the peer is (not) in another namespace, says the kernel
            if b["index"] == a["link"] and b.get("link") == a["index"]:
                pairs.append(((ns_a, a["name"]), (ns_b, b["name"])))
                used |= {i, j}
                break
    return pairs


def graph(snapshot: dict, host_prefixes: tuple[str, ...] = ()) -> dict:
    """Nodes and edges to draw. In the host namespace only the links named with one of
    `host_prefixes`, the ports of those bridges, and veth ends whose peer is drawn are kept
    (a host has many interfaces that are not ours); other namespaces are drawn whole, but for `lo`
    where there is more than `lo` (every namespace has one).

    {"namespaces": [names, host first], "nodes": {id: {"ns", "name", "kind", "addrs", "up", "master"}},
     "edges": [(id, id, "veth" | "port")]}; a node id is "ns/ifname"."""
    pairs = veth_pairs(snapshot)
    nss = sorted(snapshot["namespaces"], key=lambda ns: (ns["name"] != HOST, ns["name"]))
    nodes: dict[str, dict] = {}
    by_index: dict[tuple[str, int], str] = {}
    peer_of: dict[str, str] = {}
    for (na, ia), (nb, ib) in pairs:
        peer_of[f"{na}/{ia}"] = f"{nb}/{ib}"
        peer_of[f"{nb}/{ib}"] = f"{na}/{ia}"
    for ns in nss:
        for ln in ns["links"]:
            by_index[(ns["name"], ln["index"])] = f"{ns['name']}/{ln['name']}"
    for ns in nss:
        host = ns["name"] == HOST
        alone = len(ns["links"]) == 1           # lo is drawn only where it is all there is (--network none)
        kept_bridges = {ln["index"] for ln in ns["links"]
                        if ln["kind"] == "bridge" and ln["name"].startswith(host_prefixes)}
        for ln in ns["links"]:
            nid = f"{ns['name']}/{ln['name']}"
            if ln["kind"] == "loopback" and not alone:
                continue
            if host:
                peer = peer_of.get(nid)
                keep = (ln["name"].startswith(host_prefixes) or ln.get("master") in kept_bridges
                        or (peer is not None and not peer.startswith(HOST + "/")))
                if not keep:
                    continue
            master = by_index.get((ns["name"], ln["master"])) if ln.get("master") else None
            nodes[nid] = {"ns": ns["name"], "name": ln["name"], "kind": ln["kind"], "addrs": list(ln["addrs"]),
                          "up": ln["up"], "master": master}
    edges = []
    for (na, ia), (nb, ib) in pairs:
        a, b = f"{na}/{ia}", f"{nb}/{ib}"
        if a in nodes and b in nodes:
            edges.append((a, b, "veth"))
    for nid, n in nodes.items():
        if n["master"] in nodes:
            edges.append((nid, n["master"], "port"))
    names = [ns["name"] for ns in nss if ns["name"] == HOST or any(n["ns"] == ns["name"] for n in nodes.values())]
    return {"namespaces": names, "nodes": nodes, "edges": edges}


def layout(g: dict) -> dict:
    """Positions: {"nodes": {id: (x, y)}, "boxes": {ns: (x0, y0, x1, y1)}}.

    Three rows: bridges (y=2) and the veth ends plugged into them (y=1) in the host's box, the
    other namespaces' interfaces (y=0), each namespace a box of its own. A namespace sits under
    the bridge its cable goes to, and a host veth end right above its peer."""
    nodes, edges = g["nodes"], g["edges"]
    peer = {}
    for a, b, kind in edges:
        if kind == "veth":
            peer[a], peer[b] = b, a
    bridges = [i for i, n in nodes.items() if n["ns"] == HOST and n["kind"] == "bridge"]
    bridge_rank = {b: k for k, b in enumerate(bridges)}

    def ns_key(ns):  # under the first bridge its cables reach, then by name
        ranks = [bridge_rank.get(nodes[peer[i]]["master"], len(bridges))
                 for i, n in nodes.items() if n["ns"] == ns and i in peer and peer[i] in nodes]
        return (min(ranks) if ranks else len(bridges) + 1, ns)

    others = sorted((ns for ns in g["namespaces"] if ns != HOST), key=ns_key)
    pos: dict[str, tuple[float, float]] = {}
    boxes: dict[str, tuple[float, float, float, float]] = {}
    x = 0.0
    for ns in others:
        mine = [i for i, n in nodes.items() if n["ns"] == ns]
        # lo last: the cables' ends first, under their host ends
        mine.sort(key=lambda i: (nodes[i]["kind"] == "loopback", i not in peer, nodes[i]["name"]))
        start = x
        for i in mine:
            pos[i] = (x, 0.0)
            if i in peer and peer[i] in nodes and nodes[peer[i]]["ns"] == HOST:
                pos[peer[i]] = (x, 1.0)
            x += 1.0
        boxes[ns] = (start - 0.45, -0.45, max(x - 1.0, start) + 0.45, 0.45)
        x += 0.3
    # host links not placed yet: bridges above their ports, the rest after everything
    for b in bridges:
        ports = [pos[i][0] for i, n in nodes.items() if n["master"] == b and i in pos]
        if ports:
            pos[b] = (sum(ports) / len(ports), 2.0)
    free = x
    for i, n in nodes.items():
        if n["ns"] == HOST and i not in pos:
            row = 2.0 if n["kind"] == "bridge" else 1.0
            pos[i] = (free, row)
            if n["kind"] != "bridge":
                free += 1.0
            elif not any(m["master"] == i for m in nodes.values()):
                free += 1.0
    all_x = [p[0] for p in pos.values()] or [0.0]
    boxes[HOST] = (min(all_x) - 0.5, 0.6, max(all_x) + 0.5, 2.5)
    return {"nodes": pos, "boxes": boxes}


def label(node: dict) -> str:
    """What a node's box says: its name, kind, addresses, and 'down' if it is not up."""
    kind = {"veth": "veth", "bridge": "bridge", "loopback": "lo"}.get(node["kind"], node["kind"] or "")
    lines = [node["name"] + ("" if node["kind"] in ("loopback",) else f"  ({kind})")]
    lines += node["addrs"]
    if not node["up"]:
        lines.append("(down)")
    return "\n".join(lines)


def summary(g: dict) -> list[str]:
    """The picture as text (stable: names and addresses only), one line per cable or port."""
    out = []
    for a, b, kind in sorted(g["edges"]):
        if kind == "veth":
            out.append(f"cable  {a} <-> {b}")
        else:
            out.append(f"port   {a} -> bridge {g['nodes'][b]['name']}")
    return out


# ------------------------------------------------------------------ drawing
COLORS = {"bridge": "#fde2a8", "veth": "#cfe3f7", "loopback": "#e8e8e8"}


def draw(ax, g: dict, pos: dict | None = None, title: str = "") -> None:
    """Draw the graph on a matplotlib Axes."""
    from matplotlib.patches import FancyBboxPatch
    pos = pos or layout(g)
    ax.clear()
    ax.set_axis_off()
    for ns, (x0, y0, x1, y1) in pos["boxes"].items():
        host = ns == HOST
        ax.add_patch(FancyBboxPatch((x0, y0), x1 - x0, y1 - y0, boxstyle="round,pad=0.05",
                                    fc="#f6f6f6" if host else "#eef7ee", ec="gray", lw=1))
        ax.text(x0 + 0.05, y1 - 0.05 if host else y0 + 0.02, ("host network namespace" if host else ns),
                fontsize=8, va="top" if host else "bottom", ha="left", style="italic", color="dimgray")
    for a, b, kind in g["edges"]:
        (xa, ya), (xb, yb) = pos["nodes"][a], pos["nodes"][b]
        ax.plot([xa, xb], [ya, yb], color="tab:green" if kind == "veth" else "tab:orange",
                lw=2.5 if kind == "veth" else 1.5, ls="-" if kind == "veth" else "--", zorder=1)
    for nid, n in g["nodes"].items():
        x, y = pos["nodes"][nid]
        ax.text(x, y, label(n), ha="center", va="center", fontsize=7, zorder=2,
                bbox=dict(boxstyle="round", fc=COLORS.get(n["kind"], "white"), ec="black" if n["up"] else "red"))
    xs = [p[0] for p in pos["nodes"].values()] + [x for b in pos["boxes"].values() for x in (b[0], b[2])]
    ax.set_xlim(min(xs + [0]) - 0.3, max(xs + [1]) + 0.3)
    ax.set_ylim(-0.7, 2.7)
    if title:
        ax.set_title(title, fontsize=10)


def figure(g: dict, title: str = ""):
    """A new matplotlib figure of the graph, sized to it."""
    import matplotlib.pyplot as plt
    pos = layout(g)
    xs = [p[0] for p in pos["nodes"].values()] or [0]
    fig, ax = plt.subplots(figsize=(min(16.0, max(6.0, 1.6 * (max(xs) - min(xs) + 2))), 3.4))
    draw(ax, g, pos, title)
    fig.tight_layout()
    return fig


def png(g: dict, title: str = "") -> bytes:
    """The picture as PNG bytes (the figure is closed: nothing is left for pyplot to show)."""
    import io

    import matplotlib.pyplot as plt
    fig = figure(g, title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


class LiveView:
    """One ipywidgets Output that always shows the latest picture: `view.update(g, title)`.

    The picture is put into the widget's `outputs` directly (a widget state update), not with
    display() inside `with widget:`: so it never lands in the output of the cell that calls
    update(), where a front end without widgets (nbval, nbconvert) would put it."""

    def __init__(self):
        import ipywidgets
        self.widget = ipywidgets.Output()
        self.updates = 0

    def update(self, g: dict, title: str = "") -> None:
        import base64
        data = base64.b64encode(png(g, title)).decode()
        self.widget.outputs = ({"output_type": "display_data", "metadata": {},
                                "data": {"image/png": data, "text/plain": f"<network picture: {title}>"}},)
        self.updates += 1
