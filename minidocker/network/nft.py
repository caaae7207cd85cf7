"""The kernel's own firewall and NAT, nftables, through libnftables (ctypes).

`nft` the command is a thin wrapper around the library libnftables.so.1: it takes the same
text ("add rule ip minidocker postrouting ... masquerade") and turns it into netlink
messages for the kernel. We call the library directly, as we call libc for mount(2):
no shell, and one call can apply a whole ruleset atomically (all or nothing).
"""
from __future__ import annotations

import ctypes
import json

from ..errors import MinidockerError
from .delegate import delegable  # (a monitor's start: done by its netlink helper)

NFT_CTX_OUTPUT_HANDLE = 1 << 3
NFT_CTX_OUTPUT_JSON = 1 << 4


class NftError(MinidockerError):
    exit_code = 125


_lib = None


def _load():
    global _lib
    if _lib is None:
        # the soname first: ctypes.util.find_library runs `ldconfig -p` (~10 ms)
        try:
            lib = ctypes.CDLL("libnftables.so.1")
        except OSError:
            from ctypes.util import find_library
            try:
                lib = ctypes.CDLL(find_library("nftables") or "libnftables.so")
            except OSError:
                raise NftError("libnftables is not installed: apt-get install nftables") from None
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        _lib = lib
    return _lib


@delegable
def run(commands: str, json_output: bool = False) -> str:
    """Run nft commands (the text you would give `nft -f`); return what nft prints."""
    lib = _load()
    ctx = lib.nft_ctx_new(0)
    try:
        lib.nft_ctx_buffer_output(ctx)
        lib.nft_ctx_buffer_error(ctx)
        if json_output:
            lib.nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE)
        rc = lib.nft_run_cmd_from_buffer(ctx, commands.encode())
        out = (lib.nft_ctx_get_output_buffer(ctx) or b"").decode()
        err = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode()
        if rc != 0:
            first = next((ln for ln in err.splitlines() if ln.strip()), "unknown error")
            raise NftError(f"nftables: {first}")
        return out
    finally:
        lib.nft_ctx_free(ctx)


@delegable
def list_json(what: str) -> list[dict]:
    """`nft -j list <what>` as Python objects (the "nftables" array); [] if it does not exist."""
    try:
        return json.loads(run(f"list {what}", json_output=True) or "{}").get("nftables", [])
    except NftError:
        return []


@delegable
def list_table(family: str, name: str) -> str:
    """`nft list table <family> <name>`; "" if there is no such table."""
    try:
        return run(f"list table {family} {name}")
    except NftError:
        return ""


@delegable
def table_exists(family: str, name: str) -> bool:
    return any("table" in o for o in list_json(f"table {family} {name}"))
