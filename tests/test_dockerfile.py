"""The Dockerfile parser (minidocker.compat.build.dockerfile): pure logic, no root needed.

Expected values follow BuildKit's frontend (moby/buildkit frontend/dockerfile) and
Docker's documentation; error texts are Docker's, prefixed with file:line.
"""
from __future__ import annotations

import json

import pytest

from minidocker.compat.build.dockerfile import (
    DEFAULT_SHELL, Dockerfile, DockerfileError, Instruction, cmd_shell_form, expand, expand_instruction, expand_words,
    instruction_argv, parse, parse_duration, parse_instruction, parse_ports, platform_args, resolve_arg,
    resolve_stage_ref, stage_for_target)
from minidocker.errors import MinidockerError

SEED = """\
FROM golang:1.20 as builder
WORKDIR /app
COPY . .
RUN go build -o main .

# 此处不会保留任何上面阶段的文件，但可以访问其快照
FROM alpine:latest
WORKDIR /app
COPY --from=builder /app/main .

CMD ["./main"]
"""


def one(text: str, **kw) -> Instruction:
    """Parse `FROM scratch` + text; return the single instruction of the stage."""
    df = parse("FROM scratch\n" + text, **kw)
    (inst,) = df.stages[0].instructions
    return inst


def error_of(text: str, **kw) -> str:
    with pytest.raises(DockerfileError) as exc:
        parse(text, **kw)
    return str(exc.value)


# --------------------------------------------------------------------------
# The seed's multi-stage example
# --------------------------------------------------------------------------

def test_seed_multistage_example():
    df = parse(SEED)
    assert isinstance(df, Dockerfile)
    assert [s.name for s in df.stages] == ["builder", None]
    assert [s.index for s in df.stages] == [0, 1]
    assert [s.base for s in df.stages] == ["golang:1.20", "alpine:latest"]
    assert [s.line for s in df.stages] == [1, 7]
    assert df.stages[0].original == "FROM golang:1.20 as builder"

    builder, final = df.stages
    assert [(i.cmd, i.line) for i in builder.instructions] == [("WORKDIR", 2), ("COPY", 3), ("RUN", 4)]
    assert builder.instructions[2].args == ["go build -o main ."]
    assert not builder.instructions[2].exec_form

    workdir, copy, cmd = final.instructions
    assert workdir.args == ["/app"]
    assert copy.flags == {"from": "builder"}
    assert copy.sources == ["/app/main"] and copy.dest == "."
    assert copy.original == "COPY --from=builder /app/main ."
    assert (cmd.cmd, cmd.line, cmd.args, cmd.exec_form) == ("CMD", 11, ["./main"], True)

    assert resolve_stage_ref(df, copy.flags["from"], current=1) == 0
    assert stage_for_target(df, "builder") == 0
    assert df.total_steps() == 8           # docker: Step 1/8 ... Step 8/8
    assert df.global_args == [] and df.meta_args == []


def test_result_is_json_serializable():
    data = parse(SEED).to_dict()
    again = json.loads(json.dumps(data))
    assert again["stages"][1]["instructions"][1]["flags"] == {"from": "builder"}


# --------------------------------------------------------------------------
# Lines: comments, continuations, directives
# --------------------------------------------------------------------------

def test_instructions_are_case_insensitive():
    df = parse("from busybox\nrun echo hi\nCmd [\"sh\"]\nEnTrYpOiNt echo\n")
    assert df.stages[0].base == "busybox"
    assert [i.cmd for i in df.stages[0].instructions] == ["RUN", "CMD", "ENTRYPOINT"]
    assert df.stages[0].instructions[0].original == "run echo hi"   # as written


def test_comments_and_blank_lines_are_skipped():
    df = parse("# top comment\n\nFROM busybox\n   # indented comment\n\nRUN echo a # not a comment\n")
    (run,) = df.stages[0].instructions
    assert run.args == ["echo a # not a comment"]
    assert run.line == 6


def test_line_continuation_joins_lines_and_keeps_first_line_number():
    df = parse("FROM busybox\nRUN apt-get update \\\n    && apt-get install -y curl\nUSER nobody\n")
    run, user = df.stages[0].instructions
    assert run.original == "RUN apt-get update     && apt-get install -y curl"
    assert run.args == ["apt-get update     && apt-get install -y curl"]
    assert (run.line, run.end_line) == (2, 3)
    assert user.line == 4


def test_continuation_allows_trailing_whitespace_after_escape():
    inst = one("RUN echo hello  \\  \nworld\n")
    assert inst.args == ["echo hello  world"]


def test_comment_lines_inside_a_continued_instruction_are_dropped():
    inst = one("RUN echo one \\\n# a comment\n    # indented comment\n  two\n")
    assert inst.args == ["echo one   two"]
    assert (inst.line, inst.end_line) == (2, 5)


def test_empty_continuation_lines_are_allowed_with_a_warning():
    df = parse("FROM busybox\nRUN echo hi \\\n\n world\n")
    (run,) = df.stages[0].instructions
    assert run.args == ["echo hi  world"]
    assert any("empty continuation line" in w for w in df.warnings)


def test_escaped_escape_at_end_of_line_is_not_a_continuation():
    df = parse("FROM busybox\nRUN echo a\\\\\nRUN echo b\n")
    assert [i.args for i in df.stages[0].instructions] == [["echo a\\\\"], ["echo b"]]


def test_continuation_at_end_of_file():
    inst = one("RUN echo a \\\n")
    assert inst.args == ["echo a"]


def test_crlf_line_endings_and_bom():
    df = parse("\ufeffFROM busybox\r\nRUN echo a \\\r\n  b\r\n")
    assert df.stages[0].base == "busybox"
    assert df.stages[0].instructions[0].args == ["echo a   b"]


def test_syntax_and_escape_directives_are_recorded():
    df = parse("# syntax=docker/dockerfile:1\n# escape=\\\nFROM busybox\n")
    assert df.directives == {"syntax": "docker/dockerfile:1", "escape": "\\"}
    assert df.escape == "\\"


def test_escape_directive_backtick_windows_style():
    text = "# escape=`\n\nFROM microsoft/nanoserver\nCOPY testfile.txt c:\\\nRUN dir c:\\\nRUN echo a `\n    b\n"
    df = parse(text)
    assert df.escape == "`" and df.directives == {"escape": "`"}
    copy, run1, run2 = df.stages[0].instructions
    assert copy.sources == ["testfile.txt"] and copy.dest == "c:\\"   # \ is no longer special
    assert run1.args == ["dir c:\\"] and run1.line == 5
    assert run2.args == ["echo a     b"] and (run2.line, run2.end_line) == (6, 7)
    assert copy.escape == "`"


def test_directive_key_is_case_insensitive():
    assert parse("# ESCAPE=`\nFROM busybox\n").escape == "`"
    assert parse("#Escape = `\nFROM busybox\n").escape == "`"


def test_directives_only_count_at_the_very_top():
    # after a comment, a blank line or an instruction, `# escape=` is just a comment
    assert parse("# a comment\n# escape=`\nFROM busybox\n").escape == "\\"
    assert parse("\n# escape=`\nFROM busybox\n").escape == "\\"
    assert parse("FROM busybox\n# escape=`\n").escape == "\\"
    # an unknown directive ends the directives too
    df = parse("# foo=bar\n# escape=`\nFROM busybox\n")
    assert df.escape == "\\" and df.directives == {}


def test_directive_errors():
    assert error_of("# escape=x\nFROM busybox\n") == \
        "Dockerfile:1: invalid escape token 'x' does not match ` or \\"
    assert error_of("# escape=`\n# escape=\\\nFROM busybox\n") == \
        "Dockerfile:2: only one escape parser directive can be used"


# --------------------------------------------------------------------------
# Exec form and shell form
# --------------------------------------------------------------------------

@pytest.mark.parametrize("cmd", ["RUN", "CMD", "ENTRYPOINT"])
def test_exec_form_and_shell_form(cmd):
    exec_ = one(f'{cmd} [ "echo" , "hello world" ]')
    assert exec_.exec_form and exec_.args == ["echo", "hello world"]
    shell = one(f"{cmd} echo 'hello  world' $HOME")
    assert not shell.exec_form and shell.args == ["echo 'hello  world' $HOME"]


def test_malformed_json_falls_back_to_shell_form():
    for text in ["CMD ['single', 'quotes']", 'CMD ["unterminated"', 'CMD [not json]', 'CMD ["a"] trailing']:
        inst = one(text)
        assert not inst.exec_form
        assert inst.args == [text[4:]]
        assert instruction_argv(inst) == ["/bin/sh", "-c", text[4:]]


def test_json_array_of_non_strings_is_an_error():
    assert error_of('FROM busybox\nENTRYPOINT ["sleep", 10]\n') == \
        "Dockerfile:2: when using JSON array syntax, arrays must be comprised of strings only"


def test_empty_json_array():
    inst = one("ENTRYPOINT []")
    assert inst.exec_form and inst.args == []
    assert instruction_argv(inst) == []


def test_instruction_argv_and_cmd_shell_form():
    assert cmd_shell_form(None, "echo hi") == ["/bin/sh", "-c", "echo hi"]
    assert cmd_shell_form([], "echo hi") == DEFAULT_SHELL + ["echo hi"]
    assert cmd_shell_form(["/bin/bash", "-eu", "-c"], "echo hi") == ["/bin/bash", "-eu", "-c", "echo hi"]
    assert instruction_argv(one("CMD echo $HOME")) == ["/bin/sh", "-c", "echo $HOME"]
    assert instruction_argv(one("CMD echo hi"), ["pwsh", "-c"]) == ["pwsh", "-c", "echo hi"]
    assert instruction_argv(one('CMD ["echo", "$HOME"]'), ["pwsh", "-c"]) == ["echo", "$HOME"]


def test_shell_instruction_must_be_json():
    inst = one('SHELL ["/bin/bash", "-c"]')
    assert inst.exec_form and inst.args == ["/bin/bash", "-c"]
    assert error_of("FROM busybox\nSHELL /bin/bash -c\n") == \
        "Dockerfile:2: SHELL requires the arguments to be in JSON form"
    assert error_of("FROM busybox\nSHELL []\n") == "Dockerfile:2: SHELL requires at least one argument"


# --------------------------------------------------------------------------
# Each instruction
# --------------------------------------------------------------------------

def test_from_forms():
    df = parse("FROM busybox:1.36\nFROM busybox@sha256:" + "a" * 64 + "\nFROM scratch\n"
               "FROM --platform=linux/arm64 alpine AS Small\nfrom small as again\n")
    s = df.stages
    assert s[0].base == "busybox:1.36" and s[0].name is None
    assert s[1].base == "busybox@sha256:" + "a" * 64
    assert s[2].is_scratch and not s[0].is_scratch
    assert (s[3].name, s[3].platform, s[3].base) == ("small", "linux/arm64", "alpine")
    assert (s[4].name, s[4].base, s[4].base_stage) == ("again", "small", 3)   # FROM an earlier stage


def test_from_platform_uses_automatic_platform_args():
    df = parse("FROM --platform=$BUILDPLATFORM busybox AS b\nFROM busybox:${TARGETARCH}\n",
               platform="linux/arm64")
    assert df.stages[0].platform == "linux/arm64"
    assert df.stages[1].base == "busybox:arm64"
    assert platform_args("linux/arm/v7")["TARGETVARIANT"] == "v7"


def test_from_errors():
    assert error_of("FROM\n") == "Dockerfile:1: FROM requires either one or three arguments"
    assert error_of("FROM a b\n") == "Dockerfile:1: FROM requires either one or three arguments"
    assert error_of("FROM a AS b c\n") == "Dockerfile:1: FROM requires either one or three arguments"
    assert error_of("FROM a AS 1st\n") == \
        'Dockerfile:1: invalid name for build stage: "1st", name can\'t start with a number or contain symbols'
    assert error_of("FROM a AS my/stage\n").startswith("Dockerfile:1: invalid name for build stage")
    assert error_of("FROM --foo=bar busybox\n") == "Dockerfile:1: unknown flag: --foo"


def test_env_key_value_and_legacy_forms():
    inst = one('ENV k=v k2="v 2" k3=v\\ 3')
    assert inst.pairs == [("k", "v"), ("k2", '"v 2"'), ("k3", "v\\ 3")]   # raw: substituted later
    assert inst.args == ["k", "v", "k2", '"v 2"', "k3", "v\\ 3"]
    legacy = one("ENV greeting hello big   world")
    assert legacy.pairs == [("greeting", "hello big   world")]
    assert expand_instruction(inst, {}).pairs == [("k", "v"), ("k2", "v 2"), ("k3", "v 3")]
    assert expand_instruction(legacy, {}).pairs == [("greeting", "hello big   world")]


def test_env_errors():
    assert error_of("FROM busybox\n\n\n\nENV onlykey\n") == "Dockerfile:5: ENV must have two arguments"
    assert error_of("FROM busybox\nENV\n") == "Dockerfile:2: ENV requires at least one argument"
    assert error_of("FROM busybox\nENV a=1 b\n") == \
        'Dockerfile:2: Syntax error - can\'t find = in "b". Must be of the form: name=value'
    assert error_of("FROM busybox\nENV =x\n") == "Dockerfile:2: ENV names can not be blank"


def test_label():
    inst = one('LABEL "com.example.vendor"="ACME Inc" version=1.0 description="a\\"b"')
    assert expand_instruction(inst, {}).pairs == [
        ("com.example.vendor", "ACME Inc"), ("version", "1.0"), ("description", 'a"b')]
    assert one("LABEL maintainer someone <a@b.c>").pairs == [("maintainer", "someone <a@b.c>")]


def test_arg_forms():
    inst = one('ARG A B=2 C="x y" D=')
    assert inst.pairs == [("A", None), ("B", "2"), ("C", '"x y"'), ("D", "")]
    assert error_of("FROM busybox\nARG\n") == "Dockerfile:2: ARG requires at least one argument"
    assert error_of("FROM busybox\nARG =1\n") == "Dockerfile:2: ARG names can not be blank"


def test_copy_and_add_flags():
    copy = one("COPY --from=builder --chown=app:app --chmod=0755 a b /dst/")
    assert copy.flags == {"from": "builder", "chown": "app:app", "chmod": "0755"}
    assert (copy.sources, copy.dest) == (["a", "b"], "/dst/")
    add = one("ADD --chown=1000 --chmod=644 app.tar.gz /opt/")
    assert add.flags == {"chown": "1000", "chmod": "644"}
    assert (add.sources, add.dest) == (["app.tar.gz"], "/opt/")
    assert one("COPY --link --exclude=*.md --exclude=x . /").flags == {"link": True, "exclude": ["*.md", "x"]}
    assert one('COPY --chown="a b" x /').flags == {"chown": "a b"}      # quotes in a flag value


def test_copy_json_form_and_double_dash():
    inst = one('COPY ["my file.txt", "other file", "/dest dir/"]')
    assert inst.exec_form and inst.sources == ["my file.txt", "other file"] and inst.dest == "/dest dir/"
    inst = one("COPY -- --weird-name /dst")
    assert inst.flags == {} and inst.sources == ["--weird-name"]


def test_flag_errors():
    assert error_of("FROM busybox\nCOPY --foo=bar a b\n") == "Dockerfile:2: unknown flag: --foo"
    assert error_of("FROM busybox\nADD --from=x a b\n") == "Dockerfile:2: unknown flag: --from"
    assert error_of("FROM busybox\nRUN --mount type=bind echo\n").endswith("missing a value on flag: --mount")
    assert error_of("FROM busybox\nCOPY --from=a --from=b x y\n") == \
        "Dockerfile:2: duplicate flag specified: --from"
    assert error_of("FROM busybox\nCOPY --link=maybe a b\n") == \
        "Dockerfile:2: expecting boolean value for flag --link, not: maybe"
    assert error_of("FROM busybox\nENV --x=1 a=b\n") == "Dockerfile:2: unknown flag: --x"
    assert error_of("FROM busybox\nCOPY onlyone\n") == (
        "Dockerfile:2: COPY requires at least two arguments, but only one was provided. "
        "Destination could not be determined")


def test_run_flags():
    inst = one("RUN --mount=type=cache,target=/root/.cache --mount=type=tmpfs,target=/tmp --network=none make")
    assert inst.flags == {"mount": ["type=cache,target=/root/.cache", "type=tmpfs,target=/tmp"], "network": "none"}
    assert inst.args == ["make"]
    assert error_of("FROM busybox\nRUN --network=bridge make\n") == \
        'Dockerfile:2: invalid network mode "bridge"'


def test_expose():
    inst = one("EXPOSE 80 443/udp 8000-8001")
    assert inst.args == ["80", "443/udp", "8000-8001"]
    assert parse_ports(inst.args) == ["80/tcp", "443/udp", "8000/tcp", "8001/tcp"]
    assert parse_ports(["53/UDP", "8080:80"]) == ["53/udp", "80/tcp"]
    with pytest.raises(DockerfileError, match="invalid proto: xyz"):
        parse_ports(["80/xyz"])
    with pytest.raises(DockerfileError, match="invalid containerPort: http"):
        parse_ports(["http"])
    assert error_of("FROM busybox\nEXPOSE\n") == "Dockerfile:2: EXPOSE requires at least one argument"


def test_healthcheck():
    inst = one("HEALTHCHECK --interval=5m --timeout=3s --start-period=1m30s --start-interval=500ms "
               "--retries=5 CMD curl -f http://localhost/ || exit 1")
    assert inst.healthcheck == {
        "Test": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
        "Interval": 300_000_000_000,
        "Timeout": 3_000_000_000,
        "StartPeriod": 90_000_000_000,
        "StartInterval": 500_000_000,
        "Retries": 5,
    }
    assert one('HEALTHCHECK CMD ["/bin/check", "-q"]').healthcheck == {"Test": ["CMD", "/bin/check", "-q"]}
    assert one("healthcheck none").healthcheck == {"Test": ["NONE"]}
    # zero means "the default" and is left out, as in the image config
    assert one("HEALTHCHECK --interval=0s --retries=0 CMD true").healthcheck == {"Test": ["CMD-SHELL", "true"]}


def test_healthcheck_errors():
    def err(line):
        return error_of("FROM busybox\n" + line + "\n")
    assert err("HEALTHCHECK NONE x") == "Dockerfile:2: HEALTHCHECK NONE takes no arguments"
    assert err("HEALTHCHECK CMD") == "Dockerfile:2: Missing command after HEALTHCHECK CMD"
    assert err("HEALTHCHECK") == "Dockerfile:2: HEALTHCHECK requires at least one argument"
    assert err("HEALTHCHECK CONNECT TCP 7000") == 'Dockerfile:2: Unknown type "CONNECT" in HEALTHCHECK (try CMD)'
    assert err("HEALTHCHECK --interval=abc CMD true") == 'Dockerfile:2: time: invalid duration "abc"'
    assert err("HEALTHCHECK --interval=10 CMD true") == 'Dockerfile:2: time: missing unit in duration "10"'
    assert err("HEALTHCHECK --timeout=10us CMD true") == 'Dockerfile:2: Interval "timeout" cannot be less than 1ms'
    assert err("HEALTHCHECK --retries=-1 CMD true") == "Dockerfile:2: --retries cannot be negative (-1)"
    assert err("HEALTHCHECK --retries=x CMD true").endswith('parsing "x": invalid syntax')


@pytest.mark.parametrize("text,ns", [
    ("0", 0), ("30s", 30_000_000_000), ("1m30s", 90_000_000_000), ("1.5h", 5_400_000_000_000),
    ("250ms", 250_000_000), ("10us", 10_000), ("10µs", 10_000), ("7ns", 7), (".5s", 500_000_000),
    ("-1s", -1_000_000_000),
])
def test_parse_duration(text, ns):
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text", ["", "s", "1", "1x", "1.s.", "."])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_single_argument_instructions():
    assert one("USER app:staff").args == ["app:staff"]
    assert one("WORKDIR /path with space").args == ["/path with space"]
    assert one("STOPSIGNAL SIGQUIT").args == ["SIGQUIT"]
    for cmd in ("USER", "WORKDIR", "STOPSIGNAL", "MAINTAINER"):
        assert error_of(f"FROM busybox\n{cmd}\n") == f"Dockerfile:2: {cmd} requires exactly one argument"


def test_volume():
    assert one('VOLUME ["/data", "/var/log"]').args == ["/data", "/var/log"]
    assert one("VOLUME /a /b").args == ["/a", "/b"]
    assert error_of('FROM busybox\nVOLUME ["/a", " "]\n') == \
        "Dockerfile:2: VOLUME specified can not be an empty string"
    assert error_of("FROM busybox\nVOLUME\n") == "Dockerfile:2: VOLUME requires at least one argument"


def test_onbuild_records_the_trigger():
    inst = one("ONBUILD RUN echo $HOME")
    assert inst.trigger == "RUN echo $HOME" and inst.args == ["RUN echo $HOME"]
    assert one("onbuild COPY --chown=1 . /app").trigger == "COPY --chown=1 . /app"
    trigger = parse_instruction(inst.trigger)           # what a later build FROM this image runs
    assert (trigger.cmd, trigger.args) == ("RUN", ["echo $HOME"])
    assert error_of("FROM busybox\nONBUILD ONBUILD RUN x\n") == \
        "Dockerfile:2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
    assert error_of("FROM busybox\nONBUILD FROM x\n") == "Dockerfile:2: FROM isn't allowed as an ONBUILD trigger"
    assert error_of("FROM busybox\nONBUILD\n") == "Dockerfile:2: ONBUILD requires at least one argument"


def test_maintainer_is_recorded_with_a_deprecation_warning():
    df = parse("FROM busybox\nMAINTAINER Jane Doe <jane@example.com>\n")
    (inst,) = df.stages[0].instructions
    assert inst.args == ["Jane Doe <jane@example.com>"]
    assert any("deprecated" in w for w in df.warnings)


# --------------------------------------------------------------------------
# ARG scoping
# --------------------------------------------------------------------------

def test_global_arg_in_from_with_default_and_build_arg():
    text = "ARG VERSION=1.36\nARG IMAGE=busybox:${VERSION}\nFROM ${IMAGE}\nFROM alpine:$VERSION\n"
    df = parse(text)
    assert [s.base for s in df.stages] == ["busybox:1.36", "alpine:1.36"]
    assert df.stages[0].base_raw == "${IMAGE}"
    assert df.global_args == [("VERSION", "1.36"), ("IMAGE", "busybox:${VERSION}")]
    assert [i.line for i in df.meta_args] == [1, 2]
    df = parse(text, build_args={"VERSION": "1.35"})
    assert [s.base for s in df.stages] == ["busybox:1.35", "alpine:1.35"]
    assert df.global_arg_values["VERSION"] == "1.35"
    df = parse(text, build_args={"IMAGE": "debian"})
    assert df.stages[0].base == "debian"
    assert df.total_steps() == 4


def test_global_arg_without_default_takes_the_build_arg():
    df = parse("ARG TAG\nFROM busybox:${TAG:-latest}\n")
    assert df.stages[0].base == "busybox:latest"
    assert parse("ARG TAG\nFROM busybox:${TAG:-latest}\n", {"TAG": "1.36"}).stages[0].base == "busybox:1.36"


def test_build_arg_not_declared_is_not_visible_in_from():
    assert error_of("FROM $IMAGE\n", build_args={"IMAGE": "busybox"}) == \
        "Dockerfile:1: base name ($IMAGE) should not be blank"


def test_global_args_are_not_substituted_in_stage_instructions_at_parse_time():
    df = parse("ARG V=1\nFROM busybox\nRUN echo $V\nWORKDIR /app/$V\n")
    run, workdir = df.stages[0].instructions
    assert run.args == ["echo $V"] and workdir.args == ["/app/$V"]
    # The builder substitutes with the stage's environment, which has no V ...
    assert expand_instruction(workdir, {}).args == ["/app/"]
    # ... unless the stage re-declares `ARG V`, which picks up the global value:
    assert resolve_arg("V", None, {}, df.global_arg_values, env={}) == "1"


def test_resolve_arg_in_a_stage():
    globals_ = parse("ARG V=1\nFROM busybox\n").global_arg_values
    assert resolve_arg("V", None, {}, globals_, {}) == "1"                 # ARG V: global value
    assert resolve_arg("V", None, {"V": "9"}, globals_, {}) == "9"         # --build-arg wins
    assert resolve_arg("V", "2", {}, globals_, {}) == "2"                  # own default wins over global
    assert resolve_arg("V", "2", {"V": "9"}, globals_, {}) == "9"
    assert resolve_arg("W", None, {}, globals_, {}) is None                # declared, no value
    assert resolve_arg("W", "${BASE:-/opt}/w", {}, globals_, {"BASE": "/srv"}) == "/srv/w"
    assert resolve_arg("TARGETOS", None, {}, globals_, {}) == "linux"      # automatic platform ARG


def test_only_arg_may_precede_from():
    assert error_of("RUN echo hi\nFROM busybox\n") == "Dockerfile:1: no build stage in current context"
    assert error_of("ARG A=1\n# comment\nENV B=2\nFROM busybox\n") == \
        "Dockerfile:3: no build stage in current context"
    assert error_of("ARG A=1\n") == "dockerfile contains no stages to build"


# --------------------------------------------------------------------------
# Variable substitution
# --------------------------------------------------------------------------

ENV = {"VAR": "value", "EMPTY": "", "LIST": "a b", "HOME": "/root"}


@pytest.mark.parametrize("text,expected", [
    ("$VAR", "value"),
    ("${VAR}", "value"),
    ("${VAR}x", "valuex"),
    ("$VARx", ""),                       # the name is VARx, unset
    ("pre-$VAR-post", "pre-value-post"),
    ("$UNSET", ""),
    ("${UNSET:-default}", "default"),
    ("${EMPTY:-default}", "default"),
    ("${VAR:-default}", "value"),
    ("${UNSET-default}", "default"),
    ("${EMPTY-default}", ""),            # set (to empty): no default without ':'
    ("${VAR:+alt}", "alt"),
    ("${EMPTY:+alt}", ""),
    ("${EMPTY+alt}", "alt"),
    ("${UNSET+alt}", ""),
    ("${UNSET:-${VAR}}", "value"),       # nested
    ("${UNSET:-$HOME/x}", "/root/x"),
    ("${UNSET:-a b}", "a b"),
    ("\\$VAR", "$VAR"),                  # escaped $ is literal
    ("\\${VAR}", "${VAR}"),
    ("'$VAR'", "$VAR"),                  # single quotes: no expansion
    ('"$VAR"', "value"),                 # double quotes: expansion
    ('"\\$VAR"', "$VAR"),
    ('"a  b"', "a  b"),
    ("a\\ b", "a b"),
    ('"it\'s"', "it's"),
    ("'say \"hi\"'", 'say "hi"'),
    ("$", "$"),
    ("a$", "a$"),
    ("$1", ""),
    ("${VAR#val}", "ue"),
    ("${VAR%ue}", "val"),
    ("${HOME/root/srv}", "/srv"),
])
def test_expand_table(text, expected):
    assert expand(text, ENV) == expected


@pytest.mark.parametrize("text,message", [
    ("${VAR", "missing '}'"),
    ("${}", "bad substitution"),
    ("${:-x}", "bad substitution"),
    ("'open", "matching single-quote"),
    ('"open', "matching double-quote"),
    ("${UNSET?must be set}", "UNSET: must be set"),
    ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
    ("${VAR:x}", "unsupported modifier (:x) in substitution"),
])
def test_expand_errors(text, message):
    with pytest.raises(DockerfileError, match="failed to process") as exc:
        expand(text, ENV)
    assert message in str(exc.value)


def test_expand_words_splits_on_unquoted_whitespace():
    assert expand_words('a "b c" d', ENV) == ["a", "b c", "d"]
    assert expand_words("$LIST", ENV) == ["a", "b"]          # a value's spaces split words
    assert expand_words('"$LIST"', ENV) == ["a b"]
    assert expand_words("x\\ y z", ENV) == ["x y", "z"]
    assert expand_words("'$VAR' $VAR", ENV) == ["$VAR", "value"]
    assert expand_words("  ", ENV) == []


def test_expand_with_backtick_escape():
    assert expand("`$VAR", ENV, escape="`") == "$VAR"
    assert expand("c:\\$VAR", ENV, escape="`") == "c:\\value"


def test_expand_instruction_substitutes_only_where_docker_does():
    env = {"APP": "/srv/app", "U": "1000", "PORTS": "80 443/udp", "SIG": "SIGINT"}
    df = parse("FROM busybox\n"
               "COPY --chown=$U:$U --from=builder src/$APP ${APP}/\n"
               "RUN echo $APP\n"
               "CMD echo $APP\n"
               "WORKDIR $APP\n"
               "USER ${U}\n"
               "EXPOSE $PORTS 8080\n"
               "VOLUME $APP/data\n"
               "STOPSIGNAL $SIG\n"
               'ENTRYPOINT ["echo", "$APP"]\n')
    insts = [expand_instruction(i, env) for i in df.stages[0].instructions]
    copy, run, cmd, workdir, user, expose, volume, stopsignal, entrypoint = insts
    assert copy.flags == {"chown": "1000:1000", "from": "builder"}
    assert copy.sources == ["src//srv/app"] and copy.dest == "/srv/app/"
    assert run.args == ["echo $APP"] and cmd.args == ["echo $APP"]     # the shell expands these
    assert entrypoint.args == ["echo", "$APP"]
    assert workdir.args == ["/srv/app"] and user.args == ["1000"]
    assert expose.args == ["80", "443/udp", "8080"]
    assert volume.args == ["/srv/app/data"] and stopsignal.args == ["SIGINT"]
    # the parsed instructions themselves are untouched
    assert df.stages[0].instructions[3].args == ["$APP"]


def test_env_line_is_substituted_with_the_environment_before_it():
    inst = one("ENV abc=bye def=$abc")
    assert expand_instruction(inst, {"abc": "hello"}).pairs == [("abc", "bye"), ("def", "hello")]


def test_expand_instruction_error_is_located():
    df = parse("FROM busybox\n\nWORKDIR ${X\n")
    with pytest.raises(DockerfileError) as exc:
        expand_instruction(df.stages[0].instructions[0], {})
    assert str(exc.value).startswith('Dockerfile:3: failed to process "${X": ')


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------

def test_unknown_instruction_names_file_and_line():
    text = "FROM busybox\n# c\n\nRUN echo \\\n  a\nUSER x\nRUNN echo hi\n"
    assert error_of(text) == "Dockerfile:7: unknown instruction: RUNN"
    assert error_of("FROM busybox\ncopyy a b\n") == "Dockerfile:2: unknown instruction: copyy"


def test_error_in_a_continued_instruction_points_at_its_first_line():
    assert error_of("FROM busybox\nENV \\\n  onlykey\n") == "Dockerfile:2: ENV must have two arguments"


def test_error_uses_the_given_filename():
    with pytest.raises(DockerfileError) as exc:
        parse("FROM busybox\nRUNN x\n", filename="prod.Dockerfile")
    assert str(exc.value) == "prod.Dockerfile:2: unknown instruction: RUNN"
    assert (exc.value.filename, exc.value.line, exc.value.message) == \
        ("prod.Dockerfile", 2, "unknown instruction: RUNN")


def test_dockerfile_error_is_a_minidocker_error_with_exit_code_1():
    with pytest.raises(MinidockerError) as exc:
        parse("FROM busybox\nRUNN x\n")
    assert exc.value.exit_code == 1


def test_empty_dockerfile():
    assert error_of("") == "the Dockerfile (Dockerfile) cannot be empty"
    assert error_of("  \n\n") == "the Dockerfile (Dockerfile) cannot be empty"
    assert error_of("", filename="app.Dockerfile") == "the Dockerfile (app.Dockerfile) cannot be empty"
    assert error_of("# only a comment\n\n").endswith("file with no instructions")


# --------------------------------------------------------------------------
# Stages: --target and --from
# --------------------------------------------------------------------------

def test_stage_for_target():
    df = parse("FROM busybox AS base\nFROM base AS test\nFROM base\n")
    assert stage_for_target(df, "base") == 0
    assert stage_for_target(df, "TEST") == 1
    with pytest.raises(DockerfileError) as exc:
        stage_for_target(df, "prod")
    assert str(exc.value) == 'target stage "prod" could not be found'


def test_resolve_stage_ref():
    df = parse("FROM busybox AS one\nFROM busybox AS two\nFROM busybox\n")
    assert resolve_stage_ref(df, "one", 2) == 0
    assert resolve_stage_ref(df, "1", 2) == 1
    assert resolve_stage_ref(df, "nginx:latest", 2) is None            # an image
    with pytest.raises(DockerfileError, match="cannot copy from stage \"two\", it needs to be defined before"):
        resolve_stage_ref(df, "two", 1)
    with pytest.raises(DockerfileError, match="invalid stage index 7"):
        resolve_stage_ref(df, "7", 2)
