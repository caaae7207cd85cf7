"""minidocker.lab.orchestration, notebook 12's plumbing, without root and without dockerd: the
arguments it gives `docker swarm init` and `docker network create`, the event parsing and the replica
counts drawn from it, the crash record and its reaper, the client loop and the load balancer (real
processes and sockets on 127.0.0.1). The engines themselves (dockerd's swarm mode, docker-compose
against minidocker serve) run in notebooks/12-beyond-one-host.ipynb."""
from __future__ import annotations

import http.server
import json
import os
import random
import subprocess
import sys
import threading
import time

import pytest

from minidocker.lab import orchestration as orch


# ---------------------------------------------------------------- arguments
def test_our_gwbridge_has_a_name_of_its_own_and_a_free_subnet():
    args = orch.gwbridge_args("mdgw-0a1b2c", "10.124.7.0/24")
    assert args[-1] == "docker_gwbridge"            # the *network* dockerd looks for before making its own
    assert "com.docker.network.bridge.name=mdgw-0a1b2c" in args and args[args.index("--subnet") + 1] == "10.124.7.0/24"
    with pytest.raises(ValueError):
        orch.gwbridge_args("docker_gwbridge", "10.124.7.0/24")     # the host-wide name is what we avoid
    with pytest.raises(ValueError):
        orch.gwbridge_args("mdgw-0a1b2c3d4e5f", "10.124.7.0/24")  # longer than an interface name may be
    taken = ["10.124.0.0/17", "192.168.1.0/24"]
    subnets = {orch.pick_subnet(taken, rng=random.Random(i)) for i in range(20)}
    assert subnets and all(s.startswith("10.124.") and int(s.split(".")[2]) >= 128 for s in subnets)
    with pytest.raises(RuntimeError):
        orch.pick_subnet(["10.124.0.0/16"])


def test_swarm_init_listens_on_loopback_with_a_data_port_dockerd_accepts():
    args = orch.swarm_init_args(40001, 30001)
    assert args[:2] == ["swarm", "init"]
    assert args[args.index("--advertise-addr") + 1] == args[args.index("--listen-addr") + 1] == "127.0.0.1:40001"
    assert args[args.index("--data-path-port") + 1] == "30001"
    with pytest.raises(ValueError):
        orch.swarm_init_args(40001, 52965)      # dockerd refuses data-path ports above 49151
    port = orch.free_udp_port()
    assert 20000 <= port <= 49151


def test_read_upstream_is_loopback_only():
    assert orch.read_upstream("127.0.0.1:8080\n") == ("127.0.0.1", 8080)
    for bad in ("10.0.0.1:80", "127.0.0.1:http", "127.0.0.1:0", "example.com:80"):
        with pytest.raises(ValueError):
            orch.read_upstream(bad)


# ---------------------------------------------------------------- events
def ev(t, action, cid, slot=1, tag="1", service="web", kind="container"):
    name = f"{service}.{slot}.task{cid}" if service else f"c{cid}"
    attrs = {"name": name, "image": f"127.0.0.1:5000/nb12/web:{tag}@sha256:00",
             "com.docker.swarm.service.name": service, "com.docker.swarm.task.name": name if service else ""}
    return {"Type": kind, "Action": action, "Actor": {"ID": f"id{cid}", "Attributes": attrs}, "timeNano": int(t * 1e9)}


def test_parse_event_reads_dockerds_json():
    e = orch.parse_event(json.dumps(ev(10.5, "health_status: healthy", 7, slot=2, tag="2")))
    assert e == {"t": 10.5, "type": "container", "action": "healthy", "id": "id7", "name": "web.2.task7",
                 "service": "web", "slot": 2, "image": "127.0.0.1:5000/nb12/web:2", "tag": "2", "update": ""}
    plain = orch.parse_event(ev(1, "start", 3, service=""))
    assert (plain["slot"], plain["service"], plain["name"]) == (None, "", "c3")
    svc = orch.parse_event({"Type": "service", "Action": "update", "timeNano": 2 * 10**9,
                            "Actor": {"ID": "s1", "Attributes": {"name": "web", "updatestate.new": "completed"}}})
    assert (svc["service"], svc["update"]) == ("web", "completed")
    assert orch.parse_event("{}") is None


def rolling(order):
    """Three old tasks (healthy at 0) replaced one by one, as swarm does in `order`."""
    events = []
    for i in range(3):
        events += [ev(0, "start", f"o{i}", slot=i + 1), ev(0, "healthy", f"o{i}", slot=i + 1)]
    t = 1.0
    for i in range(3):
        old, new = f"o{i}", f"n{i}"
        if order == "stop-first":
            events += [ev(t, "kill", old, slot=i + 1), ev(t + 0.1, "die", old, slot=i + 1),
                       ev(t + 0.2, "create", new, slot=i + 1, tag="2"), ev(t + 0.3, "start", new, slot=i + 1, tag="2"),
                       ev(t + 0.8, "healthy", new, slot=i + 1, tag="2")]
        else:
            events += [ev(t, "create", new, slot=i + 1, tag="2"), ev(t + 0.1, "start", new, slot=i + 1, tag="2"),
                       ev(t + 0.6, "healthy", new, slot=i + 1, tag="2"), ev(t + 0.7, "kill", old, slot=i + 1),
                       ev(t + 0.8, "die", old, slot=i + 1)]
        t += 1.0
    return [orch.parse_event(e) for e in events]


def test_replica_counts_of_the_two_update_orders():
    stop = orch.container_spans(rolling("stop-first"), "web")
    assert [s["tag"] for s in stop] == ["1", "1", "1", "2", "2", "2"]
    assert stop[0]["kill"] == 1.0 and stop[3]["healthy"] == 1.8
    low = orch.extremes(orch.counts_over_time(stop, 5.0))
    assert (low["min_healthy"], low["max_running"]) == (2, 3)
    start = orch.container_spans(rolling("start-first"), "web")
    series = orch.counts_over_time(start, 5.0)
    low = orch.extremes(series)
    assert (low["min_healthy"], low["max_running"], low["max_healthy"]) == (3, 4, 4)
    assert series[-1] == (5.0, 3, 3)
    # one point per instant: the six events at t=0 give one point (3 running, 3 healthy), never 1 or 2
    assert [p for p in series if p[0] == 0] == [(0, 3, 3)]


def test_an_unhealthy_task_stops_counting_as_healthy():
    events = [orch.parse_event(e) for e in (ev(0, "start", 1), ev(0.5, "healthy", 1), ev(2, "unhealthy", 1),
                                            ev(2.1, "kill", 1), ev(2.2, "die", 1), ev(3, "start", 2),
                                            ev(3.5, "healthy", 2))]
    spans = orch.container_spans(events)
    series = orch.counts_over_time(spans)
    assert orch.extremes(series, since=2.05, until=3.2)["max_healthy"] == 0
    assert orch.extremes(series, since=0.6, until=1.9) == {"min_running": 1, "max_running": 1,
                                                          "min_healthy": 1, "max_healthy": 1}
    assert spans[0]["unhealthy"] == 2 and spans[1]["started"] == 3


def test_journal_events_reads_minidockers_event_log(tmp_path):
    lines = [json.dumps(ev(t, a, 1, service=""))
             for t, a in ((1, "create"), (2, "start"), (3, "health_status: healthy"))]
    (tmp_path / "events.log").write_text("\n".join(lines) + "\n")
    got = orch.journal_events(str(tmp_path), since=1.5)
    assert [e["action"] for e in got] == ["start", "healthy"]
    assert orch.journal_events(str(tmp_path / "nothing")) == []


def test_the_figures_draw(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax, ax2) = plt.subplots(2, 1)
    spans = orch.container_spans(rolling("start-first"), "web")
    orch.plot_rollout(ax, spans, 0.0, 5.0, title="t", floor=3, count_ax=ax2)
    assert [t.get_text() for t in ax.get_yticklabels()][-1] == "web.1: 1"
    fig2, ax3 = plt.subplots()
    orch.plot_requests(ax3, [(0.0, True, "blue"), (0.3, False, "ConnectionRefusedError"), (0.6, True, "green")],
                       marks={"switch": 0.4})
    labels = [t.get_text() for t in ax3.get_legend().get_texts()]
    assert sorted(labels) == ["blue: 1", "failed: 1", "green: 1", "switch"]
    plt.close("all")


# ---------------------------------------------------------------- the record and its reaper
def test_a_dead_kernels_stack_is_torn_down(tmp_path):
    """A stack whose owner is gone: its helper process is ended (by its recorded PID and start time),
    its directory removed; a living owner's stack is left alone."""
    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        dead_owner = {"pid": 2**22 + 7, "start": 1}        # (no such process)
        stale = tmp_path / "mdstack-stale0001"
        stale.mkdir()
        orch._write_record(str(stale), {"owner": dead_owner, "children": {"helper": orch.identity(sleeper.pid)}})
        alive_dir = tmp_path / "mdstack-alive0001"
        alive_dir.mkdir()
        orch._write_record(str(alive_dir), {"owner": orch.identity(os.getpid()), "children": {}})
        done = orch.reap_stale(str(tmp_path))
        assert len(done) == 1 and "stopped helper" in done[0]
        assert sleeper.wait(timeout=10) is not None
        assert not stale.exists() and alive_dir.exists()
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()


def test_a_recycled_pid_is_not_ours():
    me = orch.identity(os.getpid())
    assert orch.alive(me) and not orch.alive(dict(me, start=me["start"] + 1)) and not orch.alive(None)


# ---------------------------------------------------------------- the client loop and the balancer
class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (self.server.text + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def pages():
    servers = []
    for text in ("blue", "green"):
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
        srv.text = text
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
    yield [s.server_address[1] for s in servers]
    for s in servers:
        s.shutdown()
        s.server_close()


def test_http_get_and_the_loop_are_loopback_only_and_bounded(pages):
    assert orch.http_get(pages[0]) == (200, "blue\n")
    with pytest.raises(ValueError):
        orch.http_get(80, host="10.0.0.1")
    loop = orch.LoadLoop(pages[1], interval=0.01, max_requests=5).start()
    time.sleep(1)
    samples = loop.stop()
    assert len(samples) == 5 and all(ok and body == "green" for _, ok, body in samples) and loop.failed == 0
    closed = orch.free_port()
    with orch.LoadLoop(closed, interval=0.01, max_requests=3) as refused:
        time.sleep(0.5)
    assert refused.failed == 3 and refused.samples[0][2] == "ConnectionRefusedError"


def test_the_balancer_moves_new_connections_and_nothing_fails(tmp_path, pages):
    blue, green = pages
    stack = orch.Stack(None, str(tmp_path))
    lb = orch.Balancer.start(stack, blue)
    try:
        assert orch.http_get(lb.port)[1] == "blue\n" and lb.upstream() == blue
        with orch.LoadLoop(lb.port, interval=0.01) as loop:
            time.sleep(0.3)
            lb.route_to(green)
            time.sleep(0.3)
        answers = [b for _, ok, b in loop.samples if ok]
        assert loop.failed == 0 and answers[0] == "blue" and answers[-1] == "green"
        assert answers == sorted(answers, key=lambda b: b == "green")  # once switched, never back
        deadline = time.monotonic() + 5
        while lb.active() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lb.active() == {}                                     # every connection closed
        record = json.loads((tmp_path / "stack.json").read_text())
        assert orch.alive(record["children"]["balancer"])            # recorded: a reaper would find it
    finally:
        lb.stop()
    assert "balancer" not in json.loads((tmp_path / "stack.json").read_text())["children"]


def test_the_balancer_refuses_a_route_off_loopback(tmp_path):
    route, stats = tmp_path / "route", tmp_path / "stats"
    route.write_text("10.1.2.3:80\n")
    port = orch.free_port()
    p = subprocess.Popen([sys.executable, "-m", "minidocker.lab.orchestration", "balance", str(port), str(route),
                          str(stats)], env=dict(os.environ, PYTHONPATH=orch.PACKAGE_PARENT))
    try:
        deadline = time.monotonic() + 10
        while not stats.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(OSError):       # the connection is closed at once, nothing is forwarded
            orch.http_get(port, timeout=2)
    finally:
        p.terminate()
        p.wait(timeout=5)
