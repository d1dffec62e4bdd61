# The test Kubernetes API server (scripts/tests/fake-apiserver.py) for shell tests. Source it.
#   api_start NS DIR   starts it on NS's loopback with its CA and token under DIR; sets API_PORT, API_PID
#   api JSON           one control command (a single line) in, its one-line JSON answer out
#   api_pod NAME UID BRANCH [ANNOTATION]   the put_pod command for a pod of node-1 in "default"
#   write_kubeconfig FILE   a kubeconfig for it, token file DIR/token ("token-1"), trusting DIR/ca.crt
# Commands go through fds 7 and 8 so that command substitutions can use them too. The server
# exits when its stdin (fd 7) closes, so it never outlives the test.

api_start() {
    API_DIR=$2
    mkdir -p "$API_DIR"
    coproc API { exec ip netns exec "$1" python3 scripts/tests/fake-apiserver.py --dir "$API_DIR"; }
    exec 7>&"${API[1]}" 8<&"${API[0]}"
    local started
    read -r -t 60 started <&8 || { echo "test API server did not start" >&2; return 1; }
    API_PORT=$(jq -r .port <<<"$started")
    printf 'token-1' > "$API_DIR/token"
}

api() { echo "$1" >&7; local r=""; read -r -t 10 r <&8; echo "$r"; }

api_pod() {
    local ann=${4:-} limits='{"cpu":"100m"}'
    [[ $3 == true ]] && limits='{"cpu":"100m","vpc.amazonaws.com/pod-eni":"1"}'
    jq -cn --arg n "$1" --arg u "$2" --arg a "$ann" --argjson l "$limits" \
        '{op:"put_pod",pod:{kind:"Pod",apiVersion:"v1",metadata:({name:$n,namespace:"default",uid:$u} + (if $a == "" then {} else {annotations:{"vpc.amazonaws.com/pod-eni":$a}} end)),
          spec:{nodeName:"node-1",containers:[{name:"app",resources:{limits:$l}}]}}}'
}

write_kubeconfig() {
    cat > "$1" <<YAML
apiVersion: v1
kind: Config
current-context: test
clusters:
- name: fake
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $API_DIR/ca.crt
contexts:
- name: test
  context: {cluster: fake, user: ipamd}
users:
- name: ipamd
  user:
    tokenFile: $API_DIR/token
YAML
}
