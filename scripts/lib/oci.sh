# OCI images without a Docker daemon or registry, with Debian's umoci (make image, and the
# containerd tests' busybox image). Source it, then:
#   oci_begin DIR TAG            an empty image in DIR/layout, its root filesystem unpacked in
#                                DIR/bundle/rootfs (fill it in)
#   oci_finish DIR TAG NAME OUT [umoci config options...]
#                                one layer from the root filesystem, the image config, and the
#                                archive OUT (an OCI layout tarball); its index names the image
#                                NAME:TAG for containerd (io.containerd.image.name, which
#                                `ctr images import` reads) and TAG for other tools.

oci_begin() {
    umoci init --layout "$1/layout"
    umoci new --image "$1/layout:$2"
    umoci unpack --rootless --image "$1/layout:$2" "$1/bundle" >/dev/null
}

oci_finish() {
    local dir=$1 tag=$2 name=$3 out=$4
    shift 4
    umoci repack --image "$dir/layout:$tag" "$dir/bundle"
    umoci config --image "$dir/layout:$tag" "$@"
    umoci gc --layout "$dir/layout"
    jq --arg name "$name:$tag" '.manifests[0].annotations["io.containerd.image.name"] = $name' "$dir/layout/index.json" > "$dir/index.json"
    mv "$dir/index.json" "$dir/layout/index.json"
    mkdir -p "$(dirname "$out")"
    tar -C "$dir/layout" -cf "$out" .
}
