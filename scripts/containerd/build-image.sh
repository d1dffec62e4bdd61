#!/bin/bash
# The containerd tests' pod image, offline, with umoci (scripts/lib/oci.sh, as make image): a
# static busybox, a symlink per applet at the path `busybox --list-full` gives (bin/sh, sbin/ip,
# bin/ping, usr/bin/nc, usr/sbin/httpd, ...) and a minimal /etc, as an OCI archive that
# `ctr images import` names NAME.
#   scripts/containerd/build-image.sh OUT.tar [NAME]   (default localhost/aws-cni/busybox:test;
#                                                       BUSYBOX: the binary, default /bin/busybox)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/oci.sh
OUT=$1
NAME=${2:-localhost/aws-cni/busybox:test}
BUSYBOX=${BUSYBOX:-/bin/busybox}
# The tag is what follows the last ":" of the last path element (a registry's port is no tag).
if [[ ${NAME##*/} == *:* ]]; then TAG=${NAME##*:} REPO=${NAME%:*}; else TAG=latest REPO=$NAME; fi
WORK=$(mktemp -d /tmp/busybox-image.XXXX)
trap 'rm -rf "$WORK"' EXIT
oci_begin "$WORK" "$TAG"
ROOT=$WORK/bundle/rootfs
install -D -m 0755 "$BUSYBOX" "$ROOT/bin/busybox"
applets=0
for a in $("$BUSYBOX" --list-full); do
    [[ $a == bin/busybox || $a == */../* ]] && continue
    mkdir -p "$ROOT/$(dirname "$a")"
    ln -sf /bin/busybox "$ROOT/$a"
    applets=$((applets + 1))
done
mkdir -p "$ROOT"/{etc,dev,proc,sys,root,run,tmp}
chmod 1777 "$ROOT/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$ROOT/etc/passwd"
printf 'root:x:0:\n' > "$ROOT/etc/group"
printf 'busybox\n' > "$ROOT/etc/hostname"
oci_finish "$WORK" "$TAG" "$REPO" "$OUT" \
    --config.env PATH=/usr/sbin:/usr/bin:/sbin:/bin --config.cmd /bin/sh --config.workingdir / \
    --history.comment "static busybox with $applets applets"
echo "$OUT: $REPO:$TAG ($applets applets)"
