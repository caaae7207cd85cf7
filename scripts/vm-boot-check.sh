#!/bin/sh
# Run inside the lab VM by scripts/vm-test.sh, around a real reboot (`vagrant reload`):
#   before  make containers as a learner would: --restart always (running), unless-stopped
#           (stopped by the user), no policy (running)
#   after   the machine has rebooted: minidocker-restore.service started what dockerd would
#           have started (engine/restore.py): the `always` one only
set -eu
case "${1:-}" in
  before)
    systemctl is-enabled minidocker-restore.service
    minidocker rm -f boot-always boot-unless boot-no >/dev/null 2>&1 || true
    minidocker run -d --name boot-always --restart always busybox sleep 100000 >/dev/null
    minidocker run -d --name boot-unless --restart unless-stopped --network none busybox sleep 100000 >/dev/null
    minidocker stop -t 0 boot-unless >/dev/null
    minidocker run -d --name boot-no --network none busybox sleep 100000 >/dev/null
    minidocker ps -a --filter name=boot- --format '{{.Names}}: {{.Status}}'
    ;;
  after)
    systemctl status --no-pager minidocker-restore.service | head -n 12 || true
    minidocker ps -a --filter name=boot- --format '{{.Names}}: {{.Status}}'
    status() { minidocker inspect -f '{{.State.Status}}' "$1"; }
    [ "$(status boot-always)" = running ] || { echo "boot-always did not come back" >&2; exit 1; }
    [ "$(status boot-unless)" = exited ] || { echo "boot-unless came back though the user stopped it" >&2; exit 1; }
    [ "$(status boot-no)" = exited ] || { echo "boot-no (no restart policy) came back" >&2; exit 1; }
    minidocker exec boot-always sh -c 'ip -4 addr show eth0 | grep -q inet'  # on the bridge again
    minidocker rm -f boot-always boot-unless boot-no >/dev/null
    echo "after the reboot: as dockerd would (always back, unless-stopped and no policy not)"
    ;;
  *) echo "usage: $0 before|after" >&2; exit 2 ;;
esac
