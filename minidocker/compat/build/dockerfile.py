"""Dockerfile parsing, as BuildKit's frontend (and the classic builder) do it.

Reading a Dockerfile happens in two phases, and so does this module:

1. *Parse time* (`parse`): the text becomes logical lines (parser directives,
   comments and line continuations handled), each line becomes an `Instruction`
   (keyword, `--flags`, arguments, exec or shell form), and instructions are
   grouped into build *stages*, one per FROM. Only FROM lines are variable-
   substituted here, using the ARGs declared before the first FROM (the
   "global" ARGs) and the `--build-arg` values.
2. *Build time* (the builder, elsewhere): each instruction is substituted with
   the environment that is current at that step (ARG and ENV values set by the
   earlier instructions of the stage), with `expand_instruction` / `expand`.
   RUN, CMD and ENTRYPOINT are never substituted by Docker: their text goes to
   the shell as is, and the shell expands `$VAR` at run time.

Every error names the file and the line, like `Dockerfile:7: unknown instruction: RUNN`,
and `docker build` exits with status 1. Pure logic: no I/O.

Reference: moby/buildkit frontend/dockerfile/{parser,instructions,shell}.
"""
from __future__ import annotations

import functools
import json
import re

from ...errors import MinidockerError
from ...gotime import parse_duration  # noqa: F401 (also this module's API: tests import it here)

DEFAULT_SHELL = ["/bin/sh", "-c"]
DEFAULT_ESCAPE = "\\"

# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------

class DockerfileError(MinidockerError):
    """A Dockerfile that cannot be built. str() is `Dockerfile:7: <message>`."""

    exit_code = 1

    def __init__(self, filename: str | None, line: int | None, message: str):
        self.filename = filename
        self.line = line
        self.message = message
        where = f"{filename}:{line}: " if filename and line else ""
        super().__init__(where + message)

    def at(self, filename: str, line: int) -> "DockerfileError":
        """The same error, located (used when a helper failed without knowing where)."""
        if self.line:
            return self
        return DockerfileError(filename, line, self.message)


def _quote(text: str) -> str:
    """Go's %q, near enough: a double-quoted string."""
    return json.dumps(text, ensure_ascii=False)


# --------------------------------------------------------------------------
# Data model: plain classes, compared by value; `replace` and `asdict` below work as
# dataclasses' do. (Not @dataclass: `dataclasses` imports `inspect` & co., ~10 ms at
# every `minidocker build`, issue 23.)
# --------------------------------------------------------------------------

class _Record:
    """Fields are the instance's attributes, in the order __init__ sets them."""
    __hash__ = None  # mutable and compared by value, as a dataclass

    def __eq__(self, other):
        return vars(self) == vars(other) if type(other) is type(self) else NotImplemented

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


def replace(record: _Record, **changes) -> _Record:
    """A copy of `record` with some fields changed (dataclasses.replace)."""
    unknown = changes.keys() - vars(record).keys()
    if unknown:
        raise TypeError(f"{type(record).__name__} has no field {sorted(unknown)[0]!r}")
    new = object.__new__(type(record))
    new.__dict__.update(vars(record), **changes)
    return new


def asdict(value):
    """A record as plain dicts, lists and tuples, recursively (dataclasses.asdict)."""
    if isinstance(value, _Record):
        return {k: asdict(v) for k, v in vars(value).items()}
    if isinstance(value, (list, tuple)):
        return type(value)(asdict(v) for v in value)
    if isinstance(value, dict):
        return {asdict(k): asdict(v) for k, v in value.items()}
    return value


class Instruction(_Record):
    """One instruction, as written (not yet variable-substituted).

    `args` always holds the parsed arguments:
      RUN/CMD/ENTRYPOINT/SHELL  exec form: the JSON list; shell form: [the whole text]
      COPY/ADD/VOLUME           the paths (JSON list, or split on whitespace)
      ENV/LABEL                 [k1, v1, k2, v2, ...]  (also in `pairs`)
      ARG                       the words as written, e.g. ["VERSION=1.0", "DEBUG"]
      FROM/EXPOSE               the words
      WORKDIR/USER/STOPSIGNAL/MAINTAINER  [the text]
      HEALTHCHECK               [type, *command]   (config in `healthcheck`)
      ONBUILD                   [the trigger text] (also in `trigger`)
    """

    def __init__(self, cmd: str, line: int, original: str, end_line: int = 0, flags: dict | None = None,
                 args: list | None = None, exec_form: bool = False, escape: str = DEFAULT_ESCAPE,
                 pairs: list | None = None, sources: list | None = None, dest: str | None = None,
                 healthcheck: dict | None = None, trigger: str | None = None):
        self.cmd = cmd                  # upper-case keyword: "RUN"
        self.line = line                # first line of the instruction in the file (1-based)
        self.original = original        # the source, continuations joined (docker's `Step N/M : <original>`)
        self.end_line = end_line        # last line (continuations included)
        self.flags = {} if flags is None else flags  # {"from": "builder", "link": True, "mount": [...]}
        self.args = [] if args is None else args
        self.exec_form = exec_form      # JSON-array form of RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK CMD
        self.escape = escape            # the file's escape character (needed to substitute variables)
        self.pairs = pairs              # ENV/LABEL: [(key, value)]; ARG: [(name, default or None)]
        self.sources = sources          # COPY/ADD
        self.dest = dest                # COPY/ADD
        self.healthcheck = healthcheck  # {"Test": [...], "Interval": ns, ...} (zero values left out)
        self.trigger = trigger          # ONBUILD: the instruction to run in builds FROM this image


class Stage(_Record):
    """A build stage: a FROM line and the instructions up to the next FROM."""

    def __init__(self, name: str | None, index: int, base: str, platform: str | None, line: int,
                 original: str = "", base_raw: str = "", base_stage: int | None = None,
                 instructions: list | None = None):
        self.name = name                # `AS name`, lower-cased
        self.index = index              # 0, 1, ... (what `COPY --from=0` means)
        self.base = base                # the image (global ARGs substituted) or "scratch"
        self.platform = platform        # `FROM --platform=...`, substituted
        self.line = line
        self.original = original        # "FROM golang:1.20 as builder"
        self.base_raw = base_raw        # the image as written: "golang:${GO_VERSION}"
        self.base_stage = base_stage    # index of the earlier stage named by `base`, if any
        self.instructions = [] if instructions is None else instructions

    @property
    def is_scratch(self) -> bool:
        return self.base == "scratch"


class Dockerfile(_Record):
    def __init__(self, filename: str, directives: dict | None = None, escape: str = DEFAULT_ESCAPE,
                 global_args: list | None = None, global_arg_values: dict | None = None,
                 meta_args: list | None = None, stages: list | None = None, warnings: list | None = None):
        self.filename = filename
        self.directives = {} if directives is None else directives  # {"syntax": ..., "escape": ...}
        self.escape = escape
        # [(name, default or None)], as written
        self.global_args = [] if global_args is None else global_args
        # what FROM lines see (incl. platform ARGs)
        self.global_arg_values = {} if global_arg_values is None else global_arg_values
        self.meta_args = [] if meta_args is None else meta_args  # the ARG Instructions before the first FROM
        self.stages = [] if stages is None else stages
        self.warnings = [] if warnings is None else warnings

    def total_steps(self) -> int:
        """M in the classic builder's `Step N/M`: global ARGs, FROMs and every instruction."""
        return len(self.meta_args) + sum(1 + len(s.instructions) for s in self.stages)

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------
# Variable substitution: Docker's small shell lexer (buildkit shell/lex.go).
# Not a real shell: it knows quotes, the escape character and ${...} forms,
# and nothing else (no globbing, no command substitution).
# --------------------------------------------------------------------------

class _LexError(Exception):
    pass


_EOF = ""


class _Words:
    """Collects words while substituting: whitespace separates words, except
    whitespace that came from quotes or from the escape character. (Pieces are kept in a
    list and joined once: a long word costs linear time, not quadratic.)"""

    def __init__(self):
        self.words: list[str] = []
        self.buf: list[str] = []

    def _flush(self) -> None:
        if self.buf:
            word = "".join(self.buf)
            self.buf = []
            if word:
                self.words.append(word)

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            self._flush()
        else:
            self.buf.append(ch)

    def add_raw_char(self, ch: str) -> None:
        self.buf.append(ch)

    def add_string(self, text: str) -> None:  # a variable's value: its spaces split words
        for i, piece in enumerate(_SPACES.split(text)):
            if i:
                self._flush()
            if piece:
                self.buf.append(piece)

    def add_raw_string(self, text: str) -> None:  # quoted text: kept whole
        self.buf.append(text)

    def result(self) -> list[str]:
        self._flush()
        return self.words


_SPACES = re.compile(r"\s+")  # (\s is str.isspace(), as add_char has it)
_NAME = re.compile(r"\w+")    # (\w is str.isalnum() or "_")
# Limits that keep a hostile Dockerfile from hanging the parser (Docker has the first one):
MAX_LINE = 65535                 # bytes in one physical line ("dockerfile line greater than ...")
MAX_EXPANSION = 1 << 20          # characters that variables may add to one substituted text
MAX_PATTERN_STEPS = 4_000_000    # steps of ${VAR#pattern}-style matching in one substitution


@functools.lru_cache(maxsize=64)
def _plain(specials: str) -> re.Pattern:
    """A run of characters with no meaning to the lexer (taken in one go, not one by one)."""
    return re.compile("[^" + re.escape(specials) + "]+")


class _Lexer:
    def __init__(self, text: str, env: dict, escape: str):
        self.text = text
        self.pos = 0
        self.env = env
        self.escape = escape
        self.raw_escapes = False   # keep escape characters (inside ${VAR#pattern})
        self.expanded = 0          # characters variables have added so far (MAX_EXPANSION)
        self.steps = 0             # pattern matching work so far (MAX_PATTERN_STEPS)

    def tick(self, steps: int) -> None:
        self.steps += steps
        if self.steps > MAX_PATTERN_STEPS:
            raise _LexError("pattern substitution too costly: the value or the pattern is too long")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else _EOF

    def next(self) -> str:
        ch = self.peek()
        if ch:
            self.pos += 1
        return ch

    def process(self, stop: str = _EOF, raw_escapes: bool = False) -> tuple[str, list[str]]:
        """Read up to `stop` (or the end): returns (substituted text, words)."""
        saved, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            return self._process(stop, raw_escapes)
        finally:
            self.raw_escapes = saved

    def _process(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        result = []
        words = _Words()
        plain = _plain("$'\"" + self.escape + stop)
        while self.peek() != _EOF:
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(result), words.result()
            m = plain.match(self.text, self.pos)
            if m:                                  # ordinary characters, many at once
                self.pos = m.end()
                result.append(m.group())
                words.add_string(m.group())
                continue
            if ch == "$":
                value = self.dollar()
                result.append(value)
                words.add_string(value)
            elif ch == "'":
                value = self.single_quoted()
                result.append(value)
                words.add_raw_string(value)
            elif ch == '"':
                value = self.double_quoted()
                result.append(value)
                words.add_raw_string(value)
            else:
                ch = self.next()
                if ch == self.escape:
                    if raw_escapes:
                        words.add_raw_char(ch)
                        result.append(ch)
                    ch = self.next()        # the escaped character is literal
                    if ch == _EOF:          # an escape at the very end is dropped
                        break
                    words.add_raw_char(ch)
                else:
                    words.add_char(ch)
                result.append(ch)
        if stop:
            raise _LexError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.result()

    def single_quoted(self) -> str:
        # Everything up to the next ' is literal: no variables, no escapes.
        self.next()
        end = self.text.find("'", self.pos)
        if end < 0:
            self.pos = len(self.text)
            raise _LexError("unexpected end of statement while looking for matching single-quote")
        out, self.pos = self.text[self.pos:end], end + 1
        return out

    def double_quoted(self) -> str:
        # Literal except $ (substituted) and the escape character, which only
        # escapes ", $ and itself (like \ in sh); before anything else it stays.
        self.next()
        out = []
        plain = _plain('"$' + self.escape)
        while True:
            m = plain.match(self.text, self.pos)
            if m:
                out.append(m.group())
                self.pos = m.end()
            ch = self.peek()
            if ch == _EOF:
                raise _LexError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.escape:
                if self.raw_escapes:
                    out.append(ch)
                if self.peek() == _EOF:
                    continue
                if self.peek() in ('"', "$", self.escape):
                    ch = self.next()
            out.append(ch)

    def name(self) -> str:
        # A variable name: letters, digits, _; or all digits ($1); or one special character ($?).
        text, start, n = self.text, self.pos, len(self.text)
        if start >= n:
            return ""
        ch = text[start]
        if ch.isdigit():
            end = start
            while end < n and text[end].isdigit():
                end += 1
            self.pos = end
            return text[start:end]
        if ch in "@*#?-$!0":
            return self.next()
        m = _NAME.match(text, start)
        if not m:
            return ""
        self.pos = m.end()
        return m.group()

    def dollar(self) -> str:
        """A $VAR / ${VAR...} substitution. What variables add is counted: `ENV A=$A$A`
        repeated (a doubling bomb) stops at MAX_EXPANSION characters with an error."""
        value = self._dollar()
        self.expanded += len(value)
        if self.expanded > MAX_EXPANSION:
            raise _LexError(f"variable expansion too large: more than {MAX_EXPANSION} characters")
        return value

    def _dollar(self) -> str:
        self.next()  # the $
        if self.peek() != "{":                     # $VAR
            name = self.name()
            if not name:
                return "$"                         # a lone $ is literal
            return self.env.get(name, "")          # unset -> empty, as in sh
        self.next()  # the {
        if self.peek() == _EOF:
            raise _LexError("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise _LexError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if ch == "}":                              # ${VAR}
            return self.env.get(name, "")
        if ch == _EOF:
            raise _LexError("syntax error: missing '}'")
        modifier = ch
        null_is_unset = False                      # the ':' forms also treat "" as unset
        if ch == ":":
            null_is_unset = True
            ch = self.next()
            modifier += ch
        if ch in ("+", "-", "?", "#", "%"):
            pattern_op = ch in ("#", "%")
            if null_is_unset and pattern_op:
                raise _LexError(f"unsupported modifier ({modifier}) in substitution")
            word = self._until("}", raw_escapes=pattern_op)
            value = self.env.get(name)
            is_set = value is not None
            empty = is_set and value == ""
            if ch == "-":                          # ${VAR-default} / ${VAR:-default}
                return word if not is_set or (null_is_unset and empty) else value
            if ch == "+":                          # ${VAR+alt} / ${VAR:+alt}
                return "" if not is_set or (null_is_unset and empty) else word
            if ch == "?":                          # ${VAR?message}: error when unset
                if not is_set:
                    raise _LexError(f"{name}: {word or 'is not allowed to be unset'}")
                if null_is_unset and empty:
                    raise _LexError(f"{name}: {word or 'is not allowed to be empty'}")
                return value
            # ${VAR#prefix} ${VAR##prefix} ${VAR%suffix} ${VAR%%suffix}
            greedy = word[:1] == ch
            if greedy:
                word = word[1:]
            tokens = _glob_tokens(word)
            if ch == "#":
                return _trim_prefix(tokens, value or "", greedy, self)
            return _trim_prefix(tokens[::-1], (value or "")[::-1], greedy, self)[::-1]
        if ch == "/":                              # ${VAR/pattern/replacement}, // = all
            replace_all = self.peek() == "/"
            if replace_all:
                self.next()
            pattern = self._until("/", raw_escapes=True, missing="syntax error: missing '/' in ${}")
            replacement = self._until("}", raw_escapes=True)
            return _replace(_glob_tokens(pattern), self.env.get(name, ""), replacement, replace_all, self)
        raise _LexError(f"unsupported modifier ({modifier}) in substitution")

    def _until(self, stop: str, raw_escapes: bool, missing: str = "syntax error: missing '}'") -> str:
        try:
            return self.process(stop, raw_escapes)[0]
        except _LexError:
            if self.peek() == _EOF:
                raise _LexError(missing) from None
            raise


# Shell patterns (${VAR#pattern}, ${VAR/pattern/x}) are matched by a small automaton kept as
# a bit set of "how much of the pattern is matched" (one bit per pattern position), never by
# backtracking: `${A%%*a*a*a*a*a*b}` takes time proportional to the value, not exponential.
_STAR, _ANY = object(), object()


def _glob_tokens(pattern: str) -> list:
    """`*` any string, `?` one character, `\\` escapes `*`, `?` and itself (`\\}` and `\\/`
    only protect the ${...} syntax); other characters are literal."""
    tokens: list = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            if not tokens or tokens[-1] is not _STAR:   # ** is *
                tokens.append(_STAR)
        elif ch == "?":
            tokens.append(_ANY)
        elif ch == "\\":
            nxt = pattern[i] if i < len(pattern) else ""
            if nxt and nxt in "}/":
                continue
            i += 1
            if nxt not in ("*", "?", "\\"):
                raise _LexError(f"invalid pattern ({pattern}) in substitution: invalid escape '\\{nxt}'")
            tokens.append(nxt)
        else:
            tokens.append(ch)
    return tokens


class _Glob:
    """The automaton of one pattern: bit j set = the first j tokens are matched."""

    def __init__(self, tokens: list):
        self.star = self.any = 0
        self.lit: dict[str, int] = {}
        for j, t in enumerate(tokens):
            if t is _STAR:
                self.star |= 1 << j
            elif t is _ANY:
                self.any |= 1 << j
            else:
                self.lit[t] = self.lit.get(t, 0) | 1 << j
        self.accept = 1 << len(tokens)
        self.start = self.closure(1)

    def closure(self, states: int) -> int:
        return states | (states & self.star) << 1      # a star may match nothing

    def step(self, states: int, ch: str) -> int:
        moved = (states & (self.any | self.lit.get(ch, 0))) << 1
        return self.closure(moved | (states & self.star))


def _trim_prefix(tokens: list, value: str, greedy: bool, lexer) -> str:
    """Remove the shortest (greedy: longest) prefix of `value` the pattern matches."""
    g = _Glob(tokens)
    states, best = g.start, (0 if g.start & g.accept else None)
    if best == 0 and not greedy:
        return value
    lexer.tick(len(value))
    for i, ch in enumerate(value):
        states = g.step(states, ch)
        if not states:
            break
        if states & g.accept:
            best = i + 1
            if not greedy:
                break
    return value if best is None else value[best:]


def _replace(tokens: list, value: str, replacement: str, replace_all: bool, lexer) -> str:
    """${VAR/pattern/replacement}: the leftmost, longest match is replaced (// : every one,
    left to right, as sh). Where matches may start is found in one backward pass."""
    g, back = _Glob(tokens), _Glob(tokens[::-1])
    n = len(value)
    lexer.tick(n)
    starts = bytearray(n + 1)      # starts[s] = 1: some match begins at s
    states = back.start
    starts[n] = 1 if states & back.accept else 0
    for p in range(1, n + 1):
        states = back.step(states, value[n - p]) | back.start
        if states & back.accept:
            starts[n - p] = 1
    out, size, pos = [], 0, 0
    while pos <= n:
        s = starts.find(1, pos)
        if s < 0:
            break
        states, end = g.start, (s if g.start & g.accept else None)
        for i in range(s, n):
            lexer.tick(1)
            states = g.step(states, value[i])
            if not states:
                break
            if states & g.accept:
                end = i + 1
        end = s if end is None else end   # (cannot happen: both automata agree)
        out += [value[pos:s], replacement]
        size += s - pos + len(replacement)
        if size > MAX_EXPANSION:
            raise _LexError(f"variable expansion too large: more than {MAX_EXPANSION} characters")
        if not replace_all:
            pos = end
            break
        if end == s:                # an empty match: keep the next character, go on after it
            out.append(value[s:s + 1])
            pos = s + 1
        else:
            pos = end
    out.append(value[pos:])
    return "".join(out)


def _lex(text: str, env: dict, escape: str) -> tuple[str, list[str]]:
    try:
        return _Lexer(text, env, escape).process()
    except _LexError as e:
        shown = text if len(text) <= 200 else text[:200] + "..."  # (one readable line)
        raise DockerfileError(None, None, f"failed to process {_quote(shown)}: {e}") from None


def expand(text: str, env: dict, escape: str = DEFAULT_ESCAPE) -> str:
    """Substitute variables in one word, like Docker: quotes are removed,
    `\\$` is a literal $, '$VAR' in single quotes is not expanded, and spaces are kept.
    For example `${NAME:-world} "a  b" '$HOME'` with no NAME gives `world a  b $HOME`.
    """
    return _lex(text, env, escape)[0]


def expand_words(text: str, env: dict, escape: str = DEFAULT_ESCAPE) -> list[str]:
    """Substitute, then split into words on whitespace that was not quoted or escaped
    (a variable's value containing spaces becomes several words, as in sh)."""
    return _lex(text, env, escape)[1]


# --------------------------------------------------------------------------
# Reading lines: parser directives, comments, continuations (buildkit parser.go)
# --------------------------------------------------------------------------

# key=value; the value's blanks are stripped with str.strip(), not by the regex: a lazy
# `(.+?)\s*$` backtracks quadratically on a long line of blanks
_DIRECTIVE = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)\s*=(.*)", re.DOTALL)
_KNOWN_DIRECTIVES = ("syntax", "escape", "check")
_WHITESPACE = re.compile(r"[\t\v\f\r ]+")


class _Logical(_Record):
    def __init__(self, text: str, start: int, end: int):
        self.text = text    # continuation lines joined, comments inside them dropped
        self.start = start
        self.end = end


def _continuation(escape: str) -> re.Pattern:
    # The escape character as the last non-blank character continues the line,
    # unless it is itself escaped (`\\` at the end of a line is a literal `\`).
    e = re.escape(escape)
    return re.compile(rf"([^{e}]){e}[ \t]*$|^{e}[ \t]*$")


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def _read_lines(text: str, filename: str) -> tuple[dict, str, list[_Logical], list[str]]:
    """Split the text into logical lines. Returns (directives, escape, lines, warnings)."""
    lines = text.removeprefix("\ufeff").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for line in lines:  # (a UTF-8 character is up to 4 bytes: only long lines need encoding)
        if len(line) > MAX_LINE // 4 and len(line.encode("utf-8", "surrogatepass")) > MAX_LINE:
            raise DockerfileError(None, None, "failed to parse Dockerfile: dockerfile line greater "
                                              f"than max allowed size of {MAX_LINE}")
    directives: dict[str, str] = {}
    looking_for_directives = True   # only until the first line that is not one
    escape = DEFAULT_ESCAPE
    continuation = _continuation(escape)
    logical: list[_Logical] = []
    warnings: list[str] = []

    def directive(line: str, lineno: int) -> bool:
        """Record `# key=value` if it is a parser directive at the top of the file."""
        nonlocal looking_for_directives, escape, continuation
        if not looking_for_directives:
            return False
        m = _DIRECTIVE.fullmatch(line[1:].lstrip()) if line.startswith("#") else None
        value = m.group(2).strip() if m else ""
        if not m or not value or m.group(1).lower() not in _KNOWN_DIRECTIVES:
            looking_for_directives = False   # any other line ends the directives
            return False
        key = m.group(1).lower()
        if key in directives:
            raise DockerfileError(filename, lineno, f"only one {key} parser directive can be used")
        if key == "escape":
            if value not in ("\\", "`"):
                raise DockerfileError(filename, lineno,
                                      f"invalid escape token '{value}' does not match ` or \\")
            escape = value
            continuation = _continuation(escape)
        directives[key] = value
        return True

    def strip_continuation(line: str) -> tuple[str, bool]:
        """(line without the trailing escape, whether the instruction ends here)"""
        if continuation.search(line):
            return continuation.sub(r"\1", line, count=1), False
        return line, True

    i = 0
    while i < len(lines):
        first = lines[i].rstrip("\r\n").lstrip()
        i += 1
        start = i
        if directive(first, start) or _is_comment(first):
            continue
        part, done = strip_continuation(first)
        if done and part == "":
            continue                       # blank line
        parts = [part]
        empty_continuation = False
        while not done and i < len(lines):
            # Continuation lines keep their leading whitespace (docker does too).
            raw = lines[i].rstrip("\r\n")
            i += 1
            if _is_comment(raw):
                continue                   # comments may sit inside a continued instruction
            if raw.strip() == "":
                empty_continuation = True  # allowed, with a warning
                continue
            part, done = strip_continuation(raw)
            parts.append(part)
        joined = "".join(parts)
        if empty_continuation:
            warnings.append(f"{filename}:{start}: empty continuation line found in: {joined.strip()}")
        logical.append(_Logical(joined, start, i))
    return directives, escape, logical, warnings


# --------------------------------------------------------------------------
# One instruction: keyword, --flags, arguments (buildkit line_parsers.go, instructions/parse.go)
# --------------------------------------------------------------------------

def _extract_flags(text: str, escape: str) -> tuple[str, list[str]]:
    """Take the leading `--flag[=value]` words off `text`: (rest, flag words).
    Quotes and the escape character work inside a flag word; `--` ends the flags."""
    flags: list[str] = []
    pos, n = 0, len(text)
    while True:
        while pos < n and text[pos].isspace():
            pos += 1
        if pos == n:
            return "", flags
        if not text.startswith("--", pos):
            return text[pos:], flags
        chars, quote, blank_ok = [], None, False
        while pos < n:
            ch = text[pos]
            if quote is None and ch.isspace():
                break
            if quote is None and ch in "'\"":
                quote, blank_ok = ch, True
                pos += 1
                continue
            if quote is not None and ch == quote:
                quote = None
                pos += 1
                continue
            if ch == escape:
                if pos + 1 == n:           # an escape at the end is dropped
                    pos += 1
                    continue
                pos += 1
                ch = text[pos]
            chars.append(ch)
            pos += 1
        word = "".join(chars)
        if word == "--":
            return text[pos:], flags
        if word or blank_ok:
            flags.append(word)


# The flags each instruction accepts: "string", "bool", or "list" (repeatable).
_FLAG_KINDS = {
    "FROM": {"platform": "string"},
    "COPY": {"from": "string", "chown": "string", "chmod": "string", "link": "bool",
             "parents": "bool", "exclude": "list"},
    "ADD": {"chown": "string", "chmod": "string", "link": "bool", "checksum": "string",
            "keep-git-dir": "bool", "unpack": "bool", "exclude": "list"},
    "RUN": {"mount": "list", "network": "string", "security": "string"},
    "HEALTHCHECK": {"interval": "string", "timeout": "string", "start-period": "string",
                    "start-interval": "string", "retries": "string"},
}


def _parse_flags(cmd: str, words: list[str]) -> dict:
    kinds = _FLAG_KINDS.get(cmd, {})
    flags: dict = {}
    for word in words:
        name, has_value, value = word.partition("=")
        key = name[2:]
        kind = kinds.get(key)
        if kind is None:
            raise _LexError(f"unknown flag: {name}")
        if key in flags and kind != "list":
            raise _LexError(f"duplicate flag specified: {name}")
        if kind == "bool":
            if has_value and value == "":
                raise _LexError(f"missing a value on flag: {name}")
            if value.lower() not in ("", "true", "false"):
                raise _LexError(f"expecting boolean value for flag {name}, not: {value}")
            flags[key] = value.lower() != "false"
        elif not has_value:
            raise _LexError(f"missing a value on flag: {name}")
        elif kind == "list":
            flags.setdefault(key, []).append(value)
        else:
            flags[key] = value
    return flags


def _json_array(text: str) -> list[str] | None:
    """The exec form: a JSON array of strings. None if `text` is not valid JSON:
    then Docker treats it as shell form (so `CMD [foo]` runs `/bin/sh -c "[foo]"`)."""
    text = text.lstrip()
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise _LexError("when using JSON array syntax, arrays must be comprised of strings only")
    return value


def _parse_words(text: str, escape: str) -> list[str]:
    """Split on whitespace outside quotes, keeping the quotes and escapes in the
    words (they are removed later, when the word is substituted). For ENV/LABEL/ARG.
    (Runs of ordinary characters are taken at once: linear time on long lines.)"""
    words: list[str] = []
    word: list[str] = []
    quote = None
    outside = re.compile(r"[^\s'\"" + re.escape(escape) + "]+")
    in_double = _plain('"' + escape)
    i, n = 0, len(text)
    while i < n:
        if quote is None:
            m = outside.match(text, i)
            if m:
                word.append(m.group())
                i = m.end()
                continue
            ch = text[i]
            if ch.isspace():
                if word:
                    words.append("".join(word))
                word = []
                i += 1
            elif ch in "'\"":
                quote = ch
                word.append(ch)
                i += 1
            else:                          # the escape character
                if i + 1 == n:
                    break                  # an escape at the end is dropped
                word.append(text[i:i + 2])  # keep "\x" as is
                i += 2
        elif quote == "'":                 # nothing escapes inside '...'
            j = text.find("'", i)
            if j < 0:
                word.append(text[i:])
                break
            word.append(text[i:j + 1])
            quote, i = None, j + 1
        else:
            m = in_double.match(text, i)
            if m:
                word.append(m.group())
                i = m.end()
                continue
            if text[i] == quote:
                word.append(quote)
                quote, i = None, i + 1
            elif i + 1 == n:
                break
            else:
                word.append(text[i:i + 2])
                i += 2
    if word:
        words.append("".join(word))
    return words


def _one_argument(inst: Instruction, rest: str) -> None:
    # WORKDIR, USER, STOPSIGNAL, MAINTAINER: the whole rest is the argument.
    inst.args = [rest] if rest else []
    if len(inst.args) != 1:
        raise _LexError(f"{inst.cmd} requires exactly one argument")


def _command(inst: Instruction, rest: str) -> None:
    # RUN, CMD, ENTRYPOINT, SHELL: exec form (JSON) or shell form (the text as is).
    if not rest:
        inst.args = []
        return
    array = _json_array(rest)
    if array is not None:
        inst.args, inst.exec_form = array, True
    else:
        inst.args = [rest]


def _path_list(rest: str) -> tuple[list[str], bool]:
    # COPY, ADD, VOLUME: a JSON array (for paths with spaces), else whitespace-separated.
    array = _json_array(rest)
    if array is not None:
        return array, True
    return (_WHITESPACE.split(rest) if rest else []), False


def _parse_run(inst: Instruction, rest: str) -> None:
    _command(inst, rest)
    network = inst.flags.get("network", "default")
    if network not in ("default", "none", "host"):
        raise _LexError(f"invalid network mode {_quote(network)}")


def _parse_shell(inst: Instruction, rest: str) -> None:
    _command(inst, rest)
    if not inst.args:
        raise _LexError("SHELL requires at least one argument")
    if not inst.exec_form:
        raise _LexError("SHELL requires the arguments to be in JSON form")


def _parse_copy(inst: Instruction, rest: str) -> None:
    inst.args, inst.exec_form = _path_list(rest)
    if len(inst.args) < 2:
        raise _LexError(f"{inst.cmd} requires at least two arguments, but only one was provided. "
                        "Destination could not be determined")
    inst.sources, inst.dest = inst.args[:-1], inst.args[-1]


def _parse_volume(inst: Instruction, rest: str) -> None:
    paths, inst.exec_form = _path_list(rest)
    if not paths:
        raise _LexError("VOLUME requires at least one argument")
    inst.args = [p.strip() for p in paths]
    if "" in inst.args:
        raise _LexError("VOLUME specified can not be an empty string")


def _parse_words_list(inst: Instruction, rest: str) -> None:
    # FROM, EXPOSE: whitespace-separated words.
    inst.args = _WHITESPACE.split(rest) if rest else []
    if inst.cmd == "EXPOSE" and not inst.args:
        raise _LexError("EXPOSE requires at least one argument")


def _parse_key_values(inst: Instruction, rest: str) -> None:
    """ENV and LABEL: `k=v k2="v 2"`, or the legacy `ENV k v with spaces` (one pair)."""
    words = _parse_words(rest, inst.escape)
    if not words:
        raise _LexError(f"{inst.cmd} requires at least one argument")
    if "=" not in words[0]:
        parts = _WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise _LexError(f"{inst.cmd} must have two arguments")
        pairs = [(parts[0], parts[1])]
    else:
        pairs = []
        for word in words:
            if "=" not in word:
                raise _LexError(f"Syntax error - can't find = in {_quote(word)}. "
                                "Must be of the form: name=value")
            key, _, value = word.partition("=")
            if not key:
                raise _LexError(f"{inst.cmd} names can not be blank")
            pairs.append((key, value))
    inst.pairs = pairs
    inst.args = [x for pair in pairs for x in pair]


def _parse_arg(inst: Instruction, rest: str) -> None:
    """ARG name[=default] ...: a name alone declares it without a default."""
    inst.args = _parse_words(rest, inst.escape)
    if not inst.args:
        raise _LexError("ARG requires at least one argument")
    inst.pairs = []
    for word in inst.args:
        if "=" in word:
            name, _, default = word.partition("=")
            if not name:
                raise _LexError("ARG names can not be blank")
            inst.pairs.append((name, default))
        else:
            inst.pairs.append((word, None))


def _parse_healthcheck(inst: Instruction, rest: str) -> None:
    """HEALTHCHECK NONE | [--interval=.. --timeout=.. --start-period=.. --start-interval=..
    --retries=..] CMD command (exec or shell form)."""
    if not rest:
        raise _LexError("HEALTHCHECK requires at least one argument")
    kind = re.split(r"\s", rest, maxsplit=1)[0]      # NONE or CMD
    command = rest[len(kind):].lstrip()
    _command(inst, command)
    inst.args = [kind] + inst.args
    kind = kind.upper()
    if kind == "NONE":
        if len(inst.args) > 1:
            raise _LexError("HEALTHCHECK NONE takes no arguments")
        inst.healthcheck = {"Test": ["NONE"]}
        return
    if kind != "CMD":
        raise _LexError(f"Unknown type {_quote(kind)} in HEALTHCHECK (try CMD)")
    if len(inst.args) == 1:
        raise _LexError("Missing command after HEALTHCHECK CMD")
    config = {"Test": ["CMD" if inst.exec_form else "CMD-SHELL"] + inst.args[1:]}
    for flag, key in (("interval", "Interval"), ("timeout", "Timeout"),
                      ("start-period", "StartPeriod"), ("start-interval", "StartInterval")):
        value = inst.flags.get(flag, "")
        if not value:
            continue
        try:
            ns = parse_duration(value)
        except ValueError as e:
            raise _LexError(str(e)) from None
        if ns != 0 and ns < 1_000_000:           # 0 means "the default"
            raise _LexError(f"Interval {_quote(flag)} cannot be less than 1ms")
        if ns:
            config[key] = ns
    retries = inst.flags.get("retries", "")
    if retries:
        if not re.fullmatch(r"[+-]?[0-9]+", retries):
            raise _LexError(f"strconv.ParseInt: parsing {_quote(retries)}: invalid syntax")
        if len(retries.lstrip("+-").lstrip("0")) > 18:
            raise _LexError(f"strconv.ParseInt: parsing {_quote(retries)}: value out of range")
        if int(retries) < 0:
            raise _LexError(f"--retries cannot be negative ({int(retries)})")
        if int(retries):
            config["Retries"] = int(retries)
    inst.healthcheck = config


def _parse_onbuild(inst: Instruction, rest: str) -> None:
    """ONBUILD <instruction>: stored as text in the image; it runs in a later build
    that uses this image in its FROM."""
    if not rest:
        raise _LexError("ONBUILD requires at least one argument")
    trigger = _WHITESPACE.split(rest.strip(), maxsplit=1)[0].upper()
    if trigger == "ONBUILD":
        raise _LexError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("MAINTAINER", "FROM"):
        raise _LexError(f"{trigger} isn't allowed as an ONBUILD trigger")
    inst.trigger = re.sub(r"(?i)^\s*ONBUILD\s*", "", inst.original)
    inst.args = [inst.trigger]


_PARSERS = {
    "FROM": _parse_words_list,
    "RUN": _parse_run,
    "CMD": _command,
    "ENTRYPOINT": _command,
    "SHELL": _parse_shell,
    "COPY": _parse_copy,
    "ADD": _parse_copy,
    "ENV": _parse_key_values,
    "LABEL": _parse_key_values,
    "ARG": _parse_arg,
    "EXPOSE": _parse_words_list,
    "VOLUME": _parse_volume,
    "WORKDIR": _one_argument,
    "USER": _one_argument,
    "STOPSIGNAL": _one_argument,
    "MAINTAINER": _one_argument,
    "HEALTHCHECK": _parse_healthcheck,
    "ONBUILD": _parse_onbuild,
}


def parse_instruction(text: str, line: int = 1, escape: str = DEFAULT_ESCAPE,
                      filename: str = "Dockerfile", end_line: int = 0) -> Instruction:
    """Parse one logical line (e.g. an ONBUILD trigger taken from a base image)."""
    parts = _WHITESPACE.split(text.strip(), maxsplit=1)
    keyword = parts[0]
    cmd = keyword.upper()
    if cmd not in _PARSERS:
        raise DockerfileError(filename, line, f"unknown instruction: {keyword}")
    inst = Instruction(cmd=cmd, line=line, end_line=end_line or line,
                       original=text.strip(), escape=escape)
    try:
        rest, flag_words = _extract_flags(parts[1], escape) if len(parts) > 1 else ("", [])
        inst.flags = _parse_flags(cmd, flag_words)
        _PARSERS[cmd](inst, rest.strip())
    except _LexError as e:
        raise DockerfileError(filename, line, str(e)) from None
    except DockerfileError as e:
        raise e.at(filename, line) from None
    return inst


# --------------------------------------------------------------------------
# The whole file: stages and ARG scoping
# --------------------------------------------------------------------------

_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_.]*$")


def decode(data: bytes, filename: str = "Dockerfile") -> str:
    """A Dockerfile's bytes as text: UTF-8 (a BOM is dropped later). Anything else is refused
    with the line it is on (Docker's classic builder passes the bytes through; minidocker
    prints every step, so it needs text)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DockerfileError(filename, line, f"invalid UTF-8 byte 0x{data[e.start]:02x}: "
                                              "a Dockerfile must be UTF-8 text") from None


def parse(text: str, build_args: dict | None = None, filename: str = "Dockerfile",
          platform: str | None = None) -> Dockerfile:
    """Parse a Dockerfile. `build_args` are the `--build-arg` values; `platform` the
    target ("linux/amd64"; default: this machine), for the automatic TARGETPLATFORM etc."""
    build_args = dict(build_args or {})
    if text.strip() == "":
        raise DockerfileError(None, None, f"the Dockerfile ({filename}) cannot be empty")
    directives, escape, lines, warnings = _read_lines(text, filename)
    if not lines:
        raise DockerfileError(filename, text.count("\n") or 1, "file with no instructions")

    df = Dockerfile(filename=filename, directives=directives, escape=escape, warnings=warnings)
    # What FROM lines can see: the automatic platform ARGs, then the global ARGs
    # (ARG before the first FROM), each overridden by --build-arg.
    scope = {k: build_args.get(k, v) for k, v in platform_args(platform).items()}
    for logical in lines:
        inst = parse_instruction(logical.text, logical.start, escape, filename, logical.end)
        if inst.cmd == "FROM":
            df.stages.append(_new_stage(inst, df, scope, filename))
        elif not df.stages:
            if inst.cmd != "ARG":
                raise DockerfileError(filename, inst.line, "no build stage in current context")
            df.meta_args.append(inst)
            for name, default in inst.pairs:
                df.global_args.append((name, default))
                if name in build_args:
                    scope[name] = build_args[name]
                elif default is not None:   # a default may use earlier global ARGs
                    scope[name] = _expand_at(default, scope, escape, filename, inst.line)
        else:
            df.stages[-1].instructions.append(inst)
            if inst.cmd == "MAINTAINER":
                df.warnings.append(f"{filename}:{inst.line}: MAINTAINER instruction is "
                                   "deprecated in favor of using label")
    if not df.stages:
        raise DockerfileError(None, None, "dockerfile contains no stages to build")
    df.global_arg_values = scope
    return df


def _expand_at(text: str, env: dict, escape: str, filename: str, line: int) -> str:
    try:
        return expand(text, env, escape)
    except DockerfileError as e:
        raise e.at(filename, line) from None


def _new_stage(inst: Instruction, df: Dockerfile, scope: dict, filename: str) -> Stage:
    """FROM [--platform=p] image[:tag|@digest] [AS name]"""
    args = inst.args
    name = None
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if not _STAGE_NAME.match(name):
            raise DockerfileError(filename, inst.line,
                                  f"invalid name for build stage: {_quote(args[2])}, "
                                  "name can't start with a number or contain symbols")
    elif len(args) != 1:
        raise DockerfileError(filename, inst.line, "FROM requires either one or three arguments")
    base = _expand_at(args[0], scope, df.escape, filename, inst.line)
    if base == "":
        raise DockerfileError(filename, inst.line, f"base name ({args[0]}) should not be blank")
    platform = inst.flags.get("platform")
    if platform is not None:
        platform = _expand_at(platform, scope, df.escape, filename, inst.line)
    if name and any(s.name == name for s in df.stages):
        df.warnings.append(f"{filename}:{inst.line}: duplicate stage name {_quote(name)}")
    # `FROM builder` continues from an earlier stage (the last one of that name).
    base_stage = None
    for s in df.stages:
        if s.name == base:
            base_stage = s.index
    return Stage(name=name, index=len(df.stages), base=base, platform=platform, line=inst.line,
                 original=inst.original, base_raw=args[0], base_stage=base_stage)


# --------------------------------------------------------------------------
# Helpers for the builder
# --------------------------------------------------------------------------

def stage_for_target(df: Dockerfile, target: str) -> int:
    """Index of the stage `--target` names (case-insensitive; the last one if repeated)."""
    found = None
    for stage in df.stages:
        if stage.name is not None and stage.name == target.lower():
            found = stage.index
    if found is None:
        raise DockerfileError(None, None, f"target stage {_quote(target)} could not be found")
    return found


def resolve_stage_ref(df: Dockerfile, ref: str, current: int) -> int | None:
    """What `COPY --from=<ref>` (in stage `current`) names: an earlier stage's index,
    or None for an image reference."""
    stage = df.stages[current]
    where = (df.filename, stage.line)
    if re.fullmatch(r"[0-9]+", ref):
        index = int(ref) if len(ref) < 10 else len(df.stages)
        if index >= len(df.stages):
            raise DockerfileError(*where, f"invalid stage index {index}")
    else:
        index = None
        for s in df.stages:
            if s.name is not None and s.name == ref.lower():
                index = s.index
        if index is None:
            return None
    if index >= current:
        raise DockerfileError(*where, f"cannot copy from stage {_quote(ref)}, it needs to be "
                                      f"defined before current stage {_quote(stage.name or str(current))}")
    return index


def cmd_shell_form(shell: list[str] | None, text: str) -> list[str]:
    """The argv of a shell-form RUN/CMD/ENTRYPOINT: the SHELL (default /bin/sh -c) + text."""
    return list(shell or DEFAULT_SHELL) + [text]


def instruction_argv(inst: Instruction, shell: list[str] | None = None) -> list[str]:
    """The argv a RUN/CMD/ENTRYPOINT stands for: exec form as is, shell form via the shell."""
    if inst.exec_form:
        return list(inst.args)
    return cmd_shell_form(shell, " ".join(inst.args))


def resolve_arg(name: str, default: str | None, build_args: dict, global_values: dict,
                env: dict, escape: str = DEFAULT_ESCAPE) -> str | None:
    """The value of `ARG name[=default]` inside a stage (None: declared but unset).

    A --build-arg wins; else `ARG name` without a default picks up the global ARG
    (or platform ARG) of that name; else the default, substituted with `env`."""
    if name in build_args:
        return build_args[name]
    if default is None:
        return global_values.get(name)
    return expand(default, env, escape)


def expand_instruction(inst: Instruction, env: dict, filename: str = "Dockerfile") -> Instruction:
    """A copy of `inst` with variables substituted as Docker does at build time.

    `env` is what the step sees: the stage's ARG values overlaid by its ENV values.
    Substituted: ENV, LABEL (keys and values), COPY/ADD (sources, dest, --chown,
    --chmod, --checksum), WORKDIR, USER, STOPSIGNAL, VOLUME, EXPOSE (may split into
    several ports). Not: RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, ONBUILD,
    MAINTAINER, and ARG (see `resolve_arg`). Note that an ENV line is substituted
    as a whole with the environment *before* it: `ENV a=1 b=$a` uses the old $a.
    """
    def word(text: str) -> str:
        return expand(text, env, inst.escape)

    try:
        if inst.cmd in ("ENV", "LABEL"):
            pairs = [(word(k), word(v)) for k, v in inst.pairs]
            return replace(inst, pairs=pairs, args=[x for pair in pairs for x in pair])
        if inst.cmd in ("COPY", "ADD"):
            flags = dict(inst.flags)
            for key in ("chown", "chmod", "checksum"):
                if key in flags:
                    flags[key] = word(flags[key])
            sources, dest = [word(s) for s in inst.sources], word(inst.dest)
            return replace(inst, flags=flags, sources=sources, dest=dest, args=sources + [dest])
        if inst.cmd in ("WORKDIR", "USER", "STOPSIGNAL", "VOLUME"):
            return replace(inst, args=[word(a) for a in inst.args])
        if inst.cmd == "EXPOSE":
            return replace(inst, args=[p for a in inst.args for p in expand_words(a, env, inst.escape)])
    except DockerfileError as e:
        raise e.at(filename, inst.line) from None
    return inst


def parse_ports(specs: list[str]) -> list[str]:
    """EXPOSE arguments -> ExposedPorts keys: "80" -> "80/tcp", "53/udp",
    "8000-8001" -> "8000/tcp", "8001/tcp" (an `ip:host:` prefix is accepted and ignored)."""
    ports: list[str] = []
    for raw in specs:
        container = raw.split(":")[-1]
        number, _, proto = container.partition("/")
        if not number:
            raise DockerfileError(None, None, f"invalid port: {_quote(raw)}: no port specified")
        if proto.lower() not in ("", "tcp", "udp", "sctp"):
            raise DockerfileError(None, None, f"invalid port: {_quote(raw)}: invalid proto: {proto}")
        start, dash, end = number.partition("-")
        if not re.fullmatch(r"[0-9]{1,5}", start) or (dash and not re.fullmatch(r"[0-9]{1,5}", end)):
            raise DockerfileError(None, None, f"invalid containerPort: {number}")
        first = int(start)
        last = int(end) if dash else first
        if last > 65535 or last < first:
            raise DockerfileError(None, None, f"invalid containerPort: {number}")
        ports += [f"{p}/{(proto or 'tcp').lower()}" for p in range(first, last + 1)]
    return ports


def host_platform() -> str:
    """This machine as an OCI platform string: "linux/amd64", "linux/arm64", ..."""
    from ...images.platform import host_platform as host, platform_string
    return platform_string(host())


def platform_args(platform: str | None = None) -> dict[str, str]:
    """BuildKit's automatic global ARGs (BUILDPLATFORM, TARGETARCH, ...). Like any
    global ARG they are visible in FROM lines, and in a stage only after `ARG TARGETARCH`.
    minidocker builds for the machine it runs on, so BUILD* and TARGET* agree."""
    platform = platform or host_platform()
    os_, _, rest = platform.partition("/")
    arch, _, variant = rest.partition("/")
    values = {}
    for prefix in ("BUILD", "TARGET"):
        values.update({f"{prefix}PLATFORM": platform, f"{prefix}OS": os_,
                       f"{prefix}ARCH": arch, f"{prefix}VARIANT": variant})
    return values
