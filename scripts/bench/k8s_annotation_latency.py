#!/usr/bin/env python3
"""Benchmark: latency from a pod-eni annotation's arrival to a waiting AddNetwork's reply, and the
API requests one ADD makes, with the release ipamd against the test API server
(scripts/tests/fake-apiserver.py, HTTPS on the loopback of a throwaway network namespace).

Per round: a branch pod without annotation is created, an AddNetwork for it is sent on ipamd's
socket and left waiting, then the annotation is written. Latency = the moment the server wrote
the MODIFIED event into the watch stream -> the moment the AddNetwork reply arrived (both
CLOCK_MONOTONIC on this machine). Run as root: scripts/bench/k8s-annotation-latency.sh [rounds]
"""
import statistics, sys, threading, time
from benchlib import Node, ann, pod, rpc

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 20


def main(node):
    node.start_ipamd(AWS_VPC_K8S_CNI_LOGLEVEL="WARN")
    ctl, rpc_sock, cache_state = node.ctl, node.rpc_sock, node.cache_state

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


with Node(kubernetes=True) as n:
    main(n)
