#!/bin/bash
# Run a command as root inside a throw-away QEMU VM that boots the host's
# Debian kernel (which, unlike this machine's kernel, has 8021q, nf_tables,
# veth, ...). The VM sees the host's / read-only through 9p, under a tmpfs
# overlay, so host-built binaries (.build/, /opt/swift) run unchanged and
# nothing written in the VM reaches the host.
#
# Usage: scripts/vm/run.sh [--] CMD [ARGS...]
#   Runs CMD in the host's current directory; its stdout/stderr are streamed
#   live to this script's stdout/stderr and its exit code becomes ours.
#   Output is spooled through files under $TMPDIR (default /tmp) while it is
#   streamed. stdin is not forwarded (CMD reads /dev/null). If our stdout/stderr
#   is a terminal, so is CMD's (size and TERM copied), otherwise it gets pipes.
#   Inside: hostname "vm", / is the host root + tmpfs overlay, fresh tmpfs on
#   /run and /tmp, cgroup2 on /sys/fs/cgroup, lo up, modules autoload. No
#   network devices besides lo.
#
# Environment:
#   VM_PASS_ENV     space-separated names of variables to pass to CMD
#                   (CMD otherwise gets HOME=/root, a standard PATH, TERM)
#   VM_TIMEOUT      seconds before the VM is killed (default 1800); exit 124
#   VM_MEM          guest memory in MiB (default 2048)
#   VM_CPUS         guest CPUs (default 2)
#   VM_OVERLAY_SIZE size of the tmpfs holding all writes (default 1G)
#   VM_CACHE_DIR    where the extracted kernel and the initramfs are cached
#                   (default /var/cache/aws-cni-vm)
#   VM_KERNEL       kernel image to boot (default: newest /boot/vmlinuz-*)
#   VM_KERNEL_ARGS  extra kernel command line arguments
#   VM_HOST_TMP=1   keep the host's /tmp visible (copy-on-write) instead of
#                   giving the VM an empty tmpfs /tmp (automatic when the
#                   current directory is under /tmp)
#   VM_DEBUG=1      show the kernel/init console on stderr and boot verbosely
#
# Exit codes: CMD's exit code; 124 on timeout; 125 if the VM could not be
# started or died without reporting an exit code.
#
# Requires root and the Debian packages qemu-system-x86, linux-image-amd64,
# busybox-static, xz-utils (and kmod, coreutils). /dev/kvm is deliberately
# not used (it hangs here): the VM runs under TCG, ~30x slower than the host.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() {
    echo "vm/run.sh: $*" >&2
    exit 125
}

if [[ ${1-} == -- ]]; then shift; fi
if [[ $# -eq 0 || ${1-} == -h || ${1-} == --help ]]; then
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
    exit 2
fi

[[ $(id -u) == 0 ]] || die "must run as root (the VM reads the whole host root filesystem)"

VM_TIMEOUT=${VM_TIMEOUT:-1800}
VM_MEM=${VM_MEM:-2048}
VM_CPUS=${VM_CPUS:-2}
VM_OVERLAY_SIZE=${VM_OVERLAY_SIZE:-1G}
VM_CACHE_DIR=${VM_CACHE_DIR:-/var/cache/aws-cni-vm}
VM_KERNEL_ARGS=${VM_KERNEL_ARGS:-}
VM_DEBUG=${VM_DEBUG:-0}
VM_PASS_ENV=${VM_PASS_ENV:-}
VM_HOST_TMP=${VM_HOST_TMP:-0}

[[ $VM_TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "VM_TIMEOUT must be a positive number of seconds"
[[ $VM_MEM =~ ^[1-9][0-9]*$ ]] || die "VM_MEM must be a number of MiB"
[[ $VM_CPUS =~ ^[1-9][0-9]*$ ]] || die "VM_CPUS must be a positive number"
[[ $VM_DEBUG =~ ^[01]$ ]] || die "VM_DEBUG must be 0 or 1"
[[ $VM_OVERLAY_SIZE =~ ^[1-9][0-9]*[kKmMgG%]?$ ]] || die "VM_OVERLAY_SIZE must look like 1G, 512M or 50%"

# --- prerequisites ---------------------------------------------------------
missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
command -v xz >/dev/null || missing+=(xz-utils)
command -v modprobe >/dev/null || missing+=(kmod)
command -v timeout >/dev/null || missing+=(coreutils)
# The initramfs needs a static busybox (the busybox package is dynamic).
BUSYBOX=
for b in /bin/busybox /usr/bin/busybox; do
    if [[ -x $b ]] && ! ldd "$b" >/dev/null 2>&1; then BUSYBOX=$b; break; fi
done
[[ -n $BUSYBOX ]] || missing+=(busybox-static)
if [[ -n ${VM_KERNEL:-} ]]; then
    [[ -f $VM_KERNEL ]] || die "VM_KERNEL=$VM_KERNEL does not exist"
    KERNEL=$VM_KERNEL
else
    KERNEL=$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1 || true)
    [[ -n $KERNEL ]] || missing+=(linux-image-amd64)
fi
if ((${#missing[@]})); then
    die "missing prerequisites; install them with: apt-get install ${missing[*]}"
fi
KVER=${KERNEL##*/vmlinuz-}
[[ -f /lib/modules/$KVER/modules.dep ]] ||
    die "no modules for kernel $KVER in /lib/modules/$KVER (reinstall linux-image-$KVER)"

# --- cached kernel + initramfs -----------------------------------------------
# Keyed on everything that goes into them, so a kernel upgrade or an edit of
# these scripts rebuilds them.
key=$({
    cat "${BASH_SOURCE[0]}" "$SCRIPT_DIR/init.sh" "$SCRIPT_DIR/stage2.sh" "$KERNEL" "$BUSYBOX"
    echo "$KERNEL $KVER"
} | sha256sum | cut -c1-16)
CACHE=$VM_CACHE_DIR/$key

# Modules needed before the host root is mounted; everything else is loaded
# later with the host's own modprobe.
INITRAMFS_MODULES=(virtio_pci 9pnet_virtio 9p overlay)

build_cache() {
    mkdir -p "$VM_CACHE_DIR"
    local tmp
    tmp=$(mktemp -d "$VM_CACHE_DIR/.build.XXXXXX")
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" EXIT

    # Decompressing the bzImage inside the emulated VM takes most of the boot
    # time, so boot the raw ELF vmlinux (QEMU enters it via its PVH note).
    # The xz stream starts after the setup code; xz complains about the
    # trailing data after the stream, hence the ignored status.
    local off
    off=$(LC_ALL=C grep -obUaP '\xFD7zXZ\x00' "$KERNEL" | head -n 1 | cut -d: -f1 || true)
    [[ -n $off ]] || die "no xz-compressed payload found in $KERNEL"
    tail -c +$((off + 1)) "$KERNEL" 2>/dev/null | xz -dc >"$tmp/vmlinux" 2>/dev/null || true
    [[ $(head -c 4 "$tmp/vmlinux" | od -An -c | tr -d ' ') == '177ELF' ]] ||
        die "could not extract an ELF kernel from $KERNEL"

    local root=$tmp/root
    mkdir -p "$root"/{bin,dev,proc,sys,modules}
    cp "$BUSYBOX" "$root/bin/busybox"
    cp "$SCRIPT_DIR/init.sh" "$root/init"
    cp "$SCRIPT_DIR/stage2.sh" "$root/stage2.sh"
    chmod 0755 "$root/init" "$root/stage2.sh"
    # The kernel opens /dev/console for init before devtmpfs exists.
    mknod -m 600 "$root/dev/console" c 5 1
    local m f base
    for m in "${INITRAMFS_MODULES[@]}"; do
        modprobe -S "$KVER" --show-depends "$m" || die "modprobe cannot resolve module $m for $KVER"
    done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }' | while read -r f; do
        base=${f##*/}
        case $f in
        *.ko) cp "$f" "$root/modules/$base" ;;
        *.ko.xz) base=${base%.xz} && xz -dc "$f" >"$root/modules/$base" ;;
        *.ko.zst) base=${base%.zst} && zstd -qdc "$f" >"$root/modules/$base" ;;
        *.ko.gz) base=${base%.gz} && gzip -dc "$f" >"$root/modules/$base" ;;
        *) die "unsupported module file $f" ;;
        esac
        echo "$base" >>"$root/modules/order"
    done
    [[ -s $root/modules/order ]] || die "no modules found for the initramfs"
    # Uncompressed cpio: decompressing would only cost boot time.
    (cd "$root" && find . | "$BUSYBOX" cpio -o -H newc >"$tmp/initramfs.cpio" 2>/dev/null) ||
        die "building the initramfs failed"
    rm -rf "$root"

    # Atomic publish; a concurrent run may have won the race, which is fine.
    chmod 0755 "$tmp"
    if ! mv -T "$tmp" "$CACHE" 2>/dev/null; then rm -rf "$tmp"; fi
    trap - EXIT
    # Keep the 3 most recently used entries (each ~70 MB; runs touch theirs)
    # and drop leftovers of interrupted builds.
    ls -1dt "$VM_CACHE_DIR"/[0-9a-f]*/ 2>/dev/null | tail -n +4 | xargs -r rm -rf
    find "$VM_CACHE_DIR" -mindepth 1 -maxdepth 1 -name '.build.*' -mmin +60 \
        -exec rm -rf {} + 2>/dev/null || true
}

if [[ ! -f $CACHE/vmlinux || ! -f $CACHE/initramfs.cpio ]]; then
    echo "vm/run.sh: building VM kernel/initramfs cache in $CACHE" >&2
    (build_cache)
    [[ -f $CACHE/vmlinux && -f $CACHE/initramfs.cpio ]] || die "building the cache failed"
fi
touch "$CACHE"

# --- per-run directory ---------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vm-run.XXXXXX")
SHARE=$WORK/share # the only host directory the VM can write to
mkdir "$SHARE"
QEMU_PID=
RELAY_PIDS=()
cleanup() {
    [[ -n $QEMU_PID ]] && kill "$QEMU_PID" 2>/dev/null
    for p in "${RELAY_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT
on_signal() {
    echo "vm/run.sh: interrupted, stopping the VM" >&2
    exit "$1"
}
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
trap 'on_signal 129' HUP

# The command as a bash script: printf %q keeps every argument intact.
{
    echo '# generated by scripts/vm/run.sh'
    for name in $VM_PASS_ENV; do
        [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "VM_PASS_ENV: bad variable name '$name'"
        if [[ -n ${!name+set} ]]; then printf 'export %s=%q\n' "$name" "${!name}"; fi
    done
    printf 'cd -- %q || exit 125\n' "$PWD"
    printf '%q ' "$@"
    echo
} >"$SHARE/cmd.sh"

# Settings for init.sh/stage2.sh, sourced by busybox sh: keep values plain.
out_tty=no err_tty=no cols=0 rows=0 term=dumb
[[ -t 1 ]] && out_tty=yes
[[ -t 2 ]] && err_tty=yes
if [[ $out_tty == yes ]]; then
    read -r rows cols < <(stty size <&1 2>/dev/null || echo "0 0") || true
    [[ $rows =~ ^[0-9]+$ && $cols =~ ^[0-9]+$ ]] || rows=0 cols=0
    [[ ${TERM:-} =~ ^[A-Za-z0-9._+-]+$ ]] && term=$TERM
fi
# A tmpfs on /tmp would hide the host's cwd if it lives there.
tmp_tmpfs=yes
[[ $PWD == /tmp || $PWD == /tmp/* || $VM_HOST_TMP == 1 ]] && tmp_tmpfs=no
cat >"$SHARE/vm.conf" <<EOF
OVERLAY_SIZE=$VM_OVERLAY_SIZE
OUT_TTY=$out_tty
ERR_TTY=$err_tty
COLS=$cols
ROWS=$rows
TERM_NAME=$term
TMP_TMPFS=$tmp_tmpfs
DEBUG=$VM_DEBUG
EOF

# Guest output goes to plain files, streamed live by `tail -f`. Not FIFOs:
# QEMU silently drops virtconsole data when its chardev would block (see
# hw/char/virtio-console.c), and a file never blocks.
for c in console out err; do : >"$WORK/$c.log"; done

# Kernel messages go to ttyS0 (console.log), never to the command's output.
# No "nokaslr": KASLR lives in the bzImage decompressor, which we skip.
cmdline="console=ttyS0 panic=-1 mitigations=off tsc=reliable no_timer_check"
cmdline+=" 8250.nr_uarts=1 i8042.noaux i8042.nokbd"
if [[ $VM_DEBUG == 1 ]]; then cmdline+=" loglevel=7"; else cmdline+=" quiet loglevel=1"; fi
[[ -n $VM_KERNEL_ARGS ]] && cmdline+=" $VM_KERNEL_ARGS"

qemu=(
    qemu-system-x86_64
    -accel tcg -cpu max -m "$VM_MEM" -smp "$VM_CPUS"
    -nodefaults -no-user-config -display none -no-reboot
    -kernel "$CACHE/vmlinux" -initrd "$CACHE/initramfs.cpio" -append "$cmdline"
    # ttyS0: kernel and init messages, kept out of the command's output.
    -chardev "file,id=con,path=$WORK/console.log,append=on" -serial chardev:con
    # hvc0/hvc1: the command's stdout/stderr.
    -device virtio-serial-pci,id=vser
    -chardev "file,id=out,path=$WORK/out.log,append=on" -device virtconsole,bus=vser.0,chardev=out,nr=0
    -chardev "file,id=err,path=$WORK/err.log,append=on" -device virtconsole,bus=vser.0,chardev=err,nr=1
    # The host root, read-only (enforced by QEMU), and the writable share.
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap
    -virtfs "local,path=$SHARE,mount_tag=vmshare,security_model=none"
)

# timeout(1) kills QEMU (TERM, then KILL 10 s later) when the command hangs.
timeout --kill-after=10 "$VM_TIMEOUT" "${qemu[@]}" </dev/null &
QEMU_PID=$!
# tail exits once QEMU (its timeout wrapper) is gone and the file is drained
# (-s: how often it checks for that).
tail -f -s 0.05 -c +1 --pid="$QEMU_PID" "$WORK/out.log" &
RELAY_PIDS+=($!)
tail -f -s 0.05 -c +1 --pid="$QEMU_PID" "$WORK/err.log" >&2 &
RELAY_PIDS+=($!)
if [[ $VM_DEBUG == 1 ]]; then
    tail -f -s 0.05 -c +1 --pid="$QEMU_PID" "$WORK/console.log" >&2 &
    RELAY_PIDS+=($!)
fi
qemu_rc=0
wait "$QEMU_PID" || qemu_rc=$?
QEMU_PID=
wait "${RELAY_PIDS[@]}" 2>/dev/null || true
RELAY_PIDS=()

if [[ -f $SHARE/rc ]]; then
    rc=$(<"$SHARE/rc")
    [[ $rc =~ ^[0-9]+$ ]] || die "VM reported a bad exit code '$rc'"
    exit "$rc"
fi
if [[ $qemu_rc == 124 ]]; then
    echo "vm/run.sh: timed out after ${VM_TIMEOUT}s (VM_TIMEOUT); the VM was killed" >&2
    exit 124
fi
{
    echo "vm/run.sh: the VM stopped without reporting an exit code (qemu status $qemu_rc)."
    if [[ $VM_DEBUG != 1 && -s $WORK/console.log ]]; then
        echo "--- last lines of the VM console ---"
        tail -n 40 "$WORK/console.log" | tr -d '\r'
    fi
} >&2
exit 125
