"""Go text/template as docker's --format / inspect -f use it: pure Python, no root.

Expected outputs are what Go (and docker) print for the same template and data.
"""
import pytest

from minidocker.compat.gotemplate import TemplateError, parse, render

CONTAINER = {
    "Id": "0123456789abcdef",
    "Name": "/web",
    "Args": ["-c", "sleep 100"],
    "State": {"Status": "running", "Running": True, "Pid": 4242, "ExitCode": 0, "Health": None},
    "Config": {
        "Image": "busybox",
        "Env": ["PATH=/bin", "A=1"],
        "Labels": {"z.last": "9", "a.b": "1", "com.example/x-y": "dash"},
        "Cmd": ["sh", "-c", "echo <hi> & bye"],
    },
    "Mounts": [{"Source": "/srv", "Destination": "/data"}, {"Source": "/tmp", "Destination": "/t"}],
    "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2"},
                                     "alpha": {"IPAddress": "10.0.0.5"}}},
}


def r(template, data=CONTAINER, **kw):
    return render(template, data, **kw)


def error_of(template, data=CONTAINER, **kw):
    with pytest.raises(TemplateError) as info:
        render(template, data, **kw)
    message = str(info.value)
    assert "\n" not in message
    return message


# --------------------------------------------------------------- what docker users type

@pytest.mark.parametrize("template, expected", [
    ("{{.State.Status}}", "running"),
    ("{{.State.Pid}}", "4242"),
    ("{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", "10.0.0.5 172.17.0.2 "),
    ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}} {{end}}",
     "a.b=1 com.example/x-y=dash z.last=9 "),
    ('{{index .Config.Labels "a.b"}}', "1"),
    ('{{index .Config.Labels "com.example/x-y"}}', "dash"),
    ('{{join .Args " "}}', "-c sleep 100"),
    ("{{.Name | upper}}", "/WEB"),
    ('{{printf "%s:%d" .Name 3}}', "/web:3"),
    ('{{if eq .State.Status "running"}}up{{else}}down{{end}}', "up"),
    ("{{len .Mounts}}", "2"),
    ("{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}", "/srv:/data /tmp:/t "),
    ("{{range .Mounts}}{{$.Name}}{{.Source}};{{end}}", "/web/srv;/web/tmp;"),
    ("{{.Config.Env}}", "[PATH=/bin A=1]"),
    ("{{.State.Running}} {{.State.ExitCode}}", "true 0"),
    ('{{range .Config.Env}}{{println .}}{{end}}', "PATH=/bin\nA=1\n"),
    ("{{json .State.Status}}", '"running"'),
])
def test_docker_everyday_templates(template, expected):
    assert r(template) == expected


def test_json_of_a_struct_is_compact_in_insertion_order():
    assert r("{{json .State}}") == '{"Status":"running","Running":true,"Pid":4242,"ExitCode":0,"Health":null}'
    assert r("{{json .Mounts}}") == '[{"Source":"/srv","Destination":"/data"},{"Source":"/tmp","Destination":"/t"}]'
    assert r("{{json .Config.Labels}}") == '{"z.last":"9","a.b":"1","com.example/x-y":"dash"}'


def test_json_does_not_escape_html_like_docker():
    # docker/cli's json func uses an Encoder with SetEscapeHTML(false); plain json.Marshal
    # would write \u003c. Go still escapes U+2028/U+2029 and control characters.
    assert r("{{json .Config.Cmd}}") == '["sh","-c","echo <hi> & bye"]'
    assert r('{{json "a\u2028b\u2029c\\n\\t\\"é"}}') == '"a\\u2028b\\u2029c\\n\\t\\"é"'


@pytest.mark.parametrize("value, expected", [
    (None, "null"), (True, "true"), (3, "3"), (1.0, "1"), (1.5, "1.5"), (1e20, "100000000000000000000"),
    (1e21, "1e+21"), (1e-7, "1e-7"), (0.000001, "0.000001"), ([], "[]"), ({}, "{}"), ("", '""'),
    (float("nan"), ""),                  # Go's encoder fails; docker prints nothing
])
def test_json_values(value, expected):
    assert r("{{json .V}}", {"V": value}) == expected


def test_json_of_missing_is_null():
    assert r("{{json .Nope}}") == "null"


# --------------------------------------------------------------- text, trimming, comments

def test_text_outside_actions_is_copied_verbatim():
    assert r("") == ""
    assert r("no actions } { here\n") == "no actions } { here\n"
    assert r("a {{.State.Pid}} b\n\tc") == "a 4242 b\n\tc"


def test_trim_markers():
    assert r("a  \n {{- .State.Pid -}} \n\t b") == "a4242b"
    assert r("a {{- .State.Pid}} b") == "a4242 b"
    assert r("a {{.State.Pid -}} b") == "a 4242b"
    assert r("{{range .Args -}}\n  [{{.}}]\n{{- end}}") == "[-c][sleep 100]"
    # the space is part of the marker: without it, -3 is a number
    assert r("a {{-3}} b") == "a -3 b"


def test_comments():
    assert r("a{{/* a comment {{ with braces }} */}}b") == "ab"
    assert r("a {{- /* trimmed */ -}} b") == "ab"
    assert r("{{/* multi\nline */}}x") == "x"


def test_actions_may_span_lines():
    assert r("{{if\n  .State.Running\n}}yes{{end}}") == "yes"


# --------------------------------------------------------------- fields, variables, pipelines

def test_dot_root_and_variables():
    assert r("{{.}}", "hello") == "hello"
    assert r("{{$}}", 7) == "7"
    assert r("{{with .State}}{{.Status}} {{$.Name}}{{end}}") == "running /web"
    assert r("{{$x := .State}}{{$x.Status}}") == "running"
    assert r("{{$x := 1}}{{$x = 2}}{{$x}}") == "2"
    assert r("{{$x := .State.Pid}}") == ""                    # declarations print nothing
    assert r("{{range $m := .Mounts}}{{$m.Source}}{{end}}") == "/srv/tmp"
    assert r("{{range $i, $a := .Args}}{{$i}}={{$a}};{{end}}") == "0=-c;1=sleep 100;"


def test_variables_are_scoped_to_their_control():
    assert r("{{$x := 1}}{{if true}}{{$x := 2}}{{$x}}{{end}}{{$x}}") == "21"
    assert r("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}") == "2"
    with pytest.raises(TemplateError, match='undefined variable "\\$y"'):
        parse("{{if true}}{{$y := 1}}{{end}}{{$y}}")


def test_nested_range_with_root():
    data = {"Host": "h", "Groups": [{"Name": "a", "Items": [1, 2]}, {"Name": "b", "Items": [3]}]}
    t = "{{range $g := .Groups}}{{range .Items}}{{$.Host}}/{{$g.Name}}/{{.}} {{end}}{{end}}"
    assert r(t, data) == "h/a/1 h/a/2 h/b/3 "


def test_pipelines_and_parentheses():
    assert r("{{.Name | upper | lower}}") == "/web"
    assert r('{{"x" | printf "%s-%s" "a"}}') == "a-x"
    assert r("{{(index .Mounts 1).Source}}") == "/tmp"
    assert r('{{len (index .Config.Labels "a.b")}}') == "1"
    assert r("{{(.State).Status}}") == "running"
    assert r("{{.Name | len | printf \"%03d\"}}") == "004"


@pytest.mark.parametrize("template, expected", [
    ('{{"a\\tb\\n\\"q\\" \\\\ \\x41\\u00e9\\101"}}', 'a\tb\n"q" \\ AéA'),
    ("{{`raw \\n {{ }} ok`}}", "raw \\n {{ }} ok"),
    ("{{42}} {{-7}} {{+3}} {{0x1F}} {{0o17}} {{010}} {{0}} {{1_000}}", "42 -7 3 31 15 8 0 1000"),
    ("{{1.5}} {{3.0}} {{1e3}} {{.5}}", "1.5 3 1000 0.5"),
    ("{{'a'}} {{'\\n'}}", "97 10"),
    ("{{true}} {{false}}", "true false"),
    ('{{print nil}}', "<nil>"),
])
def test_literals(template, expected):
    assert r(template) == expected


# --------------------------------------------------------------- control structures

def test_if_else_chains():
    t = "{{if eq .N 1}}one{{else if eq .N 2}}two{{else if eq .N 3}}three{{else}}many{{end}}"
    assert [r(t, {"N": n}) for n in (1, 2, 3, 4)] == ["one", "two", "three", "many"]
    assert r("{{if .State.Running}}up{{end}}") == "up"
    assert r("{{if .Nope}}up{{end}}") == ""


@pytest.mark.parametrize("value, truth", [
    (False, False), (0, False), (0.0, False), ("", False), ([], False), ({}, False), (None, False),
    (True, True), (1, True), (-1, True), (0.5, True), ("0", True), ([0], True), ({"a": None}, True),
])
def test_go_truthiness(value, truth):
    assert r("{{if .V}}T{{else}}F{{end}}", {"V": value}) == ("T" if truth else "F")
    assert r("{{not .V}}", {"V": value}) == ("false" if truth else "true")


def test_missing_key_is_false():
    assert r("{{if .Nope}}T{{else}}F{{end}}") == "F"


def test_range_over_lists_and_maps():
    assert r("{{range .}}<{{.}}>{{end}}", ["a", "b"]) == "<a><b>"
    assert r("{{range .}}{{.}}{{end}}", {"b": 2, "a": 1, "c": 3}) == "123"   # sorted keys
    assert r("{{range $k, $v := .}}{{$k}}{{$v}}{{end}}", {"b": 2, "a": 1}) == "a1b2"
    assert r("{{range $v := .}}{{$v}}{{end}}", {"b": 2, "a": 1}) == "12"
    for empty in ([], {}, None):
        assert r("{{range .V}}x{{else}}empty{{end}}", {"V": empty}) == "empty"
    assert r("{{range .Nope}}x{{else}}empty{{end}}") == "empty"
    assert r("{{range .Nope}}x{{end}}") == ""


def test_range_break_and_continue():
    t = "{{range .}}{{if eq . 3}}{{continue}}{{end}}{{if eq . 5}}{{break}}{{end}}{{.}}{{end}}"
    assert r(t, [1, 2, 3, 4, 5, 6]) == "124"


def test_with():
    assert r("{{with .State}}{{.Status}}{{end}}") == "running"
    assert r("{{with .Nope}}x{{else}}none{{end}}") == "none"
    assert r("{{with $s := .State.Status}}{{$s}}{{.}}{{end}}") == "runningrunning"
    assert r('{{with .Nope}}a{{else with .Name}}{{.}}{{end}}') == "/web"


# --------------------------------------------------------------- printing values like Go

@pytest.mark.parametrize("value, expected", [
    ("s", "s"), (True, "true"), (False, "false"), (42, "42"), (-3, "-3"),
    (1.5, "1.5"), (3.0, "3"), (1000000.0, "1e+06"), (123456.0, "123456"), (0.0001, "0.0001"),
    (0.00001, "1e-05"), (1234567.0, "1.234567e+06"), (-0.0, "-0"), (float("inf"), "+Inf"),
    (None, "<nil>"), ([], "[]"), (["a", "b c", 1], "[a b c 1]"), ([None, True], "[<nil> true]"),
    ({}, "map[]"), ({"b": 1, "a": [1, 2], "c": {"y": None, "x": "s"}}, "map[a:[1 2] b:1 c:map[x:s y:<nil>]]"),
])
def test_values_print_like_go(value, expected):
    assert r("{{.V}}", {"V": value}) == expected


def test_missing_key_prints_no_value():
    assert r("{{.Nope}}") == "<no value>"
    assert r("{{.Nope.Deeper.Still}}") == "<no value>"
    assert r("{{.}}", None) == "<no value>"
    assert r('{{index .Config.Labels "nope"}}') == "<no value>"


def test_missingkey_error_option_as_docker_inspect_raw_fallback():
    assert error_of("{{.State.Nope}}", missingkey="error") == \
        'template: :1:8: executing "" at <.State.Nope>: map has no entry for key "Nope"'
    assert r("{{.State.Status}}", missingkey="error") == "running"


# --------------------------------------------------------------- builtin functions

@pytest.mark.parametrize("template, expected", [
    ("{{and 1 2}} {{and 1 0 2}} {{and .Nope 1}}", "2 0 <no value>"),
    ('{{or 0 "" "x"}} {{or 0 ""}}', "x "),
    ("{{and true (not false)}}", "true"),
    ("{{len .Args}} {{len .Config.Labels}} {{len .Name}} {{len \"é\"}}", "2 3 4 2"),   # bytes, as Go
    ("{{index .Args 1}} {{index .Mounts 0 \"Source\"}} {{index .Name 1}}", "sleep 100 /srv 119"),
    ("{{index .Args}}", "[-c sleep 100]"),
    ('{{slice .Args 1}} {{slice "hello" 1 3}} {{slice "hello" 2}} {{slice .Args 0 0}}', "[sleep 100] el llo []"),
    ('{{eq 1 1}} {{eq "a" "b"}} {{eq .State.Status "exited" "running"}} {{eq .Nope "x"}} {{eq nil nil}}',
     "true false true false true"),
    ("{{ne 1 2}} {{lt 1 2}} {{le 2 2}} {{gt 2 1}} {{ge 1 2}}", "true true true true false"),
    ('{{lt "abc" "abd"}} {{gt 2.5 1.5}}', "true true"),
    ('{{print "a" "b" 1 2 "c"}}', "ab1 2c"),
    ('{{print .Nope}} {{print 1.5 true}}', "<nil> 1.5 true"),
    ('{{println "a" 1}}', "a 1\n"),
    ('{{html "<a href=\\"x\\">&\'"}}', "&lt;a href=&#34;x&#34;&gt;&amp;&#39;"),
    ('{{urlquery "a b&c=d/é"}}', "a+b%26c%3Dd%2F%C3%A9"),
])
def test_builtins(template, expected):
    assert r(template) == expected


@pytest.mark.parametrize("template, expected", [
    ('{{printf "%s|%v|%d|%t" "a" .Args 42 true}}', "a|[-c sleep 100]|42|true"),
    ('{{printf "%q %q" "a\\"b\\n" 65}}', "\"a\\\"b\\n\" 'A'"),
    ('{{printf "%x %X %x %o %b %c" 255 255 "hi" 8 5 65}}', "ff FF 6869 10 101 A"),
    ('{{printf "%f %.2f %.0f %e %g %v" 3.14159 3.14159 2.5 1234.5678 0.5 1e6}}',
     "3.141590 3.14 2 1.234568e+03 0.5 1e+06"),
    ('{{printf "[%5s][%-5s][%5d][%-5d][%05d][%+d][%.2s]" "ab" "ab" 42 42 -42 7 "hello"}}',
     "[   ab][ab   ][   42][42   ][-0042][+7][he]"),
    ('{{printf "%d%%" 50}}', "50%"),
    ('{{printf "%s" .Config.Env}}', "[PATH=/bin A=1]"),
    ('{{printf "%v" .Config.Labels}}', "map[a.b:1 com.example/x-y:dash z.last:9]"),
    ('{{printf "%d" "x"}} {{printf "%s" 3}} {{printf "%s"}} {{printf "%s" nil}}',
     "%!d(string=x) %!s(int=3) %!s(MISSING) %!s(<nil>)"),
    ('{{printf "a" 1 "b"}}', "a%!(EXTRA int=1, string=b)"),
    ('{{printf "%5.1f|" 3.14159}}', "  3.1|"),
])
def test_printf(template, expected):
    assert r(template) == expected


# --------------------------------------------------------------- docker's extra functions

@pytest.mark.parametrize("template, expected", [
    ('{{split "a,b,c" ","}} {{len (split "a,b" ",")}} {{split "ab" ""}}', "[a b c] 2 [a b]"),
    ('{{join (split "a:b:c" ":") "-"}} {{join .Args ""}}', "a-b-c -csleep 100"),
    ('{{title "hello wORLD foo-bar_baz"}}', "Hello WORLD Foo-Bar_baz"),
    ('{{lower "HeLLo"}} {{upper "HeLLo é"}}', "hello HELLO É"),
    ('[{{pad "x" 2 1}}] [{{pad "" 2 1}}]', "[  x ] []"),
    ('{{truncate "abcdef" 3}} {{truncate "ab" 3}} {{truncate .Id 12}}', "abc ab 0123456789ab"),
    ('{{.Config.Image | printf "%s:latest" | upper}}', "BUSYBOX:LATEST"),
])
def test_docker_functions(template, expected):
    assert r(template) == expected


# --------------------------------------------------------------- parse once, run many

def test_parse_once_execute_many():
    t = parse("{{.Name}}={{len .Items}};")
    assert t.execute({"Name": "a", "Items": [1]}) == "a=1;"
    assert t.execute({"Name": "b", "Items": []}) == "b=0;"
    with pytest.raises(ValueError):
        t.execute({}, missingkey="bogus")


# --------------------------------------------------------------- errors

# Positions are Go's: line:byte-column of the node. For a chain like .A.B Go reports the
# position of its second part (docker: 'template: :1:8: ... at <.State.Health.Status>').
@pytest.mark.parametrize("template, message", [
    ("{{.Name.Foo}}", 'template: :1:7: executing "" at <.Name.Foo>: can\'t evaluate field Foo in type string'),
    ("{{.State.Pid.X}}", 'template: :1:8: executing "" at <.State.Pid.X>: can\'t evaluate field X in type int'),
    ("{{.Args.X}}", 'template: :1:7: executing "" at <.Args.X>: can\'t evaluate field X in type []interface {}'),
    ("{{.State.Health.Status}}",
     'template: :1:8: executing "" at <.State.Health.Status>: nil pointer evaluating interface {}.Status'),
    ("x\n  {{.Name.Foo}}", 'template: :2:9: executing "" at <.Name.Foo>: can\'t evaluate field Foo in type string'),
    ("{{index .Args 5}}",
     'template: :1:2: executing "" at <index .Args 5>: error calling index: index out of range: 5'),
    ('{{eq .State.Pid "1"}}',
     'template: :1:2: executing "" at <eq .State.Pid "1">: error calling eq: incompatible types for comparison'),
    ("{{len .State.Pid}}", 'template: :1:2: executing "" at <len .State.Pid>: error calling len: len of type int'),
    ("{{upper .Nope}}", 'template: :1:8: executing "" at <.Nope>: invalid value; expected string'),
    ("{{upper .State.Pid}}",
     'template: :1:14: executing "" at <.State.Pid>: wrong type for value; expected string; got int'),
    ("{{upper 3}}", 'template: :1:8: executing "" at <3>: expected string; found 3'),
    ('{{truncate .Name "x"}}', 'template: :1:17: executing "" at <"x">: expected integer; found "x"'),
    ("{{join .Mounts \",\"}}",
     'template: :1:7: executing "" at <.Mounts>: wrong type for value; expected []string; got []interface {}'),
    ("{{upper}}", 'template: :1:2: executing "" at <upper>: wrong number of args for upper: want 1 got 0'),
    ("{{printf}}", 'template: :1:2: executing "" at <printf>: wrong number of args for printf: want at least 1 got 0'),
    ("{{range .Name}}{{end}}", 'template: :1:8: executing "" at <.Name>: range can\'t iterate over /web'),
    ("{{.Name 1}}", 'template: :1:2: executing "" at <.Name>: Name is not a method but has arguments'),
    ("{{1 2}}", 'template: :1:2: executing "" at <1>: can\'t give argument to non-function 1'),
    ("{{nil}}", 'template: :1:2: executing "" at <nil>: nil is not a command'),
    ("{{`a\nb` 1}}", 'template: :1:2: executing "" at <`a\\nb`>: can\'t give argument to non-function `a\\nb`'),
    ("{{lt true false}}",
     'template: :1:2: executing "" at <lt true false>: error calling lt: invalid type for comparison'),
])
def test_execution_errors(template, message):
    assert error_of(template) == message


@pytest.mark.parametrize("template, message", [
    ("{{foo}}", 'template: :1: function "foo" not defined'),
    ("{{.Name | foo}}", 'template: :1: function "foo" not defined'),
    ("{{.Name", "template: :1: unclosed action"),
    ("{{if .Name}}yes", "template: :1: unexpected EOF"),
    ("a\nb\n{{range .Args}}", "template: :3: unexpected EOF"),
    ("{{end}}", "template: :1: unexpected {{end}}"),
    ("{{else}}", "template: :1: unexpected {{else}}"),
    ("{{if 1}}{{else}}{{else}}{{end}}", "template: :1: expected end; found {{else}}"),
    ("{{$x}}", 'template: :1: undefined variable "$x"'),
    ("{{}}", "template: :1: missing value for command"),
    ("{{if}}{{end}}", "template: :1: missing value for if"),
    ("{{ .Name }x}}", 'template: :1: unexpected "}" in operand'),
    ("{{.Name | 3}}", "template: :1: non executable command in pipeline stage 2"),
    ("{{(.Name}}", "template: :1: unclosed left paren"),
    ("{{.Name)}}", "template: :1: unexpected right paren U+0029 ')'"),
    ('{{"abc}}', "template: :1: unterminated quoted string"),
    ("{{`abc}}", "template: :1: unterminated raw quoted string"),
    ('{{"\\q"}}', "template: :1: invalid syntax"),
    ("{{/* never closed }}", "template: :1: unclosed comment"),
    ("{{/* x */ }}", "template: :1: comment ends before closing delimiter"),
    ("{{.Config.Labels.com-x}}", "template: :1: bad character U+002D '-'"),
    ("{{3x}}", 'template: :1: bad number syntax: "3x"'),
    ("{{break}}", "template: :1: {{break}} outside {{range}}"),
    ("{{range .Args}}{{else}}{{continue}}{{end}}", "template: :1: {{continue}} outside {{range}}"),
    ("{{$a, $b := 1}}", "template: :1: too many declarations in command"),
    ("{{range $a, $b, $c := .}}{{end}}", "template: :1: too many declarations in range"),
    ('{{"x".Foo}}', 'template: :1: unexpected . after term "\\"x\\""'),
    ('{{template "x"}}', "template: :1: {{template}} is not supported"),
    ("{{end x}}", 'template: :1: unexpected "x" in end'),
    ("{{.Name ^ 1}}", 'template: :1: unexpected "^" in operand'),
])
def test_parse_errors(template, message):
    with pytest.raises(TemplateError) as info:
        parse(template)
    assert str(info.value) == message


def test_absurd_nesting_is_a_template_error():
    with pytest.raises(TemplateError, match="depth"):
        parse("{{" + "(" * 5000 + "1" + ")" * 5000 + "}}")


def test_parse_errors_come_before_execution():
    # a bad function name is caught even in a branch that would never run
    with pytest.raises(TemplateError, match="not defined"):
        parse("{{if false}}{{nosuchfunc .}}{{end}}")


def test_nil_slices_and_maps_of_typed_structs():
    from minidocker.compat.cli.common import as_typed
    from minidocker.compat.gotemplate import render
    data = as_typed({"Config": {"Entrypoint": None, "Labels": None, "Healthcheck": None}})
    assert render("{{.Config.Entrypoint}} {{.Config.Labels}} {{.Config.Healthcheck}}", data) == "[] map[] <nil>"
    assert render("{{json .Config.Entrypoint}} {{json .Config.Labels}}", data) == "null null"
    assert render("{{if .Config.Entrypoint}}x{{else}}empty{{end}}{{len .Config.Entrypoint}}", data) == "empty0"


def test_sets_print_their_empty_structs_as_go_does():
    """docker inspect -f '{{.Config.ExposedPorts}}' prints map[8080/tcp:{}] (Go's struct{}{}), not map[]."""
    from minidocker.compat.cli.common import as_typed
    from minidocker.compat.gotemplate import render
    data = as_typed({"Config": {"ExposedPorts": {"8080/tcp": {}, "53/udp": {}}, "Volumes": {"/data": {}},
                                "Labels": {"a": "1"}}})
    assert render("{{.Config.ExposedPorts}}", data) == "map[53/udp:{} 8080/tcp:{}]"
    assert render("{{.Config.Volumes}} {{printf \"%v\" .Config.Volumes}}", data) == "map[/data:{}] map[/data:{}]"
    assert render("{{json .Config.ExposedPorts}}", data) == '{"53/udp":{},"8080/tcp":{}}'  # a Go map: sorted
    assert render("{{range $p, $v := .Config.ExposedPorts}}{{$p}}={{$v}} {{end}}", data) == "53/udp={} 8080/tcp={} "
    assert render("{{.Config.Labels}}", data) == "map[a:1]"
