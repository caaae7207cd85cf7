"""What Docker takes away from a container's root user, by default.

Root inside a container is still uid 0 on the host (without a user namespace). Two
defences keep it from owning the host:

1. Capabilities. Root's power is split into ~40 capabilities. Docker keeps 14 and drops
   the rest, e.g. CAP_SYS_ADMIN (mount, most of the dangerous things), CAP_SYS_MODULE
   (load kernel modules), CAP_NET_ADMIN (reconfigure the network), CAP_SYS_PTRACE.
2. Masked and read-only paths. /proc exposes kernel knobs (/proc/sys, /proc/sysrq-trigger)
   and secrets (/proc/kcore is the kernel's memory). Docker hides some and makes others
   read-only.

Pure data plus small helpers; rootfs.py and init.py apply them inside the container.
Taught in notebooks 01 (capabilities) and 02 (masked paths).
"""
from __future__ import annotations

CAPABILITIES = [
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
]  # index in this list == capability number (linux/capability.h)

# Docker's (and podman's) default set (moby oci/caps/defaults.go).
DEFAULT_CAPS = ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID",
                "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL",
                "AUDIT_WRITE"]

# moby oci/defaults.go
MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def cap_number(name: str) -> int:
    return CAPABILITIES.index(name.upper().removeprefix("CAP_"))


def cap_mask(names: list[str]) -> int:
    mask = 0
    for n in names:
        mask |= 1 << cap_number(n)
    return mask


def cap_names(mask: int) -> list[str]:
    """Decode a mask such as CapEff from /proc/<pid>/status into names."""
    return [f"CAP_{n}" for i, n in enumerate(CAPABILITIES) if mask >> i & 1]
