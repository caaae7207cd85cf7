#!/usr/bin/env bash
# Install what minidocker needs on a Debian/Ubuntu machine, as root:
# system packages (apt) and a Python virtual environment in .venv (pip).
# Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "setup.sh: run me as root (minidocker creates namespaces, mounts and cgroups)" >&2
  exit 1
fi

APT_PACKAGES="busybox-static python3 python3-venv python3-pip iproute2 procps iptables nftables docker.io runc"
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

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $($PY --version)"
  $PY -m venv .venv
fi
echo "==> pip install -e .[${EXTRAS:-test}]"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[${EXTRAS:-test}]"
