"""docker's table and size formatting, and `ps` rows: pure, no root."""
from minidocker.compat.cli import format as fmt
from minidocker import gotime
from minidocker.container import state as st

NOW = 1_800_000_000.0


def test_tabwrite_docker_padding():
    out = fmt.tabwrite([["CONTAINER ID", "IMAGE", "NAMES"], ["0123456789ab", "busybox", "x"]])
    assert out == ("CONTAINER ID   IMAGE     NAMES\n"
                   "0123456789ab   busybox   x\n")


def test_tabwrite_minwidth():
    assert fmt.tabwrite([["A", "B"], ["c", "d"]]) == "A         B\nc         d\n"


def test_human_size():
    assert fmt.human_size(0) == "0B"
    assert fmt.human_size(999) == "999B"
    assert fmt.human_size(1_982_256) == "1.98MB"
    assert fmt.human_size(4_260_000_000) == "4.26GB"
    assert fmt.bytes_size(1536) == "1.5KiB"


def test_ellipsis_and_quote():
    assert fmt.ellipsis("sleep 100", 20) == "sleep 100"
    assert fmt.ellipsis("sh -c 'while true; do date; done'", 20) == "sh -c 'while true; …"
    assert fmt.go_quote('say "hi"') == '"say \\"hi\\""'


def test_ps_row():
    from minidocker.compat.cli.containers import ps_row
    s = st.new_state()
    st.set_exited(s, 0, int((NOW - 3) * 1e9))
    s["StartedAt"] = gotime.rfc3339nano(int((NOW - 4) * 1e9))
    rec = {"Id": "f" * 64, "Path": "sh", "Args": ["-c", "echo hello world; sleep 1"],
           "Created": gotime.rfc3339nano(int((NOW - 65) * 1e9)), "State": s, "Name": "/web",
           "Config": {"Image": "busybox", "Labels": {"b": "2", "a": "1"}},
           "NetworkSettings": {"Networks": {"none": {}}}}
    row = ps_row(rec, trunc=True, now=NOW)
    assert row["ID"] == "f" * 12
    assert row["Command"] == '"sh -c \'echo hello w…"'
    assert row["RunningFor"] == "About a minute ago"
    assert row["Status"] == "Exited (0) 3 seconds ago"
    assert row["Names"] == "web" and row["Labels"] == "a=1,b=2"
    assert ps_row(rec, trunc=False, now=NOW)["Command"] == '"sh -c \'echo hello world; sleep 1\'"'


def test_json_indent_escapes_like_go():
    assert fmt.json_indent({"a": "<&>"}) == '{\n    "a": "\\u003c\\u0026\\u003e"\n}'
