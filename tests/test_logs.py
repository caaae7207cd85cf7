"""The json-file log format: pure, no root."""
import json

from minidocker.container import logs


def test_line_splitter():
    s = logs.LineSplitter("stdout")
    assert s.feed(b"a\nb") == [b"a\n"]
    assert s.feed(b"c\n\nd") == [b"bc\n", b"\n"]
    assert s.flush() == [b"d"]
    assert s.flush() == []


def test_long_lines_are_cut_at_16k():
    s = logs.LineSplitter("stdout")
    out = s.feed(b"x" * (logs.MAX_LINE + 10))
    assert out == [b"x" * logs.MAX_LINE] and s.flush() == [b"x" * 10]


def test_encode_like_docker():
    line = logs.encode(b"h\xc3\xa9llo \xff\n", "stderr", 1_700_000_000_500_000_000)
    rec = json.loads(line)
    assert rec == {"log": "h\u00e9llo \ufffd\n", "stream": "stderr", "time": "2023-11-14T22:13:20.5Z"}
    assert line.startswith(b'{"log":') and line.endswith(b"}\n")


def test_read_tail_and_format(tmp_path):
    p = tmp_path / "c-json.log"
    with open(p, "wb") as f:
        for i in range(5):
            f.write(logs.encode(f"{i}\n".encode(), "stdout", 1_700_000_000_000_000_000 + i))
        f.write(b'{"log":"torn')  # a writer mid-line must not break readers
    assert [r["log"] for r in logs.read(str(p))] == ["0\n", "1\n", "2\n", "3\n", "4\n"]
    assert [r["log"] for r in logs.read(str(p), tail=2)] == ["3\n", "4\n"]
    assert logs.read(str(p), tail=0) == []
    rec = logs.read(str(p), tail=1)[0]
    assert logs.format_record(rec, timestamps=True) == "2023-11-14T22:13:20.000000004Z 4\n"


def test_follow_stops_when_dead(tmp_path):
    p = tmp_path / "l.log"
    p.write_bytes(logs.encode(b"old\n", "stdout", 0))
    start = p.stat().st_size
    with open(p, "ab") as f:
        f.write(logs.encode(b"new\n", "stdout", 0))
    assert [r["log"] for r in logs.follow(str(p), start, alive=lambda: False)] == ["new\n"]
