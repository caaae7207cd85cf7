"""NAT and forwarding rules: how containers reach out, and how `-p 8080:80` reaches in.

Docker writes iptables rules; we write the same rules in nftables, the kernel's current
firewall, one table per state root, and always *the whole table at once* from the
current state (networks + running containers' published ports). Removing everything we
did is then one command: `delete table ip minidocker`.

    table ip minidocker {
      comment "rules sha256:..."                                      # its chains' digest
      chain prerouting  { nat, before routing:  local destination?  -> jump publish }
      chain output      { nat, for the host's own packets (so 127.0.0.1:8080 works too) }
      chain publish     { tcp dport 8080 dnat to 172.18.0.2:80 }         # one per -p
      chain postrouting { ip saddr 172.18.0.0/16 oifname != "minidocker0" masquerade  # going out
                          oifname "minidocker0" ip saddr 127.0.0.0/8 masquerade       # from 127.0.0.1
                          oifname "minidocker0" ip saddr 172.18.0.0/16 ct status dnat masquerade }
                                                                    # container -> host:port -> container
      chain forward     { iifname "md-a" oifname { "md-b" } drop }        # networks isolated
      chain guard       { raw, first of all: iifname "minidocker0" ip daddr 127.0.0.0/8 drop }
    }

Why 127.0.0.1 works without a proxy process: Docker either runs docker-proxy (a userland
copy loop per port) or sets `route_localnet=1` on the bridge, which lets the kernel route a
packet whose source is 127.0.0.1 out of it; the masquerade rule then gives it the bridge's
address so the container can answer. minidocker does the second: the kernel does all of it.
But route_localnet also lets a *container* send a packet to 127.0.0.1 through the bridge and
reach the host's services bound to localhost only (a database, a Jupyter server): the `guard`
chain drops anything arriving from a bridge for 127.0.0.0/8 before routing (what Docker and
kube-proxy added after the same finding). Replies to published-port traffic are unaffected:
the masquerade gave them the bridge's address, not 127.0.0.1.

Pure functions: the text is unit-tested; nft.py applies it.
"""
from __future__ import annotations

import ipaddress

from ..paths import sha256_hex


def table_name(tag: str) -> str:
    return "minidocker" if not tag else f"minidocker_{tag}"


def render(table: str, networks: list[dict], published: list[dict]) -> str:
    """nft commands that replace `table` atomically with the rules for this state.

    networks:  [{"bridge": "minidocker0", "subnet": "172.18.0.0/16"}]
    published: [{"proto": "tcp", "host_ip": "" or "127.0.0.1", "host_port": 8080,
                 "ip": "172.18.0.2", "port": 80, "bridge": "minidocker0", "cid": "..."}]
    """
    lines = [
        "  chain prerouting { type nat hook prerouting priority dstnat; policy accept;",
        "    fib daddr type local jump publish",
        "  }",
        "  chain output { type nat hook output priority -100; policy accept;",
        "    fib daddr type local jump publish",
        "  }",
        "  chain publish {",
    ]
    for p in published:
        match = f"ip daddr {p['host_ip']} " if p.get("host_ip") not in (None, "", "0.0.0.0") else ""
        lines.append(f"    {match}{p['proto']} dport {int(p['host_port'])} dnat to "
                     f"{p['ip']}:{int(p['port'])} comment \"{p['cid'][:12]}\"")
    lines.append("  }")
    lines.append("  chain postrouting { type nat hook postrouting priority srcnat; policy accept;")
    for n in networks:
        subnet = str(ipaddress.ip_network(n["subnet"], strict=False))
        lines.append(f"    ip saddr {subnet} oifname != \"{n['bridge']}\" masquerade")
        lines.append(f"    oifname \"{n['bridge']}\" ip saddr 127.0.0.0/8 masquerade")
        # A container reaching a published port through the host's address (hairpin): the
        # dnat sends it back out of the bridge, and the answer would go straight back from
        # container to container, past the host's NAT, unless the kernel's br_netfilter made
        # bridged packets pass through it (dockerd loads that module; a fresh VM has it not).
        # Masqueraded, it is answered to the host, which un-NATs it: the source address Docker's
        # default userland proxy gives too.
        lines.append(f"    oifname \"{n['bridge']}\" ip saddr {subnet} ct status dnat masquerade")
    for p in published:  # a container reaching its own published port through the host
        lines.append(f"    ip saddr {p['ip']} ip daddr {p['ip']} {p['proto']} dport {int(p['port'])} masquerade")
    lines.append("  }")
    lines.append("  chain guard { type filter hook prerouting priority raw; policy accept;")
    for n in networks:
        lines.append(f"    iifname \"{n['bridge']}\" ip daddr 127.0.0.0/8 drop")
    lines.append("  }")
    lines.append("  chain forward { type filter hook forward priority filter; policy accept;")
    bridges = [n["bridge"] for n in networks]
    for b in bridges:
        others = [o for o in bridges if o != b]
        if others:
            lines.append(f"    iifname \"{b}\" oifname {{ {', '.join(chr(34) + o + chr(34) for o in others)} }} drop")
    lines.append("  }")
    chains = "\n".join(lines)
    # The table carries a digest of its chains as its comment: a sync that would write the
    # same rules again finds them in the kernel (same_rules) and writes nothing; applying a
    # table costs ~20 ms, listing one ~1 ms, and most starts and exits change no rule.
    return "\n".join([f"table ip {table} {{", "}", f"delete table ip {table}", f"table ip {table} {{",
                      f'  comment "{_digest(chains)}"', chains, "}"]) + "\n"


def _digest(text: str) -> str:
    return "rules sha256:" + sha256_hex(text.encode())[:32]


def same_rules(listing: str, text: str) -> bool:
    """Does `listing` (what `nft list table` prints of the table now) carry the comment of
    `text` (render's), i.e. does the kernel hold exactly the rules `text` would write?"""
    comment = next((ln.strip() for ln in text.splitlines() if ln.strip().startswith('comment "rules ')), None)
    return comment is not None and any(ln.strip() == comment for ln in listing.splitlines())


def coexist_rules(chain_spec: str, bridges: list[str], comment: str) -> str:
    """Rules for another firewall's forward chain that drops by default (dockerd sets the
    iptables FORWARD policy to DROP): let our bridges' traffic through."""
    out = []
    for b in bridges:
        out.append(f"insert rule {chain_spec} iifname \"{b}\" accept comment \"{comment}\"")
        out.append(f"insert rule {chain_spec} oifname \"{b}\" accept comment \"{comment}\"")
    return "\n".join(out) + ("\n" if out else "")
