"""lab/netgraph.py: the network picture of notebook 06, from sample data (no root, no kernel)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from minidocker.lab import netgraph  # noqa: E402


def link(name, index, kind, master=None, peer=None, other_ns=False, addrs=(), up=True):
    return {"name": name, "index": index, "kind": kind, "master": master, "link": peer,
            "link_netnsid": 0 if other_ns else None, "up": up, "addrs": list(addrs)}


def sample():
    """A host with its own eth0, another program's bridge, our bridge nb06-br with two
    namespaces on it (the same ifindex 2 in both: indexes are per namespace), a veth pair
    inside the host, and a namespace with only lo."""
    host = [link("lo", 1, "loopback"), link("eth0", 2, "device", addrs=["192.0.2.5/24"]),
            link("docker0", 3, "bridge", addrs=["172.17.0.1/16"]),
            link("nb06-br", 10, "bridge", addrs=["10.206.0.1/24"]),
            link("nb06-va", 11, "veth", master=10, peer=2, other_ns=True),
            link("nb06-vb", 12, "veth", master=10, peer=2, other_ns=True),
            link("vethx", 13, "veth", master=3, peer=5, other_ns=True),       # someone else's container
            link("nb06-p", 20, "veth", peer=21), link("nb06-q", 21, "veth", peer=20)]
    a = [link("lo", 1, "loopback", addrs=["127.0.0.1/8"]),
         link("eth0", 2, "veth", peer=11, other_ns=True, addrs=["10.206.0.2/24"])]
    b = [link("lo", 1, "loopback", addrs=["127.0.0.1/8"]),
         link("eth0", 2, "veth", peer=12, other_ns=True, addrs=["10.206.0.3/24"])]
    lonely = [link("lo", 1, "loopback", up=False)]
    return {"namespaces": [{"name": "nb06-b", "inode": 3, "links": b},
                           {"name": "host", "inode": 1, "links": host},
                           {"name": "nb06-a", "inode": 2, "links": a},
                           {"name": "none-box", "inode": 4, "links": lonely}]}


def test_veth_pairs_match_each_other_across_and_within_namespaces():
    pairs = {frozenset(p) for p in netgraph.veth_pairs(sample())}
    assert frozenset({("host", "nb06-va"), ("nb06-a", "eth0")}) in pairs
    assert frozenset({("host", "nb06-vb"), ("nb06-b", "eth0")}) in pairs   # not nb06-a's eth0 (same index 2)
    assert frozenset({("host", "nb06-p"), ("host", "nb06-q")}) in pairs      # both ends in one namespace
    assert len(pairs) == 3                                                   # vethx's peer is not in the snapshot


def test_graph_keeps_our_host_links_and_whole_namespaces():
    g = netgraph.graph(sample(), host_prefixes=("nb06-",))
    host = {n["name"] for n in g["nodes"].values() if n["ns"] == "host"}
    assert host == {"nb06-br", "nb06-va", "nb06-vb", "nb06-p", "nb06-q"}     # not eth0, docker0, vethx, lo
    assert g["namespaces"][0] == "host" and set(g["namespaces"]) == {"host", "nb06-a", "nb06-b", "none-box"}
    assert ("host/nb06-va", "host/nb06-br", "port") in g["edges"]
    cables = {frozenset((a, b)) for a, b, kind in g["edges"] if kind == "veth"}
    assert frozenset(("nb06-a/eth0", "host/nb06-va")) in cables
    assert g["nodes"]["nb06-a/eth0"]["addrs"] == ["10.206.0.2/24"]
    assert "none-box/lo" in g["nodes"] and not g["nodes"]["none-box/lo"]["up"]   # lo alone is drawn
    assert "nb06-a/lo" not in g["nodes"]                                       # beside eth0 it is not
    assert netgraph.summary(g)[0].startswith("cable")


def test_graph_keeps_a_host_end_whose_peer_is_in_a_drawn_namespace():
    g = netgraph.graph(sample(), host_prefixes=("md",))       # e.g. minidocker's bridge: none here
    assert "host/nb06-va" in g["nodes"]                        # its peer (nb06-a's eth0) is drawn
    assert "host/nb06-p" not in g["nodes"]                     # a host-only pair that is not ours


def test_shared_namespaces_are_one_box():
    snap = sample()
    snap["namespaces"].append({"name": "web + sidecar", "inode": 9, "links": [link("lo", 1, "loopback")]})
    g = netgraph.graph(snap, host_prefixes=("nb06-",))
    assert "web + sidecar" in g["namespaces"]


def test_layout_puts_host_ends_above_their_peers_and_bridges_above_ports():
    g = netgraph.graph(sample(), host_prefixes=("nb06-",))
    pos = netgraph.layout(g)
    p = pos["nodes"]
    assert set(p) == set(g["nodes"])
    assert p["host/nb06-va"] == (p["nb06-a/eth0"][0], 1.0)
    assert p["host/nb06-vb"][0] == p["nb06-b/eth0"][0]
    assert p["host/nb06-br"] == ((p["host/nb06-va"][0] + p["host/nb06-vb"][0]) / 2, 2.0)
    assert all(y == 0.0 for i, (x, y) in p.items() if not i.startswith("host/"))
    xs = [p[i][0] for i in p if not i.startswith("host/")]
    assert len(xs) == len(set(xs))                                           # no two interfaces on top of each other
    for ns, (x0, y0, x1, y1) in pos["boxes"].items():
        inside = [p[i] for i, n in g["nodes"].items() if n["ns"] == ns]
        assert all(x0 <= x <= x1 and y0 <= y <= y1 for x, y in inside), ns
    # namespaces on nb06-br come before the one with no cable
    order = sorted((b[0], ns) for ns, b in pos["boxes"].items() if ns != "host")
    assert [ns for _, ns in order][-1] == "none-box"


def test_draw_and_label():
    import matplotlib.pyplot as plt
    g = netgraph.graph(sample(), host_prefixes=("nb06-",))
    fig = netgraph.figure(g, "sample")
    assert fig.axes[0].get_title() == "sample"
    plt.close(fig)
    assert netgraph.png(g, "sample").startswith(b"\x89PNG")
    assert netgraph.label(g["nodes"]["nb06-a/eth0"]) == "eth0  (veth)\n10.206.0.2/24"
    assert netgraph.label(g["nodes"]["none-box/lo"]).endswith("(down)")


def test_empty_snapshot():
    g = netgraph.graph({"namespaces": [{"name": "host", "inode": 1, "links": []}]})
    assert g["nodes"] == {} and g["edges"] == []
    assert netgraph.layout(g)["boxes"]["host"]


def test_live_view_updates_the_widget_state_only():
    ipywidgets = __import__("pytest").importorskip("ipywidgets")
    view = netgraph.LiveView()
    assert isinstance(view.widget, ipywidgets.Output)
    view.update(netgraph.graph(sample(), host_prefixes=("nb06-",)), "step 1")
    (out,) = view.widget.outputs
    assert out["data"]["text/plain"] == "<network picture: step 1>" and view.updates == 1
