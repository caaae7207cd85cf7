"""How the docker CLI prints things: aligned tables, sizes, durations, truncated commands.

Pure functions, unit-tested without root.
"""
from __future__ import annotations

import json
import time


def tabwrite(rows: list[list[str]], minwidth: int = 10, padding: int = 3) -> str:
    """Go's text/tabwriter as docker configures it (minwidth 10, padding 3, spaces).

    Every cell but the last of a row is padded to its column's width
    (the widest cell + 3, at least 10); the last cell is printed as is.
    """
    if not rows:
        return ""
    ncols = max(len(r) for r in rows)
    widths = [0] * ncols
    for r in rows:
        for i, cell in enumerate(r[:-1]):
            widths[i] = max(widths[i], len(cell) + padding, minwidth)
    out = []
    for r in rows:
        line = "".join(cell.ljust(widths[i]) for i, cell in enumerate(r[:-1])) + (r[-1] if r else "")
        out.append(line)
    return "\n".join(out) + "\n"


def human_size(size: float, precision: int = 3) -> str:
    """go-units HumanSizeWithPrecision: decimal units, %.3g (docker images' SIZE)."""
    units = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000.0
        i += 1
    return f"{size:.{precision}g}{units[i]}"


def bytes_size(size: float) -> str:
    """go-units BytesSize: binary units, %.4g (docker stats' memory columns)."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]
    i = 0
    while size >= 1024 and i < len(units) - 1:
        size /= 1024.0
        i += 1
    return f"{size:.4g}{units[i]}"


def ellipsis(s: str, max_len: int) -> str:
    """docker's stringutils.Ellipsis: cut to max_len characters, the last one being '…'."""
    if len(s) <= max_len:
        return s
    if max_len < 3:
        return s[:max_len]
    return s[:max_len - 1] + "…"


def go_quote(s: str) -> str:
    """strconv.Quote, close enough for command lines: JSON string escaping without \\u00xx for
    printable non-ASCII characters."""
    return json.dumps(s, ensure_ascii=False)


def since(ts: float | None, now: float | None = None) -> str:
    from ...gotime import human_duration
    if ts is None:
        return ""
    now = time.time() if now is None else now
    return human_duration(max(0.0, now - ts)) + " ago"


def json_indent(obj) -> str:
    """`docker inspect` prints JSON indented by 4 spaces, with Go's HTML-safe escapes."""
    text = json.dumps(obj, indent=4, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def api_ports(ports: dict | None) -> list[dict]:
    """NetworkSettings.Ports -> the `Ports` list of GET /containers/json (moby daemon/list.go):
    an unpublished port once, a published one once per host binding."""
    out = []
    for key, bindings in (ports or {}).items():
        port, _, proto = key.partition("/")
        if not bindings:
            out.append({"PrivatePort": int(port), "Type": proto or "tcp"})
            continue
        for b in bindings:
            out.append({"IP": b.get("HostIp") or "0.0.0.0", "PrivatePort": int(port),
                        "PublicPort": int(b.get("HostPort") or 0), "Type": proto or "tcp"})
    return out


def displayable_ports(ports: list[dict]) -> str:
    """The PORTS column of `docker ps` (docker/cli formatter.DisplayablePorts): consecutive ports
    grouped ("8000-8002/tcp"), published ones as "127.0.0.1:8080->80/tcp"."""
    def order(p):
        return (p["PrivatePort"], p.get("IP", ""), p.get("PublicPort", 0), p["Type"])

    def group(key: str, first: int, last: int) -> str:
        ip, _, kind = key.rpartition("/")
        text = str(first) if first == last else f"{first}-{last}"
        if ip:
            text = f"{ip}:{text}->{text}"
        return f"{text}/{kind}"
    groups: dict[str, list[int]] = {}
    result, mappings = [], []
    for p in sorted(ports, key=order):
        current, key = p["PrivatePort"], p["Type"]
        if p.get("IP"):
            if p.get("PublicPort") != current:
                host = f"[{p['IP']}]" if ":" in p["IP"] else p["IP"]
                mappings.append(f"{host}:{p['PublicPort']}->{current}/{p['Type']}")
                continue
            key = f"{p['IP']}/{p['Type']}"
        g = groups.get(key)
        if g is None:
            groups[key] = [current, current]
        elif current == g[1] + 1:
            g[1] = current
        else:
            result.append(group(key, *g))
            groups[key] = [current, current]
    result += [group(key, *g) for key, g in groups.items()]
    return ", ".join(result + mappings)
