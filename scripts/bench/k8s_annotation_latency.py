#!/usr/bin/env python3
"""Benchmark: latency from a pod-eni annotation's arrival to a waiting AddNetwork's reply, and the
API requests one ADD makes, with the release ipamd against the test API server
(scripts/tests/fake-apiserver.py, HTTPS on the loopback of a throwaway network namespace).

Per round: a branch pod without annotation is created, an AddNetwork for it is sent on ipamd's
socket and left waiting, then the annotation is written. Latency = the moment the server wrote
the MODIFIED event into the watch stream -> the moment the AddNetwork reply arrived (both
CLOCK_MONOTONIC on this machine). Run as root: scripts/bench/k8s-annotation-latency.sh [rounds]
"""
import json, os, socket, statistics, struct, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
NS = f"awscni-bench-{os.getpid()}"
work = tempfile.mkdtemp(prefix="aws-cni-bench.")
procs = []


def sh(*a):
    subprocess.run(a, check=True)


def rpc(sock_path, method, pod):
    payload = json.dumps({"method": method, "pod": pod}).encode()
    frame = b"SGPD" + struct.pack(">HHI", 1, 0, len(payload)) + payload
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(sock_path)
    s.sendall(frame)
    buf = b""
    while len(buf) < 12 or len(buf) < 12 + struct.unpack(">I", buf[8:12])[0]:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    t = time.monotonic()
    s.close()
    return t, json.loads(buf[12:])


def http_get(sock_path, path):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(sock_path)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    buf = b""
    while True:
        c = s.recv(65536)
        if not c:
            break
        buf += c
    return json.loads(buf.split(b"\r\n\r\n", 1)[1])


def pod(name, uid, annotation=None):
    meta = {"name": name, "namespace": "bench", "uid": uid}
    if annotation:
        meta["annotations"] = {"vpc.amazonaws.com/pod-eni": annotation}
    return {"kind": "Pod", "apiVersion": "v1", "metadata": meta,
            "spec": {"nodeName": "node-1", "containers": [{"name": "app", "resources": {"limits": {"vpc.amazonaws.com/pod-eni": "1"}}}]}}


def ann(i):
    return json.dumps([{"eniId": f"eni-{i}", "ifAddress": "0a:00:00:00:01:%02x" % i, "privateIp": f"10.0.41.{i}",
                        "vlanId": i, "subnetCidr": "10.0.32.0/19"}])


def main():
    sh("ip", "netns", "add", NS)
    sh("ip", "-n", NS, "link", "set", "lo", "up")
    sh("ip", "-n", NS, "link", "add", "eth1", "address", "0a:00:00:00:0f:01", "type", "veth", "peer", "name", "eth1peer")
    # The primary interface node setup needs (sysctls, SNAT source address).
    sh("ip", "-n", NS, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0peer")
    sh("ip", "-n", NS, "addr", "add", "10.0.0.10/20", "dev", "eth0")
    api = subprocess.Popen(["ip", "netns", "exec", NS, "python3", f"{ROOT}/scripts/tests/fake-apiserver.py", "--dir", f"{work}/api"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    procs.append(api)
    port = json.loads(api.stdout.readline())["port"]

    def ctl(cmd):
        api.stdin.write(json.dumps(cmd) + "\n")
        api.stdin.flush()
        return json.loads(api.stdout.readline())

    # Node signalling finds its objects at once, so its requests do not mix with the ADDs'.
    ctl({"op": "put_object", "path": "/api/v1/nodes/node-1", "object": {"kind": "Node", "metadata": {"name": "node-1"}}})
    ctl({"op": "put_object", "path": "/apis/vpcresources.k8s.aws/v1alpha1/cninodes/node-1",
         "object": {"kind": "CNINode", "metadata": {"name": "node-1"}, "spec": {}}})
    with open(f"{work}/api/token", "w") as f:
        f.write("token-1")
    with open(f"{work}/kubeconfig", "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
current-context: bench
clusters:
- name: fake
  cluster: {{server: "https://127.0.0.1:{port}", certificate-authority: api/ca.crt}}
contexts:
- name: bench
  context: {{cluster: fake, user: ipamd}}
users:
- name: ipamd
  user: {{tokenFile: api/token}}
""")
    rpc_sock, debug_sock = f"{work}/ipamd.sock", f"{work}/debug.sock"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MY_NODE_NAME": "node-1", "KUBECONFIG": f"{work}/kubeconfig",
           "TRUNK_INTERFACE": "eth1", "IPAMD_SOCKET": rpc_sock, "IPAMD_DEBUG_SOCKET": debug_sock,
           "POD_ENI_WAIT_TIMEOUT": "10s", "AWS_VPC_K8S_CNI_LOGLEVEL": "WARN", "ENABLE_POD_ENI": "true",
           "VPC_CIDRS": "10.0.0.0/16", "CNI_BIN_DIR": f"{work}/cni/bin", "CNI_CONF_DIR": f"{work}/cni/net.d",
           "CNI_PLUGIN_SOURCE": f"{ROOT}/.build/release/aws-cni"}
    ipamd = subprocess.Popen(["ip", "netns", "exec", NS, f"{ROOT}/.build/release/ipamd"], env=env)
    procs.append(ipamd)
    deadline = time.monotonic() + 20
    while not os.path.exists(debug_sock) and time.monotonic() < deadline:
        time.sleep(0.05)

    def cache_state(name):
        for p in http_get(debug_sock, "/v1/pods"):
            if p["name"] == name:
                return p["state"]
        return None

    # Requests per ADD, for a pod whose annotation is already there.
    ctl({"op": "put_pod", "pod": pod("ready", "u-ready", ann(1))})
    while cache_state("ready") != "ready":
        time.sleep(0.02)
    before = ctl({"op": "stats"})["requests"]
    _, r = rpc(rpc_sock, "AddNetwork", {"podName": "ready", "podNamespace": "bench", "podUID": "u-ready", "containerID": "c-ready",
                                        "netns": "", "ifName": "eth0", "networkName": "aws-cni"})
    assert r["success"], r
    requests_ready = ctl({"op": "stats"})["requests"] - before

    latencies, requests_waiting = [], []
    for i in range(2, ROUNDS + 2):
        name = f"late-{i}"
        ctl({"op": "put_pod", "pod": pod(name, f"u-{i}")})
        while cache_state(name) != "pending":
            time.sleep(0.01)
        result = {}
        req = {"podName": name, "podNamespace": "bench", "podUID": f"u-{i}", "containerID": f"c-{i}",
               "netns": "", "ifName": "eth0", "networkName": "aws-cni"}
        before = ctl({"op": "stats"})["requests"]
        th = threading.Thread(target=lambda: result.update(zip(("t", "reply"), rpc(rpc_sock, "AddNetwork", req))))
        th.start()
        time.sleep(0.3)  # the ADD is now waiting in ipamd (a benchmark, not a test: a pause is fine)
        ctl({"op": "annotate", "key": f"bench/{name}", "name": "vpc.amazonaws.com/pod-eni", "value": ann(i)})
        th.join(30)
        assert result["reply"]["success"], result
        assert result["reply"]["network"]["vlanID"] == i
        requests_waiting.append(ctl({"op": "stats"})["requests"] - before)
        emitted = ctl({"op": "emitted", "key": f"bench/{name}"})["t"]
        latencies.append((result["t"] - emitted) * 1000)

    latencies.sort()
    print(f"API requests during one ADD (annotation present): {requests_ready}")
    print(f"API requests during one waiting ADD (max of {ROUNDS}): {max(requests_waiting)}")
    print(f"annotation arrival -> waiting AddNetwork reply, {ROUNDS} rounds: median {statistics.median(latencies):.2f} ms, "
          f"min {latencies[0]:.2f} ms, p90 {latencies[int(0.9 * (len(latencies) - 1))]:.2f} ms, max {latencies[-1]:.2f} ms")


try:
    main()
finally:
    for p in reversed(procs):
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
    subprocess.run(["ip", "netns", "del", NS], stderr=subprocess.DEVNULL)
    subprocess.run(["rm", "-rf", work])
