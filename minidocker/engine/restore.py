"""What dockerd does when it starts and stops, for a daemonless runtime: `minidocker system
restore` and `minidocker system shutdown`.

Taught in notebook 09 (lifecycle). When the host boots, every container's monitor is gone.
dockerd, starting, marks the containers it finds as stopped and starts again those whose
restart policy says so (container/restart.should_start_at_boot): `always` ones even if the
user had stopped them, `unless-stopped` ones unless the user had, `on-failure` ones whose
last exit was a failure with retries left. minidocker has no daemon to start, so a boot
step runs this instead (the lab VM's minidocker-restore.service; any host: a systemd unit
or an @reboot cron line running `minidocker system restore`).

When the host shuts down, dockerd stops every container first (SIGTERM, then SIGKILL) and
that does not count as a user's `docker stop`: an unless-stopped container comes back at
boot. `system shutdown` does that (the same unit's ExecStop); without it the monitors, which
ignore SIGTERM, would hold the shutdown until systemd kills them.
"""
from __future__ import annotations

from ..container import restart
from ..errors import MinidockerError


def restore(rt, say=print) -> tuple[list[str], list[str]]:
    """Start the containers whose restart policy brings them back; return (started, failed)
    names. Containers whose monitor died are recorded as exited first (reconcile, in list)."""
    started, failed = [], []
    for rec in sorted(rt.list(all=True), key=lambda r: r["Created"]):
        s, host = rec["State"], rec["HostConfig"]
        if s["Running"] or s.get("Status") == "removing":
            continue
        if not restart.should_start_at_boot(host.get("RestartPolicy"), s["ExitCode"],
                                            bool(rec.get("HasBeenManuallyStopped")), rec.get("RestartCount", 0)):
            continue
        name = rec["Name"].lstrip("/")
        try:
            rt.start(rec["Id"])
            started.append(name)
            say(name)
        except MinidockerError as e:  # dockerd logs it and goes on with the others
            failed.append(name)
            say(f"{name}: {e}")
    return started, failed


def shutdown(rt, timeout: int = 15, say=print) -> list[str]:
    """Stop every running container at once, as dockerd does when it stops (its default
    shutdown timeout: 15 s), not as a user's stop; return their names."""
    import threading
    from .stop import stop
    running = [r for r in rt.list() if r["State"]["Running"]]
    errors: list[str] = []

    def one(rec):
        try:
            stop(rt, rec["Id"], timeout, shutting_down=True)
        except MinidockerError as e:
            errors.append(f"{rec['Name'].lstrip('/')}: {e}")
    threads = [threading.Thread(target=one, args=(r,)) for r in running]  # (stop forks nothing)
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in errors:
        say(e)
    names = [r["Name"].lstrip("/") for r in running]
    for name in names:
        say(name)
    return names
