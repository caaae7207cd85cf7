"""Which process does a start's netlink work: this one, or the monitor's netlink helper.

A function of network/bridge.py or network/nft.py marked @delegable runs here, unless this
process has said use(helper): then it is sent to that helper (network/netlink_helper.py) and
its answer (or its error) comes back. Only the monitor says so, for the moment it plugs a
container in; everyone else (the CLI's `network connect`, a notebook) calls pyroute2 itself.
"""
from __future__ import annotations

# what a start needs: the functions marked @delegable in these modules
CALLS = ("bridge.ensure_bridge", "bridge.plug_container", "nft.run", "nft.list_json", "nft.list_table",
         "nft.table_exists")

_current = None  # the helper this process's @delegable calls go to (set by the monitor: use())


def use(helper) -> None:
    """`helper`: a netlink_helper.NetlinkHelper, or None (back to doing it here)."""
    global _current
    _current = helper


def delegable(fn):
    """Run `fn` in the helper when this process has one (the monitor during a start)."""
    import functools
    name = f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}"
    assert name in CALLS, name

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _current is not None:
            return _current.call(name, *args, **kwargs)
        return fn(*args, **kwargs)
    return wrapper
