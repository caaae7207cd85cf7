#!/usr/bin/env bash
# Install what minidocker needs on a Debian/Ubuntu machine, as root:
# system packages (apt) and a Python virtual environment in .venv (pip).
# Safe to run again: it only adds what is missing.
#
# This file is THE list of host prerequisites: every program a test, a notebook, a benchmark
# or `make vm-test` needs comes from a package named below (tests/test_prerequisites.py
# checks that every tool the tests ask for is covered here).
#
#   scripts/setup.sh                      apt packages, then .venv with the EXTRAS (default: test)
#   scripts/setup.sh --system-only        apt packages only
#   scripts/setup.sh --print-apt-packages print the apt package list and exit
#   --vm-host                             (with any of the above) also the packages `make vm-test`
#                                         needs on this machine to run the lab VM (scripts/vm-test.sh)
#
# Environment: EXTRAS (pip extras, default test), PYTHON (interpreter for the venv, default
# python3), MINIDOCKER_VENV (where the venv goes, default .venv), APT_EXTRA (more apt packages).
# pip and apt honour their own settings (PIP_NO_INDEX, PIP_FIND_LINKS, APT_CONFIG), which is how
# scripts/provision.sh installs offline.
set -euo pipefail
cd "$(dirname "$0")/.."

# package            why (who needs it)
APT_PACKAGES="
  busybox-static     # the offline base image (minidocker/images/busybox.py)
  python3 python3-venv python3-pip
  make               # the README's two commands
  iproute2 procps    # ip, ps: notebooks show what minidocker made with the tools people know
  iptables nftables  # NAT and published ports (libnftables); dockerd needs iptables
  docker.io          # the real dockerd tests, notebooks and benchmarks compare against
  docker-registry    # a real v2 registry on loopback (tests/test_registry.py)
  docker-compose     # Compose 1.29, driving minidocker serve beside dockerd (tests/test_server.py)
  runc               # the real low-level runtime: runs our OCI bundles (tests), benchmarks
  strace             # fault injection: a command killed at a chosen syscall (tests/test_hardening.py)
  libseccomp2        # seccomp filters: Docker's default profile compiled through it (minidocker/core/linux/libseccomp.py)
  apparmor           # apparmor_parser: loads the minidocker-default profile where the kernel has AppArmor (core/apparmor.py)
  uidmap             # newuidmap/newgidmap: rootless mode maps a user's /etc/subuid range (minidocker/core/rootless.py)
  rootlesskit slirp4netns  # Docker's own rootless mode, run beside ours (tests/test_rootless.py)
  libcap2-bin        # capsh: notebook 00 decodes capability sets with it (and the grader image has it)
  util-linux         # setpriv, unshare, nsenter, ipcmk: notebooks 00-03 (essential on Debian; named for the image)
  chromium           # headless browser: the lab's plots and widgets checked in a real page (tests/test_lab_browser.py)
  fonts-noto-cjk     # Chinese in plot labels (minidocker/lab/plots.py) and in the notebooks' text in the browser
  fontconfig         # fc-list: which installed fonts cover Chinese (tests/test_lab_plots.py)
"
# what scripts/vm-test.sh needs to build and boot the lab VM here, offline (--vm-host)
VM_HOST_PACKAGES="
  qemu-system-x86 qemu-utils   # the VM, under software emulation
  mmdebstrap fdisk e2fsprogs   # the offline Debian 12 box (vm/build-box.sh)
  vagrant vagrant-libvirt      # the user-facing Vagrantfile, driven for real
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients dnsmasq-base
  dpkg-dev rsync openssh-client util-linux   # the offline payload, the synced folder, ssh, nsenter
"

strip_comments() { sed 's/#.*//' | tr -s ' \n' ' '; }
PACKAGES=$(echo "$APT_PACKAGES" | strip_comments)
SYSTEM_ONLY=0 PRINT=0
for arg in "$@"; do
  case "$arg" in
    --print-apt-packages) PRINT=1 ;;
    --system-only) SYSTEM_ONLY=1 ;;
    --vm-host) PACKAGES="$PACKAGES $(echo "$VM_HOST_PACKAGES" | strip_comments)" ;;
    *) echo "usage: $0 [--system-only | --print-apt-packages] [--vm-host]" >&2; exit 2 ;;
  esac
done
PACKAGES=$(echo $PACKAGES ${APT_EXTRA:-})
if [ "$PRINT" = 1 ]; then echo "$PACKAGES"; exit 0; fi

if [ "$(id -u)" != 0 ]; then
  echo "setup.sh: run me as root (minidocker creates namespaces, mounts and cgroups)" >&2
  exit 1
fi

missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "==> apt-get install$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends $missing
fi

# /dev/net/tun must be usable by every user, the mode udev's default rules give it on Debian and
# Ubuntu (0666; the device itself checks CAP_NET_ADMIN when an interface is made). Some container
# hosts create it 0600: rootless Docker's slirp4netns, run by an unprivileged user inside its
# user namespace, then fails with "open: Permission denied" (tests/test_rootless.py).
if [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
  echo "==> chmod 0666 /dev/net/tun (udev's default mode; rootless Docker's slirp4netns opens it)"
  chmod 0666 /dev/net/tun
fi
[ "$SYSTEM_ONLY" = 1 ] && exit 0

PY=${PYTHON:-python3}
VENV=${MINIDOCKER_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV with $($PY --version)"
  $PY -m venv "$VENV"
fi
# pip's own "already satisfied" check of every dependency takes seconds here and minutes in an
# emulated VM: skipped when this checkout, pyproject.toml and the extras are those of the last
# successful install into this venv (the stamp file below; delete it to force a reinstall).
STAMP="$VENV/.minidocker-install"
want="$(pwd) ${EXTRAS:-test} $(sha256sum pyproject.toml | cut -c1-16)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && "$VENV/bin/python" -c "import minidocker" 2>/dev/null; then
  echo "==> pip install -e .[${EXTRAS:-test}]: up to date (pyproject.toml unchanged since the last install)"
else
  echo "==> pip install -e .[${EXTRAS:-test}]"
  rm -f "$STAMP"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e ".[${EXTRAS:-test}]"
  echo "$want" > "$STAMP"
fi
# Byte-compile the package now: where PYTHONDONTWRITEBYTECODE is set (some CI machines and
# sandboxes set it) every minidocker process -- the CLI, each container's monitor -- would
# otherwise compile the modules it imports again, ~40 ms per `minidocker run` (issue 23).
# Python still reads the .pyc files then; it only never writes them. (Up to date: ~0.1 s.)
"$VENV/bin/python" -m compileall -q -j 0 minidocker
