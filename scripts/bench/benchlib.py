"""Shared pieces of the ipamd benchmarks: a throwaway node namespace, the test Kubernetes API
server, ipamd started in the namespace, and ipamd's RPC and debug sockets. Benchmarks, not tests."""
import json, os, socket, struct, subprocess, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.abspath(os.environ.get("BIN", f"{ROOT}/.build/release"))


def sh(*a):
    subprocess.run(a, check=True)


def rpc(sock_path, method, pod):
    """One request on a fresh connection; returns (monotonic time of the reply, reply JSON)."""
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
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    buf = b""
    while True:
        c = s.recv(65536)
        if not c:
            break
        buf += c
    return json.loads(buf.split(b"\r\n\r\n", 1)[1])


def pod(name, uid, annotation=None, namespace="bench"):
    """A branch pod of node-1 as the API server returns it."""
    meta = {"name": name, "namespace": namespace, "uid": uid}
    if annotation:
        meta["annotations"] = {"vpc.amazonaws.com/pod-eni": annotation}
    return {"kind": "Pod", "apiVersion": "v1", "metadata": meta,
            "spec": {"nodeName": "node-1", "containers": [{"name": "app", "resources": {"limits": {"vpc.amazonaws.com/pod-eni": "1"}}}]}}


def eni(i):
    """Branch details for pod number i (1...4094)."""
    return {"eniId": f"eni-{i:017x}", "ifAddress": "0a:00:00:00:%02x:%02x" % (i // 256, i % 256),
            "privateIp": f"10.0.{40 + i // 250}.{i % 250 + 1}", "vlanId": i, "subnetCidr": "10.0.32.0/19"}


def ann(i):
    return json.dumps([eni(i)])


class Node:
    """A throwaway network namespace with a trunk (eth1) and a primary interface (eth0), the test
    API server when asked for, and ipamd. Use as a context manager: everything goes on exit."""

    def __init__(self, kubernetes=False):
        self.ns = f"awscni-bench-{os.getpid()}"
        self.work = tempfile.mkdtemp(prefix="aws-cni-bench.")
        self.kubernetes = kubernetes
        self.procs = []
        self.api = None
        self.ipamd = None
        self.rpc_sock = f"{self.work}/ipamd.sock"
        self.debug_sock = f"{self.work}/debug.sock"

    def __enter__(self):
        sh("ip", "netns", "add", self.ns)
        sh("ip", "-n", self.ns, "link", "set", "lo", "up")
        sh("ip", "-n", self.ns, "link", "add", "eth1", "address", "0a:00:00:00:0f:01", "type", "veth", "peer", "name", "eth1peer")
        # The primary interface node setup needs (sysctls, SNAT source address).
        sh("ip", "-n", self.ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0peer")
        sh("ip", "-n", self.ns, "addr", "add", "10.0.0.10/20", "dev", "eth0")
        if self.kubernetes:
            self._start_api()
        return self

    def __exit__(self, *exc):
        for p in reversed(self.procs):
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run(["ip", "netns", "del", self.ns], stderr=subprocess.DEVNULL)
        subprocess.run(["rm", "-rf", self.work])

    def _start_api(self):
        self.api = subprocess.Popen(["ip", "netns", "exec", self.ns, "python3", f"{ROOT}/scripts/tests/fake-apiserver.py", "--dir", f"{self.work}/api"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.procs.append(self.api)
        port = json.loads(self.api.stdout.readline())["port"]
        # Node signalling finds its objects at once, so its requests do not mix with the ADDs'.
        self.ctl({"op": "put_object", "path": "/api/v1/nodes/node-1", "object": {"kind": "Node", "metadata": {"name": "node-1"}}})
        self.ctl({"op": "put_object", "path": "/apis/vpcresources.k8s.aws/v1alpha1/cninodes/node-1",
                  "object": {"kind": "CNINode", "metadata": {"name": "node-1"}, "spec": {}}})
        with open(f"{self.work}/api/token", "w") as f:
            f.write("token-1")
        with open(f"{self.work}/kubeconfig", "w") as f:
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

    def ctl(self, cmd):
        self.api.stdin.write(json.dumps(cmd) + "\n")
        self.api.stdin.flush()
        return json.loads(self.api.stdout.readline())

    def write_pods_file(self, count, namespace="bench"):
        with open(f"{self.work}/pods.json", "w") as f:
            json.dump({"pods": {f"{namespace}/pod-{i}": [eni(i)] for i in range(1, count + 1)}}, f)

    def start_ipamd(self, **extra):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TRUNK_INTERFACE": "eth1", "IPAMD_SOCKET": self.rpc_sock,
               "IPAMD_DEBUG_SOCKET": self.debug_sock, "ENABLE_POD_ENI": "true", "VPC_CIDRS": "10.0.0.0/16",
               "AWS_VPC_K8S_CNI_LOG_FILE": f"{self.work}/ipamd.log",
               "CNI_BIN_DIR": f"{self.work}/cni/bin", "CNI_CONF_DIR": f"{self.work}/cni/net.d", "CNI_PLUGIN_SOURCE": f"{BIN}/aws-cni",
               "AWS_VPC_K8S_CNI_BACKING_STORE": f"{self.work}/ipam.json"}
        if self.kubernetes:
            env.update({"MY_NODE_NAME": "node-1", "KUBECONFIG": f"{self.work}/kubeconfig", "POD_ENI_WAIT_TIMEOUT": "10s"})
        else:
            env["POD_ENI_SOURCE"] = f"file:{self.work}/pods.json"
        env.update(extra)
        # `ip netns exec` execs ipamd, so this pid is ipamd's.
        self.ipamd = subprocess.Popen(["ip", "netns", "exec", self.ns, f"{BIN}/ipamd"], env=env)
        self.procs.append(self.ipamd)
        conflist = f"{self.work}/cni/net.d/10-aws.conflist"
        deadline = time.monotonic() + 30
        while not os.path.exists(conflist):
            if self.ipamd.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"ipamd did not become ready; see {self.work}/ipamd.log")
            time.sleep(0.01)

    def cache_state(self, name):
        for p in http_get(self.debug_sock, "/v1/pods"):
            if p["name"] == name:
                return p["state"]
        return None

    def status(self):
        """ipamd's memory figures from /proc (KiB) and its thread count."""
        out = {}
        for line in open(f"/proc/{self.ipamd.pid}/status"):
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                out[k] = int(v.split()[0])
        return out
