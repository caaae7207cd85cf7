#!/usr/bin/env bash
# Build an offline Vagrant box (provider libvirt) of Debian 12 from this machine's apt sources,
# as recorded in ../shared/reference/offline-vagrant-vm.md: mmdebstrap a root filesystem, put it
# on a partitioned disk without loop devices, boot it once under QEMU (no network at all) to
# install GRUB, convert to qcow2 and tar it up with metadata.json.
#
#   vm/build-box.sh OUTDIR        -> OUTDIR/minidocker-bookworm.box
#                                    OUTDIR/dpkg-status  (what the box has installed: used to
#                                    resolve which .deb files to carry into the VM)
#
# VM_BOX_PACKAGES (space-separated): more packages in the box. scripts/vm-test.sh passes the lab's
# own list (scripts/provision.sh --print-apt-packages): installed here, natively, they cost seconds;
# installed by provision.sh inside the emulated VM, they took ~9 minutes of every CI run.
# (provision.sh still runs apt-get for whatever is missing: the same list, so nothing is hidden.)
#
# Needs root and: mmdebstrap fdisk(sfdisk) e2fsprogs qemu-system-x86 qemu-utils vagrant (for the
# insecure public key). Takes ~2-3 minutes (more with VM_BOX_PACKAGES); scripts/vm-test.sh caches
# the result.
set -euo pipefail

if [ "${1:-}" = "--customize" ]; then
  # mmdebstrap customize hook: $2 is the root filesystem being built.
  r=$2
  echo minidocker-box > "$r/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\tminidocker-box\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$r/etc/hosts"
  echo 'LABEL=root / ext4 defaults,errors=remount-ro 0 1' > "$r/etc/fstab"
  mkdir -p "$r/etc/systemd/network"
  printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n' > "$r/etc/systemd/network/80-dhcp.network"
  chroot "$r" systemctl enable systemd-networkd.service ssh.service qemu-guest-agent.service >/dev/null 2>&1 || \
    chroot "$r" systemctl enable systemd-networkd.service ssh.service
  chroot "$r" useradd --create-home --shell /bin/bash vagrant
  echo 'vagrant:vagrant' | chroot "$r" chpasswd
  printf 'vagrant ALL=(ALL) NOPASSWD:ALL\nDefaults:vagrant !requiretty\n' > "$r/etc/sudoers.d/vagrant"
  chmod 0440 "$r/etc/sudoers.d/vagrant"
  install -d -m 0700 "$r/home/vagrant/.ssh"
  install -m 0600 "$VAGRANT_PUBKEY" "$r/home/vagrant/.ssh/authorized_keys"
  chroot "$r" chown -R vagrant:vagrant /home/vagrant/.ssh
  # Serial console only; root=/dev/vda1 (virtio disk) rather than a UUID.
  cat >> "$r/etc/default/grub" <<'GRUB'
GRUB_TIMEOUT=1
GRUB_CMDLINE_LINUX_DEFAULT="console=ttyS0,115200n8"
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_LINUX_UUID=true
GRUB_DISABLE_OS_PROBER=true
GRUB
  # Run once as init= on the first (network-less) boot: install GRUB, then power off.
  cat > "$r/usr/local/sbin/box-install-grub" <<'INIT'
#!/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sysfs /sys
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
mount -o remount,rw /
if grub-install --target=i386-pc /dev/vda && update-grub; then
  echo BOX-GRUB-OK
else
  echo BOX-GRUB-FAILED
fi
rm -f /usr/local/sbin/box-install-grub
sync
mount -o remount,ro / || true
echo o > /proc/sysrq-trigger
sleep 60
INIT
  chmod 0755 "$r/usr/local/sbin/box-install-grub"
  # The kernel of this box never changes: skip rebuilding the initramfs when packages trigger it
  # (a minute of emulated CPU during provisioning).
  sed -i 's/^update_initramfs=.*/update_initramfs=no/' "$r/etc/initramfs-tools/update-initramfs.conf"
  # Smaller box: no apt lists or package cache.
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin
  exit 0
fi

OUT=${1:?usage: vm/build-box.sh OUTDIR}
[ "$(id -u)" = 0 ] || { echo "build-box.sh: needs root" >&2; exit 1; }
SUITE=${VM_SUITE:-bookworm}
DISK_GB=${VM_DISK_GB:-8}
# The machine's own apt sources for Debian (deb822 or one-line); override with VM_APT_SOURCES.
SOURCES=${VM_APT_SOURCES:-}
if [ -z "$SOURCES" ]; then
  for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    if [ -s "$f" ] && grep -q '^[^#]*debian' "$f"; then SOURCES=$f; break; fi
  done
fi
[ -n "$SOURCES" ] || { echo "build-box.sh: no Debian apt sources found; set VM_APT_SOURCES" >&2; exit 1; }
if [ -z "${VAGRANT_PUBKEY:-}" ]; then
  for f in /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub \
           /opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant.pub; do
    [ -s "$f" ] && VAGRANT_PUBKEY=$f
  done
fi
[ -s "${VAGRANT_PUBKEY:-}" ] || { echo "build-box.sh: Vagrant's insecure public key not found; set VAGRANT_PUBKEY" >&2; exit 1; }
export VAGRANT_PUBKEY

mkdir -p "$OUT"
WORK=$(mktemp -d "$OUT/build.XXXXXX")
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
ROOTFS=$WORK/rootfs
SELF=$(readlink -f "$0")

t0=$(date +%s)
BASE=systemd-sysv,udev,kmod,iproute2,linux-image-amd64,initramfs-tools,openssh-server,sudo,python3,rsync,netbase,procps,dbus,qemu-guest-agent,grub-pc
EXTRA=$(echo ${VM_BOX_PACKAGES:-} | tr ' ' ',')
echo "==> mmdebstrap $SUITE from $SOURCES${EXTRA:+ (with the lab packages: $EXTRA)}"
mmdebstrap --mode=root --variant=minbase --format=directory --quiet \
  --include="$BASE${EXTRA:+,$EXTRA}" \
  --customize-hook="$SELF --customize \"\$1\"" \
  "$SUITE" "$ROOTFS" "$SOURCES"
cp "$ROOTFS/var/lib/dpkg/status" "$WORK/dpkg-status"
KERNEL=$(ls "$ROOTFS"/boot/vmlinuz-* | sort -V | tail -n1)
INITRD=$(ls "$ROOTFS"/boot/initrd.img-* | sort -V | tail -n1)
cp "$KERNEL" "$WORK/vmlinuz"; cp "$INITRD" "$WORK/initrd.img"
t1=$(date +%s); echo "    rootfs: $((t1 - t0)) s, $(du -sh "$ROOTFS" | cut -f1)"

echo "==> ${DISK_GB}G disk: one bootable partition, ext4 filled from the rootfs"
truncate -s "${DISK_GB}G" "$WORK/disk.raw"
echo 'start=2048, type=83, bootable' | sfdisk --quiet "$WORK/disk.raw"
part_mib=$((DISK_GB * 1024 - 1))
truncate -s "${part_mib}M" "$WORK/part.img"
mkfs.ext4 -q -L root -d "$ROOTFS" "$WORK/part.img"
rm -rf "$ROOTFS"
dd if="$WORK/part.img" of="$WORK/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
rm -f "$WORK/part.img"

echo "==> first boot (QEMU, no network): grub-install"
timeout 900 qemu-system-x86_64 -machine accel=tcg -cpu max -smp 1 -m 1024 \
  -display none -monitor none -serial "file:$WORK/firstboot.log" -nic none -no-reboot \
  -drive "file=$WORK/disk.raw,format=raw,if=virtio" \
  -kernel "$WORK/vmlinuz" -initrd "$WORK/initrd.img" \
  -append "root=/dev/vda1 rw console=ttyS0 panic=1 init=/usr/local/sbin/box-install-grub" </dev/null
if ! grep -q BOX-GRUB-OK "$WORK/firstboot.log"; then
  echo "build-box.sh: GRUB installation failed; serial log:" >&2
  tail -n 40 "$WORK/firstboot.log" >&2
  exit 1
fi
t2=$(date +%s); echo "    disk + GRUB: $((t2 - t1)) s"

echo "==> box"
qemu-img convert -O qcow2 "$WORK/disk.raw" "$WORK/box.img"
rm -f "$WORK/disk.raw"
printf '{"provider":"libvirt","format":"qcow2","virtual_size":%s}\n' "$DISK_GB" > "$WORK/metadata.json"
cat > "$WORK/Vagrantfile" <<'VF'
# Offline Debian 12 test box for minidocker (built by vm/build-box.sh).
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |libvirt|
    libvirt.disk_bus = "virtio"
  end
end
VF
tar -C "$WORK" -cf "$WORK/box.tar" metadata.json Vagrantfile box.img
mv "$WORK/dpkg-status" "$OUT/dpkg-status"
mv "$WORK/box.tar" "$OUT/minidocker-bookworm.box"
t3=$(date +%s); echo "    box: $((t3 - t2)) s, $(du -h "$OUT/minidocker-bookworm.box" | cut -f1); total $((t3 - t0)) s"
