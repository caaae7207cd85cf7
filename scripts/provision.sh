#!/usr/bin/env bash
# Turn a Debian/Ubuntu machine into the minidocker lab, as root. The Vagrantfile runs this
# inside the VM; it works by hand on any Debian 12 / Ubuntu 22.04+ machine too:
#
#   sudo scripts/provision.sh [--python venv|conda] [--offline DIR] [--no-service]
#   scripts/provision.sh --print-apt-packages     (the apt packages it installs, --python venv)
#
# 1. system packages with apt: scripts/setup.sh's list plus VM_APT_EXTRA below,
# 2. the Python environment on the machine's own disk, in PREFIX (default /opt/minidocker):
#      venv   a virtual environment from PyPI (default): PREFIX/venv, via scripts/setup.sh
#      conda  Miniforge in PREFIX/miniforge and environment.yml in PREFIX/conda (needs internet)
# 3. JupyterLab as a systemd service (minidocker-lab.service), running as root on the learner's
#    copy of the course (REPO/course: made from REPO/notebooks without the solutions, refreshed
#    at each start, never overwriting a notebook the learner changed), on 0.0.0.0:8888 with a token kept in /etc/minidocker/lab.env; the URL with the
#    token is in /etc/minidocker/lab-url (`vagrant ssh -c "sudo cat /etc/minidocker/lab-url"`).
#
# --offline DIR: no internet needed. DIR/debs holds .deb files with a Packages index and
# DIR/wheels holds wheels (scripts/vm-test.sh prepares both); apt and pip then use only those
# (the VM keeps that pip setting, so `make test` inside it works offline too).
#
# Environment (same meaning as the options): MINIDOCKER_PYTHON, MINIDOCKER_OFFLINE,
# MINIDOCKER_LAB_SERVICE (1/0), MINIDOCKER_PREFIX, MINIDOCKER_REPO (default: this checkout),
# MINIDOCKER_COURSE (the learner's copy JupyterLab serves, default REPO/course), MINIDOCKER_ROOT (container state, default
# /var/lib/minidocker: must be on a local disk, never on a shared folder), MINIDOCKER_LAB_PORT
# (8888), MINIDOCKER_DISABLE_SYSTEM_DOCKER=1 (stop and disable the distribution's docker
# service: tests and notebooks start their own private dockerd; the Vagrantfile sets it).
set -euo pipefail

PYTHON_ENV=${MINIDOCKER_PYTHON:-venv}
OFFLINE=${MINIDOCKER_OFFLINE:-}
SERVICE=${MINIDOCKER_LAB_SERVICE:-1}
while [ $# -gt 0 ]; do
  case "$1" in
    --python) PYTHON_ENV=$2; shift 2 ;;
    --python=*) PYTHON_ENV=${1#*=}; shift ;;
    --offline) OFFLINE=$2; shift 2 ;;
    --offline=*) OFFLINE=${1#*=}; shift ;;
    --no-service) SERVICE=0; shift ;;
    --print-apt-packages) PRINT_APT=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
    *) echo "provision.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

# Beyond scripts/setup.sh's list: apparmor, because dockerd refuses to start containers when
# the kernel has AppArmor enabled (Debian and Ubuntu kernels do) and apparmor_parser is missing.
VM_APT_EXTRA="apparmor"
here=$(cd "$(dirname "$0")/.." && pwd)
if [ "${PRINT_APT:-0}" = 1 ]; then
  [ -x "$here/scripts/setup.sh" ] || { echo "provision.sh: run it from a checkout for --print-apt-packages" >&2; exit 1; }
  APT_EXTRA="$VM_APT_EXTRA" exec "$here/scripts/setup.sh" --print-apt-packages
fi

die() { echo "provision.sh: $*" >&2; exit 1; }
say() { echo "==> [$(( $(date +%s) - T0 ))s] $*"; }
T0=$(date +%s)

[ "$(id -u)" = 0 ] || die "run me as root (sudo scripts/provision.sh)"
case "$PYTHON_ENV" in venv|conda) ;; *) die "--python must be venv or conda, not '$PYTHON_ENV'" ;; esac

if [ -n "${MINIDOCKER_REPO:-}" ]; then REPO=$MINIDOCKER_REPO
elif [ -f "$here/pyproject.toml" ] && [ -x "$here/scripts/setup.sh" ]; then REPO=$here
else REPO=/vagrant  # Vagrant uploads this script alone to /tmp
fi
[ -x "$REPO/scripts/setup.sh" ] || die "no minidocker checkout at $REPO (set MINIDOCKER_REPO)"
PREFIX=${MINIDOCKER_PREFIX:-/opt/minidocker}
COURSE=${MINIDOCKER_COURSE:-$REPO/course}
STATE=${MINIDOCKER_ROOT:-/var/lib/minidocker}
PORT=${MINIDOCKER_LAB_PORT:-8888}
export DEBIAN_FRONTEND=noninteractive

# --- offline: apt and pip read only the carried-in files ------------------------------------
if [ -n "$OFFLINE" ]; then
  OFFLINE=$(cd "$OFFLINE" && pwd)
  [ -f "$OFFLINE/debs/Packages" ] || die "$OFFLINE/debs/Packages missing (a local apt repository is expected)"
  [ -d "$OFFLINE/wheels" ] || die "$OFFLINE/wheels missing"
  [ "$PYTHON_ENV" = venv ] || die "--offline works with --python venv only (Miniforge needs the internet)"
  say "offline: apt from $OFFLINE/debs, pip from $OFFLINE/wheels"
  mkdir -p /etc/minidocker
  echo "deb [trusted=yes] file:$OFFLINE/debs ./" > /etc/minidocker/offline-apt.list
  cat > /etc/minidocker/offline-apt.conf <<EOF
Dir::Etc::SourceList "/etc/minidocker/offline-apt.list";
Dir::Etc::SourceParts "/nonexistent";
// a fresh machine with nothing to lose on a crash: no fsync per file (much faster when emulated)
DPkg::Options { "--force-unsafe-io"; };
EOF
  export APT_CONFIG=/etc/minidocker/offline-apt.conf
  # For every later pip run on this machine too (`make test` runs pip again).
  cat > /etc/pip.conf <<EOF
# written by minidocker's scripts/provision.sh --offline: this machine has no internet
[global]
no-index = true
find-links = $OFFLINE/wheels
# no .pyc files written at install (minutes under emulation): Python compiles what it imports
no-compile = true
EOF
fi

# --- 1 + 2: system packages and the Python environment --------------------------------------
extra=$VM_APT_EXTRA
[ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ] || extra=${extra/apparmor/}
export APT_EXTRA="$extra ${APT_EXTRA:-}"
case "$PYTHON_ENV" in
  venv)
    say "system packages and a venv in $PREFIX/venv (scripts/setup.sh)"
    mkdir -p "$PREFIX"
    MINIDOCKER_VENV=$PREFIX/venv EXTRAS=test,lab "$REPO/scripts/setup.sh"
    PYBIN=$PREFIX/venv/bin
    ;;
  conda)
    APT_EXTRA="$APT_EXTRA ca-certificates curl"
    say "system packages (scripts/setup.sh --system-only)"
    "$REPO/scripts/setup.sh" --system-only
    if [ ! -x "$PREFIX/miniforge/bin/conda" ]; then
      arch=$(uname -m)
      say "Miniforge for $arch into $PREFIX/miniforge"
      mkdir -p "$PREFIX"
      curl -fsSL -o "$PREFIX/miniforge.sh" \
        "https://github.com/conda-forge/miniforge/releases/latest/download/Miniforge3-Linux-$arch.sh"
      bash "$PREFIX/miniforge.sh" -b -p "$PREFIX/miniforge"
      rm -f "$PREFIX/miniforge.sh"
    fi
    if [ -x "$PREFIX/conda/bin/python" ]; then
      say "conda env update -p $PREFIX/conda -f environment.yml"
      (cd "$REPO" && "$PREFIX/miniforge/bin/conda" env update -q -p "$PREFIX/conda" -f environment.yml --prune)
    else
      say "conda env create -p $PREFIX/conda -f environment.yml"
      (cd "$REPO" && "$PREFIX/miniforge/bin/conda" env create -q -p "$PREFIX/conda" -f environment.yml)
    fi
    PYBIN=$PREFIX/conda/bin
    ;;
esac
ln -sfn "$PYBIN" "$PREFIX/bin"   # one stable path whichever environment was chosen
# `make test` / `make lab` in the checkout use this environment (see the Makefile).
mkdir -p /etc/minidocker
dirname "$PYBIN" > /etc/minidocker/python-env
for cmd in minidocker pytest jupyter; do
  if [ -x "$PYBIN/$cmd" ]; then ln -sfn "$PYBIN/$cmd" "/usr/local/bin/$cmd"; fi
done

# --- container state on the machine's own disk ------------------------------------------------
mkdir -p "$STATE"
fstype=$(stat -f -c %T "$STATE")
case "$fstype" in
  vboxsf|nfs|nfs4|v9fs|9p|virtiofs|fuse*|smb*|cifs|prl_fs|vmhgfs)
    die "MINIDOCKER_ROOT=$STATE is on a shared folder ($fstype): overlay upper directories cannot live there; use a path on the machine's own disk such as /var/lib/minidocker" ;;
esac
say "container state in $STATE ($fstype)"

if [ "${MINIDOCKER_DISABLE_SYSTEM_DOCKER:-0}" = 1 ] && command -v systemctl >/dev/null \
   && systemctl list-unit-files docker.service >/dev/null 2>&1; then
  # The lab compares against a private dockerd it starts itself; a system dockerd would add a
  # docker0 bridge and set the iptables FORWARD policy to DROP.
  say "disabling the distribution's docker service (tests and notebooks start a private dockerd)"
  systemctl disable --now docker.socket docker.service >/dev/null 2>&1 || true
fi

# --- 3: JupyterLab as a service ---------------------------------------------------------------
[ "$SERVICE" = 1 ] || { say "done (no lab service: --no-service)"; exit 0; }
command -v systemctl >/dev/null && [ -d /run/systemd/system ] || die "systemd is not running: start the lab with 'make lab' instead"
mkdir -p /etc/minidocker
if ! grep -qs '^JUPYTER_TOKEN=.' /etc/minidocker/lab.env; then
  (umask 077; echo "JUPYTER_TOKEN=$("$PYBIN/python" -c 'import secrets; print(secrets.token_hex(24))')" > /etc/minidocker/lab.env)
fi
token=$(sed -n 's/^JUPYTER_TOKEN=//p' /etc/minidocker/lab.env)
(umask 077; echo "http://127.0.0.1:$PORT/lab?token=$token" > /etc/minidocker/lab-url)
cat > /etc/systemd/system/minidocker-lab.service <<EOF
# written by minidocker's scripts/provision.sh
[Unit]
Description=minidocker lab: JupyterLab on the course notebooks (as root: containers need it)
After=network-online.target
Wants=network-online.target
# A shared folder may be mounted after boot (Vagrant mounts it over SSH): keep retrying.
StartLimitIntervalSec=0

[Service]
User=root
EnvironmentFile=/etc/minidocker/lab.env
Environment=MINIDOCKER_ROOT=$STATE
Environment=PATH=$PYBIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ExecStartPre=/usr/bin/test -d $REPO/notebooks
ExecStartPre=$PYBIN/python -m minidocker.lab.course learner $REPO/notebooks $COURSE
ExecStart=$PYBIN/python -m jupyter lab --allow-root --no-browser --ip=0.0.0.0 --port=$PORT --ServerApp.root_dir=$COURSE
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
EOF
# At boot, what dockerd does when it starts: containers whose restart policy says so
# (--restart always / unless-stopped / on-failure) start again (minidocker/engine/restore.py).
cat > /etc/systemd/system/minidocker-restore.service <<EOF
# written by minidocker's scripts/provision.sh
[Unit]
Description=minidocker: containers' restart policies at boot, a clean stop at shutdown (as dockerd)
After=network-online.target minidocker-lab.service
Wants=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
Environment=MINIDOCKER_ROOT=$STATE
ExecStart=-$PYBIN/python -m minidocker system restore
# stopped first at shutdown (it starts after the lab): the containers, the lab's included, stop
# cleanly instead of holding the shutdown until systemd kills their monitors
ExecStop=$PYBIN/python -m minidocker system shutdown
TimeoutStopSec=60

[Install]
WantedBy=multi-user.target
EOF
# The Docker Engine API on /run/minidocker.sock (root:root 0660, as dockerd's socket), for the
# docker CLI, docker-py and docker-compose: DOCKER_HOST=unix:///run/minidocker.sock docker ps
cat > /etc/systemd/system/minidocker-api.service <<EOF
# written by minidocker's scripts/provision.sh
[Unit]
Description=minidocker serve: the Docker Engine API on /run/minidocker.sock
After=minidocker-restore.service

[Service]
Environment=MINIDOCKER_ROOT=$STATE
Environment=PATH=$PYBIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ExecStart=$PYBIN/python -m minidocker serve -H unix:///run/minidocker.sock
Restart=on-failure

[Install]
WantedBy=multi-user.target
EOF
systemctl daemon-reload
systemctl enable --now minidocker-api.service >/dev/null 2>&1
systemctl enable minidocker-restore.service >/dev/null 2>&1
# started now too (it restores nothing yet): only an active unit gets its ExecStop at the next
# shutdown (found in the VM: without it the first reboot waited ~90 s for the monitors)
systemctl start minidocker-restore.service
systemctl enable minidocker-lab.service >/dev/null 2>&1
systemctl restart minidocker-lab.service
say "waiting for JupyterLab on port $PORT (the first start takes a while)"
ok=0
for _ in $(seq 1 180); do
  if "$PYBIN/python" - "$PORT" "$token" <<'EOF' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/api/status?token={sys.argv[2]}", timeout=5).read()
EOF
  then ok=1; break; fi
  sleep 1
done
if [ "$ok" != 1 ]; then
  journalctl -u minidocker-lab.service -n 30 --no-pager >&2 || true
  die "JupyterLab did not answer on port $PORT"
fi
say "JupyterLab answers"
cat <<EOF

  The minidocker lab is running: JupyterLab on your copy of the course ($COURSE).
  Open    http://127.0.0.1:$PORT/lab   and paste the token, or open the URL with the token:
    from the host (Vagrant):  vagrant ssh -c "sudo cat /etc/minidocker/lab-url"
    on this machine:          sudo cat /etc/minidocker/lab-url
  Service: systemctl status minidocker-lab   (logs: journalctl -u minidocker-lab)

EOF
