import Foundation
@testable import IPAMDCore
import IPAMDKubernetes
import IPAMDProtocol
import Kubernetes
import Synchronization
import Testing

// The logic behind the protocols, without a server.

@Suite struct PodCacheTests {
    func facts(_ name: String, uid: String, branch: Bool = true, annotation: String? = nil, mirrorOf: String? = nil) -> PodFacts {
        PodFacts(namespace: "default", name: name, uid: uid, branch: branch, annotation: annotation, mirrorOf: mirrorOf)
    }
    func req(_ name: String, uid: String) -> PodRequest { PodRequest(podName: name, podNamespace: "default", podUID: uid, containerID: "c") }

    @Test func answersFromTheCache() throws {
        let c = PodCache(waitBound: 0, logger: quiet)
        #expect(c.lookup(req("a", uid: "1"), wait: true) == .pending("the pod list from the API server has not arrived yet"))
        c.replaceAll([facts("a", uid: "1", annotation: podENI), facts("r", uid: "2", branch: false), facts("bad", uid: "3", annotation: "[]")])
        guard case .branch(let b) = c.lookup(req("a", uid: "1"), wait: true) else { Issue.record("not branch"); return }
        #expect(b.vlanID == 7 && b.eniID == "eni-0a1b2c3d4e5f60718")
        #expect(c.lookup(req("r", uid: "2"), wait: true) == .regular)
        guard case .invalid(let e) = c.lookup(req("bad", uid: "3"), wait: true) else { Issue.record("not invalid"); return }
        #expect(e.field == "annotation")
        #expect(c.lookup(req("a", uid: "other"), wait: true) == .uidMismatch(cached: "1", requested: "other"))
        // A runtime that passes no UID cannot be checked; no pod name: not a pod we know.
        #expect(c.lookup(req("a", uid: ""), wait: false) != .uidMismatch(cached: "1", requested: ""))
        #expect(c.lookup(PodRequest(containerID: "ctr-1"), wait: true) == .notFound)
    }

    @Test func mirrorPodMatchesTheStaticPodUID() {
        let c = PodCache(waitBound: 0, logger: quiet)
        c.replaceAll([facts("static-web", uid: "mirror-uid", branch: false, mirrorOf: "static-hash")])
        #expect(c.lookup(req("static-web", uid: "static-hash"), wait: false) == .regular)
    }

    @Test func waitingLookupIsWokenByTheAnnotation() async {
        // A bound far above the test's run time: only the wake-up can make this answer .branch.
        let c = PodCache(waitBound: 60, logger: quiet)
        c.replaceAll([facts("late", uid: "1")])
        async let r = offPool { c.lookup(PodRequest(podName: "late", podNamespace: "default", podUID: "1", containerID: "c"), wait: true) }
        c.upsert(facts("late", uid: "1", branch: false))  // an unrelated change wakes, re-evaluates, waits again
        c.upsert(facts("late", uid: "1", annotation: podENI))
        guard case .branch(let b) = await r else { Issue.record("not woken with the annotation"); return }
        #expect(b.vlanID == 7)
    }

    @Test func deletionOfAnOldPodKeepsItsSuccessor() {
        let c = PodCache(waitBound: 0, logger: quiet)
        c.replaceAll([facts("web", uid: "new", annotation: podENI)])
        c.remove(facts("web", uid: "old"))
        #expect(c.facts("default/web")?.uid == "new")
        c.remove(facts("web", uid: "new"))
        #expect(c.facts("default/web") == nil)
    }

    @Test func annotationArrivalTimeSurvivesARelist() {
        let c = PodCache(waitBound: 0, logger: quiet)
        c.replaceAll([facts("a", uid: "1", annotation: podENI), facts("gone", uid: "9")])
        let first = c.podViews().first { $0.name == "a" }?.annotationArrivedAt
        #expect(first != nil)
        c.replaceAll([facts("a", uid: "1", annotation: podENI)])
        let views = c.podViews()
        #expect(views.count == 1 && views[0].annotationArrivedAt == first && views[0].state == .ready && views[0].vlanID == 7)
    }
}

@Suite struct PodFactsTests {
    func decodePod(_ json: String) throws -> Pod { try JSONDecoder().decode(Pod.self, from: Data(json.utf8)) }

    @Test func branchPodIsTheFirstContainersPodENILimit() throws {
        let branch = try decodePod(#"{"metadata":{"name":"a","namespace":"n","uid":"u","annotations":{"vpc.amazonaws.com/pod-eni":"[]","kubernetes.io/config.mirror":"h"}},"spec":{"containers":[{"name":"c","resources":{"limits":{"vpc.amazonaws.com/pod-eni":"1","memory":"1Gi"}}}]},"status":{"phase":"Running"}}"#)
        let f = try #require(PodFacts(pod: branch))
        #expect(f.branch && f.annotation == "[]" && f.mirrorOf == "h" && f.key == "n/a" && f.uid == "u")
        let requestsOnly = try decodePod(#"{"metadata":{"name":"a","namespace":"n"},"spec":{"containers":[{"resources":{"requests":{"vpc.amazonaws.com/pod-eni":"1"}}}]}}"#)
        #expect(PodFacts(pod: requestsOnly)?.branch == false)
        let second = try decodePod(#"{"metadata":{"name":"a","namespace":"n"},"spec":{"containers":[{"name":"x"},{"resources":{"limits":{"vpc.amazonaws.com/pod-eni":1}}}]}}"#)
        #expect(PodFacts(pod: second)?.branch == false)
        #expect(PodFacts(pod: try decodePod(#"{"metadata":{"name":"a"}}"#)) == nil)
    }
}

@Suite struct WireTests {
    @Test func linesAcrossChunkBoundaries() throws {
        var s = LineSplitter()
        #expect(try s.feed(Array(#"{"type":"ADDED","#.utf8)).isEmpty)
        let lines = try s.feed(Array(#""object":{"metadata":{"name":"a","namespace":"n","resourceVersion":"5"}}}"#.utf8) + [10, 10] + Array(#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}}"#.utf8) + [10])
        #expect(lines.count == 2)
        guard case .added(let p) = try WatchEvent<Pod>.decode(line: lines[0]) else { Issue.record("not ADDED"); return }
        #expect(p.metadata.resourceVersion == "5")
        guard case .bookmark(let rv) = try WatchEvent<Pod>.decode(line: lines[1]) else { Issue.record("not BOOKMARK"); return }
        #expect(rv == "9")
        let err = try WatchEvent<Pod>.decode(line: Array(#"{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old"}}"#.utf8))
        guard case .error(let st) = err else { Issue.record("not ERROR"); return }
        #expect(st.code == 410)
        #expect(throws: KubeError.self) { try WatchEvent<Pod>.decode(line: Array("{oops".utf8)) }
    }
}

/// Scripted answers, recording what was asked.
final class ScriptedTransport: KubeTransport, @unchecked Sendable {
    let lock = NSLock()
    var answers: [(Int, String)]
    var seen: [KubeRequest] = []
    init(_ answers: [(Int, String)]) { self.answers = answers }

    func next(_ r: KubeRequest) -> (Int, String) {
        lock.lock(); defer { lock.unlock() }
        seen.append(r)
        return answers.isEmpty ? (500, "{}") : answers.removeFirst()
    }
    func send(_ request: KubeRequest) async throws(KubeError) -> KubeResponse {
        let (s, b) = next(request)
        return KubeResponse(status: s, body: Array(b.utf8))
    }
    func stream(_ request: KubeRequest, onBytes: ([UInt8]) throws(KubeError) -> Void) async throws(KubeError) -> KubeResponse {
        let (s, b) = next(request)
        guard s == 200 else { return KubeResponse(status: s, body: Array(b.utf8)) }
        for ch in Array(b.utf8).chunked(7) { try onBytes(ch) }
        return KubeResponse(status: s, body: [])
    }
    func shutdown() async {}
}

extension Array {
    func chunked(_ n: Int) -> [[Element]] { stride(from: 0, to: count, by: n).map { Array(self[$0..<Swift.min($0 + n, count)]) } }
}

final class RecordingSink: PodEventSink, @unchecked Sendable {
    let lock = NSLock()
    var log: [String] = []
    func replaceAll(_ pods: [Pod]) { lock.lock(); log.append("list:" + pods.map { $0.metadata.name ?? "" }.joined(separator: ",")); lock.unlock() }
    func apply(_ type: WatchEventType, _ pod: Pod) { lock.lock(); log.append("\(type.rawValue):\(pod.metadata.name ?? "")"); lock.unlock() }
}

@Suite struct WatcherLogicTests {
    @Test func listThenWatchFromItsResourceVersionThenRelistOnGone() async throws {
        let t = ScriptedTransport([
            (200, #"{"metadata":{"resourceVersion":"10","continue":"p2"},"items":[{"metadata":{"name":"a","namespace":"n"}}]}"#),
            (200, #"{"metadata":{"resourceVersion":"10"},"items":[{"metadata":{"name":"b","namespace":"n"}}]}"#),
            (200, #"{"type":"ADDED","object":{"metadata":{"name":"c","namespace":"n","resourceVersion":"11"}}}"# + "\n" + #"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"15"}}}"#),
            (200, #"{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}}"#),
            (200, #"{"metadata":{"resourceVersion":"20"},"items":[]}"#),
        ])
        let sink = RecordingSink()
        var options = PodWatcher.Options(nodeName: "node-1")
        options.pageSize = 1
        let w = PodWatcher(client: KubeClient(transport: t, token: TokenSource(token: "tok"), logger: quiet), sink: sink, options: options, logger: quiet)
        let task = Task { await w.run() }
        #expect(await eventually { w.stats.lists == 2 })
        task.cancel()
        await task.value
        #expect(sink.log == ["list:a,b", "ADDED:c", "list:"])
        let paths = t.seen.map(\.path)
        #expect(paths[0] == "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1&limit=1")
        #expect(paths[1] == "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1&limit=1&continue=p2")
        #expect(paths[2].hasPrefix("/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1&watch=true&allowWatchBookmarks=true&resourceVersion=10&timeoutSeconds="))
        #expect(paths[3].contains("&resourceVersion=15&"))  // after the bookmark
        #expect(t.seen.allSatisfy { $0.headers["Authorization"] == "Bearer tok" })
    }

    @Test func signallerGivesUpAfterTooManyConflicts() async {
        let obj = #"{"metadata":{"name":"n","resourceVersion":"1"},"spec":{}}"#
        let conflict = #"{"kind":"Status","code":409,"reason":"Conflict","message":"modified"}"#
        let t = ScriptedTransport([(200, obj), (409, conflict), (200, obj), (409, conflict), (200, obj), (409, conflict)])
        let s = NodeSignaller(client: KubeClient(transport: t, token: nil, logger: quiet), nodeName: "n", logger: quiet, maxConflicts: 2)
        await #expect { try await s.ensureCNINodeFeature() } throws: { ($0 as? KubeError)?.isConflict == true }
        #expect(t.seen.count == 6)
        let body = String(decoding: t.seen[1].body ?? [], as: UTF8.self)
        #expect(body == #"{"metadata":{"resourceVersion":"1"},"spec":{"features":[{"name":"SecurityGroupsForPods"}]}}"#)
        #expect(t.seen[1].headers["Content-Type"] == "application/merge-patch+json" && t.seen[1].method == "PATCH")
    }
}

@Suite struct KubeConfigTests {
    @Test func kubeconfigYAML() throws {
        let dir = tempDir()
        try "CA PEM".write(toFile: dir + "/ca.pem", atomically: true, encoding: .utf8)
        try "tok-a\n".write(toFile: dir + "/tok", atomically: true, encoding: .utf8)
        let yaml = """
        apiVersion: v1
        kind: Config
        current-context: b
        preferences: {}
        clusters:
        - name: c1
          cluster:
            server: https://10.0.0.1:6443/
            certificate-authority: ca.pem
        - name: c2
          cluster:
            server: https://[fd00::1]:443
            certificate-authority-data: \(Data("DATA CA".utf8).base64EncodedString())
        contexts:
        - name: a
          context: {cluster: c1, user: u1}
        - name: b
          context: {cluster: c2, user: u2, namespace: kube-system}
        users:
        - name: u1
          user:
            tokenFile: tok
        - name: u2
          user:
            token: static-token
        """
        try yaml.write(toFile: dir + "/config", atomically: true, encoding: .utf8)
        let b = try KubeConnection.kubeconfig(path: dir + "/config")
        #expect(b.server == "https://[fd00::1]:443" && b.caPEM == Array("DATA CA".utf8) && b.token?.current() == "static-token")
        let a = try KubeConnection.kubeconfig(path: dir + "/config", context: "a")
        #expect(a.server == "https://10.0.0.1:6443" && a.caPEM == Array("CA PEM".utf8) && a.token?.current() == "tok-a")
        #expect(a.token?.path == dir + "/tok")
        // A rotated token file is seen at once.
        try "tok-b".write(toFile: dir + "/tok.new", atomically: true, encoding: .utf8)
        rename(dir + "/tok.new", dir + "/tok")
        #expect(a.token?.current() == "tok-b")
        #expect { try KubeConnection.kubeconfig(path: dir + "/config", context: "zz") } throws: { "\($0)".contains("context \"zz\" not found") }

        let exec = yaml.replacingOccurrences(of: "    token: static-token", with: "    exec: {command: aws, args: [eks, get-token]}")
        try exec.write(toFile: dir + "/exec", atomically: true, encoding: .utf8)
        #expect { try KubeConnection.kubeconfig(path: dir + "/exec") } throws: { "\($0)".contains("exec credential plugin") }
        #expect { try KubeConnection.kubeconfig(path: dir + "/missing") } throws: { "\($0)".contains("cannot read kubeconfig") }
    }

    @Test func inCluster() throws {
        let dir = tempDir()
        try "CA".write(toFile: dir + "/ca.crt", atomically: true, encoding: .utf8)
        try "sa-token".write(toFile: dir + "/token", atomically: true, encoding: .utf8)
        let c = try KubeConnection.inCluster(env: ["KUBERNETES_SERVICE_HOST": "fd00::10", "KUBERNETES_SERVICE_PORT": "443"], serviceAccountDir: dir)
        #expect(c.server == "https://[fd00::10]:443" && c.token?.current() == "sa-token" && c.caPEM == Array("CA".utf8))
        #expect { try KubeConnection.inCluster(env: [:], serviceAccountDir: dir) } throws: { "\($0)".contains("KUBERNETES_SERVICE_HOST") }
        #expect { try KubeConnection.inCluster(env: ["KUBERNETES_SERVICE_HOST": "h", "KUBERNETES_SERVICE_PORT": "1"], serviceAccountDir: dir + "/nope") } throws: { "\($0)".contains("ca.crt") }
    }
}

@Suite struct KubernetesSettingsTests {
    let base = ["TRUNK_INTERFACE": "eth1", "MY_NODE_NAME": "ip-10-0-0-1.ec2.internal"]

    @Test func defaultsAndValues() throws {
        let c = try IPAMDConfig.fromEnvironment(base)
        guard case .kubernetes(let k) = c.podENISource else { Issue.record("kubernetes is not the default"); return }
        #expect(k.nodeName == "ip-10-0-0-1.ec2.internal" && k.waitTimeout == 10 && !k.enablePodENI && !k.enableTrunkLabel && k.kubeconfig == nil)
        #expect(k.serviceAccountDir == "/var/run/secrets/kubernetes.io/serviceaccount")
        var env = base
        env["POD_ENI_WAIT_TIMEOUT"] = "500ms"; env["ENABLE_POD_ENI"] = "true"; env["ENABLE_TRUNK_LABEL"] = "true"; env["KUBECONFIG"] = "/etc/kube/config"
        guard case .kubernetes(let k2) = try IPAMDConfig.fromEnvironment(env).podENISource else { return }
        #expect(k2.waitTimeout == 0.5 && k2.enablePodENI && k2.enableTrunkLabel && k2.kubeconfig == "/etc/kube/config")
        env["POD_ENI_WAIT_TIMEOUT"] = "2.5s"
        guard case .kubernetes(let k3) = try IPAMDConfig.fromEnvironment(env).podENISource else { return }
        #expect(k3.waitTimeout == 2.5)
    }

    @Test(arguments: [
        ("MY_NODE_NAME", ""), ("MY_NODE_NAME", "Not_A_Node"), ("POD_ENI_WAIT_TIMEOUT", "30"), ("POD_ENI_WAIT_TIMEOUT", "soon"),
        ("POD_ENI_WAIT_TIMEOUT", "-1"), ("ENABLE_POD_ENI", "maybe"), ("ENABLE_TRUNK_LABEL", "2"), ("KUBECONFIG", "/a:/b"),
        ("KUBERNETES_SERVICE_ACCOUNT_DIR", "relative"),
    ])
    func rejectsNamingVariable(_ key: String, _ value: String) {
        var env = base
        env[key] = value
        #expect { try IPAMDConfig.fromEnvironment(env) } throws: { ($0 as! ConfigError).variable == key }
    }
}

@Suite struct PodViewTests {
    @Test func mergesServedIntoTheSourcesPods() {
        var ready = PodView(namespace: "default", name: "db", podUID: "u1", branch: true, state: .ready)
        ready.annotationArrivedAt = "2026-01-01T00:00:00.000Z"
        let pending = PodView(namespace: "default", name: "late", podUID: "u2", branch: true, state: .pending)
        let served = ServedPod(namespace: "default", name: "db", podUID: "u1", containerID: "c1", ifName: "eth0", branch: true, vlanID: 7,
                               eniID: "eni-1", ipv4: "10.0.40.12", mac: "0a:00:00:00:00:07", servedAt: "2026-01-01T00:00:01.000Z")
        let ctr = ServedPod(namespace: "", name: "", podUID: "", containerID: "ctr", ifName: "eth0", branch: true, vlanID: 8,
                            eniID: "eni-2", ipv4: "10.0.40.13", mac: "0a:00:00:00:00:08", servedAt: "2026-01-01T00:00:02.000Z")
        let out = PodView.merge(source: [pending, ready], served: [served, ctr])
        #expect(out.map(\.name) == ["", "db", "late"])
        #expect(out[1].state == .served && out[1].servedAt == served.servedAt && out[1].annotationArrivedAt == ready.annotationArrivedAt && out[1].vlanID == 7)
        #expect(out[0].containerID == "ctr" && out[2].state == .pending)
    }
}
