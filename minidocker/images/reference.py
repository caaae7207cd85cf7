"""Image references: `busybox`, `busybox:1.36`, `localhost:5000/team/app@sha256:...`.

The grammar is distribution's (github.com/distribution/reference):

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [domain "/"] path-component ["/" path-component]*
    domain     := a first component containing "." or ":", or exactly "localhost"
    path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
    tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest     := algorithm ":" hex

Docker then *normalizes* a "familiar" name: no domain means `docker.io`, and a
single path component on docker.io gets `library/`. So `busybox` is really
`docker.io/library/busybox:latest`, and `docker images` shows it back as `busybox`.
Pure logic: no I/O, unit-tested without root.
"""
from __future__ import annotations

import re

from ..errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_PATH = rf"{_COMPONENT}(?:/{_COMPONENT})*"
# re.ASCII: Go's \w (in _TAG) is [0-9A-Za-z_], Python's would take any letter ("busybox:ŧ")
# and \Z, not $: "busybox\n" is no reference
_REFERENCE = re.compile(rf"^((?:{_DOMAIN}/)?{_PATH})(?::({_TAG}))?(?:@({_DIGEST}))?\Z", re.ASCII)
_HEX64 = re.compile(r"^[a-f0-9]{64}\Z")
NAME_TOTAL_LENGTH_MAX = 255


class Reference:
    """A parsed reference. (A plain class: importing `dataclasses` would cost every
    `minidocker run` a few milliseconds.)"""

    __slots__ = ("domain", "path", "tag", "digest")

    def __init__(self, domain: str, path: str, tag: str | None = None, digest: str | None = None):
        self.domain, self.path, self.tag, self.digest = domain, path, tag, digest

    def __eq__(self, other) -> bool:
        return isinstance(other, Reference) and (self.domain, self.path, self.tag, self.digest) == \
            (other.domain, other.path, other.tag, other.digest)

    def __hash__(self) -> int:
        return hash((self.domain, self.path, self.tag, self.digest))

    def __repr__(self) -> str:
        return f"Reference({self.domain!r}, {self.path!r}, {self.tag!r}, {self.digest!r})"

    @property
    def name(self) -> str:
        """Fully qualified repository name: docker.io/library/busybox."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """The short form people type and `docker images` shows: busybox."""
        if self.domain == DEFAULT_DOMAIN:
            path = self.path
            if path.startswith(OFFICIAL_REPO_PREFIX) and "/" not in path[len(OFFICIAL_REPO_PREFIX):]:
                path = path[len(OFFICIAL_REPO_PREFIX):]
            return path
        return self.name

    def __str__(self) -> str:
        s = self.familiar_name
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost"
                   and first.lower() == first):
        domain, path = DEFAULT_DOMAIN, name
    else:
        domain, path = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_REPO_PREFIX + path
    return domain, path


def parse(ref: str, default_tag: bool = True) -> Reference:
    """Parse and normalize a reference; add `:latest` when neither tag nor digest is given."""
    if not ref:
        raise InvalidArgument("invalid reference format")
    if _HEX64.match(ref):
        raise InvalidArgument(
            f"invalid repository name ({ref}), cannot specify 64-byte hexadecimal strings")
    m = _REFERENCE.match(ref)
    if not m:
        if _REFERENCE.match(ref.lower()):
            raise InvalidArgument("invalid reference format: repository name must be lowercase")
        raise InvalidArgument("invalid reference format")
    name, tag, digest = m.group(1), m.group(2), m.group(3)
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidArgument(
            f"invalid reference format: repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")
    domain, path = _split_domain(name)
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def looks_like_id(s: str) -> bool:
    """An (abbreviated) image or container id: hex, optionally prefixed by sha256:."""
    s = s.removeprefix("sha256:")
    return bool(re.fullmatch(r"[a-f0-9]{1,64}", s))
