"""Which platform this machine is, in the words of image manifests: os/architecture/variant.

The kernel says `uname -m` (x86_64, aarch64, armv7l); images and registries say Go's GOARCH
(amd64, arm64, arm + variant v7). One table, used wherever an image is made or chosen:
the offline busybox image, `import`, `commit`, builds, and pulls from a multi-arch index.
"""
from __future__ import annotations

import os

# uname -m -> (GOARCH, variant)
MACHINES = {
    "x86_64": ("amd64", ""), "amd64": ("amd64", ""),
    "aarch64": ("arm64", "v8"), "arm64": ("arm64", "v8"),
    "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"),
    "i686": ("386", ""), "i386": ("386", ""),
    "ppc64le": ("ppc64le", ""), "s390x": ("s390x", ""), "riscv64": ("riscv64", ""),
}


def host_platform(machine: str | None = None) -> dict:
    """{"os": "linux", "architecture": "arm64", "variant": "v8"} (no variant key where none applies)."""
    machine = machine or os.uname().machine
    arch, variant = MACHINES.get(machine, (machine, ""))
    return {"os": "linux", "architecture": arch, **({"variant": variant} if variant else {})}


def host_architecture(machine: str | None = None) -> str:
    """The image config's `architecture`: amd64, arm64, arm, ..."""
    return host_platform(machine)["architecture"]


def platform_string(p: dict) -> str:
    """"linux/amd64", "linux/arm/v7"; arm64's default variant v8 is left out, as Docker prints it."""
    parts = [p["os"], p["architecture"]]
    if p.get("variant") and (p["architecture"], p["variant"]) != ("arm64", "v8"):
        parts.append(p["variant"])
    return "/".join(parts)
