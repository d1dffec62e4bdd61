#!/usr/bin/env python3
"""Builds, offline, an OCI image layout tarball holding a static busybox, for `ctr images import`.

    build-image.py OUT.tar [--name localhost/aws-cni/busybox:test] [--busybox /bin/busybox]

The image has one uncompressed layer: /bin/busybox plus one symlink per applet at the path
`busybox --list-full` gives (bin/sh, sbin/ip, bin/ping, usr/bin/nc, usr/bin/wget, ...), and a
minimal /etc (passwd, group). Everything is deterministic (mtime 0, uid/gid 0), so the same busybox
gives the same digests. The index names the image twice: `io.containerd.image.name` (the full
reference ctr stores it under) and `org.opencontainers.image.ref.name` (the tag, for other tools).
Uses only the Python standard library.
"""
import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

DEFAULT_NAME = "localhost/aws-cni/busybox:test"
# If the busybox cannot list its applets, the ones the tests use.
FALLBACK_APPLETS = ["bin/sh", "bin/cat", "bin/echo", "bin/sleep", "bin/ping", "bin/ls", "bin/hostname",
                    "sbin/ip", "usr/bin/nc", "usr/bin/wget", "usr/bin/timeout", "usr/bin/head", "usr/bin/test"]


def tar_entry(name, kind=tarfile.REGTYPE, mode=0o644, size=0, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.linkname = linkname
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def applet_paths(busybox):
    try:
        out = subprocess.run([busybox, "--list-full"], check=True, capture_output=True, text=True).stdout
        paths = [p.strip() for p in out.splitlines() if p.strip()]
    except (OSError, subprocess.CalledProcessError):
        paths = FALLBACK_APPLETS
    return sorted(p for p in set(paths) if p != "bin/busybox" and "/" in p and ".." not in p.split("/"))


def build_layer(busybox):
    """The layer tar (bytes): directories first, then busybox, its applet links and /etc."""
    with open(busybox, "rb") as f:
        binary = f.read()
    applets = applet_paths(busybox)
    files = {
        "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n",
        "etc/group": b"root:x:0:\n",
        "etc/hostname": b"busybox\n",
    }
    dirs = {"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "dev", "proc", "sys", "tmp", "root", "run"}
    for p in applets:
        parts = p.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in sorted(dirs):
            tar.addfile(tar_entry(d + "/", tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755))
        tar.addfile(tar_entry("bin/busybox", mode=0o755, size=len(binary)), io.BytesIO(binary))
        for p in applets:
            tar.addfile(tar_entry(p, tarfile.SYMTYPE, 0o777, linkname="/bin/busybox"))
        for name, data in sorted(files.items()):
            tar.addfile(tar_entry(name, size=len(data)), io.BytesIO(data))
    return buf.getvalue(), len(applets)


def blob(data):
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="the OCI layout tarball to write")
    ap.add_argument("--name", default=DEFAULT_NAME, help="image reference (default %(default)s)")
    ap.add_argument("--busybox", default="/bin/busybox", help="a static busybox (default %(default)s)")
    a = ap.parse_args()

    layer, napplets = build_layer(a.busybox)
    layer_digest, _ = blob(layer)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["/bin/sh"], "WorkingDir": "/"},
        # Uncompressed layer: the diff id is the layer digest itself.
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created_by": "scripts/containerd/build-image.py: static busybox with %d applets" % napplets}],
    }
    config_digest, config_bytes = blob(json.dumps(config, sort_keys=True, separators=(",", ":")).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": len(config_bytes)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": len(layer)}],
    }
    manifest_digest, manifest_bytes = blob(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode())
    tag = a.name.rsplit(":", 1)[1] if ":" in a.name.rsplit("/", 1)[-1] else "latest"
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": len(manifest_bytes),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"io.containerd.image.name": a.name, "org.opencontainers.image.ref.name": tag},
        }],
    }
    entries = [
        ("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode()),
        ("index.json", json.dumps(index, sort_keys=True, separators=(",", ":")).encode()),
    ]
    for digest, data in [(layer_digest, layer), (config_digest, config_bytes), (manifest_digest, manifest_bytes)]:
        entries.append(("blobs/sha256/" + digest.split(":", 1)[1], data))

    tmp = a.out + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ["blobs/", "blobs/sha256/"]:
            tar.addfile(tar_entry(d, tarfile.DIRTYPE, 0o755))
        for name, data in entries:
            tar.addfile(tar_entry(name, size=len(data)), io.BytesIO(data))
    os.replace(tmp, a.out)
    print("%s: %s (%d applets) manifest %s" % (a.out, a.name, napplets, manifest_digest))


if __name__ == "__main__":
    sys.exit(main())
