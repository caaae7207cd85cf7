"""What to run: the container's argv, environment and user, decided the way Docker does.

All pure functions (no I/O): the rules are unit-tested without root.

ENTRYPOINT / CMD (moby daemon/commit.go + runconfig):
    argv = Entrypoint + Cmd
    `docker run IMAGE args...`        replaces the image's Cmd, keeps its Entrypoint
    `docker run --entrypoint X IMAGE` Entrypoint = [X], and the image's Cmd is dropped
    `--entrypoint ""`                 no Entrypoint at all (and the image's Cmd is dropped)
    neither Entrypoint nor Cmd        error "no command specified"
A shell-form `ENTRYPOINT ls -l` is stored as ["/bin/sh", "-c", "ls -l"]: with it, Cmd
ends up as extra arguments to `sh -c`, which ignores them. That is why shell-form
ENTRYPOINT "ignores CMD".
"""
from __future__ import annotations

import re
import signal as _signal

from ..errors import InvalidArgument, MinidockerError

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


# ---------------------------------------------------------------- ENTRYPOINT / CMD
def merge_command(image_config: dict, args: list[str] | None,
                  entrypoint: str | list[str] | None) -> tuple[list[str] | None, list[str] | None]:
    """The container's (Entrypoint, Cmd) after `docker run [--entrypoint E] IMAGE [args]`.

    `entrypoint` is None when --entrypoint was not given, "" to reset it; the Engine API
    gives a list ([] or [""] reset it, as dockerd reads them).
    """
    ep = image_config.get("Entrypoint") or None
    cmd = image_config.get("Cmd") or None
    if isinstance(entrypoint, list):
        entrypoint = entrypoint if entrypoint not in ([], [""]) else ""
    if entrypoint is not None:
        ep = (list(entrypoint) if isinstance(entrypoint, list) else [entrypoint]) if entrypoint != "" else None
        cmd = None  # a new entrypoint drops the image's default arguments
    if args:
        cmd = list(args)
    return (list(ep) if ep else None), (list(cmd) if cmd else None)


def argv(entrypoint: list[str] | None, cmd: list[str] | None) -> list[str]:
    full = (entrypoint or []) + (cmd or [])
    if not full:
        raise InvalidArgument("no command specified")
    return full


# ---------------------------------------------------------------- environment
def _key(kv: str) -> str:
    return kv.split("=", 1)[0]


def replace_or_append(base: list[str], overrides: list[str]) -> list[str]:
    """moby's ReplaceOrAppendEnvValues: later values win, order of first appearance kept.
    A bare `KEY` (no '=') in overrides removes KEY."""
    out = list(base)
    for kv in overrides:
        k = _key(kv)
        idx = next((i for i, e in enumerate(out) if _key(e) == k), None)
        if "=" not in kv:
            if idx is not None:
                out.pop(idx)
            continue
        if idx is None:
            out.append(kv)
        else:
            out[idx] = kv
    return out


def container_env(image_env: list[str], user_env: list[str]) -> list[str]:
    """Config.Env as stored for the container: the image's Env updated by -e / --env-file."""
    return replace_or_append(list(image_env or []), list(user_env or []))


def process_env(config_env: list[str], hostname: str, tty: bool, home: str | None = None) -> list[str]:
    """The environment for config.json (moby CreateDaemonEnvironment). HOME is added by the
    low-level runtime (runc, core/init.py) from the container's /etc/passwd unless set here."""
    env = [f"PATH={DEFAULT_PATH}", f"HOSTNAME={hostname}"]
    if tty:
        env.append("TERM=xterm")
    env = replace_or_append(env, config_env)
    if home is not None and not any(_key(e) == "HOME" for e in env):
        env.append(f"HOME={home}")
    return env


def parse_env_opt(value: str, host_env: dict[str, str]) -> str | None:
    """`-e KEY=VAL` as is; `-e KEY` takes KEY from the caller's environment, or is dropped."""
    k, sep, _ = value.partition("=")
    if not k:
        raise InvalidArgument(f"invalid environment variable: {value}")
    if sep:
        return value
    return f"{k}={host_env[k]}" if k in host_env else None


ENV_FILE_MAX_LINE = 64 * 1024 - 1   # bufio.Scanner's token limit, which docker's reader has


def read_env_file(path: str, host_env: dict[str, str]) -> list[str]:
    """Read and parse an --env-file, as docker/cli does: line by line, a line longer than
    64 KiB is refused ("bufio.Scanner: token too long"), so /dev/zero or a huge binary
    file is one clear error, not an endless read. Errors say what docker says."""
    import errno
    text_lines = []
    try:
        with open(path, "rb") as f:
            while True:
                line = f.readline(ENV_FILE_MAX_LINE + 2)
                if not line:
                    break
                body = line[:-1] if line.endswith(b"\n") else line
                if len(body) > ENV_FILE_MAX_LINE:
                    raise InvalidArgument("bufio.Scanner: token too long")
                try:  # checked line by line, as docker does: /dev/urandom fails at once
                    text_lines.append(body.decode("utf-8"))
                except UnicodeDecodeError:
                    raise InvalidArgument(f"env file {path} contains invalid utf8 bytes at line "
                                          f"{len(text_lines) + 1}") from None
    except OSError as e:
        reason = {errno.ENOENT: "no such file or directory", errno.EISDIR: "is a directory",
                  errno.EACCES: "permission denied"}.get(e.errno, (e.strerror or str(e)).lower())
        verb = "read" if e.errno == errno.EISDIR else "open"
        raise InvalidArgument(f"{verb} {path}: {reason}") from None
    try:
        return parse_env_file("\n".join(text_lines), host_env, path)
    except InvalidArgument as e:
        raise InvalidArgument(f"poorly formatted environment: {e}") from None


def parse_label(value: str) -> tuple[str, str]:
    """`-l/--label key=value` (or `key` alone: an empty value), checked as docker/cli's
    ValidateLabel: the key may be neither empty nor contain whitespace."""
    key, _, val = value.partition("=")
    if key.strip() == "":
        raise InvalidArgument(f"invalid label '{value}': empty name")
    if any(c in " \t" for c in key.strip()):
        raise InvalidArgument(f"label '{key.strip()}' contains whitespaces")
    return key, val


def parse_env_file(text: str, host_env: dict[str, str], filename: str = "env file") -> list[str]:
    """docker's --env-file format: KEY=VAL lines, `#` comments, blank lines, bare KEY from host."""
    out = []
    text = text.removeprefix("\ufeff")
    for line in text.splitlines():
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        var, sep, val = line.partition("=")
        var = var.lstrip()
        if not var:
            raise InvalidArgument(f"no variable name on line '{line}'")
        if any(c.isspace() for c in var):
            raise InvalidArgument(f"variable '{var}' contains whitespaces")
        if sep:
            out.append(f"{var}={val}")
        elif var in host_env:
            out.append(f"{var}={host_env[var]}")
    return out


# ---------------------------------------------------------------- user
def _parse_table(text: str, fields: int) -> list[list[str]]:
    rows = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) < fields:
            parts += [""] * (fields - len(parts))
        rows.append(parts)
    return rows


def _atoi(text: str) -> int | None:
    """Go's strconv.Atoi: an optional sign and ASCII digits, fitting an int64; else None."""
    if not re.fullmatch(r"[+-]?[0-9]+", text) or len(text.lstrip("+-").lstrip("0")) > 19:
        return None
    n = int(text)
    return n if -(1 << 63) <= n < (1 << 63) else None


def resolve_user(spec: str, passwd: str, group: str) -> tuple[int, int, list[int], str]:
    """`-u user[:group]` -> (uid, gid, supplementary gids, home), read from the container's
    /etc/passwd and /etc/group (never the host's: names differ between images), by the
    rules of moby/sys/user's GetExecUser: a numeric user is always a uid, fields after the
    group are ignored, a malformed number in the files counts as 0."""
    parts = (spec or "").split(":")
    user, grp = parts[0], (parts[1] if len(parts) > 1 else "")
    uid_arg, gid_arg = _atoi(user), _atoi(grp)
    max_id = 0x7FFFFFFF
    range_error = MinidockerError(f"uids and gids must be in range 0-{max_id}", exit_code=126)
    uid, gid, home, uname = 0, 0, "/", None
    pw = _parse_table(passwd, 7)
    if not user:
        hit = next((r for r in pw if (_atoi(r[2]) or 0) == 0), None)
    elif uid_arg is not None:
        hit = next((r for r in pw if (_atoi(r[2]) or 0) == uid_arg), None)
    else:
        hit = next((r for r in pw if r[0] == user), None)
    if hit is not None:
        uname, uid, gid, home = hit[0], _atoi(hit[2]) or 0, _atoi(hit[3]) or 0, hit[5] or "/"
    elif user:
        if uid_arg is None:
            raise MinidockerError(f"unable to find user {user}: no matching entries in passwd file",
                                  exit_code=126)
        uid = uid_arg
    gr = _parse_table(group, 4)
    if grp:
        if gid_arg is not None:
            g = next((r for r in gr if (_atoi(r[2]) or 0) == gid_arg), None)
        else:
            g = next((r for r in gr if r[0] == grp), None)
        if g is None and gid_arg is None:
            raise MinidockerError(f"unable to find group {grp}: no matching entries in group file",
                                  exit_code=126)
        gid = gid_arg if g is None else (_atoi(g[2]) or 0)
        extra = [gid]
    else:
        extra = [_atoi(r[2]) or 0 for r in gr if uname and uname in r[3].split(",")]
        if gid not in extra:
            extra.insert(0, gid)
    if not (0 <= uid <= max_id and 0 <= gid <= max_id) or any(not 0 <= g <= max_id for g in extra):
        raise range_error
    return uid, gid, sorted(set(extra)), home


def additional_groups(wanted: list[str], group: str) -> list[int]:
    """`--group-add name|gid` -> gids, from the container's /etc/group (libcontainer's
    GetAdditionalGroups): a name must be there; a number need not be."""
    table = _parse_table(group, 4)
    out: list[int] = []
    for g in wanted:
        hit = next((r for r in table if r[0] == g or str(_atoi(r[2])) == g), None)
        if hit is not None:
            gid = _atoi(hit[2]) or 0
        elif _atoi(g) is not None:
            gid = _atoi(g)
        else:
            raise MinidockerError(f"Unable to find group {g}")
        if not 0 <= gid <= 0x7FFFFFFF:
            raise MinidockerError("uids and gids must be in range 0-2147483647")
        if gid not in out:
            out.append(gid)
    return out


# ---------------------------------------------------------------- signals
def parse_signal(value: str | int) -> int:
    """'KILL', 'SIGKILL', 'kill', '9' -> 9 (docker kill -s / --stop-signal)."""
    s = str(value).strip()
    if re.fullmatch(r"[0-9]+", s):
        n = int(s) if len(s) < 10 else 0
        if n < 1 or n > 64:
            raise InvalidArgument(f"Invalid signal: {value}", exit_code=1)
        return n
    name = s.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(getattr(_signal.Signals, name))
    except AttributeError:
        pass
    if name.startswith("SIGRTMIN") or name.startswith("SIGRTMAX"):
        base = _signal.SIGRTMIN if name.startswith("SIGRTMIN") else _signal.SIGRTMAX
        off = name[8:]
        try:
            n = base + int(off) if off else base
            if _signal.SIGRTMIN <= n <= _signal.SIGRTMAX:
                return n
        except ValueError:
            pass
    raise InvalidArgument(f"Invalid signal: {value}", exit_code=1)


def default_hostname(container_id: str) -> str:
    return container_id[:12]


def validate_name(name: str) -> str:
    """Container names: [a-zA-Z0-9][a-zA-Z0-9_.-]+ (moby's restrictedNamePattern)."""
    import re
    n = name[1:] if name.startswith("/") else name
    if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", n):
        raise InvalidArgument(f'Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed')
    return n
