#!/bin/bash
# make image: the node agent's OCI image, built without a Docker daemon or registry by Debian's
# umoci, checked with skopeo. It holds the release binaries (/app/ipamd, /app/aws-cni), the shared
# libraries ipamd loads (libnftables and its dependencies, found with ldd) with the loader, CA
# certificates (for EC2 and STS over HTTPS), and a root-only /etc/passwd; nothing else (no shell).
# The entrypoint is ipamd, which installs /app/aws-cni and 10-aws.conflist onto the host paths the
# DaemonSet mounts (deploy/aws-node.yaml).
#   scripts/image/build.sh [OUT.tar]   (default .build/image/aws-node.tar; IMAGE_TAG, default the
#                                       git describe of HEAD)
# Prints the archive's size and skopeo's view of it; the archive's index names the image by its tag
# (org.opencontainers.image.ref.name) and by its full name (io.containerd.image.name, for ctr import).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/oci.sh
BIN=${BIN:-.build/release}
OUT=${1:-.build/image/aws-node.tar}
TAG=${IMAGE_TAG:-$(git describe --always --dirty 2>/dev/null || echo dev)}
NAME=${IMAGE_NAME:-localhost/aws-sg-pods/aws-node}
for tool in umoci skopeo; do
    command -v "$tool" >/dev/null || { echo "image: $tool is missing (apt-get install umoci skopeo, or make deps)" >&2; exit 1; }
done
for b in ipamd aws-cni; do [[ -x $BIN/$b ]] || { echo "image: $BIN/$b is missing (make release)" >&2; exit 1; }; done

WORK=$(mktemp -d /tmp/aws-node-image.XXXX)
trap 'rm -rf "$WORK"' EXIT
oci_begin "$WORK" "$TAG"
ROOT=$WORK/bundle/rootfs

install -D -m 0755 "$BIN/ipamd" "$ROOT/app/ipamd"
install -D -m 0755 "$BIN/aws-cni" "$ROOT/app/aws-cni"
# Every library ipamd loads, at the path the loader finds it (aws-cni is static).
# The loader must be executable (the kernel execs it for ipamd); the libraries need not.
ldd "$BIN/ipamd" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u | while read -r lib; do
    mode=0644
    [[ $lib == */ld-linux* ]] && mode=0755
    install -D -m "$mode" "$(readlink -f "$lib")" "$ROOT$lib"
done
if ldd "$BIN/aws-cni" 2>/dev/null | grep -q '=>'; then
    echo "image: $BIN/aws-cni is not static (build it with make release)" >&2; exit 1
fi
install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/:/sbin/nologin\n' > "$ROOT/etc/passwd"
printf 'root:x:0:\n' > "$ROOT/etc/group"
mkdir -p "$ROOT/tmp" "$ROOT/var/run/aws-node" "$ROOT/host"
chmod 1777 "$ROOT/tmp"

oci_finish "$WORK" "$TAG" "$NAME" "$OUT" \
    --config.entrypoint /app/ipamd --config.workingdir / --config.user 0:0 \
    --config.env PATH=/app \
    --config.label org.opencontainers.image.title=aws-node \
    --config.label "org.opencontainers.image.description=security groups for pods: ipamd and the aws-cni plugin" \
    --config.label "org.opencontainers.image.revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
    --config.label "org.opencontainers.image.version=$TAG" \
    --history.comment "make image"
echo "image: $OUT ($NAME:$TAG): $(du -k "$OUT" | cut -f1) KiB archive (compressed layer), $(du -sk "$ROOT" | cut -f1) KiB unpacked"
skopeo inspect "oci-archive:$OUT" | jq -c '{Digest, Architecture, Os, Layers: (.Layers | length), Labels}'
skopeo inspect --config "oci-archive:$OUT" | jq -c '.config | {Entrypoint, User, Env}'
