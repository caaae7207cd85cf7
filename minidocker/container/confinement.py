"""The flags that change a container's confinement, as Docker reads them (pure).

    --cap-add / --cap-drop NAME   capabilities added to / taken from Docker's 14 (NAME with or
                                  without CAP_, any case, or ALL)
    --privileged                  every capability, no seccomp, nothing masked or read-only
    --security-opt seccomp=unconfined | seccomp=<profile.json>
    --security-opt no-new-privileges[=true|false]
    --security-opt apparmor=unconfined | apparmor=<loaded profile>   (hosts with AppArmor only;
                                  elsewhere accepted and ignored, as dockerd does)
    --read-only                   the root filesystem mounted read-only

The docker CLI reads a seccomp profile file itself and sends its JSON in SecurityOpt
("seccomp={...}"); the daemon checks SecurityOpt and the capability names at create, and
turns them into the OCI spec (capability sets, linux.seccomp, process.noNewPrivileges,
process.apparmorProfile) at start. engine/oci.py calls capabilities(), seccomp_spec() and
apparmor_spec(). Taught in notebook 10.
"""
from __future__ import annotations

import json

from ..core import apparmor, seccomp, security
from ..errors import InvalidArgument, MinidockerError

ALL = "ALL"


def known_caps(last_cap: int | None = None) -> list[str]:
    """CAP_ names this kernel knows (moby lists only capabilities up to cap_last_cap)."""
    names = security.CAPABILITIES if last_cap is None else security.CAPABILITIES[:last_cap + 1]
    return [f"CAP_{n}" for n in names]


def normalize_caps(caps: list[str], valid: list[str]) -> list[str]:
    """moby's NormalizeLegacyCapabilities: upper case, CAP_ prefix added, ALL kept."""
    out = []
    for c in caps:
        c = c.upper()
        if c != ALL and not c.startswith("CAP_"):
            c = "CAP_" + c
        if c != ALL and c not in valid:
            raise MinidockerError(f'unknown capability: "{c}"')
        out.append(c)
    return out


def capabilities(default: list[str], add: list[str], drop: list[str], privileged: bool,
                 valid: list[str]) -> list[str]:
    """moby's TweakCapabilities: the container's capability set."""
    if privileged:
        return list(valid)
    if not add and not drop:
        return list(default)
    drop, add = normalize_caps(drop, valid), normalize_caps(add, valid)
    if ALL in add:
        return [c for c in valid if c not in drop]
    if ALL in drop:
        return [c for c in add if c != ALL]
    caps = [c for c in default if c not in drop]
    return caps + [c for c in add if c not in caps]


def check_caps(host: dict, valid: list[str]) -> None:
    """At create: unknown names are refused ("invalid CapAdd: unknown capability: ...")."""
    for key in ("CapAdd", "CapDrop"):
        try:
            normalize_caps(list(host.get(key) or []), valid)
        except MinidockerError as e:
            raise MinidockerError(f"invalid {key}: {e}") from None


# ---------------------------------------------------------------- --security-opt
def cli_security_opts(opts: list[str], read_file=None) -> list[str]:
    """What the docker CLI sends for --security-opt: a seccomp profile file is read and its
    JSON compacted into the option ("seccomp={...}"). `read_file(path) -> str`."""
    out = []
    for opt in opts:
        key, sep, value = opt.partition("=")
        if key == "seccomp" and sep and value != "unconfined":
            try:
                text = read_file(value) if read_file else open(value).read()
            except OSError as e:
                raise InvalidArgument(f"opening seccomp profile ({value}) failed: open {value}: "
                                      f"{(e.strerror or str(e)).lower()}") from None
            try:
                compact = json.dumps(json.loads(text), separators=(",", ":"))
            except ValueError as e:
                raise InvalidArgument(f"compacting json for seccomp profile ({value}) failed: {e}") from None
            opt = f"seccomp={compact}"
        out.append(opt)
    return out


def parse_security_opts(opts: list[str]) -> dict:
    """The daemon's parseSecurityOpt, at create: {"seccomp": None|"unconfined"|<json>,
    "no_new_privileges": bool, "apparmor": str|None, "label": [...]}."""
    parsed = {"seccomp": None, "no_new_privileges": False, "apparmor": None, "label": []}
    for opt in opts:
        if opt == "no-new-privileges":
            parsed["no_new_privileges"] = True
            continue
        if opt == "disable":
            parsed["label"].append("disable")
            continue
        if "=" in opt:
            key, value = opt.split("=", 1)
        elif ":" in opt:
            key, value = opt.split(":", 1)
        else:
            raise MinidockerError(f'invalid --security-opt 1: "{opt}"')
        if key == "label":
            parsed["label"].append(value)
        elif key == "apparmor":
            parsed["apparmor"] = value
        elif key == "seccomp":
            parsed["seccomp"] = value
        elif key == "no-new-privileges":
            if value.lower() not in ("1", "t", "true", "0", "f", "false"):
                raise MinidockerError(f'invalid --security-opt 2: "{opt}"')
            parsed["no_new_privileges"] = value.lower() in ("1", "t", "true")
        else:
            raise MinidockerError(f'invalid --security-opt 2: "{opt}"')
    if parsed["seccomp"] not in (None, "unconfined"):
        check_profile(parsed["seccomp"])
    return parsed


def check_profile(text: str) -> None:
    """Refuse a profile runc could not load, at create rather than at start."""
    try:
        spec = seccomp.resolve(seccomp.load_profile_text(text), [])
        if spec is not None:
            seccomp.action_value(spec["defaultAction"], spec.get("defaultErrnoRet"))
            for call in spec["syscalls"]:
                seccomp.action_value(call["action"], call.get("errnoRet"))
                for arg in call.get("args") or []:
                    if arg.get("op") not in seccomp.OPS:
                        raise seccomp.ProfileError(f"unknown seccomp comparison {arg.get('op')!r}")
    except seccomp.ProfileError as e:
        raise MinidockerError(str(e)) from None


def seccomp_spec(host: dict, caps: list[str], profile: dict | None = None) -> dict | None:
    """The OCI linux.seccomp for a container (moby's WithSeccomp): none for --privileged or
    seccomp=unconfined, the given profile, else Docker's default; resolved against `caps`."""
    opts = parse_security_opts(list(host.get("SecurityOpt") or []))
    if host.get("Privileged") or opts["seccomp"] == "unconfined":
        return None
    if opts["seccomp"]:
        chosen = seccomp.load_profile_text(opts["seccomp"])
    else:
        chosen = profile or seccomp.default_profile()
    try:
        return seccomp.resolve(chosen, caps)
    except seccomp.ProfileError as e:
        raise MinidockerError(str(e)) from None


# ---------------------------------------------------------------- AppArmor (core/apparmor.py)
def apparmor_spec(host: dict, enabled: bool) -> str | None:
    """The OCI process.apparmorProfile (moby's WithApparmor): on a host with AppArmor the given
    profile (even with --privileged, as in Docker), none for unconfined or --privileged, else
    our default; on a host without AppArmor none at all (the option is accepted and ignored)."""
    if not enabled:
        return None
    given = parse_security_opts(list(host.get("SecurityOpt") or []))["apparmor"]
    if given == apparmor.UNCONFINED or (not given and host.get("Privileged")):
        return None
    return given or apparmor.DEFAULT


def apparmor_profile(host: dict, enabled: bool) -> str:
    """What `docker inspect` shows as AppArmorProfile once the container has started (moby's
    saveAppArmorConfig): "" on a host without AppArmor, "unconfined" for --privileged, else
    the given profile or the default. (Before the first start: the given one, or "".)"""
    if not enabled:
        return ""
    if host.get("Privileged"):
        return apparmor.UNCONFINED
    return parse_security_opts(list(host.get("SecurityOpt") or []))["apparmor"] or apparmor.DEFAULT
