"""Go's text/template: the part of it `docker inspect -f` and `docker ps --format` use.

    render("{{.State.Status}}", data)                       -> "running"
    t = parse("{{range .Mounts}}{{.Source}} {{end}}")       # parse once,
    t.execute(data1); t.execute(data2)                      # run many times

The module reads top to bottom like Go's own code (text/template/parse/lex.go, parse.go,
exec.go, funcs.go) plus docker's extra functions (docker/cli templates/templates.go):

1. the lexer cuts the template into tokens: text, "{{", ".Field", "$x", "str", "|", ...
2. the parser builds a tree of small node classes, and checks before any data is seen
   that functions and variables exist and that every {{if}} has its {{end}};
3. the evaluator walks the tree with the data and prints values as Go's fmt does.

Data is what json.loads returns. In Go terms a dict is a map[string]interface{}, so `.Key`
looks the key up; a missing key is "no value" and prints `<no value>`; None is nil and
prints `<nil>` (what a nil pointer field prints in docker's typed structs). Errors are
one line, worded like Go's: 'template: :1:8: executing "" at <.State.Foo>: ...'.
"""
from __future__ import annotations

import json as _json
import math
import re
import urllib.parse
from decimal import Decimal
from typing import NamedTuple

__all__ = ["TemplateError", "Template", "parse", "render", "NilSlice", "NilMap", "EmptyStruct", "GoMap"]


class TemplateError(Exception):
    """A parse or execution error, one line, worded like Go's."""


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


# ================================================================================ lexer
# Outside {{ }} everything is text. Inside, spaces are tokens too because they separate
# arguments: `.A.B` is one operand, `.A .B` two.

class Token(NamedTuple):
    kind: str   # text {{ }} space field var ident keyword bool nil . number string
    val: str    # rawstring charconst char := = | ( ) EOF
    pos: int    # offset in the template, for error messages


_SPACE = " \t\r\n"
_SPACE_SET = set(_SPACE)                # unlike a str, it doesn't contain ""
_KEYWORDS = {"if", "else", "end", "range", "with", "break", "continue", "define", "template", "block"}
_NUMBER = re.compile(r"[+-]?(0[xXoObB][0-9a-fA-F_]*|[0-9_]*\.?[0-9_]*([eE][+-]?[0-9_]+)?)")
_QUOTES = {'"': ("string", "unterminated quoted string"), "`": ("rawstring", "unterminated raw quoted string"),
           "'": ("charconst", "unterminated character constant")}


def _u(c: str) -> str:                  # Go's %#U
    return f"U+{ord(c):04X} '{c}'" if c.isprintable() else f"U+{ord(c):04X}"


def _alnum(c: str) -> bool:
    return c == "_" or c.isalnum()


def _lex_error(text: str, pos: int, msg: str) -> TemplateError:
    return TemplateError(f"template: :{_line(text, pos)}: {msg}")


def _right_delim(text: str, pos: int) -> tuple[int, bool]:
    """Width of a "}}" or " -}}" at pos (0 if none), and whether it trims what follows."""
    if text.startswith("}}", pos):
        return 2, False
    if text[pos:pos + 1] in _SPACE_SET and text.startswith("-}}", pos + 1):
        return 4, True
    return 0, False


def _lex(text: str):
    """Yield tokens lazily, so that an error late in the template can't hide an earlier one."""
    pos, trim_left = 0, False
    while True:
        start = text.find("{{", pos)
        end = len(text) if start < 0 else start
        # "{{- " trims the whitespace before the action and " -}}" the whitespace after.
        # The space is part of the marker: "{{-3}}" prints the number -3.
        trim_right = start >= 0 and text[start + 2:start + 3] == "-" and text[start + 3:start + 4] in _SPACE_SET
        chunk = text[pos:end]
        if trim_left:
            stripped = chunk.lstrip(_SPACE)
            pos += len(chunk) - len(stripped)
            chunk = stripped
        if trim_right:
            chunk = chunk.rstrip(_SPACE)
        if chunk:
            yield Token("text", chunk, pos)
        if start < 0:
            yield Token("EOF", "", len(text))
            return
        pos = start + (4 if trim_right else 2)
        if text.startswith("/*", pos):                 # {{/* a comment */}} vanishes
            close = text.find("*/", pos + 2)
            if close < 0:
                raise _lex_error(text, start, "unclosed comment")
            width, trim_left = _right_delim(text, close + 2)
            if not width:
                raise _lex_error(text, close, "comment ends before closing delimiter")
            pos = close + 2 + width
            continue
        yield Token("{{", "{{", start)
        pos, trim_left = yield from _lex_action(text, pos)


def _lex_action(text: str, pos: int):
    """The tokens of one action. Returns where text resumes and whether to trim it."""
    n, depth = len(text), 0
    while True:
        width, trim = _right_delim(text, pos)
        if width:
            if depth:
                raise _lex_error(text, pos, "unclosed left paren")
            yield Token("}}", "}}", pos)
            return pos + width, trim
        if pos >= n:
            raise _lex_error(text, pos, "unclosed action")
        c, start = text[pos], pos
        if c in _SPACE:
            while pos < n and text[pos] in _SPACE:
                pos += 1
            if text.startswith("-}}", pos):            # the last space belongs to " -}}"
                pos -= 1
            if pos > start:
                yield Token("space", text[start:pos], start)
            continue
        if c == ":":
            if text[pos + 1:pos + 2] != "=":
                raise _lex_error(text, pos, "expected :=")
            yield Token(":=", ":=", pos)
            pos += 2
        elif c in "=|()":
            depth += {"(": 1, ")": -1}.get(c, 0)
            if depth < 0:
                raise _lex_error(text, pos, f"unexpected right paren {_u(c)}")
            yield Token(c, c, pos)
            pos += 1
        elif c in _QUOTES:
            kind, unterminated = _QUOTES[c]
            pos += 1
            while pos < n and text[pos] != c and (c == "`" or text[pos] != "\n"):
                pos += 2 if c != "`" and text[pos] == "\\" else 1
            if pos >= n or text[pos] != c:
                raise _lex_error(text, start, unterminated)
            pos += 1
            yield Token(kind, text[start:pos], start)
        elif c == "$" or (c == "." and not text[pos + 1:pos + 2].isdigit()):
            pos += 1                                   # $name, .Name, or a lone $ or .
            while pos < n and _alnum(text[pos]):
                pos += 1
            _check_terminator(text, pos)
            kind = "var" if c == "$" else "field" if pos > start + 1 else "."
            yield Token(kind, text[start:pos], start)
        elif c in "+-." or c.isdigit():
            pos = _NUMBER.match(text, pos).end()
            if pos < n and _alnum(text[pos]):
                raise _lex_error(text, start, f"bad number syntax: {_go_quote(text[start:pos + 1])}")
            yield Token("number", text[start:pos], start)
        elif _alnum(c):
            while pos < n and _alnum(text[pos]):
                pos += 1
            _check_terminator(text, pos)
            word = text[start:pos]
            kind = ("keyword" if word in _KEYWORDS else "bool" if word in ("true", "false")
                    else "nil" if word == "nil" else "ident")
            yield Token(kind, word, start)
        elif c.isascii() and c.isprintable():          # "," and stray punctuation: the
            yield Token("char", c, pos)                # parser decides if it's an error
            pos += 1
        else:
            raise _lex_error(text, pos, f"unrecognized character in action: {_u(c)}")


def _check_terminator(text: str, pos: int) -> None:
    """After a word Go wants a space, one of .,|:() or the delimiter: `.a-b` is an error
    (docker users meet it with label keys; `index .Config.Labels "a-b"` is the way)."""
    if pos < len(text) and text[pos] not in _SPACE + ".,|:()}":
        raise _lex_error(text, pos, f"bad character {_u(text[pos])}")


# ================================================================================ parser
# The tree's node classes. str(node) gives back its source, for error messages.

class Node:
    pos = 0

class Text(Node):
    def __init__(self, pos, text): self.pos, self.text = pos, text
    def __str__(self): return self.text

class Field(Node):                    # .A.B
    def __init__(self, pos, names): self.pos, self.names = pos, names
    def __str__(self): return "".join("." + n for n in self.names)

class Variable(Node):                 # $x.A.B (names[0] is "$x")
    def __init__(self, pos, names): self.pos, self.names = pos, names
    def __str__(self): return ".".join(self.names)

class Chain(Node):                    # (pipeline).A.B
    def __init__(self, pos, node, names): self.pos, self.node, self.names = pos, node, names
    def __str__(self):
        inner = f"({self.node})" if isinstance(self.node, Pipe) else str(self.node)
        return inner + "".join("." + n for n in self.names)

class Identifier(Node):               # a function name
    def __init__(self, pos, name): self.pos, self.name = pos, name
    def __str__(self): return self.name

class Literal(Node):                  # "s" `s` 12 1.5 'c' true nil, and . (dot)
    def __init__(self, pos, kind, text, value=None, int_value=None):
        self.pos, self.kind, self.text, self.value = pos, kind, text, value
        self.int_value = int_value    # set when Go could pass it as an int: 3, 3.0, 'c'
    def __str__(self): return self.text

class Command(Node):                  # one stage of a pipeline: a function and its arguments
    def __init__(self, pos): self.pos, self.args = pos, []
    def __str__(self): return " ".join(f"({a})" if isinstance(a, Pipe) else str(a) for a in self.args)

class Pipe(Node):                     # [$x :=] command | command ...
    def __init__(self, pos): self.pos, self.decl, self.is_assign, self.cmds = pos, [], False, []
    def __str__(self):
        decl = ", ".join(self.decl) + (" = " if self.is_assign else " := ") if self.decl else ""
        return decl + " | ".join(map(str, self.cmds))

class Action(Node):                   # {{pipeline}}: evaluate, then print
    def __init__(self, pos, pipe): self.pos, self.pipe = pos, pipe
    def __str__(self): return f"{{{{{self.pipe}}}}}"

class Control(Node):                  # {{if|with|range pipe}} body [{{else}} else_body] {{end}}
    def __init__(self, pos, kind, pipe, body, else_body):
        self.pos, self.kind, self.pipe, self.body, self.else_body = pos, kind, pipe, body, else_body
    def __str__(self): return f"{{{{{self.kind} {self.pipe}}}}}...{{{{end}}}}"

class Keyword(Node):                  # {{break}} {{continue}}; {{else}} {{end}} only while parsing
    def __init__(self, pos, kind): self.pos, self.kind = pos, kind
    def __str__(self): return f"{{{{{self.kind}}}}}"


def _token_str(tok: Token) -> str:
    """How Go's parser shows a token in "unexpected X in Y"."""
    if tok.kind == "EOF":
        return "EOF"
    if tok.kind in ("keyword", "nil", "."):
        return f"<{tok.val}>"
    return _go_quote(tok.val[:10]) + "..." if len(tok.val) > 10 else _go_quote(tok.val)


class _Parser:
    def __init__(self, text: str):
        self.text, self.tokens = text, _lex(text)
        self.pending: list[Token] = []    # pushed-back tokens, the last one comes out next
        self.last_pos = 0                 # the latest token, for the error's line number
        self.vars = ["$"]                 # variables in scope: using another is an error
        self.range_depth = 0              # {{break}} is only legal inside {{range}}

    def next(self) -> Token:
        tok = self.pending.pop() if self.pending else next(self.tokens)
        self.last_pos = tok.pos
        return tok

    def backup(self, *toks: Token) -> None:       # the first one given comes out first
        self.pending.extend(reversed(toks))

    def next_nonspace(self) -> Token:
        while (tok := self.next()).kind == "space":
            pass
        return tok

    def peek(self, nonspace: bool = False) -> Token:
        tok = self.next_nonspace() if nonspace else self.next()
        self.backup(tok)
        return tok

    def error(self, msg: str):
        raise TemplateError(f"template: :{_line(self.text, self.last_pos)}: {msg}")

    def expect(self, kind: str, context: str) -> Token:
        if (tok := self.next_nonspace()).kind != kind:
            self.error(f"unexpected {_token_str(tok)} in {context}")
        return tok

    def parse(self) -> list[Node]:
        nodes = []
        while self.peek().kind != "EOF":
            node = self.text_or_action()
            if isinstance(node, Keyword) and node.kind in ("else", "end"):
                self.error(f"unexpected {node}")
            nodes.append(node)
        return nodes

    def item_list(self) -> tuple[list[Node], Keyword]:
        """The nodes up to the {{else}} or {{end}} that closes the current control."""
        nodes = []
        while self.peek(nonspace=True).kind != "EOF":
            node = self.text_or_action()
            if isinstance(node, Keyword) and node.kind in ("else", "end"):
                return nodes, node
            nodes.append(node)
        self.error("unexpected EOF")

    def text_or_action(self) -> Node:
        tok = self.next_nonspace()
        if tok.kind == "text":
            return Text(tok.pos, tok.val)
        if tok.kind != "{{":
            self.error(f"unexpected {_token_str(tok)} in input")
        tok = self.next_nonspace()
        word = tok.val if tok.kind == "keyword" else None
        if word in ("if", "with", "range"):
            return self.control(word, tok.pos)
        if word == "else":
            # "{{else if x}}" means "{{else}}{{if x}}...{{end}}": leave the "if" pending.
            if self.peek(nonspace=True).val not in ("if", "with"):
                self.expect("}}", "else")
        elif word in ("end", "break", "continue"):
            self.expect("}}", "end" if word == "end" else f"{{{{{word}}}}}")
            if word != "end" and not self.range_depth:
                self.error(f"{{{{{word}}}}} outside {{{{range}}}}")
        elif word:
            self.error(f"{{{{{word}}}}} is not supported")        # define, template, block
        if word:
            return Keyword(tok.pos, word)
        self.backup(tok)
        return Action(tok.pos, self.pipeline("command", "}}"))

    def control(self, kind: str, pos: int) -> Control:
        mark = len(self.vars)             # variables declared in here die at {{end}}
        pipe = self.pipeline(kind, "}}")
        self.range_depth += kind == "range"
        body, stop = self.item_list()
        self.range_depth -= kind == "range"
        else_body = None
        if stop.kind == "else":
            nxt = self.peek()
            if kind != "range" and nxt.kind == "keyword" and nxt.val == kind:
                self.next()               # else if / else with: they share one {{end}}
                else_body = [self.control(kind, nxt.pos)]
            else:
                else_body, stop = self.item_list()
                if stop.kind != "end":
                    self.error(f"expected end; found {stop}")
        del self.vars[mark:]
        return Control(pos, kind, pipe, body, else_body)

    def pipeline(self, context: str, end: str) -> Pipe:
        pipe = Pipe(self.peek(nonspace=True).pos)
        while self.peek(nonspace=True).kind == "var":     # $x := ... or $i, $e := range ...
            var, after = self.next(), self.next()
            nxt = self.next_nonspace() if after.kind == "space" else after
            if nxt.kind not in (":=", "=") and nxt.val != ",":
                self.backup(var, *([after] if after is not nxt else []), nxt)   # $x is an operand
                break
            pipe.decl.append(var.val)
            self.vars.append(var.val)
            if nxt.kind in (":=", "="):
                pipe.is_assign = nxt.kind == "="
                break
            if context != "range" or len(pipe.decl) > 1:
                self.error(f"too many declarations in {context}")
            if self.peek(nonspace=True).kind != "var":
                self.error("range can only initialize variables")
        while (tok := self.next_nonspace()).kind != end:
            if tok.kind not in ("bool", "charconst", ".", "field", "ident", "number", "nil",
                                "rawstring", "string", "var", "("):
                self.error(f"unexpected {_token_str(tok)} in {context}")
            self.backup(tok)
            pipe.cmds.append(self.command())
        if not pipe.cmds:
            self.error(f"missing value for {context}")
        for i, cmd in enumerate(pipe.cmds[1:], 2):     # in `.A | "x"` a constant gets input
            if isinstance(cmd.args[0], Literal):
                self.error(f"non executable command in pipeline stage {i}")
        return pipe

    def command(self) -> Command:
        cmd = Command(self.peek(nonspace=True).pos)
        while True:
            if (operand := self.operand()) is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.kind == "space":
                continue
            if tok.kind in ("}}", ")"):
                self.backup(tok)
            elif tok.kind != "|":
                self.error(f"unexpected {_token_str(tok)} in operand")
            break
        if not cmd.args:
            self.error("empty command")
        return cmd

    def operand(self) -> Node | None:
        """A term, maybe followed by .Field.Field (with no space in between)."""
        node = self.term()
        if node is None or self.peek().kind != "field":
            return node
        pos, names = self.peek().pos, []   # as in Go, a chain's position is its 2nd part
        while self.peek().kind == "field":
            names.append(self.next().val[1:])
        if isinstance(node, (Field, Variable)):
            return type(node)(pos, node.names + names)
        if isinstance(node, Literal):
            self.error(f"unexpected . after term {_go_quote(str(node))}")
        return Chain(pos, node, names)

    def term(self) -> Node | None:
        tok = self.next_nonspace()
        kind, val, pos = tok
        if kind == "ident":
            if val not in _FUNCS:
                self.error(f'function "{val}" not defined')
            return Identifier(pos, val)
        if kind == "var" and val not in self.vars:
            self.error(f'undefined variable "{val}"')
        if kind in ("var", "field"):
            return (Variable(pos, [val]) if kind == "var" else Field(pos, [val[1:]]))
        if kind == "(":
            return self.pipeline("parenthesized pipeline", ")")
        if kind in (".", "nil", "bool"):
            return Literal(pos, {".": "dot"}.get(kind, kind), val, val == "true" if kind == "bool" else None)
        if kind in ("string", "rawstring"):
            return Literal(pos, "string", val, self.unquote(val))
        if kind in ("number", "charconst"):
            return self.number(pos, val)
        self.backup(tok)
        return None

    def unquote(self, lit: str) -> str:
        try:
            return _unquote(lit)
        except ValueError:
            self.error("invalid syntax")

    def number(self, pos: int, text: str) -> Literal:
        """Go's constants: 3 is an int; 3.0 and 1e3 are float64 (but may fill an int
        parameter); 'a' is the int 97; 0x1F, 0o17, 0b11 are ints."""
        if text.startswith("'"):
            if len(s := self.unquote(text)) != 1:
                self.error(f"malformed character constant: {text}")
            return Literal(pos, "number", text, ord(s), ord(s))
        as_int = as_float = None
        try:                                          # Go reads a leading 0 as octal: 010 is 8
            as_int = int(text.replace("_", ""), 8 if re.fullmatch(r"[+-]?0[0-7_]+", text) else 0)
        except ValueError:
            try:
                as_float = float(text.replace("_", ""))
            except ValueError:
                self.error(f"illegal number syntax: {_go_quote(text)}")
        if as_float is not None and math.isfinite(as_float) and as_float == int(as_float):
            as_int = int(as_float)
        return Literal(pos, "number", text, as_int if as_float is None else as_float, as_int)


def _unquote(lit: str) -> str:
    """strconv.Unquote of "..." (Go escapes), `...` (raw, as is) or '...' (one character)."""
    q, body = lit[0], lit[1:-1]
    if q == "`":
        return body.replace("\r", "")
    simple = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, q: ord(q)}
    out, i = bytearray(), 0
    while i < len(body):
        if body[i] != "\\":
            out += body[i].encode()
            i += 1
            continue
        e = body[i + 1:i + 2]
        if e in simple:
            out.append(simple[e])
            i += 2
            continue
        hexa = e != "" and e in "xuU"                    # \x41 \u00e9 \U0001F600, or octal \101
        size = {"x": 2, "u": 4, "U": 8}.get(e, 3)
        digits = body[i + 2:i + 2 + size] if hexa else body[i + 1:i + 4]
        if len(digits) != size or any(d not in ("0123456789abcdefABCDEF" if hexa else "01234567") for d in digits):
            raise ValueError("invalid syntax")
        code = int(digits, 16 if hexa else 8)
        if not hexa and code > 255:
            raise ValueError("invalid syntax")
        out += chr(code).encode() if e in ("u", "U") else bytes([code])   # \x and octal are bytes
        i += 2 + size if hexa else 4
    return out.decode("utf-8", "replace")


# ================================================================================ printing
# How Go's fmt prints values decoded from JSON. %v is what every {{action}} prints.

def _go_type(v) -> str:
    if v is None:
        return "interface {}"
    if isinstance(v, bool):
        return "bool"
    return {int: "int", float: "float64", str: "string", list: "[]interface {}", tuple: "[]interface {}",
            dict: "map[string]interface {}"}.get(type(v), type(v).__name__)


def _go_float(f: float, json: bool = False) -> str:
    """strconv.FormatFloat(f, 'g', -1, 64), fmt's %v: 1e+06, 0.5, 3, 1.5e-07, 123456.
    With json=True, encoding/json's variant: plain decimals from 1e-6 up to 1e21."""
    if not math.isfinite(f):
        return "NaN" if math.isnan(f) else "+Inf" if f > 0 else "-Inf"
    sign = "-" if math.copysign(1, f) < 0 else ""
    if f == 0:
        return sign + "0"
    _, digit_tuple, exp10 = Decimal(repr(abs(f))).as_tuple()  # repr: the shortest digits
    ds = "".join(map(str, digit_tuple))
    dp = len(ds) + exp10                                   # f = 0.DS x 10**dp
    ds = ds.rstrip("0")
    exp = dp - 1
    if (abs(f) < 1e-6 or abs(f) >= 1e21) if json else (exp < -4 or exp >= 6):
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        exp_digits = str(-exp) if json and exp < 0 else f"{abs(exp):02d}"   # json: e-7, fmt: e-07
        return f"{sign}{mant}e{'-' if exp < 0 else '+'}{exp_digits}"
    if dp <= 0:
        return f"{sign}0.{'0' * -dp}{ds}"
    if dp >= len(ds):
        return sign + ds + "0" * (dp - len(ds))
    return f"{sign}{ds[:dp]}.{ds[dp:]}"


def _fmt_v(v) -> str:
    """fmt's %v: [a b c], map[k1:v1 k2:v2] (keys sorted), true, <nil>."""
    if v is None or v is _MISSING:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(map(_fmt_v, v)) + "]"
    if isinstance(v, EmptyStruct):
        return "{}"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{_fmt_v(k)}:{_fmt_v(v[k])}" for k in sorted(v)) + "]"
    return str(v)


_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _go_quote(s: str, q: str = '"') -> str:
    """strconv.Quote (or QuoteRune with q="'")."""
    out = [q]
    for ch in s:
        o = ord(ch)
        if ch in (q, "\\"):
            out.append("\\" + ch)
        elif ch.isprintable() or ch in _ESCAPES:
            out.append(_ESCAPES.get(ch, ch))
        else:
            out.append(f"\\x{o:02x}" if o < 0x80 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")
    return "".join(out) + q


_VERB = re.compile(r"%([-+# 0]*)(\d+)?(?:\.(\d*))?(.)?", re.S)


def _sprintf(fmt: str, args: list) -> str:
    """fmt.Sprintf for the usual verbs, with Go's way of showing mistakes: %!d(string=x)."""
    out, pos, used = [], 0, 0
    while (j := fmt.find("%", pos)) >= 0:
        out.append(fmt[pos:j])
        flags, width, prec, verb = (m := _VERB.match(fmt, j)).groups()
        pos = m.end()
        if verb is None or verb == "%":
            out.append("%!(NOVERB)" if verb is None else "%")
        elif used >= len(args):
            out.append(f"%!{verb}(MISSING)")
        else:
            out.append(_fmt_one(verb, args[used], flags, int(width or 0), None if prec is None else int(prec or 0)))
            used += 1
    out.append(fmt[pos:])
    if used < len(args):
        extra = ["<nil>" if a is None else f"{_go_type(a)}={_fmt_v(a)}" for a in args[used:]]
        out.append("%!(EXTRA " + ", ".join(extra) + ")")
    return "".join(out)


def _fmt_one(verb: str, v, flags: str, width: int, prec: int | None) -> str:
    if isinstance(v, (list, tuple)):            # fmt applies the verb to each element
        return "[" + " ".join(_fmt_one(verb, e, flags, width, prec) for e in v) + "]"
    if isinstance(v, EmptyStruct):
        return "{}"
    if isinstance(v, dict):
        return "map[" + " ".join(_fmt_one(verb, k, flags, width, prec) + ":" +
                                 _fmt_one(verb, v[k], flags, width, prec) for k in sorted(v)) + "]"
    s, numeric = _fmt_scalar(verb, v, flags, prec)
    if len(s) >= width:
        return s
    if "-" in flags:
        return s.ljust(width)
    if "0" in flags and numeric:                # zeros go after the sign: -0042
        sign = s[0] if s[0] in "+- " else ""
        return sign + s[len(sign):].rjust(width - len(sign), "0")
    return s.rjust(width)


def _fmt_scalar(verb: str, v, flags: str, prec: int | None) -> tuple[str, bool]:
    """One value with one verb: (text, is it a number, for zero padding)."""
    bad = f"%!{verb}(<nil>)" if v is None else f"%!{verb}({_go_type(v)}={_fmt_v(v)})"
    negative = v < 0 if isinstance(v, int) else isinstance(v, float) and math.copysign(1, v) < 0
    sign = "-" if negative else "+" if "+" in flags else " " if " " in flags else ""
    if v is None or isinstance(v, bool):
        ok = verb == "v" or (verb == "t" and v is not None)
        return (_fmt_v(v) if ok else bad), False
    if isinstance(v, int):
        if verb in "vdxXob":
            prefix = "0x" if "#" in flags and verb in "xX" else ""
            return sign + prefix + format(abs(v), "d" if verb == "v" else verb).zfill(prec or 0), True
        if verb in "cq":
            return (chr(v) if verb == "c" else _go_quote(chr(v), "'")), False
    elif isinstance(v, float):
        if verb in "vgGeEfF":
            if not math.isfinite(v):
                return _go_float(v), True
            if verb in "vgG" and prec is None:
                return sign + _go_float(abs(v)), True
            return sign + format(abs(v), f".{6 if prec is None else prec}{verb.replace('v', 'g')}"), True
    elif isinstance(v, str):
        s = v if prec is None else v[:prec]
        if verb in "vs":
            return s, False
        if verb == "q":
            return _go_quote(s), False
        if verb in "xX":                                # hex of the UTF-8 bytes
            return (s.encode().hex().upper() if verb == "X" else s.encode().hex()), False
    elif verb in "vs":
        return _fmt_v(v), False
    return bad, False


def _sprint(args: list) -> str:
    """fmt.Sprint: a space between operands when neither side is a string."""
    out = []
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(_fmt_v(a))
    return "".join(out)


# ================================================================================ functions
# A function gets Python values and raises _FuncError, which Go reports as "error calling
# NAME: MSG". Parameter types are checked the way Go's reflection checks them: "string",
# "int" and "[]string" must match; "any" is interface{}, where a missing value arrives as
# None; "value" is reflect.Value, where it stays _MISSING (so `and` can return it as is).

class _FuncError(Exception):
    pass


class _Missing:
    """Go's invalid reflect.Value: what a missing map key gives. Prints "<no value>"."""
    def __repr__(self): return "<no value>"


_MISSING = _Missing()
_NO_FINAL = object()            # nothing piped in from a previous command


def _nil(v):
    return None if v is _MISSING else v


def _truth(v) -> bool:
    """Go's truth: false, 0, nil, "" and empty lists and maps are false."""
    if isinstance(v, (bool, int, float, str, list, tuple, dict)):
        return bool(v)
    return v is not None and v is not _MISSING


def _basic_kind(v):
    return "bool" if isinstance(v, bool) else {int: "int", float: "float", str: "string"}.get(type(v))


def _eq(a, *others) -> bool:
    a = _nil(a)
    if not others:
        raise _FuncError("missing argument for comparison")
    for b in map(_nil, others):
        if _basic_kind(a) != _basic_kind(b):    # 1 vs "1" is an error, nil vs "x" false
            if a is not None and b is not None:
                raise _FuncError("incompatible types for comparison")
        elif _basic_kind(a) or a is None or b is None:
            if a == b:
                return True
        else:
            raise _FuncError(f"non-comparable type {_fmt_v(b)}: {_go_type(b)}")
    return False


def _lt(a, b) -> bool:
    a, b = _nil(a), _nil(b)
    k1, k2 = _basic_kind(a), _basic_kind(b)
    if k1 is None or k2 is None:
        raise _FuncError("invalid type for comparison")
    if k1 != k2:
        raise _FuncError("incompatible types for comparison")
    if k1 == "bool":
        raise _FuncError("invalid type for comparison")
    return a < b


def _len(v) -> int:
    if (v := _nil(v)) is None:
        raise _FuncError("len of nil pointer")
    if isinstance(v, str):
        return len(v.encode())          # Go strings are bytes: len "é" is 2
    if not isinstance(v, (list, tuple, dict)):
        raise _FuncError(f"len of type {_go_type(v)}")
    return len(v)


def _index_arg(i, cap: int) -> int:
    if (i := _nil(i)) is None or not isinstance(i, int) or isinstance(i, bool):
        raise _FuncError(f"cannot index slice/array with {'nil' if i is None else 'type ' + _go_type(i)}")
    if i < 0 or i > cap:
        raise _FuncError(f"index out of range: {i}")
    return i


def _index(item, *indexes):
    """index x 1 "k" is x[1]["k"]. A key that isn't there gives no value, not an error."""
    if _nil(item) is None:
        raise _FuncError("index of untyped nil")
    for i in indexes:
        if _nil(item) is None:
            raise _FuncError("index of nil pointer")
        if isinstance(item, (str, list, tuple)):
            seq = item.encode() if isinstance(item, str) else item   # a string gives a byte
            if (x := _index_arg(i, len(seq))) == len(seq):
                raise _FuncError(f"index out of range: {x}")
            item = seq[x]
        elif isinstance(item, dict):
            if not isinstance(i := _nil(i), str):
                raise _FuncError("value is nil; should be of type string" if i is None else
                                 f"value has type {_go_type(i)}; should be string")
            item = item.get(i, _MISSING)
        else:
            raise _FuncError(f"can't index item of type {_go_type(item)}")
    return item


def _slice(item, *indexes):
    """slice x 1 3 is x[1:3] (of the bytes, for a string)."""
    if (item := _nil(item)) is None:
        raise _FuncError("slice of untyped nil")
    if len(indexes) > 3 or (isinstance(item, str) and len(indexes) == 3):
        raise _FuncError("cannot 3-index slice a string" if len(indexes) == 3 else
                         f"too many slice indexes: {len(indexes)}")
    if not isinstance(item, (str, list, tuple)):
        raise _FuncError(f"can't slice item of type {_go_type(item)}")
    seq = item.encode() if isinstance(item, str) else item
    idx = [0, len(seq), len(seq)]
    for n, i in enumerate(indexes):
        idx[n] = _index_arg(i, len(seq))
    for lo, hi in ((idx[0], idx[1]), (idx[1], idx[2])):
        if lo > hi:
            raise _FuncError(f"invalid slice index: {lo} > {hi}")
    out = seq[idx[0]:idx[1]]
    return out.decode("utf-8", "replace") if isinstance(item, str) else list(out)


def _eval_args(args) -> str:
    """html and urlquery take anything: one string as is, else fmt.Sprint of all."""
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return _sprint(["<no value>" if a is None else a for a in args])


def _html(*args) -> str:
    s = _eval_args(args)
    for a, b in (("&", "&amp;"), ("'", "&#39;"), ('"', "&#34;"), ("<", "&lt;"), (">", "&gt;"), ("\0", "\ufffd")):
        s = s.replace(a, b)
    return s


class NilSlice(tuple):
    """A nil slice of a typed Go struct: prints `[]` like an empty one, but encodes as JSON
    null. (Data from JSON cannot tell a nil []string from a nil pointer; callers that know
    the type, e.g. `inspect`, put these in place of None.)"""


class NilMap(dict):
    """A nil map of a typed Go struct: prints `map[]`, encodes as JSON null."""


class EmptyStruct(dict):
    """Go's struct{}{}, the value type of a set such as ExposedPorts (map[string]struct{}):
    prints `{}` (a map would print `map[]`), encodes as JSON {}."""


class GoMap(dict):
    """A Go map (not a struct) in Docker's types: encoding/json writes its keys sorted."""


def _json_encode(v) -> str:
    """encoding/json as docker's `json` sets it up: compact, and SetEscapeHTML(false), so
    <, > and & stay as they are. Dict keys keep their order (docker encodes structs), but
    a GoMap's are sorted, as Go sorts a map's keys."""
    if isinstance(v, (NilSlice, NilMap)):
        return "null"
    if (v := _nil(v)) is None or isinstance(v, (bool, int)):
        return _json.dumps(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"json: unsupported value: {_go_float(v)}")
        return _go_float(v, json=True)          # 1 not 1.0, 1e+21 not 1e21
    if isinstance(v, str):                      # U+2028/9 are still escaped, as in Go
        return _json.dumps(v, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(map(_json_encode, v)) + "]"
    if isinstance(v, dict):
        items = sorted(v.items()) if isinstance(v, GoMap) else v.items()
        return "{" + ",".join(f"{_json_encode(str(k))}:{_json_encode(x)}" for k, x in items) + "}"
    raise ValueError(f"json: unsupported type: {type(v).__name__}")


def _docker_json(v) -> str:
    try:
        return _json_encode(v)
    except ValueError:
        return ""                               # docker ignores the encoder's error


def _runewise(fn, s: str) -> str:
    """Go changes case rune by rune: "ß" has no one-rune upper case, so it stays."""
    return "".join(c2 if len(c2 := fn(c)) == 1 else c for c in s)


def _title(s: str) -> str:
    """strings.Title: upper-case each word's first letter, leave the rest alone."""
    out, prev = [], " "
    for ch in s:
        word_start = not _alnum(prev) if prev.isascii() else prev.isspace()
        out.append(_runewise(str.title, ch) if word_start else ch)
        prev = ch
    return "".join(out)


def _pad(s: str, left: int, right: int) -> str:
    if left < 0 or right < 0:
        raise _FuncError("strings: negative Repeat count")
    return s and " " * left + s + " " * right   # an empty string stays empty


def _truncate(s: str, n: int) -> str:
    if len(b := s.encode()) < n:                # docker cuts bytes; we drop a cut character
        return s
    if n < 0:
        raise _FuncError(f"runtime error: slice bounds out of range [:{n}]")
    return b[:n].decode("utf-8", "ignore")


# name -> (function, fixed parameter types, type of the variadic rest or None)
_FUNCS = {
    "and": (None, ["value"], "value"),          # and/or are special: they short-circuit
    "or": (None, ["value"], "value"),
    "not": (lambda v: not _truth(v), ["value"], None),
    "len": (_len, ["value"], None),
    "index": (_index, ["value"], "value"),
    "slice": (_slice, ["value"], "value"),
    "eq": (_eq, ["value"], "value"),
    "ne": (lambda a, b: not _eq(a, b), ["value", "value"], None),
    "lt": (_lt, ["value", "value"], None),
    "le": (lambda a, b: _lt(a, b) or _eq(a, b), ["value", "value"], None),
    "gt": (lambda a, b: not (_lt(a, b) or _eq(a, b)), ["value", "value"], None),
    "ge": (lambda a, b: not _lt(a, b), ["value", "value"], None),
    "print": (lambda *a: _sprint(list(a)), [], "any"),
    "printf": (lambda f, *a: _sprintf(f, list(a)), ["string"], "any"),
    "println": (lambda *a: " ".join(map(_fmt_v, a)) + "\n", [], "any"),
    "html": (_html, [], "any"),
    "urlquery": (lambda *a: urllib.parse.quote_plus(_eval_args(a), safe=""), [], "any"),
    # docker's own, from docker/cli templates/templates.go
    "json": (_docker_json, ["any"], None),
    "split": (lambda s, sep: list(s) if sep == "" else s.split(sep), ["string", "string"], None),
    "join": (lambda items, sep: sep.join(items), ["[]string", "string"], None),
    "title": (_title, ["string"], None),
    "lower": (lambda s: _runewise(str.lower, s), ["string"], None),
    "upper": (lambda s: _runewise(str.upper, s), ["string"], None),
    "pad": (_pad, ["string", "int", "int"], None),
    "truncate": (_truncate, ["string", "int"], None),
}


# ================================================================================ evaluator

class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Template:
    """A parsed template: execute it with as many data values as you like."""

    def __init__(self, text: str, root: list[Node]):
        self.text, self.root = text, root

    def execute(self, data, missingkey: str = "default") -> str:
        """missingkey="error" makes a missing map key an error instead of <no value>, as
        docker inspect does when it falls back to raw JSON (Go's Option("missingkey=error"))."""
        if missingkey not in ("default", "invalid", "zero", "error"):
            raise ValueError(f"unknown missingkey option {missingkey!r}")
        return _State(self.text, data, missingkey == "error").run(self.root)


def parse(template: str) -> Template:
    """Parse once, execute many times. Raises TemplateError for a malformed template."""
    try:
        return Template(template, _Parser(template).parse())
    except RecursionError:          # ((((...)))) a thousand deep: Go gives up too
        raise TemplateError("template: :1: max expression depth exceeded") from None


def render(template: str, data, missingkey: str = "default") -> str:
    return parse(template).execute(data, missingkey)


class _State:
    def __init__(self, text: str, data, missing_is_error: bool):
        self.text, self.missing_is_error = text, missing_is_error
        self.data = _MISSING if data is None else data   # as Go's Execute(w, nil)
        self.vars = [["$", self.data]]        # a stack of [name, value]: $ is the data
        self.node: Node | None = None         # where we are, for error messages
        self.out: list[str] = []

    def run(self, root: list[Node]) -> str:
        self.walk(self.data, root)
        return "".join(self.out)

    def error(self, msg: str):
        pos = self.node.pos
        col = len(self.text[self.text.rfind("\n", 0, pos) + 1:pos].encode())   # Go counts bytes
        where = f'template: :{_line(self.text, pos)}:{col}: executing "" at <{self.node}>: {msg}'
        raise TemplateError(where.replace("\n", "\\n"))    # one line, even for `a\nb` literals

    def var(self, name: str) -> list:
        for entry in reversed(self.vars):     # the innermost declaration wins
            if entry[0] == name:
                return entry
        self.error(f"undefined variable: {name}")

    # --- statements
    def walk(self, dot, nodes: list[Node]) -> None:
        for node in nodes:
            self.node = node
            if isinstance(node, Text):
                self.out.append(node.text)
            elif isinstance(node, Action):
                value = self.eval_pipeline(dot, node.pipe)
                if not node.pipe.decl:        # {{$x := 1}} prints nothing
                    self.out.append("<no value>" if value is _MISSING else _fmt_v(value))
            elif isinstance(node, Keyword):
                raise _Break() if node.kind == "break" else _Continue()
            elif node.kind == "range":
                self.walk_range(dot, node)
            else:
                mark = len(self.vars)
                try:
                    value = self.eval_pipeline(dot, node.pipe)
                    if _truth(value):         # {{with}} also moves dot to the value
                        self.walk(value if node.kind == "with" else dot, node.body)
                    elif node.else_body is not None:
                        self.walk(dot, node.else_body)
                finally:
                    del self.vars[mark:]      # variables declared inside die at {{end}}

    def walk_range(self, dot, node: Control) -> None:
        mark = len(self.vars)
        try:
            value = self.eval_pipeline(dot, node.pipe)
            if isinstance(value, (list, tuple)):
                items = list(enumerate(value))
            elif isinstance(value, dict):     # like Go, visit a map's keys in sorted order
                items = [(k, value[k]) for k in sorted(value)]
            elif _nil(value) is None:         # nil acts as an empty map
                items = []
            else:
                self.error(f"range can't iterate over {_fmt_v(value)}")
            decl, body_mark = node.pipe.decl, len(self.vars)
            for key, elem in items:
                # {{range $e := .}} sets $e to the element; {{range $k, $e := .}} sets both.
                for name, v in zip(decl, (elem,) if len(decl) == 1 else (key, elem)):
                    self.var(name)[1] = v
                try:
                    self.walk(elem, node.body)
                except _Break:
                    break
                except _Continue:
                    pass
                finally:
                    del self.vars[body_mark:]
            if not items and node.else_body is not None:
                self.walk(dot, node.else_body)
        finally:
            del self.vars[mark:]

    # --- expressions
    def eval_pipeline(self, dot, pipe: Pipe):
        self.node = pipe
        value = _NO_FINAL
        for cmd in pipe.cmds:                 # each command gets the previous result
            value = self.eval_command(dot, cmd, value)   # as its last argument
        for name in pipe.decl:
            if pipe.is_assign:
                self.var(name)[1] = value
            else:
                self.vars.append([name, value])
        return value

    def not_a_function(self, args: list[Node], final) -> None:
        if len(args) > 1 or final is not _NO_FINAL:
            self.error(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot, cmd: Command, final):
        first = cmd.args[0]
        self.node = first
        if isinstance(first, Identifier):
            return self.call(dot, first.name, cmd, cmd.args, final)
        if isinstance(first, (Field, Variable, Chain)):
            return self.eval_operand(dot, first, cmd.args, final)
        self.not_a_function(cmd.args, final)
        if isinstance(first, Pipe):
            return self.eval_pipeline(dot, first)
        if first.kind == "nil":
            self.error("nil is not a command")
        return dot if first.kind == "dot" else first.value

    def eval_operand(self, dot, node: Field | Variable | Chain, args, final):
        """.A.B, $x.A.B or (pipeline).A.B: find the start, then walk the field names."""
        self.node = node
        if isinstance(node, Field):
            return self.eval_fields(dot, node.names, args, final)
        if isinstance(node, Variable):
            value = self.var(node.names[0])[1]
            if len(node.names) == 1:
                if args is not None:
                    self.not_a_function(args, final)
                return value
            return self.eval_fields(value, node.names[1:], args, final)
        if isinstance(node.node, Literal) and node.node.kind == "nil":
            self.error(f"indirection through explicit nil in {node}")
        receiver = self.eval_arg(dot, None, node.node)
        self.node = node
        return self.eval_fields(receiver, node.names, args, final)

    def eval_fields(self, receiver, names: list[str], args, final):
        for i, name in enumerate(names):
            if receiver is _MISSING:          # .Missing.Deeper is still just no value
                if self.missing_is_error:
                    self.error(f'nil data; no entry for key "{name}"')
                return _MISSING
            if receiver is None:
                self.error(f"nil pointer evaluating interface {{}}.{name}")
            if not isinstance(receiver, dict):
                self.error(f"can't evaluate field {name} in type {_go_type(receiver)}")
            if i == len(names) - 1 and ((args is not None and len(args) > 1) or final is not _NO_FINAL):
                self.error(f"{name} is not a method but has arguments")   # only Go methods take args
            if name not in receiver and self.missing_is_error:
                self.error(f'map has no entry for key "{name}"')
            receiver = receiver.get(name, _MISSING)
        return receiver

    def call(self, dot, name: str, node: Node, args, final):
        fn, params, rest = _FUNCS[name]
        args = args[1:] if args is not None else []
        n_in = len(args) + (final is not _NO_FINAL)
        if rest is not None and n_in < len(params):
            self.error(f"wrong number of args for {name}: want at least {len(params)} got {len(args)}")
        if rest is None and n_in != len(params):
            self.error(f"wrong number of args for {name}: want {len(params)} got {n_in}")
        if fn is None:                        # and/or: stop at the first false/true one
            value = _MISSING
            for arg in args:
                value = self.eval_arg(dot, "value", arg)
                if _truth(value) == (name == "or"):
                    return value
            return value if final is _NO_FINAL else final
        argv = [self.eval_arg(dot, params[i] if i < len(params) else rest, a) for i, a in enumerate(args)]
        if final is not _NO_FINAL:
            argv.append(self.check_type(final, params[n_in - 1] if n_in <= len(params) else rest))
        try:
            return fn(*argv)
        except _FuncError as e:
            self.node = node
            self.error(f"error calling {name}: {e}")

    def eval_arg(self, dot, typ: str | None, node: Node):
        """An argument's value, checked against the parameter's type."""
        self.node = node
        if isinstance(node, (Field, Variable, Chain)):
            return self.check_type(self.eval_operand(dot, node, None, _NO_FINAL), typ)
        if isinstance(node, Pipe):
            return self.check_type(self.eval_pipeline(dot, node), typ)
        if isinstance(node, Identifier):
            return self.check_type(self.call(dot, node.name, node, None, _NO_FINAL), typ)
        if node.kind == "dot":
            return self.check_type(dot, typ)
        if node.kind == "nil":
            if typ in ("string", "int"):
                self.error(f"cannot assign nil to {typ}")
            return [] if typ == "[]string" else None
        if typ == "int" and node.int_value is None:   # a constant must fit the parameter
            self.error(f"expected integer; found {node}")
        if typ == "string" and node.kind != "string":
            self.error(f"expected string; found {node}")
        if typ == "[]string":
            self.error(f"can't handle {node} for arg of type []string")
        return node.int_value if typ == "int" else node.value

    def check_type(self, value, typ: str | None):
        if typ in (None, "value"):
            return value
        if value is _MISSING:
            if typ in ("string", "int"):      # interface{} and slices can be nil; these can't
                self.error(f"invalid value; expected {typ}")
            return None
        ok = {"any": True, "string": isinstance(value, str),
              "int": isinstance(value, int) and not isinstance(value, bool),
              "[]string": isinstance(value, (list, tuple)) and all(isinstance(s, str) for s in value)}[typ]
        if not ok:
            self.error(f"wrong type for value; expected {typ}; got {_go_type(value)}")
        return value
