import Foundation
@testable import IPAMDCore
import IPAMDKubernetes
import IPAMDProtocol
import Kubernetes
import NetModel
import Testing

func handler(_ source: KubernetesPodSource, _ settings: KubernetesSettings = KubernetesSettings(nodeName: "node-1")) -> RPCHandler {
    var config = IPAMDConfig(podENISource: .kubernetes(settings), trunk: .name("eth1"), vpcCIDRs: [IPPrefix("10.0.0.0/16")!])
    config.node.enablePodENI = true
    return RPCHandler(config: config, source: source.cache, trunk: FixedTrunk(index: 4), registry: PodRegistry(), logger: quiet)
}

func add(_ h: RPCHandler, _ name: String, uid: String, ns: String = "default") async -> RPCReply {
    await h.handle(RPCRequest(method: .addNetwork, pod: PodRequest(podName: name, podNamespace: ns, podUID: uid, containerID: "c-\(name)")))
}

/// Against scripts/tests/fake-apiserver.py over HTTPS (one server per test; serialized so the
/// two cores are not shared between several servers and watches).
@Suite(.serialized) struct APIServerTests {
    @Test func listsPagedAndAnswersWithoutAPIRequests() async throws {
        let server = try FakeAPIServer()
        server.control(["op": "put_pod", "pod": pod("db", uid: "u-db", branch: true, annotation: podENI)])
        server.control(["op": "put_pod", "pod": pod("web", uid: "u-web", branch: false)])
        server.control(["op": "put_pod", "pod": pod("elsewhere", uid: "u-x", node: "node-2", branch: true, annotation: podENI)])
        for i in 0..<4 { server.control(["op": "put_pod", "pod": pod("r\(i)", ns: "batch", uid: "u-r\(i)", branch: false)]) }
        try await withSource(server, pageSize: 2) { source in
            #expect(await synced(source, server))
            #expect(source.cache.count == 6)  // only node-1's pods, over three pages
            #expect(source.watcher.stats.lists == 1)
            // The first page from the watch cache (resourceVersion=0), not a quorum read of etcd;
            // the continue pages carry no resourceVersion (the server refuses both together).
            let rvs = server.stats()["list_rvs"] as? [Any] ?? []
            #expect(rvs.count == 3 && rvs[0] as? String == "0" && rvs.dropFirst().allSatisfy { $0 is NSNull })
            let h = handler(source)
            let before = server.requests()
            let r = await add(h, "db", uid: "u-db")
            #expect(r.network == PodNetwork(branch: true, podIPv4: "10.0.40.12", vlanID: 7, branchMAC: "0a:1b:2c:3d:4e:5f",
                                            branchENIID: "eni-0a1b2c3d4e5f60718", subnetCIDR: "10.0.32.0/19", subnetGatewayV4: "10.0.32.1",
                                            parentIfIndex: 4, vpcCIDRs: ["10.0.0.0/16"]))
            // A regular pod is answered at once, even with a long wait bound.
            let regular = await add(h, "web", uid: "u-web")
            #expect(regular.error?.code == .podNotFound)
            #expect(regular.error?.message.contains("regular pod") == true)
            #expect(server.requests() == before, "AddNetwork must not call the API server")
            #expect(source.client.requestCount == 3 + 1)  // three list pages, one watch
        }
    }

    @Test func lateAnnotationWaitingAddSucceedsInOneAttempt() async throws {
        let server = try FakeAPIServer()
        server.control(["op": "put_pod", "pod": pod("late", uid: "u-late", branch: true)])
        try await withSource(server, wait: 10) { source in
            #expect(await synced(source, server))
            let dir = tempDir()
            var config = IPAMDConfig(podENISource: .kubernetes(KubernetesSettings(nodeName: "node-1")), trunk: .name("eth1"), vpcCIDRs: [])
            config.node.enablePodENI = true
            config.rpcSocket = dir + "/ipamd.sock"
            config.debugSocket = dir + "/debug.sock"
            config.servers.introspection = nil
            let daemon = try await RunningDaemon.start(config: config, source: source.cache, trunk: FixedTrunk(index: 4))
            let requestsBefore = server.requests()
            async let reply = offPool {
                Result { try SocketIPAMDClient(path: dir + "/ipamd.sock").call(
                    RPCRequest(method: .addNetwork, pod: PodRequest(podName: "late", podNamespace: "default", podUID: "u-late", containerID: "c1")),
                    timeoutSeconds: 30) }
            }
            // The scenario: the controller writes the annotation while the ADD waits for it.
            #expect(await eventually { source.cache.waiters == 1 })
            server.control(["op": "annotate", "key": "default/late", "name": "vpc.amazonaws.com/pod-eni", "value": podENI(vlan: 9, ip: "10.0.40.9")])
            let r = try await reply.get()
            #expect(r.success)
            #expect(r.network?.vlanID == 9 && r.network?.podIPv4 == "10.0.40.9")
            #expect(server.requests() == requestsBefore, "the waiting ADD made no API request")

            // /v1/pods: the pod with its UID, VLAN, ENI, IP, and both times.
            let body = try await offPool { Result { try HTTPExchange.get(unixSocket: dir + "/debug.sock", "/v1/pods").body } }.get()
            let pods = try JSONDecoder().decode([PodView].self, from: Data(body))
            #expect(pods.count == 1)
            let p = try #require(pods.first)
            #expect(p.name == "late" && p.podUID == "u-late" && p.branch && p.state == .served)
            #expect(p.vlanID == 9 && p.eniID == "eni-9" && p.ipv4 == "10.0.40.9")
            let arrived = try #require(p.annotationArrivedAt), served = try #require(p.servedAt)
            #expect(arrived <= served)  // RFC 3339 UTC with the same format sorts as time
            await daemon.stop()
        }
    }

    @Test func annotationNeverArrivesIsPendingAtTheBound() async throws {
        let server = try FakeAPIServer()
        server.control(["op": "put_pod", "pod": pod("never", uid: "u-n", branch: true)])
        try await withSource(server, wait: 1) { source in
            #expect(await synced(source, server))
            let started = ContinuousClock.now
            let r = await add(handler(source), "never", uid: "u-n")
            #expect(ContinuousClock.now - started >= .seconds(1), "waited the whole bound")
            #expect(r.error?.code == .pending)  // the plugin answers CNI code 11, try again later
            #expect(r.error?.message.contains("no vpc.amazonaws.com/pod-eni annotation yet") == true)
            // A pod the watch never reported is pending too, not "not a branch pod".
            #expect(await add(handler(source), "ghost", uid: "u-g").error?.code == .pending)
            let views = source.cache.podViews()
            #expect(views.map(\.state) == [.pending])
        }
    }

    @Test func uidMismatchRefusedAndRecreatedPodGetsItsOwnInterface() async throws {
        let server = try FakeAPIServer()
        server.control(["op": "put_pod", "pod": pod("web", uid: "old", branch: true, annotation: podENI(vlan: 5, ip: "10.0.40.5"))])
        try await withSource(server, wait: 0.5) { source in
            #expect(await synced(source, server))
            let h = handler(source)
            let refused = await add(h, "web", uid: "new")
            #expect(refused.error?.code == .podUIDMismatch)
            #expect(refused.error?.message.contains("old") == true)
            #expect(h.registry.all.isEmpty)
        }
        // The recreation arrives while the ADD for the new pod waits: it gets the new interface.
        try await withSource(server, wait: 10) { source in
            #expect(await synced(source, server))
            let h = handler(source)
            async let r = add(h, "web", uid: "new")
            #expect(await eventually { source.cache.waiters == 1 })
            server.control(["op": "delete_pod", "key": "default/web"])
            server.control(["op": "put_pod", "pod": pod("web", uid: "new", branch: true, annotation: podENI(vlan: 6, ip: "10.0.40.6"))])
            let reply = await r
            #expect(reply.network?.vlanID == 6)
        }
    }

    /// Mutations made while the stream is stalled, then the stream is cut mid-body: the watch
    /// resumes from its resourceVersion and replays them, without a new list.
    @Test func droppedWatchResumesWithoutLosingEvents() async throws {
        let server = try FakeAPIServer()
        server.control(["op": "put_pod", "pod": pod("a", uid: "u-a", branch: true, annotation: podENI(vlan: 1, ip: "10.0.40.1"))])
        server.control(["op": "put_pod", "pod": pod("c", uid: "u-c", branch: true)])
        try await withSource(server) { source in
            #expect(await synced(source, server))
            let rvBefore = source.watcher.stats.resourceVersion
            server.control(["op": "freeze", "on": true])
            server.control(["op": "put_pod", "pod": pod("b", uid: "u-b", branch: false)])
            server.control(["op": "delete_pod", "key": "default/a"])
            server.control(["op": "annotate", "key": "default/c", "name": "vpc.amazonaws.com/pod-eni", "value": podENI(vlan: 3, ip: "10.0.40.3")])
            server.control(["op": "put_pod", "pod": pod("d", uid: "u-d", node: "node-2", branch: false)])
            server.control(["op": "drop_watches", "mode": "close"])
            #expect(await eventually { source.cache.facts("default/c")?.annotation != nil && source.cache.count == 2 })
            #expect(source.cache.facts("default/a") == nil)
            #expect(source.cache.facts("default/b")?.branch == false)
            let expected = try BranchENI.decode(annotation: podENI(vlan: 3, ip: "10.0.40.3"))
            #expect(source.cache.lookup(key: "default/c", containerID: "") == .branch(expected))
            #expect(server.lists() == 1, "resumed from the resourceVersion, no re-list")
            let rvs = server.stats()["watch_rvs"] as? [String] ?? []
            #expect(rvs.count >= 2 && rvs[1] == rvBefore)
        }
    }

    /// The server forgot the events the client missed (compaction): 410 Gone, as an ERROR event
    /// in the stream or as an HTTP status. The client lists again and ends with the exact state.
    @Test(arguments: ["event", "http"]) func goneRelistsAndConverges(mode: String) async throws {
        let server = try FakeAPIServer()
        server.control(["op": "gone_mode", "mode": mode])
        server.control(["op": "put_pod", "pod": pod("a", uid: "u-a", branch: true, annotation: podENI(vlan: 1, ip: "10.0.40.1"))])
        server.control(["op": "put_pod", "pod": pod("c", uid: "u-c", branch: true)])
        try await withSource(server) { source in
            #expect(await synced(source, server))
            server.control(["op": "freeze", "on": true])
            server.control(["op": "put_pod", "pod": pod("b", uid: "u-b", branch: false)])
            server.control(["op": "delete_pod", "key": "default/a"])
            server.control(["op": "annotate", "key": "default/c", "name": "vpc.amazonaws.com/pod-eni", "value": podENI(vlan: 3, ip: "10.0.40.3")])
            server.control(["op": "compact"])
            let rvBefore = source.watcher.stats.resourceVersion
            server.control(["op": "drop_watches", "mode": "close"])
            #expect(await eventually { source.watcher.stats.lists == 2 && source.cache.count == 2 && source.cache.facts("default/c")?.annotation != nil })
            #expect(source.cache.facts("default/a") == nil)
            #expect(source.cache.facts("default/b") != nil)
            // The relist at the watcher's version was refused too (compacted): a consistent read.
            let asked = server.listVersions()
            #expect(asked.rvs == ["0", rvBefore, nil] && asked.matches == [nil, "NotOlderThan", nil])
            // And the watch goes on from the new list: later events still arrive.
            server.control(["op": "put_pod", "pod": pod("e", uid: "u-e", branch: false)])
            #expect(await eventually { source.cache.facts("default/e") != nil })
        }
    }

    /// The watch cache (what resourceVersion=0 lists answer) lags behind events the watcher has
    /// already applied: an annotation and a deletion. The watch then ends with 410. The relist
    /// must not take the cache back in time: it asks for the last resourceVersion seen, or newer.
    @Test(arguments: ["error410", "close"]) func relistAfterGoneNeverGoesBackInTime(drop: String) async throws {
        let server = try FakeAPIServer()
        server.control(["op": "put_pod", "pod": pod("a", uid: "u-a", branch: true)])
        server.control(["op": "put_pod", "pod": pod("b", uid: "u-b", branch: false)])
        try await withSource(server) { source in
            #expect(await synced(source, server))
            server.control(["op": "watch_cache", "frozen": true])
            server.control(["op": "annotate", "key": "default/a", "name": "vpc.amazonaws.com/pod-eni", "value": podENI(vlan: 4, ip: "10.0.40.4")])
            let seen = server.control(["op": "delete_pod", "key": "default/b"])["rv"] as? String ?? ""
            #expect(await eventually { source.watcher.stats.resourceVersion == seen })
            #expect(source.cache.facts("default/a")?.annotation != nil && source.cache.facts("default/b") == nil)
            if drop == "close" {
                // The resumed watch is the one told 410 (its version was compacted), as an HTTP status.
                server.control(["op": "gone_mode", "mode": "http"])
                server.control(["op": "put_pod", "pod": pod("x", uid: "u-x", node: "node-2", branch: false)])
                server.control(["op": "compact"])
            }
            server.control(["op": "drop_watches", "mode": drop])
            #expect(await eventually { source.watcher.stats.lists == 2 })
            #expect(source.cache.facts("default/a")?.annotation != nil, "the relist took the cache back before the annotation")
            #expect(source.cache.facts("default/b") == nil, "the relist brought a deleted pod back")
            let asked = server.listVersions()
            if drop == "close" {
                // Compacted past what the watcher saw: the relist at it is 410, then a consistent read.
                #expect(asked.rvs == ["0", seen, nil] && asked.matches == [nil, "NotOlderThan", nil])
            } else {
                #expect(asked.rvs == ["0", seen] && asked.matches == [nil, "NotOlderThan"])
            }
            // The watch goes on from the relist.
            server.control(["op": "put_pod", "pod": pod("e", uid: "u-e", branch: false)])
            #expect(await eventually { source.cache.facts("default/e") != nil })
            #expect(source.cache.facts("default/a")?.annotation != nil)
        }
    }

    /// An ERROR 410 event on an open stream (the server expired the watch).
    @Test func errorEventOnOpenStreamRelists() async throws {
        let server = try FakeAPIServer()
        server.control(["op": "put_pod", "pod": pod("a", uid: "u-a", branch: false)])
        try await withSource(server) { source in
            #expect(await synced(source, server))
            server.control(["op": "drop_watches", "mode": "error410"])
            #expect(await eventually { server.lists() == 2 })
            server.control(["op": "put_pod", "pod": pod("b", uid: "u-b", branch: false)])
            #expect(await eventually { source.cache.facts("default/b") != nil })
        }
    }

    /// A server that stops talking without closing (half-open connection): the idle watchdog ends
    /// the stream long before the timeout the server was asked for, and the watch reconnects.
    @Test func silentStreamIsAbandonedWhenIdle() async throws {
        let server = try FakeAPIServer()
        server.control(["op": "hang", "on": true])
        try await withSource(server, idleLimit: .milliseconds(500)) { source in
            #expect(await synced(source, server))
            #expect(await eventually { source.watcher.stats.watches >= 3 })
            #expect(source.watcher.stats.lastError?.contains("watch stream silent for") == true)
            server.control(["op": "hang", "on": false])
            server.control(["op": "put_pod", "pod": pod("after", uid: "u-after", branch: false)])
            #expect(await eventually { source.cache.facts("default/after") != nil })
        }
    }

    @Test func bookmarksAdvanceTheResourceVersion() async throws {
        let server = try FakeAPIServer()
        server.control(["op": "put_pod", "pod": pod("a", uid: "u-a", branch: false)])
        try await withSource(server) { source in
            #expect(await synced(source, server))
            // Events for other nodes move the server's resourceVersion without reaching us.
            for i in 0..<3 { server.control(["op": "put_pod", "pod": pod("x\(i)", uid: "u-x\(i)", node: "node-2", branch: false)]) }
            let rv = server.control(["op": "bookmark"])["rv"] as? String ?? ""
            #expect(await eventually { source.watcher.stats.resourceVersion == rv })
            server.control(["op": "drop_watches", "mode": "close"])
            #expect(await eventually { (server.stats()["watch_rvs"] as? [String] ?? []).last == rv })
        }
    }

    @Test func rotatedTokenIsReRead() async throws {
        let server = try FakeAPIServer()
        try await withSource(server) { source in
            #expect(await synced(source, server))
            // Rotation: the file changes, the server accepts only the new token.
            server.rotateTokenFile("token-2")
            server.control(["op": "set_tokens", "tokens": ["token-2"]])
            server.control(["op": "drop_watches", "mode": "close"])
            server.control(["op": "put_pod", "pod": pod("after-rotation", uid: "u1", branch: false)])
            #expect(await eventually { source.cache.facts("default/after-rotation") != nil })
            // The server moves to a token the file does not have yet: 401s until the file catches up.
            server.control(["op": "set_tokens", "tokens": ["token-3"]])
            server.control(["op": "drop_watches", "mode": "close"])
            #expect(await eventually { source.watcher.stats.lastError?.contains("401") == true })
            server.rotateTokenFile("token-3")
            server.control(["op": "put_pod", "pod": pod("after-second", uid: "u2", branch: false)])
            #expect(await eventually { source.cache.facts("default/after-second") != nil })
        }
    }

    @Test func cniNodeFeaturesPreservedAcrossConflicts() async throws {
        let server = try FakeAPIServer()
        let cniPath = NodeSignaller.cniNodesPath + "node-1"
        let nodePath = NodeSignaller.nodesPath + "node-1"
        server.control(["op": "put_object", "path": nodePath, "object": [
            "kind": "Node", "apiVersion": "v1", "metadata": ["name": "node-1", "labels": ["kubernetes.io/os": "linux"]]]])
        let existing: [[String: Any]] = [["name": "CustomNetworking", "value": "eniconfig-a"]]
        // Another writer adds a feature between our GET and our PATCH: 409, read again, keep both.
        server.control(["op": "concurrent_write", "path": cniPath, "patch": ["spec": ["features": existing + [["name": "Other"]]]]])
        server.control(["op": "concurrent_write", "path": nodePath, "patch": ["metadata": ["labels": ["team": "a"]]]])
        try await withSource(server, podENI: true, trunkLabel: true) { source in
            // The CNINode appears only later (the controller creates it): retried until then.
            #expect(await eventually { (server.stats()["last"] as? [[Any]] ?? []).contains { ($0[1] as? String) == cniPath } })
            server.control(["op": "put_object", "path": cniPath, "object": [
                "apiVersion": "vpcresources.k8s.aws/v1alpha1", "kind": "CNINode", "metadata": ["name": "node-1"],
                "spec": ["features": existing]]])
            #expect(await eventually { source.signalsDone == ["cninode", "label"] })
            let cni = server.control(["op": "get_object", "path": cniPath])["object"] as? [String: Any]
            let features = ((cni?["spec"] as? [String: Any])?["features"] as? [[String: Any]] ?? []).map { $0["name"] as? String ?? "" }
            #expect(features == ["CustomNetworking", "Other", "SecurityGroupsForPods"])
            let value = (((cni?["spec"] as? [String: Any])?["features"] as? [[String: Any]])?.first?["value"] as? String)
            #expect(value == "eniconfig-a")
            let node = server.control(["op": "get_object", "path": nodePath])["object"] as? [String: Any]
            let labels = (node?["metadata"] as? [String: Any])?["labels"] as? [String: String]
            #expect(labels == ["kubernetes.io/os": "linux", "team": "a", "vpc.amazonaws.com/has-trunk-attached": "false"])
        }
        // Already there: nothing to patch (and a controller's "true" label is never overwritten).
        server.control(["op": "put_object", "path": nodePath, "object": [
            "kind": "Node", "metadata": ["name": "node-1", "labels": ["vpc.amazonaws.com/has-trunk-attached": "true"]]]])
        let patchesBefore = server.stats()["patches"] as? Int ?? -1
        try await withSource(server, podENI: true, trunkLabel: true) { source in
            #expect(await eventually { source.signalsDone == ["cninode", "label"] })
        }
        #expect(server.stats()["patches"] as? Int == patchesBefore)
        let node = server.control(["op": "get_object", "path": nodePath])["object"] as? [String: Any]
        #expect(((node?["metadata"] as? [String: Any])?["labels"] as? [String: String])?["vpc.amazonaws.com/has-trunk-attached"] == "true")
    }

    /// A cluster without the CNINode CRD answers 404 forever: the trunk label is set all the same.
    @Test func trunkLabelDoesNotWaitForTheCNINode() async throws {
        let server = try FakeAPIServer()
        let nodePath = NodeSignaller.nodesPath + "node-1"
        server.control(["op": "put_object", "path": nodePath, "object": ["kind": "Node", "metadata": ["name": "node-1"]]])
        try await withSource(server, podENI: true, trunkLabel: true) { source in
            #expect(await eventually { source.signalsDone == ["label"] })
            let node = server.control(["op": "get_object", "path": nodePath])["object"] as? [String: Any]
            #expect(((node?["metadata"] as? [String: Any])?["labels"] as? [String: String])?["vpc.amazonaws.com/has-trunk-attached"] == "false")
            #expect(!source.signalsDone.contains("cninode"))
        }
    }

    /// A server that sends a list's head and then stops mid-body: the list is abandoned at its
    /// deadline and tried again (nothing else would ever end it), and succeeds once the server talks.
    @Test func stalledListBodyIsAbandonedAndRetried() async throws {
        let server = try FakeAPIServer()
        server.control(["op": "put_pod", "pod": pod("a", uid: "u-a", branch: false)])
        server.control(["op": "stall_lists", "on": true])
        try await withSource(server, listTimeout: .milliseconds(500)) { source in
            #expect(await eventually { server.lists() >= 2 })
            #expect(!source.cache.isSynced)
            #expect(source.watcher.stats.lastError?.contains("no complete answer within") == true)
            server.control(["op": "stall_lists", "on": false])
            #expect(await synced(source, server))
            #expect(source.cache.facts("default/a") != nil)
        }
    }

    /// A watch cache answering resourceVersion=0 in one piece, ignoring limit: taken whole.
    @Test func unpagedAnswerToAPagedListIsTakenWhole() async throws {
        let server = try FakeAPIServer()
        server.control(["op": "rv0_ignores_limit", "on": true])
        for i in 0..<5 { server.control(["op": "put_pod", "pod": pod("p\(i)", uid: "u-\(i)", branch: false)]) }
        try await withSource(server, pageSize: 2) { source in
            #expect(await synced(source, server))
            #expect(source.cache.count == 5)
            #expect(server.lists() == 1)
        }
    }

    @Test func onlyTheGivenCAIsTrusted() async throws {
        let server = try FakeAPIServer()
        server.writeKubeconfig(caFile: "other-ca.crt")
        let conn = try KubeConnection.kubeconfig(path: server.kubeconfigPath)
        let transport = try HTTPClientTransport(connection: conn, logger: quiet)
        let client = KubeClient(transport: transport, token: conn.token, logger: quiet)
        // A TLS failure, told apart from a network one: the CA needs fixing.
        await #expect { try await client.call(KubeRequest(path: "/api/v1/pods")) } throws: { e in
            guard case KubeError.tls(let m) = e else { return false }
            return m.lowercased().contains("certificate") || m.contains("handshake") || m.contains("SSL")
        }
        await transport.shutdown()
        #expect(server.requests() == 0)
    }
}
