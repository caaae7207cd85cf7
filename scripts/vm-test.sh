#!/usr/bin/env bash
# make vm-test: prove the lab VM. Bring up a real Vagrant VM from this repository's Vagrantfile,
# provision it with scripts/provision.sh, check that JupyterLab answers through the forwarded
# port, run the README's test command (`make test`) inside it as root, and destroy it.
#
# It works without internet access for the VM (following ../shared/reference/offline-vagrant-vm.md):
#   - the box is Debian 12 built here with mmdebstrap from this machine's apt sources
#     (vm/build-box.sh), cached in $MINIDOCKER_VM_CACHE so later runs skip that step;
#   - .deb files and wheels are gathered here (vm/offline-payload.sh) and carried into the VM
#     through an rsync synced folder; the VM itself reaches nothing outside;
#   - vagrant-libvirt drives QEMU with software emulation (TCG); libvirtd, virtlogd, dnsmasq, QEMU
#     and all of Vagrant's SSH traffic live in a private mount + network namespace created here,
#     so the management network never touches this machine's network;
#   - everything started is stopped at the end, by PID, also on failure.
#
# Settings (environment):
#   VM_TEST_ARGS          pytest selection passed to `make test` as PYTEST_ARGS inside the VM
#                         (default: the whole suite; e.g. "--ignore=tests/test_docker_compare.py")
#   MINIDOCKER_VM_CACHE   cache directory (default /var/cache/minidocker-vm)
#   VM_TEST_CMD           the whole command to run in the VM instead (through `vagrant ssh -c`)
#   VM_TEST_TIMEOUT       seconds allowed for the test command (default 3000)
#   VM_CPUS / VM_MEMORY   2 / 4096
#   VM_KEEP_LOGS=1        keep the run directory (libvirt, serial and Vagrant logs) even on success
# Needs root, x86_64, and the packages `scripts/setup.sh --vm-host` installs (done here if missing).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${MINIDOCKER_VM_CACHE:-/var/cache/minidocker-vm}
VM_TEST_ARGS=${VM_TEST_ARGS-}

[ "$(id -u)" = 0 ] || { echo "vm-test.sh: needs root" >&2; exit 1; }
[ "$(uname -m)" = x86_64 ] || { echo "vm-test.sh: the offline box is amd64; this machine is $(uname -m)" >&2; exit 1; }

T_START=$(date +%s)
TIMINGS=()
phase_start=0
phase() { phase_name=$1; phase_start=$(date +%s); echo; echo "=== $1"; }
phase_done() { local d=$(( $(date +%s) - phase_start )); TIMINGS+=("$(printf '%-28s %5d s' "$phase_name" "$d")"); }
print_timings() {
  echo
  echo "=== vm-test timings"
  printf '%s\n' "${TIMINGS[@]}" | tee "$CACHE/last-timings.txt"
  echo "total                        $(( $(date +%s) - T_START )) s" | tee -a "$CACHE/last-timings.txt"
}

# --- 0. tools on this machine -------------------------------------------------------------------
# (setup.sh, the one list of host prerequisites, installs what is missing)
"$REPO/scripts/setup.sh" --system-only --vm-host
# The programs this script and vm/*.sh run, each "command:package" (the package must be in
# setup.sh's --vm-host list; tests/test_prerequisites.py checks both).
VM_TOOLS="vagrant:vagrant virsh:libvirt-clients libvirtd:libvirt-daemon virtlogd:libvirt-daemon
  qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils mmdebstrap:mmdebstrap sfdisk:fdisk
  mkfs.ext4:e2fsprogs dnsmasq:dnsmasq-base dpkg-scanpackages:dpkg-dev rsync:rsync ssh:openssh-client
  nsenter:util-linux"
for pair in $VM_TOOLS; do
  command -v "${pair%%:*}" >/dev/null || PATH="$PATH:/usr/sbin:/sbin" command -v "${pair%%:*}" >/dev/null ||
    { echo "vm-test.sh: ${pair%%:*} is missing (package ${pair#*:}): scripts/setup.sh --vm-host installs it" >&2; exit 1; }
done
mkdir -p "$CACHE"
rm -f "$CACHE/last-test-summary.txt"   # (written only by this run's tests)

RUN=$(mktemp -d "$CACHE/run.XXXXXX")
HOLDER=""
NETNS=""
CREATED_DIRS=()
VAGRANT_UP=0
RESULT=1

# Everything Vagrant and libvirt do happens inside the holder's namespaces.
in_ns() { nsenter -t "$HOLDER" -m -n -- "$@"; }
vg() {  # vagrant, inside the namespace, under a time limit (VG_TIMEOUT seconds, default 600)
  in_ns timeout "${VG_TIMEOUT:-600}" env VAGRANT_CWD="$REPO" VAGRANT_HOME="$CACHE/vagrant.d" VAGRANT_DOTFILE_PATH="$RUN/dotvagrant" \
    VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_BOX_UPDATE_CHECK_DISABLE=1 VAGRANT_DEFAULT_PROVIDER=libvirt \
    MINIDOCKER_BOX="$BOX_NAME" MINIDOCKER_SYNC_TYPE=rsync MINIDOCKER_OFFLINE_DIR="$CACHE/offline" \
    MINIDOCKER_LIBVIRT_DRIVER=qemu MINIDOCKER_BOOT_TIMEOUT=900 \
    MINIDOCKER_CPUS="${VM_CPUS:-2}" MINIDOCKER_MEMORY="${VM_MEMORY:-4096}" \
    vagrant "$@"
}

stamp() {  # prefix each line with the seconds since the phase started
  local line
  while IFS= read -r line; do printf '[%4ds] %s\n' $(( $(date +%s) - phase_start )) "$line"; done
}

ns_pids() {  # every process in our network namespace (libvirtd, virtlogd, dnsmasq, qemu, ssh, ...)
  local p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$NETNS" ] && echo "${p#/proc/}"
  done
  return 0
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  if [ -n "$HOLDER" ] && [ "$VAGRANT_UP" = 1 ]; then
    echo "==> cleanup: vagrant destroy"
    VG_TIMEOUT=300 vg destroy -f >> "$RUN/cleanup.log" 2>&1
  fi
  if [ -n "$NETNS" ]; then
    local pids others p i
    [ -f "$RUN/libvirtd.pid" ] && kill -TERM "$(cat "$RUN/libvirtd.pid")" 2>/dev/null
    [ -f "$RUN/virtlogd.pid" ] && kill -TERM "$(cat "$RUN/virtlogd.pid")" 2>/dev/null
    for i in $(seq 1 50); do
      others=$(ns_pids | grep -vx "$HOLDER")
      [ -z "$others" ] && break
      [ "$i" = 1 ] && echo "==> cleanup: stopping $(echo $others | wc -w) process(es) in the VM namespace:" \
        "$(for p in $others; do echo -n "$p:$(cat /proc/$p/comm 2>/dev/null) "; done)"
      [ "$i" -lt 30 ] && kill -TERM $others 2>/dev/null || kill -KILL $others 2>/dev/null
      sleep 0.2
    done
    kill -KILL "$HOLDER" 2>/dev/null
    wait "$HOLDER" 2>/dev/null
    pids=$(ns_pids)
    [ -n "$pids" ] && echo "vm-test.sh: WARNING: still running in the namespace: $pids" >&2
  fi
  for d in "${CREATED_DIRS[@]}"; do rmdir "$d" 2>/dev/null; done
  if [ "$RESULT" = 0 ] && [ "${VM_KEEP_LOGS:-0}" != 1 ]; then
    rm -rf "$RUN"
  else
    echo "==> logs kept in $RUN"
  fi
  print_timings
  if [ -s "$CACHE/last-test-summary.txt" ]; then
    echo; echo "=== tests in the VM: summary (the whole output is kept in $RUN/logs/tests.log on failure)"
    cut -c1-300 "$CACHE/last-test-summary.txt" | tail -n 40
  fi
  [ "$rc" = 0 ] && [ "$RESULT" != 0 ] && rc=1
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. the box (cached) --------------------------------------------------------------------------
# The lab's apt packages go into the box (built natively, cached): provisioning then finds them
# installed instead of unpacking them under emulation. The key changes with the list.
BOX_PACKAGES=$("$REPO/scripts/provision.sh" --print-apt-packages)
BOX_KEY=$( (cat "$REPO/vm/build-box.sh"; echo "$BOX_PACKAGES") | sha256sum | cut -c1-12)
BOX_DIR=$CACHE/box-$BOX_KEY
BOX_NAME=minidocker/bookworm-$BOX_KEY
phase "box build"
if [ -s "$BOX_DIR/minidocker-bookworm.box" ] && [ -s "$BOX_DIR/dpkg-status" ]; then
  echo "cached: $BOX_DIR"
else
  rm -rf "$BOX_DIR"
  VM_BOX_PACKAGES="$BOX_PACKAGES" "$REPO/vm/build-box.sh" "$BOX_DIR.tmp"
  mv "$BOX_DIR.tmp" "$BOX_DIR"
fi
phase_done
# Older boxes (a changed build-box.sh) are of no further use.
for d in "$CACHE"/box-*; do [ "$d" = "$BOX_DIR" ] || rm -rf "$d"; done

# --- 2. .deb files and wheels for the VM ----------------------------------------------------------
phase "offline packages"
"$REPO/vm/offline-payload.sh" "$CACHE/offline" "$BOX_DIR/dpkg-status" "$CACHE/downloads"
phase_done

# --- 3. libvirtd in a private mount + network namespace -------------------------------------------
phase "libvirtd (namespace)"
mkdir -p "$RUN"/{etc-libvirt,var-lib-libvirt,var-log-libvirt,var-cache-libvirt,logs}
cp -a /etc/libvirt/. "$RUN/etc-libvirt/"
cat > "$RUN/etc-libvirt/qemu.conf" <<'EOF'
# vm-test: QEMU as root, no confinement, no cgroups: this libvirtd lives in a throwaway namespace.
user = "root"
group = "root"
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
dynamic_ownership = 0
EOF
# libvirt's QEMU driver looks up its default user; give it one only inside the namespace.
cp /etc/passwd "$RUN/passwd"; cp /etc/group "$RUN/group"
getent passwd libvirt-qemu >/dev/null || echo 'libvirt-qemu:x:64055:64055:libvirt qemu:/var/lib/libvirt:/usr/sbin/nologin' >> "$RUN/passwd"
getent group libvirt-qemu >/dev/null || echo 'libvirt-qemu:x:64055:' >> "$RUN/group"
getent group kvm >/dev/null || echo 'kvm:x:64056:' >> "$RUN/group"
for d in /var/lib/libvirt /var/log/libvirt /var/cache/libvirt; do  # mount points only
  if [ ! -d "$d" ]; then mkdir "$d"; CREATED_DIRS+=("$d"); fi
done
unshare --mount --net --propagation private -- sleep infinity </dev/null >/dev/null 2>&1 &
HOLDER=$!
for _ in $(seq 1 50); do
  NETNS=$(readlink "/proc/$HOLDER/ns/net" 2>/dev/null || true)
  [ -n "$NETNS" ] && [ "$NETNS" != "$(readlink /proc/self/ns/net)" ] && break
  NETNS=""; sleep 0.1
done
[ -n "$NETNS" ] || { echo "vm-test.sh: the namespace holder did not start" >&2; exit 1; }
echo "namespace holder: pid $HOLDER ($NETNS)"
in_ns sh -ec "
  mount -t tmpfs -o mode=0755 tmpfs /run
  mkdir -p /run/libvirt /run/lock
  mount -t sysfs sysfs /sys          # this namespace's network devices
  mount --bind '$RUN/etc-libvirt' /etc/libvirt
  mount --bind '$RUN/var-lib-libvirt' /var/lib/libvirt
  mount --bind '$RUN/var-log-libvirt' /var/log/libvirt
  mount --bind '$RUN/var-cache-libvirt' /var/cache/libvirt
  mount --bind '$RUN/passwd' /etc/passwd
  mount --bind '$RUN/group' /etc/group
  ip link set lo up
"
# nsenter execs the daemon itself (no fork for mount and network namespaces): $! is its PID.
nsenter -t "$HOLDER" -m -n -- /usr/sbin/virtlogd </dev/null > "$RUN/logs/virtlogd.log" 2>&1 &
echo $! > "$RUN/virtlogd.pid"
nsenter -t "$HOLDER" -m -n -- /usr/sbin/libvirtd </dev/null > "$RUN/logs/libvirtd.log" 2>&1 &
echo $! > "$RUN/libvirtd.pid"
for _ in $(seq 1 100); do
  in_ns virsh -q -c qemu:///system version >/dev/null 2>&1 && break
  sleep 0.2
done
in_ns virsh -q -c qemu:///system version >/dev/null || { echo "vm-test.sh: libvirtd did not start" >&2; cat "$RUN/logs/libvirtd.log" >&2; exit 1; }
echo "libvirtd pid $(cat "$RUN/libvirtd.pid"), virtlogd pid $(cat "$RUN/virtlogd.pid")"
phase_done

# --- 4. vagrant box add (cached in VAGRANT_HOME) ---------------------------------------------------
phase "vagrant box add"
if vg box list 2>/dev/null | grep -q "^$BOX_NAME "; then
  echo "cached: $BOX_NAME"
else
  # Drop boxes of earlier builds.
  vg box list 2>/dev/null | awk '$1 ~ /^minidocker\/bookworm-/ {print $1}' | while read -r old; do
    vg box remove --force --all "$old" >/dev/null 2>&1 || true
  done
  vg box add --name "$BOX_NAME" "$BOX_DIR/minidocker-bookworm.box"
fi
phase_done

# --- 5. the user-facing Vagrantfile validates (none of the overrides above) ----------------------
phase "vagrant validate"
in_ns env -u VAGRANT_DEFAULT_PROVIDER VAGRANT_CWD="$REPO" VAGRANT_HOME="$CACHE/vagrant.d" \
  VAGRANT_DOTFILE_PATH="$RUN/dotvagrant-validate" VAGRANT_CHECKPOINT_DISABLE=1 vagrant validate
phase_done

# --- 6. vagrant up, provisioning ------------------------------------------------------------------
phase "vagrant up (boot + rsync)"
VAGRANT_UP=1
VG_TIMEOUT=1800 vg up --provider libvirt --no-provision 2>&1 | stamp
phase_done

phase "provision (provision.sh)"
VG_TIMEOUT=2400 vg provision 2>&1 | stamp
phase_done

# --- 7. the lab answers through the forwarded port (127.0.0.1:8888 in the namespace) ---------------
phase "lab check (port 8888)"
url=$(vg ssh -c "sudo cat /etc/minidocker/lab-url" 2>/dev/null | tr -d '\r' | tail -n1)
echo "lab URL (inside the namespace): $url"
status_url=${url/\/lab\?token=//api/status?token=}
in_ns python3 - "$status_url" <<'EOF'
import json, sys, time, urllib.request
deadline = time.monotonic() + 120
while True:
    try:
        status = json.load(urllib.request.urlopen(sys.argv[1], timeout=10))
        print("JupyterLab answers on 127.0.0.1:8888:", {k: status[k] for k in ("started", "kernels") if k in status})
        break
    except Exception as e:
        if time.monotonic() > deadline:
            sys.exit(f"JupyterLab does not answer through the forwarded port: {e}")
        time.sleep(2)
# What the learner opens is the learner's copy: exercises with stubs, no solution, no hidden test.
contents = sys.argv[1].replace("/api/status?", "/api/contents/04-cgroups.ipynb?")
nb = json.load(urllib.request.urlopen(contents, timeout=30))["content"]
sources = ["".join(c["source"]) for c in nb["cells"]]
assert any("raise NotImplementedError()" in s for s in sources), "no exercise stub in the served notebook"
assert not any("BEGIN SOLUTION" in s or "HIDDEN TESTS" in s for s in sources), "the lab serves the solutions"
print("the lab serves the learner's copy: %d exercise stubs, no solution" % sum("NotImplementedError()" in s for s in sources))
EOF
phase_done

# --- 7b. a real reboot: restart policies at boot (minidocker-restore.service) ----------------------
phase "reboot (restart policies at boot)"
vg ssh -c "sudo sh /vagrant/scripts/vm-boot-check.sh before" 2>&1 | stamp
VG_TIMEOUT=900 vg reload --no-provision 2>&1 | stamp
vg ssh -c "sudo sh /vagrant/scripts/vm-boot-check.sh after" 2>&1 | stamp
phase_done

# --- 8. the README's test command inside the VM ---------------------------------------------------
phase "tests in the VM"
vg ssh -c "echo \"guest: \$(. /etc/os-release; echo \$PRETTY_NAME), kernel \$(uname -r), /sys/fs/cgroup is \$(stat -f -c %T /sys/fs/cgroup), \$(nproc) CPUs\""
# The README's line (`vagrant ssh -c "cd /vagrant && sudo make test"`), with the selection if any.
test_cmd=${VM_TEST_CMD:-"cd /vagrant && sudo make test${VM_TEST_ARGS:+ PYTEST_ARGS='$VM_TEST_ARGS'}"}
echo "vagrant ssh -c \"$test_cmd\""
set +e
VG_TIMEOUT=${VM_TEST_TIMEOUT:-3000} vg ssh -c "$test_cmd" 2>&1 | stamp | tee "$RUN/logs/tests.log"
test_rc=${PIPESTATUS[0]}
set -e
phase_done
# CI keeps only the end of the output: the test summary is printed again after the timings.
grep -E '^\[ *[0-9]+s\] (FAILED|ERROR) |^\[ *[0-9]+s\] =+ .*(passed|failed|error).* =+$' "$RUN/logs/tests.log" \
  > "$CACHE/last-test-summary.txt" 2>/dev/null || true

# --- 9. destroy -----------------------------------------------------------------------------------
phase "vagrant destroy"
vg destroy -f
VAGRANT_UP=0
phase_done

if [ "$test_rc" = 0 ]; then
  RESULT=0
  echo "vm-test: PASSED (make test inside the VM)"
else
  echo "vm-test: FAILED: make test inside the VM exited $test_rc" >&2
fi
exit "$test_rc"
