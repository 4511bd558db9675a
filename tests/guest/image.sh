#!/bin/sh
# SPDX-License-Identifier: MIT
#
# The test guest: Debian's cloud kernel and an initramfs with busybox, the
# VFIO modules and the guest agent (agent.c), for qemu-system-x86_64.
#
#   image.sh OUTDIR AGENT [CTL]
#
# With CTL, that ivshmem-ctl and the shared libraries it needs go in too
# (as /bin/ivshmem-ctl).
#
# Leaves OUTDIR/vmlinuz and OUTDIR/initrd.gz. The kernel package is fetched
# with apt-get download and unpacked with dpkg-deb (nothing is installed;
# OUTDIR/kernel keeps it for the next run). Exit status 77, with the
# reason on stderr, when the kernel or busybox cannot be had.
set -eu

out=$1
agent=$2
ctl=${3:-}
mkdir -p "$out/kernel"
cd "$out"

skip() {
	echo "image.sh: $*" >&2
	exit 77
}

busybox=$(command -v busybox || true)
[ -n "$busybox" ] && file_is_static=$(ldd "$busybox" 2>&1 | grep -c 'not a dynamic' || true)
[ -n "$busybox" ] && [ "${file_is_static:-0}" -gt 0 ] ||
	skip "no static busybox (apt-get install busybox-static)"

if ! ls kernel/boot/vmlinuz-* >/dev/null 2>&1; then
	pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
	      sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n 1)
	[ -n "$pkg" ] || skip "apt knows no linux-image-cloud-amd64 (apt-get update?)"
	rm -rf dl && mkdir dl
	# Stale package lists name a version the mirror no longer has:
	# refresh them once (root only) and ask again.
	if ! (cd dl && apt-get download "$pkg" >/dev/null 2>&1); then
		[ "$(id -u)" -eq 0 ] && apt-get update -q >/dev/null 2>&1 &&
			pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
			      sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n 1) &&
			(cd dl && apt-get download "$pkg" >/dev/null 2>&1) ||
			skip "cannot fetch $pkg (apt-get download $pkg failed)"
	fi
	dpkg-deb -x dl/*.deb kernel
	rm -rf dl
fi
vmlinuz=$(ls kernel/boot/vmlinuz-* | head -n 1)
mods=$(ls -d kernel/lib/modules/* | head -n 1)/kernel

root=$(mktemp -d "$out/root.XXXXXX")
trap 'rm -rf "$root"' EXIT
# mktemp's 0700 would become the guest's /, closed to all but root.
chmod 755 "$root"
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/lib/modules"
cp "$busybox" "$root/bin/busybox"
cp "$agent" "$root/bin/agent"
if [ -n "$ctl" ]; then
	cp "$ctl" "$root/bin/ivshmem-ctl"
	mkdir -p "$root/lib64" "$root/lib/x86_64-linux-gnu"
	for lib in $(ldd "$ctl" | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) .*/\1/p'); do
		case $lib in
		*/ld-linux*) cp "$lib" "$root/lib64/" ;;
		*) cp "$lib" "$root/lib/x86_64-linux-gnu/" ;;
		esac
	done
fi
for m in virt/lib/irqbypass drivers/vfio/vfio drivers/vfio/vfio_iommu_type1 \
	 drivers/vfio/vfio_virqfd drivers/vfio/pci/vfio-pci-core \
	 drivers/vfio/pci/vfio-pci; do
	cp "$mods/$m.ko" "$root/lib/modules/"
done
cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
for m in irqbypass vfio vfio_iommu_type1 vfio_virqfd vfio-pci-core vfio-pci; do
	/bin/busybox insmod /lib/modules/$m.ko || echo "init: insmod $m failed"
done
exec /bin/agent </dev/console >/dev/console 2>&1
INIT
chmod 755 "$root/init"
(cd "$root" && find . | "$busybox" cpio -o -H newc 2>/dev/null) |
	gzip -1 >initrd.gz.new
mv initrd.gz.new initrd.gz
cp "$vmlinuz" vmlinuz
