#!/run/vm/bin/busybox sh
# Stage 2 of the VM boot: PID 1 inside the host-root overlay (see init.sh).
# Sets up a minimal "system" (proc, sys, dev, tmpfs, cgroup2, lo, module
# autoloading), runs /run/vm/share/cmd.sh (written by run.sh) with its
# stdout/stderr on the virtio consoles that run.sh relays to the host, writes
# the exit code to the share and powers off.
# Only busybox applets are used here (PATH=/run/vm/bin), so this does not
# depend on which tools the host has; the command itself gets the host PATH.

export PATH=/run/vm/bin
SHARE=/run/vm/share

OUT_TTY=no
ERR_TTY=no
TMP_TMPFS=yes
COLS=0
ROWS=0
DEBUG=0
. "$SHARE/vm.conf"
mark() { [ "$DEBUG" = 1 ] && read -r up _ </proc/uptime && echo "vm-stage2: $up $*"; }

finish() {
    # Write the exit code atomically (run.sh treats a missing file as a VM
    # failure), then power off without running anything else.
    echo "$1" >"$SHARE/rc.tmp" && mv "$SHARE/rc.tmp" "$SHARE/rc"
    sync
    echo o >/proc/sysrq-trigger 2>/dev/null
    poweroff -f
}
fail() {
    echo "vm-stage2: $*" >&2
    poweroff -f
}

# Full path on purpose: busybox runs applets via /proc/self/exe, and until
# proc is mounted that is the *host's* /proc seen through 9p (whose
# self/exe is QEMU).
/run/vm/bin/busybox mount -t proc -o nosuid,nodev,noexec proc /proc || exit 1
/run/vm/bin/busybox --install -s /run/vm/bin
mark start
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys || fail "cannot mount /sys"
mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev || fail "cannot mount /dev"
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o nosuid,noexec,gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o nosuid,nodev tmpfs /dev/shm
mount -t mqueue -o nosuid,nodev,noexec mqueue /dev/mqueue 2>/dev/null
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
# A clean /tmp, unless the host's cwd lives below /tmp (run.sh decides): the
# overlay's /tmp is writable anyway (tmpfs upper layer).
if [ "$TMP_TMPFS" = yes ]; then
    mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /tmp || fail "cannot mount /tmp"
fi
# Debian has /var/run -> /run; cover hosts where it is a directory.
if [ -d /var/run ] && [ ! -L /var/run ]; then
    mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs /var/run
fi
mount -t cgroup2 -o nosuid,nodev,noexec,nsdelegate cgroup2 /sys/fs/cgroup ||
    fail "cannot mount cgroup2"
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t bpf -o mode=700 bpf /sys/fs/bpf 2>/dev/null
# Shared propagation, as systemd sets it up: `ip netns add` and container
# runtimes rely on mounts propagating.
mount --make-rshared /

# The kernel runs this for module autoloading (8021q, nft_*, veth, ...);
# the host's modprobe works as-is since /lib/modules is on the host root.
echo /run/vm/modprobe >/proc/sys/kernel/modprobe
cat >/run/vm/modprobe <<'EOF'
#!/run/vm/bin/busybox sh
exec /sbin/modprobe "$@"
EOF
chmod 0755 /run/vm/modprobe

hostname vm
echo vm >/etc/hostname
printf '127.0.0.1\tlocalhost\n127.0.1.1\tvm\n::1\tlocalhost ip6-localhost ip6-loopback\n' >/etc/hosts
ip link set lo up
mkdir -p /root /run/netns /run/lock

mark "mounts done"
# The command's output channels: virtio consoles hvc0 (stdout) and hvc1
# (stderr), relayed live by run.sh. Raw mode: no \n -> \r\n translation
# (which also makes n_tty write byte by byte: ~15 KB/s instead of MB/s), no
# echo; the host terminal (if any) does its own translation. hvc resets the
# termios on last close, so PID 1 keeps both open (fds 7, 8) until the end.
/sbin/modprobe virtio_console 2>/dev/null || modprobe virtio_console 2>/dev/null
# The device nodes appear before the ttys can be opened (ENODEV): probe in a
# subshell (a failed redirection on `exec` would kill PID 1).
i=0
until (: >/dev/hvc0 && : >/dev/hvc1) 2>/dev/null; do
    [ $i -lt 200 ] || fail "virtio consoles hvc0/hvc1 missing"
    sleep 0.05
    i=$((i + 1))
done
exec 7>/dev/hvc0 8>/dev/hvc1
for t in hvc0 hvc1; do
    stty -F /dev/$t raw -echo
    [ "$COLS" -gt 0 ] && stty -F /dev/$t cols "$COLS" rows "$ROWS"
done

# When the host side is not a terminal, give the command pipes instead of
# ttys, so it behaves as on the host (no colours, full buffering, ...).
mkdir -p /run/vm/io
out=/dev/hvc0
err=/dev/hvc1
relays=
if [ "$OUT_TTY" != yes ]; then
    mkfifo /run/vm/io/out
    cat /run/vm/io/out >&7 &
    relays="$relays $!"
    out=/run/vm/io/out
fi
if [ "$ERR_TTY" != yes ]; then
    mkfifo /run/vm/io/err
    cat /run/vm/io/err >&8 &
    relays="$relays $!"
    err=/run/vm/io/err
fi

mark "running command"
cd /
env -i HOME=/root USER=root LOGNAME=root SHELL=/bin/bash TERM="${TERM_NAME:-dumb}" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /bin/bash "$SHARE/cmd.sh" </dev/null >"$out" 2>"$err" 7>&- 8>&-
rc=$?
mark "command done"

# Daemons started by the command may still hold the pipes open; give the
# relays a moment to see EOF, then drop whatever is left.
if [ -n "$relays" ]; then
    (sleep 2; kill $relays 2>/dev/null) &
    watchdog=$!
    wait $relays
    kill "$watchdog" 2>/dev/null
fi
# Wait until everything written to the consoles has reached QEMU
# (tcsetattr(TCSADRAIN)), otherwise the tail of the output may be lost.
stty -F /dev/hvc0 raw
stty -F /dev/hvc1 raw
finish "$rc"
