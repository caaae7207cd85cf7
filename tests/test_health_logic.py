"""container/health.py and gotime's Go durations: the health-check rules, without root.
(The numbers and words are what dockerd 20.10 did here: tests/test_health.py runs both.)"""
import pytest

from minidocker import gotime
from minidocker.container import health
from minidocker.errors import InvalidArgument

S = 1_000_000_000


@pytest.mark.parametrize("ns,text", [(0, "0s"), (1, "1ns"), (1500, "1.5µs"), (S // 2, "500ms"), (S, "1s"),
                                     (3 * S // 2, "1.5s"), (30 * S, "30s"), (90 * S, "1m30s"),
                                     (3600 * S, "1h0m0s"), (-S, "-1s")])
def test_go_duration_strings(ns, text):
    assert gotime.format_duration(ns) == text
    assert gotime.parse_duration(text) == ns


def test_flags_to_config():
    assert health.from_flags(None, 0, 0, 0, 0, False) is None              # nothing given: the image's
    assert health.from_flags("exit 0", S, 0, 0, 0, False) == {"Test": ["CMD-SHELL", "exit 0"], "Interval": S}
    assert health.from_flags(None, 2 * S, 0, 0, 0, False) == {"Interval": 2 * S}
    assert health.from_flags(None, 0, 0, 0, 0, True) == {"Test": ["NONE"]}
    for args, message in [((None, -S, 0, 0, 0, False), "--health-interval cannot be negative"),
                          ((None, 0, 0, 0, -1, False), "--health-retries cannot be negative"),
                          ((None, 0, 0, -S, 0, False), "--health-start-period cannot be negative"),
                          (("true", 0, 0, 0, 0, True), "--no-healthcheck conflicts with --health-* options")]:
        with pytest.raises(InvalidArgument) as e:
            health.from_flags(*args)
        assert str(e.value) == message and e.value.exit_code == 125


def test_flags_go_over_the_images_check_field_by_field():
    image = {"Test": ["CMD", "sh", "-c", "exit 1"], "Interval": S, "Retries": 1}
    assert health.merge(image, {"Interval": 2 * S}) == {"Interval": 2 * S, "Test": ["CMD", "sh", "-c", "exit 1"],
                                                        "Retries": 1}
    assert health.merge(image, None) == image and health.merge(None, None) is None
    assert health.merge(image, {"Test": ["NONE"]})["Test"] == ["NONE"] and not health.enabled({"Test": ["NONE"]})


def test_daemon_checks():
    with pytest.raises(InvalidArgument) as e:
        health.validate({"Test": ["CMD-SHELL", "true"], "Interval": 100_000})
    assert str(e.value) == "Interval in Healthcheck cannot be less than 1ms" and e.value.exit_code == 1
    health.validate({"Test": ["CMD-SHELL", "true"], "Retries": 0})


def test_probe_command_lines():
    assert health.probe_argv({"Test": ["CMD-SHELL", "curl -f x || exit 1"]}) == ["/bin/sh", "-c", "curl -f x || exit 1"]
    assert health.probe_argv({"Test": ["CMD-SHELL", "x"]}, ["/bin/bash", "-c"]) == ["/bin/bash", "-c", "x"]
    assert health.probe_argv({"Test": ["CMD", "pg_isready", "-q"]}) == ["pg_isready", "-q"]
    assert health.timeout_message({"Timeout": S}) == "Health check exceeded timeout (1s)"
    assert health.timeout_message({}) == "Health check exceeded timeout (30s)"


def run(config, results, start_period_s=0.0):
    """Feed probe exit codes (one per second after the start) through record()."""
    h = health.on_start(None)
    for i, code in enumerate(results):
        t = (i + 1) * S
        h = health.record(h, config, code, "", t, t + 1000, 0)
    return h


def test_streaks_and_statuses():
    cfg = {"Test": ["CMD-SHELL", "x"], "Retries": 2}
    assert run(cfg, [0])["Status"] == "healthy"
    assert [run(cfg, [1] * n)["Status"] for n in (1, 2, 3)] == ["starting", "unhealthy", "unhealthy"]
    assert run(cfg, [1] * 8)["FailingStreak"] == 8 and len(run(cfg, [1] * 8)["Log"]) == 5   # the last 5
    assert run(cfg, [1, 1, 0]) == {**run(cfg, [1, 1, 0]), "Status": "healthy", "FailingStreak": 0}
    assert run(cfg, [2, 2])["Status"] == "unhealthy"            # any non-zero code is a failure
    assert run({"Test": ["CMD-SHELL", "x"]}, [1, 1])["Status"] == "starting"   # default retries: 3


def test_the_start_period_forgives_early_failures():
    cfg = {"Test": ["CMD-SHELL", "x"], "Retries": 1, "StartPeriod": 4 * S}
    assert run(cfg, [1, 1, 1]) == {**run(cfg, [1, 1, 1]), "Status": "starting", "FailingStreak": 0}
    assert run(cfg, [1] * 6)["Status"] == "unhealthy"            # from the 4th second on they count
    assert run(cfg, [1, 0, 1])["Status"] == "unhealthy"          # once healthy, no more grace


def test_stop_and_start_keep_the_log():
    h = run({"Test": ["CMD-SHELL", "x"]}, [0, 0])
    stopped = health.on_stop(h)
    assert stopped["Status"] == "unhealthy" and stopped["FailingStreak"] == 0 and stopped["Log"] == h["Log"]
    assert health.on_start(stopped)["Status"] == "starting" and health.on_start(stopped)["Log"] == h["Log"]


def test_output_is_cut_as_dockerd_cuts_it():
    assert health.cut_output(b"a" * 10000) == "a" * 4096 + "..."
    assert health.cut_output(b"ok\n") == "ok\n"
