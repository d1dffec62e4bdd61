#!/usr/bin/env python3
"""Benchmarks of the release ipamd in a throwaway node namespace (not tests). Each prints one JSON line.

  ipamd_bench.py rss [file|kubernetes] [PODS]
      resident memory once PODS branch pods (default 100) are known to ipamd and each has been
      served one AddNetwork: through the static file source, or through the pod watch against
      the test Kubernetes API server.
  ipamd_bench.py rpc [REQUESTS] [CLIENTS]
      AddNetwork latency on ipamd's socket: REQUESTS (default 10000) from CLIENTS (default 16)
      concurrent clients, one connection per request as aws-cni does (scripts/bench/rpc-load.c);
      then the same load against the floor (scripts/bench/rpc-floor.c: one epoll thread, as
      ipamd's one RPC event loop, answering a canned reply), under "floor".
"""
import json, os, subprocess, sys, time
from benchlib import BIN, ROOT, Node, ann, pod, rpc


def serve_all(node, count):
    for i in range(1, count + 1):
        _, r = rpc(node.rpc_sock, "AddNetwork", {"podName": f"pod-{i}", "podNamespace": "bench", "podUID": f"u-{i}",
                                                  "containerID": f"c-{i}", "netns": "", "ifName": "eth0", "networkName": "aws-cni"})
        if not r.get("success"):
            raise SystemExit(f"AddNetwork pod-{i}: {r}")


def rss(source, count):
    with Node(kubernetes=source == "kubernetes") as node:
        if node.kubernetes:
            for i in range(1, count + 1):
                node.ctl({"op": "put_pod", "pod": pod(f"pod-{i}", f"u-{i}", ann(i))})
        else:
            node.write_pods_file(count)
        node.start_ipamd()
        if node.kubernetes:
            deadline = time.monotonic() + 30
            while node.cache_state(f"pod-{count}") != "ready":
                if time.monotonic() > deadline:
                    raise SystemExit("the pods did not reach ipamd's cache")
                time.sleep(0.02)
        serve_all(node, count)
        s = node.status()
        print(json.dumps({"pods": count, "source": source, "rss_kib": s["VmRSS"], "hwm_kib": s["VmHWM"],
                          "anon_kib": s["RssAnon"], "file_kib": s["RssFile"], "threads": s["Threads"]}))


def rpc_latency(requests, clients, count=100):
    with Node() as node:
        load = f"{node.work}/rpc-load"
        subprocess.run(["gcc", "-O2", "-pthread", "-o", load, f"{ROOT}/scripts/bench/rpc-load.c"], check=True)
        node.write_pods_file(count)
        node.start_ipamd()
        serve_all(node, count)  # later AddNetworks find the pod served, as a repeated ADD would
        out = subprocess.run([load, node.rpc_sock, str(requests), str(clients), str(count)], capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"rpc-load: {out.stdout}{out.stderr}")
        result = json.loads(out.stdout)
        floor = f"{node.work}/rpc-floor"
        subprocess.run(["gcc", "-O2", "-pthread", "-o", floor, f"{ROOT}/scripts/bench/rpc-floor.c"], check=True)
        server = subprocess.Popen([floor, f"{node.work}/floor.sock", "1"], stdout=subprocess.PIPE, text=True)
        try:
            server.stdout.readline()  # "ready": listening
            out = subprocess.run([load, f"{node.work}/floor.sock", str(requests), str(clients), str(count)], capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(f"rpc-load against the floor: {out.stdout}{out.stderr}")
            result["floor"] = json.loads(out.stdout)
        finally:
            server.kill()
            server.wait()
        print(json.dumps(result))


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "rss":
        rss(sys.argv[2] if len(sys.argv) > 2 else "file", int(sys.argv[3]) if len(sys.argv) > 3 else 100)
    elif what == "rpc":
        rpc_latency(int(sys.argv[2]) if len(sys.argv) > 2 else 10000, int(sys.argv[3]) if len(sys.argv) > 3 else 16)
    else:
        sys.exit(__doc__)
