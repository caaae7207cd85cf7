#!/usr/bin/env bash
# Install what minidocker needs on a Debian/Ubuntu machine, as root:
# system packages (apt) and a Python virtual environment in .venv (pip).
# Safe to run again: it only adds what is missing.
#
#   scripts/setup.sh                      apt packages, then .venv with the EXTRAS (default: test)
#   scripts/setup.sh --system-only        apt packages only
#   scripts/setup.sh --print-apt-packages print the apt package list and exit
#
# Environment: EXTRAS (pip extras, default test), PYTHON (interpreter for the venv, default
# python3), MINIDOCKER_VENV (where the venv goes, default .venv), APT_EXTRA (more apt packages).
# pip and apt honour their own settings (PIP_NO_INDEX, PIP_FIND_LINKS, APT_CONFIG), which is how
# scripts/provision.sh installs offline.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="busybox-static python3 python3-venv python3-pip iproute2 procps iptables nftables docker.io runc ${APT_EXTRA:-}"

case "${1:-}" in
  --print-apt-packages) echo $APT_PACKAGES; exit 0 ;;
  --system-only|"") ;;
  *) echo "usage: $0 [--system-only | --print-apt-packages]" >&2; exit 2 ;;
esac

if [ "$(id -u)" != 0 ]; then
  echo "setup.sh: run me as root (minidocker creates namespaces, mounts and cgroups)" >&2
  exit 1
fi

missing=""
for p in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "==> apt-get install$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends $missing
fi
[ "${1:-}" = --system-only ] && exit 0

PY=${PYTHON:-python3}
VENV=${MINIDOCKER_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV with $($PY --version)"
  $PY -m venv "$VENV"
fi
echo "==> pip install -e .[${EXTRAS:-test}]"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e ".[${EXTRAS:-test}]"
