# The node's cloud for the demo, on top of scripts/lib/fabric.sh: moto as EC2 and the instance
# metadata test server (scripts/tests/cloud-sim.py), run in the node's namespace on loopback, so
# ipamd discovers the node (primary ENI, trunk, VPC CIDRs) and runs its address pool for regular
# pods as on EC2. The node's eth0 and eth1 take the MACs of the primary and trunk ENIs.
# Source it after fabric.sh; call cloud_up after fabric_up. CLOUD_SIM_PYTHON: the interpreter that
# has moto (the VM's PATH is Debian's).

CLOUD_ENV=()

# cloud_up [cloud-sim options...]: starts the simulator; sets CLOUD_ENV (ipamd's settings for it).
cloud_up() {
    coproc CLOUD { exec ip netns exec node "${CLOUD_SIM_PYTHON:-python3}" scripts/tests/cloud-sim.py "$@" 2>> "$WORK/cloud-sim.log"; }
    local ready
    if ! read -r -t 120 ready <&"${CLOUD[0]}"; then
        echo "cloud-sim did not start; its log:" >&2
        cat "$WORK/cloud-sim.log" >&2
        return 1
    fi
    CLOUD_ENV=(AWS_EC2_METADATA_SERVICE_ENDPOINT="$(jq -r .imds <<<"$ready")"
               AWS_ENDPOINT_URL_EC2="$(jq -r .ec2 <<<"$ready")" AWS_ENDPOINT_URL_STS="$(jq -r .ec2 <<<"$ready")")
    node ip link set eth0 address "$(jq -r .primaryEni.mac <<<"$ready")"
    # The trunk, attached as the VPC resource controller would; its MAC is the node's eth1.
    local trunk
    trunk=$(cloud_cmd '{"cmd":"create_eni","type":"trunk","attach":true}') || return 1
    TRUNK_MAC=$(jq -r .mac <<<"$trunk")
    node ip link set eth1 address "$TRUNK_MAC"
}

# cloud_cmd JSON: one command of the simulator's protocol; prints its answer, fails when not ok.
cloud_cmd() {
    local answer
    echo "$1" >&"${CLOUD[1]}"
    read -r -t 60 answer <&"${CLOUD[0]}" || return 1
    echo "$answer"
    [[ $(jq -r .ok <<<"$answer") == true ]]
}

# cloud_down: stops the simulator (a signal, not stdin's EOF: a background child may hold the pipe).
cloud_down() {
    [[ -n ${CLOUD_PID:-} ]] || return 0
    kill "$CLOUD_PID" 2>/dev/null
    wait "$CLOUD_PID" 2>/dev/null
    CLOUD_PID=
}
