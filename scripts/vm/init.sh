#!/bin/busybox sh
# Stage 1 of the VM boot: this is /init of the busybox initramfs built by
# run.sh. It loads the few modules needed to reach the host filesystem,
# builds the root filesystem (host / over 9p, read-only, under a tmpfs
# overlay) and switch_root's into it, where stage2.sh runs the command.
# Everything it prints goes to the kernel console (ttyS0), which run.sh
# keeps in a log and shows only when something goes wrong.

export PATH=/bin
# busybox finds itself (to run applets) through /proc/self/exe: mount proc
# first, then one process creates all applet links.
/bin/busybox mount -t proc proc /proc || exit 1
/bin/busybox --install -s /bin

fail() {
    echo "vm-init: $*" >&2
    # No exit code is written, so run.sh reports the boot failure (125).
    echo o >/proc/sysrq-trigger 2>/dev/null
    poweroff -f
}

mount -t sysfs sysfs /sys || fail "cannot mount /sys"
mount -t devtmpfs devtmpfs /dev || fail "cannot mount /dev"

# Modules in dependency order, as computed on the host by modprobe.
while read -r mod; do
    insmod "/modules/$mod" || fail "insmod $mod failed"
done </modules/order

# 9p options: a large msize makes reads of big binaries (the Swift
# toolchain) much faster; cache=loose is safe because the lower layer is
# read-only and the VM lives only as long as one command.
p9opts=trans=virtio,version=9p2000.L,msize=512000
mkdir -p /share /lower /rw /newroot
mount -t 9p -o "$p9opts,cache=none" vmshare /share ||
    fail "cannot mount the command share (9p tag vmshare)"

# Settings written by run.sh (KEY=value lines, values validated there).
OVERLAY_SIZE=1G
DEBUG=0
[ -f /share/vm.conf ] && . /share/vm.conf
mark() { [ "$DEBUG" = 1 ] && read -r up _ </proc/uptime && echo "vm-init: $up $*"; }
mark "share mounted"

mount -t 9p -o "$p9opts,ro,cache=loose" hostroot /lower ||
    fail "cannot mount the host root (9p tag hostroot)"

# Writable layer lives in guest RAM only: nothing written in the VM reaches
# the host except through /run/vm/share.
mount -t tmpfs -o "size=$OVERLAY_SIZE,mode=0755" vm-overlay /rw ||
    fail "cannot mount the overlay tmpfs"
mkdir -p /rw/upper /rw/work
# index/xino/metacopy off: 9p has no stable file handles, keep overlayfs in
# its simplest mode.
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work,index=off,xino=off,metacopy=off,redirect_dir=off \
    overlay /newroot || fail "cannot mount the overlay root"

# /run is a fresh tmpfs (host /run holds stale sockets/pids); it also hosts
# the stage-2 script, a busybox copy and the share, so they do not depend on
# what the host root contains.
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /newroot/run || fail "cannot mount /run"
mkdir -p /newroot/run/vm/share /newroot/run/vm/bin
cp /bin/busybox /newroot/run/vm/bin/busybox || fail "cannot copy busybox"
cp /stage2.sh /newroot/run/vm/stage2.sh || fail "cannot copy stage2"
chmod 0755 /newroot/run/vm/stage2.sh
mount --move /share /newroot/run/vm/share || fail "cannot move the share"

mark "root ready"
umount /proc /sys /dev
# switch_root moves /newroot (with its submounts) onto / and execs stage 2
# as PID 1; unlike chroot this lets pivot_root (runc/containerd) work later.
exec /bin/busybox switch_root /newroot /run/vm/stage2.sh
fail "switch_root failed"
