#!/usr/bin/env bash
# Gather what a VM without internet needs to provision the lab, on this (online) machine:
#   OUT/debs/    the .deb files for scripts/provision.sh --print-apt-packages, with every dependency
#                the box does not already have, and a Packages index (a flat local apt repository)
#   OUT/wheels/  wheels for pyproject's dependencies and extras, its build backend, and pip
#
#   vm/offline-payload.sh OUT BOX_DPKG_STATUS [CACHE]
#
# Dependencies are resolved against the box's own dpkg status file (written by vm/build-box.sh),
# with this machine's apt lists, so the box and this machine must be the same Debian release.
# Wheels are built/downloaded with this machine's /usr/bin/python3, which must be the guest's
# Python version (Debian 12: 3.11). CACHE (default OUT.cache) keeps downloads between runs.
set -euo pipefail
OUT=${1:?usage: vm/offline-payload.sh OUT BOX_DPKG_STATUS [CACHE]}
STATUS=${2:?usage: vm/offline-payload.sh OUT BOX_DPKG_STATUS [CACHE]}
CACHE=${3:-$OUT.cache}
REPO=$(cd "$(dirname "$0")/.." && pwd)
HOSTPY=${VM_HOST_PYTHON:-/usr/bin/python3}

box_py=$(awk '/^Package: python3$/ {p=1} p && /^Version:/ {print $2; exit}' "$STATUS" | cut -d. -f1,2)
host_py=$("$HOSTPY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ -n "$box_py" ] && [ "$box_py" != "$host_py" ]; then
  echo "offline-payload.sh: the box has Python $box_py but $HOSTPY is $host_py: wheels would not match" >&2
  exit 1
fi

rm -rf "$OUT.new"
mkdir -p "$OUT.new/debs" "$OUT.new/wheels" "$CACHE/apt-archives/partial" "$CACHE/pip"

# --- .deb files --------------------------------------------------------------------------------
pkgs=$("$REPO/scripts/provision.sh" --print-apt-packages)
apt_opts=(-o "Dir::State::status=$STATUS" -o "Dir::Cache::archives=$CACHE/apt-archives/"
          -o "APT::Install-Recommends=false" -o "Debug::NoLocking=true" -q)
echo "==> .deb files for: $pkgs"
apt-get "${apt_opts[@]}" -y --download-only install $pkgs >/dev/null
# The exact set apt would install on the box (names and versions), from its simulation.
apt-get "${apt_opts[@]}" -s install $pkgs | awk '/^Inst / {print $2, substr($3, 2)}' > "$OUT.new/debs/selection"
while read -r name version; do
  f=$(ls "$CACHE/apt-archives/${name}_${version/:/%3a}_"*.deb 2>/dev/null | head -n1 || true)
  [ -n "$f" ] || { echo "offline-payload.sh: $name $version was not downloaded" >&2; exit 1; }
  ln "$f" "$OUT.new/debs/"
done < "$OUT.new/debs/selection"
(cd "$OUT.new/debs" && dpkg-scanpackages --multiversion . /dev/null 2>/dev/null > Packages)

# --- wheels ------------------------------------------------------------------------------------
reqs=$("$HOSTPY" - "$REPO/pyproject.toml" <<'PY'
import sys, tomllib
data = tomllib.load(open(sys.argv[1], "rb"))
reqs = list(data.get("build-system", {}).get("requires", []))
reqs += data["project"].get("dependencies", [])
for extra in data["project"].get("optional-dependencies", {}).values():
    reqs += extra
print("\n".join(["pip", "wheel"] + reqs))
PY
)
echo "==> wheels for: $(echo $reqs)"
echo "$reqs" > "$OUT.new/wheels/requirements.txt"
"$HOSTPY" -m pip wheel -q --disable-pip-version-check --cache-dir "$CACHE/pip" \
  --wheel-dir "$OUT.new/wheels" -r "$OUT.new/wheels/requirements.txt" 2>&1 \
  | { grep -v 'is ignored: it is neither a file nor a directory' || true; }

rm -rf "$OUT"
mv "$OUT.new" "$OUT"
echo "    $(ls "$OUT/debs" | grep -c '\.deb$') .deb files ($(du -sh "$OUT/debs" | cut -f1)), $(ls "$OUT/wheels" | grep -c '\.whl$') wheels ($(du -sh "$OUT/wheels" | cut -f1))"
