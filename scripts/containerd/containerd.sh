# A private containerd for tests: source it, then `ctrd_start DIR` ... `ctrd_stop`.
# ctrd_start renders config.toml.in into DIR (own root, state and socket; CRI off; only the
# `native` snapshotter) and exports CONTAINERD_ADDRESS, CONTAINERD_NAMESPACE=default and
# CONTAINERD_SNAPSHOTTER=native, so a plain `ctr ...` (also under `ip netns exec`) talks to it.
# containerd's own output goes to DIR/containerd.log.

CTRD_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CTRD_DIR=
CTRD_PID=

# ctrd_start DIR: returns once containerd answers on its socket (bounded: 60 s).
ctrd_start() {
    CTRD_DIR=$1
    mkdir -p "$CTRD_DIR"
    sed "s|@DIR@|$CTRD_DIR|g" "$CTRD_LIB/config.toml.in" >"$CTRD_DIR/config.toml"
    export CONTAINERD_ADDRESS=$CTRD_DIR/containerd.sock CONTAINERD_NAMESPACE=default CONTAINERD_SNAPSHOTTER=native
    containerd --config "$CTRD_DIR/config.toml" >>"$CTRD_DIR/containerd.log" 2>&1 </dev/null &
    CTRD_PID=$!
    local i
    for i in $(seq 1 600); do
        # The socket appears once every plugin is loaded; `ctr version` proves it answers.
        if [[ -S $CONTAINERD_ADDRESS ]] && ctr version >/dev/null 2>&1; then return 0; fi
        kill -0 "$CTRD_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "containerd did not start; its log:" >&2
    cat "$CTRD_DIR/containerd.log" >&2
    return 1
}

# ctrd_stop: removes tasks and containers a failed test left (their shims would outlive
# containerd), then stops containerd (TERM, KILL after 20 s) and unmounts what is left below DIR.
ctrd_stop() {
    [[ -n $CTRD_PID ]] || return 0
    local id i
    if kill -0 "$CTRD_PID" 2>/dev/null; then
        for id in $(ctr tasks ls -q 2>/dev/null); do
            ctr tasks kill -s SIGKILL "$id" >/dev/null 2>&1
            ctr tasks rm -f "$id" >/dev/null 2>&1
        done
        for id in $(ctr containers ls -q 2>/dev/null); do ctr containers rm "$id" >/dev/null 2>&1; done
        kill -TERM "$CTRD_PID" 2>/dev/null
        for i in $(seq 1 200); do
            kill -0 "$CTRD_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$CTRD_PID" 2>/dev/null
    fi
    wait "$CTRD_PID" 2>/dev/null
    CTRD_PID=
    # Deepest first: container rootfs bind mounts sit below the state directory.
    awk -v d="$CTRD_DIR/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
    return 0
}

# ctrd_import TARBALL: imports an OCI layout tarball (scripts/containerd/build-image.sh) and
# unpacks it into the native snapshotter.
ctrd_import() {
    ctr images import --snapshotter native "$1"
}
