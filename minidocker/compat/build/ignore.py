""".dockerignore: which files of the build context are sent to the builder.

`docker build .` first collects the *build context* (the directory) and sends it
to the builder; `.dockerignore` keeps files out of it (secrets, .git, build
output), which also keeps them out of the COPY cache keys. The rules are
moby/patternmatcher's, which are not .gitignore's:

    # comment          only when # is the first character of the line
    *.log              * and ? never cross "/"; [a-z] is a character class
    **/*.pyc           ** matches any number of directories (also none)
    build              a directory excludes everything under it ...
    !build/keep.txt    ... unless a later "!" exception re-includes a path
    /secret.txt        a leading / is dropped: patterns are relative to the context

Each pattern is cleaned like Go's filepath.Clean ("./a//b/" -> "a/b"), and the
*last* pattern that matches a path (or one of its parent directories) decides.
Pure logic, plus `walk`, which lists a directory without following symlinks.
"""
from __future__ import annotations

import os

from ...errors import MinidockerError


class DockerIgnoreError(MinidockerError):
    """A malformed .dockerignore pattern (docker build fails, exit status 1)."""


def clean_path(path: str) -> str:
    """Go's filepath.Clean: drop "." and empty components, resolve "..", no trailing "/"."""
    if path == "":
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")     # ".." above a relative start is kept
            continue                   # ".." above "/" is "/"
        parts.append(part)
    cleaned = "/".join(parts)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


def read_patterns(text: str) -> list[str]:
    """The patterns of a .dockerignore file, normalized (moby/patternmatcher/ignorefile)."""
    patterns = []
    for line in text.removeprefix("\ufeff").splitlines():
        if line.startswith("#"):           # "  # x" (indented) is a pattern, not a comment
            continue
        pattern = line.strip()
        if not pattern:
            continue
        exception = pattern.startswith("!")
        if exception:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = clean_path(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append("!" + pattern if exception else pattern)
    return patterns


class _Pattern:
    """One compiled pattern. Mirrors patternmatcher: a few shapes are matched as plain
    strings ("exact", "prefix" for `dir/**`, "suffix" for `**/name`), the rest by an
    automaton over the pattern's tokens (self.regex), as its regex would match."""

    def __init__(self, text: str):
        self.exception = text.startswith("!")
        if self.exception:
            if len(text) == 1:
                raise DockerIgnoreError('illegal exclusion pattern: "!"')
            text = text[1:]
        self.text = text
        self.kind, self.regex = _compile(text)

    def matches(self, path: str) -> bool:
        if self.kind == "exact":
            return path == self.text
        if self.kind == "prefix":           # "dir/**": anything below dir/
            return path.startswith(self.text[:-2])
        if self.kind == "suffix":           # "**/name": name at any depth
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
        return _run(self.regex, path)

    def matches_or_parent(self, path: str) -> bool:
        """Does the pattern match the path or one of its parent directories?
        (An excluded directory takes everything in it along.)"""
        if self.matches(path):
            return True
        parts = path.split("/")
        return any(self.matches("/".join(parts[:i])) for i in range(1, len(parts)))


# Pattern tokens. Matching runs them as a small automaton (Thompson's construction): time
# linear in the path for any pattern, where a regex of `*a*a*a...b` backtracks for ever.
LIT, ANY, CLASS, STAR, DIRS_IN, DIRS_MID, ALL = range(7)


def _compile(pattern: str) -> tuple[str, list | None]:
    """Tokens for a pattern; also say whether a plain string test will do."""
    tokens: list = []
    kind = "exact"
    i, n = 0, len(pattern)
    while i < n:
        at_start = i == 0
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":          # "**"
                i += 1
                if i < n and pattern[i] == "/":      # "**/" is treated as "**"
                    i += 1
                if i == n:                           # trailing "**": everything below
                    if kind == "exact":
                        kind = "prefix"
                    else:
                        tokens.append((ALL, None))
                        kind = "regex"
                else:                                # any number of directories, even none
                    tokens += [(DIRS_IN, None), (DIRS_MID, None)]
                    kind = "regex"
                if at_start:                         # "**/name": a suffix test, unless
                    kind = "suffix"                  # a later wildcard needs the automaton
            else:
                tokens.append((STAR, None))          # "*" stays within one path component
                kind = "regex"
        elif ch == "?":
            tokens.append((ANY, None))
            kind = "regex"
        elif ch == "[":
            end = _class_end(pattern, i)
            if end < 0:
                raise DockerIgnoreError(f"syntax error in pattern: {pattern}")
            tokens.append((CLASS, _class(pattern, pattern[i:end])))
            i = end + 1
            kind = "regex"
        elif ch == "\\":
            if i < n:                                # "\*" is a literal *
                tokens.append((LIT, pattern[i]))
                i += 1
                kind = "regex"
            else:
                tokens.append((LIT, "\\"))
        else:
            tokens.append((LIT, ch))
    return kind, (tokens if kind == "regex" else None)


def _class(pattern: str, body: str) -> tuple[bool, list[tuple[str, str]]]:
    """A [...] class: (negated, [(lo, hi), ...])."""
    negate = body.startswith("^")
    if negate:
        body = body[1:]
    chars, j = [], 0
    while j < len(body):                              # escapes first: "\]" is a "]"
        if body[j] == "\\" and j + 1 < len(body):
            chars.append((body[j + 1], True))
            j += 2
        else:
            chars.append((body[j], False))
            j += 1
    ranges, k = [], 0
    while k < len(chars):
        c, _ = chars[k]
        if k + 2 < len(chars) and chars[k + 1] == ("-", False):
            hi = chars[k + 2][0]
            if hi < c:
                raise DockerIgnoreError(f"syntax error in pattern: {pattern}")
            ranges.append((c, hi))
            k += 3
        else:
            ranges.append((c, c))
            k += 1
    return negate, ranges


def _step(tokens: list, state: int, c: str, out: set) -> None:
    kind, arg = tokens[state]
    if kind == LIT:
        if c == arg:
            out.add(state + 1)
    elif kind == ANY:
        if c != "/":
            out.add(state + 1)
    elif kind == CLASS:
        negate, ranges = arg
        if any(lo <= c <= hi for lo, hi in ranges) != negate:
            out.add(state + 1)
    elif kind == STAR:
        if c != "/":
            out.add(state)
    elif kind in (DIRS_IN, DIRS_MID):                # "(.*/)?": anything, ended by a "/"
        out.add(state + 1 if kind == DIRS_IN else state)
        if c == "/":
            out.add(state + 2 if kind == DIRS_IN else state + 1)
    elif kind == ALL:
        out.add(state)


def _closure(tokens: list, states: set) -> set:
    """Add the states reachable without reading: past a "*" (it may match nothing), past
    "**/" (no directory at all; only from its entry), past a trailing "**"."""
    todo, seen = list(states), set(states)
    while todo:
        s = todo.pop()
        if s < len(tokens) and tokens[s][0] in (STAR, ALL, DIRS_IN):
            nxt = s + 2 if tokens[s][0] == DIRS_IN else s + 1
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _run(tokens: list, path: str) -> bool:
    states = _closure(tokens, {0})
    for c in path:
        nxt: set = set()
        for s in states:
            if s < len(tokens):
                _step(tokens, s, c, nxt)
        if not nxt:
            return False
        states = _closure(tokens, nxt)
    return len(tokens) in states


def _class_end(pattern: str, start: int) -> int:
    """Index of the "]" closing a [...] class that starts at `start`, or -1."""
    j = start
    if j < len(pattern) and pattern[j] == "^":
        j += 1
    first = j
    while j < len(pattern):
        if pattern[j] == "\\":
            j += 2
            continue
        if pattern[j] == "]" and j > first:
            return j
        j += 1
    return -1


_GLOB_CHARS = set("*[]?^\\")


class DockerIgnore:
    """The patterns of a .dockerignore file, ready to match context paths."""

    def __init__(self, patterns: list[str] | None = None):
        self.patterns = list(patterns or [])
        self._compiled = [_Pattern(p) for p in self.patterns]

    @classmethod
    def from_text(cls, text: str) -> "DockerIgnore":
        return cls(read_patterns(text))

    @classmethod
    def from_dir(cls, context_dir: str) -> "DockerIgnore":
        """The context's .dockerignore (no file: nothing is ignored)."""
        try:
            # surrogateescape: a non-UTF-8 pattern still matches the (equally decoded) file name
            with open(os.path.join(context_dir, ".dockerignore"), encoding="utf-8",
                      errors="surrogateescape") as f:
                return cls.from_text(f.read())
        except FileNotFoundError:
            return cls([])

    def excluded(self, relpath: str, is_dir: bool = False) -> bool:
        """Is this context path (relative, "/"-separated) left out?

        Patterns are applied in order and the last one that matches the path,
        or a directory above it, wins (patternmatcher's MatchesOrParentMatches,
        as the docker CLI uses it). `is_dir` does not change the answer: Clean()
        strips a pattern's trailing "/", so "build/" also matches a file."""
        path = clean_path(relpath)
        if path == ".":
            return False                      # the context itself is always sent
        result = False
        for pattern in self._compiled:
            if pattern.exception != result:   # could not change the result: skip
                continue
            if pattern.matches_or_parent(path):
                result = not pattern.exception
        return result

    def _may_reinclude_below(self, dirpath: str) -> bool:
        """Could an exception pattern re-include something inside an excluded directory?
        If not, the walk skips the directory entirely (BuildKit/fsutil's shortcut).
        Exceptions with wildcards are not analysed: then the walk looks inside."""
        exceptions = [p.text for p in self._compiled if p.exception]
        if not exceptions:
            return False
        prefix = dirpath + "/"
        for text in exceptions:
            text = _without_trailing_glob(text)
            if _GLOB_CHARS & set(text):
                return True
            if (text + "/").startswith(prefix):
                return True
        return False

    def walk(self, context_dir: str, dockerfile: str | None = "Dockerfile") -> list[str]:
        """The context paths to send: files, directories and symlinks (never followed),
        relative and sorted. A directory that is itself excluded is still listed when
        something inside it is re-included (the builder needs it as a parent).

        `dockerfile` (its path relative to the context) and `.dockerignore` are always
        sent, even when a pattern excludes them, as the docker CLI does."""
        matcher = self
        extra = []
        for name in (".dockerignore", dockerfile):
            if name and self.excluded(name):
                extra.append("!" + clean_path(name))
        if extra:
            matcher = DockerIgnore(self.patterns + extra)
        found: list[str] = []
        matcher._walk(context_dir, "", [], found)
        return sorted(set(found))

    def _walk(self, top: str, reldir: str, pending: list[str], found: list[str]) -> None:
        try:
            entries = sorted(os.scandir(os.path.join(top, reldir) if reldir else top),
                             key=lambda e: e.name)
        except PermissionError:
            if pending:                    # an excluded directory we only peeked into
                return
            raise
        for entry in entries:
            rel = f"{reldir}/{entry.name}" if reldir else entry.name
            is_dir = entry.is_dir(follow_symlinks=False)
            if self.excluded(rel, is_dir):
                if is_dir and self._may_reinclude_below(rel):
                    # Look inside; list this directory only if something in it is sent.
                    self._walk(top, rel, pending + [rel], found)
                continue
            found.extend(pending)          # the excluded parents of a re-included path
            found.append(rel)
            if is_dir:
                self._walk(top, rel, [], found)


def _without_trailing_glob(pattern: str) -> str:
    for suffix in ("/**", "/*"):
        if pattern.endswith(suffix):
            return pattern[: -len(suffix)]
    return pattern


def walk(context_dir: str, dockerfile: str | None = "Dockerfile") -> list[str]:
    """The paths of `context_dir` that `docker build` would send, per its .dockerignore."""
    return DockerIgnore.from_dir(context_dir).walk(context_dir, dockerfile)
