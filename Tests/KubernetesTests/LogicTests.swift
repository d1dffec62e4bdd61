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
        #expect(c.lookup(req("a", uid: "1")) == .pending("the pod list from the API server has not arrived yet"))
        c.replaceAll([facts("a", uid: "1", annotation: podENI), facts("r", uid: "2", branch: false), facts("bad", uid: "3", annotation: "[]")])
        guard case .branch(let b) = c.lookup(req("a", uid: "1")) else { Issue.record("not branch"); return }
        #expect(b.vlanID == 7 && b.eniID == "eni-0a1b2c3d4e5f60718")
        #expect(c.lookup(req("r", uid: "2")) == .regular)
        guard case .invalid(let e) = c.lookup(req("bad", uid: "3")) else { Issue.record("not invalid"); return }
        #expect(e.field == "annotation")
        #expect(c.lookup(req("a", uid: "other")) == .uidMismatch(cached: "1", requested: "other"))
        // A runtime that passes no UID cannot be checked; no pod name: not a pod we know.
        #expect(c.lookup(req("a", uid: "")) == .branch(b))
        #expect(c.lookup(PodRequest(containerID: "ctr-1")) == .notFound)
    }

    @Test func mirrorPodMatchesTheStaticPodUID() {
        let c = PodCache(waitBound: 0, logger: quiet)
        c.replaceAll([facts("static-web", uid: "mirror-uid", branch: false, mirrorOf: "static-hash")])
        #expect(c.lookup(req("static-web", uid: "static-hash")) == .regular)
    }

    @Test func waitingLookupIsWokenByTheAnnotation() async {
        // A bound far above the test's run time: only the wake-up can make this answer .branch.
        let c = PodCache(waitBound: 60, logger: quiet)
        c.replaceAll([facts("late", uid: "1")])
        let late = PodRequest(podName: "late", podNamespace: "default", podUID: "1", containerID: "c")
        async let r = { await c.awaitDetails(for: late, until: .now + .seconds(60)) == .ready ? c.lookup(late) : .notFound }()
        #expect(await eventually { c.waiters == 1 })
        // A change to another pod wakes the lookup too: it re-evaluates and waits again.
        c.upsert(facts("other", uid: "2", branch: false))
        c.upsert(facts("late", uid: "1", annotation: podENI))
        guard case .branch(let b) = await r else { Issue.record("not woken with the annotation"); return }
        #expect(b.vlanID == 7)
    }

    /// An invalid annotation is answered at once (waiting will not fix what the controller wrote),
    /// and a corrected annotation is used by the next ADD.
    @Test func invalidAnnotationThenCorrectedOne() {
        let c = PodCache(waitBound: 60, logger: quiet)
        c.replaceAll([facts("p", uid: "1", annotation: #"[{"vlanId":0}]"#)])
        guard case .invalid = c.lookup(req("p", uid: "1")) else { Issue.record("not invalid"); return }
        c.upsert(facts("p", uid: "1", annotation: podENI))
        guard case .branch(let b) = c.lookup(req("p", uid: "1")) else { Issue.record("corrected annotation not used"); return }
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

    /// Status -1: a 200 stream whose connection drops after the body.
    static let drop = -1

    /// Out of answers: waits until cancelled (the script is over; the test then stops the loop).
    func next(_ r: KubeRequest) async -> (Int, String) {
        let a: (Int, String)? = lock.withLock {
            seen.append(r)
            return answers.isEmpty ? nil : answers.removeFirst()
        }
        if let a { return a }
        while !Task.isCancelled { try? await Task.sleep(for: .seconds(60)) }
        return (500, "{}")
    }
    var paths: [String] { lock.withLock { seen.map(\.path) } }
    func send(_ request: KubeRequest) async throws(KubeError) -> KubeResponse {
        let (s, b) = await next(request)
        return KubeResponse(status: s, body: Array(b.utf8))
    }
    func stream(_ request: KubeRequest, onBytes: ([UInt8]) throws(KubeError) -> Void) async throws(KubeError) -> KubeResponse {
        let (s, b) = await next(request)
        guard s == 200 || s == Self.drop else { return KubeResponse(status: s, body: Array(b.utf8)) }
        for ch in Array(b.utf8).chunked(7) { try onBytes(ch) }
        if s == Self.drop { throw .transport("connection dropped") }
        return KubeResponse(status: 200, body: [])
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
            (200, #"{"type":"ADDED","object":{"metadata":{"name":"c","namespace":"n","resourceVersion":"11"}}}"# + "\n" + #"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"15"}}}"# + "\n"),
            (200, #"{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}}"#),
            (200, #"{"metadata":{"resourceVersion":"20"},"items":[]}"#),
        ])
        let sink = RecordingSink()
        var options = PodWatcher.Options(nodeName: "node-1")
        options.pageSize = 1
        options.sleep = { _ in }
        let w = PodWatcher(client: KubeClient(transport: t, token: TokenSource(token: "tok"), logger: quiet), sink: sink, options: options, logger: quiet)
        let task = Task { await w.run() }
        #expect(await eventually { w.stats.lists == 2 })
        task.cancel()
        await task.value
        #expect(sink.log == ["list:a,b", "ADDED:c", "list:"])
        let paths = t.seen.map(\.path)
        // Short of five requests the indexing below would crash the whole run, not fail this test.
        try #require(paths.count >= 5)
        #expect(paths[0] == "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1&limit=1&resourceVersion=0")
        #expect(paths[1] == "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1&limit=1&continue=p2")
        #expect(paths[2].hasPrefix("/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1&watch=true&allowWatchBookmarks=true&resourceVersion=10&timeoutSeconds="))
        #expect(paths[3].contains("&resourceVersion=15&"))  // after the bookmark
        // The relist after 410: not older than the last version seen (the bookmark), unpaged.
        #expect(paths[4] == "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1&resourceVersion=15&resourceVersionMatch=NotOlderThan")
        #expect(t.seen.allSatisfy { $0.headers["Authorization"] == "Bearer tok" })
    }

    static let gone = #"{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}}"#
    static func list(_ rv: Int, _ names: [String] = [], continue c: String? = nil) -> String {
        let items = names.map { #"{"metadata":{"name":"\#($0)","namespace":"n"}}"# }.joined(separator: ",")
        return #"{"metadata":{"resourceVersion":"\#(rv)"\#(c.map { #","continue":"\#($0)""# } ?? "")},"items":[\#(items)]}"#
    }

    /// Runs a watcher over `t` with recorded (not waited) retry delays until `done` holds.
    func runScripted(_ t: ScriptedTransport, pageSize: Int = 500, backoff: Backoff = Backoff(), until done: @escaping (PodWatcher, [Duration]) -> Bool) async -> (RecordingSink, [Duration]) {
        let sink = RecordingSink()
        let sleeps = Mutex<[Duration]>([])
        var options = PodWatcher.Options(nodeName: "node-1")
        options.pageSize = pageSize
        options.backoff = backoff
        options.sleep = { d in sleeps.withLock { $0.append(d) } }
        let w = PodWatcher(client: KubeClient(transport: t, token: nil, logger: quiet), sink: sink, options: options, logger: quiet)
        let task = Task { await w.run() }
        #expect(await eventually { done(w, sleeps.withLock { $0 }) })
        task.cancel()
        await task.value
        return (sink, sleeps.withLock { $0 })
    }

    /// The continue token expired between pages: one unpaged list from scratch, then the watch
    /// from that list's resourceVersion.
    @Test func goneOnContinueListsAgainUnpaged() async {
        let t = ScriptedTransport([
            (200, Self.list(10, ["a"], continue: "p2")),
            (410, #"{"kind":"Status","code":410,"reason":"Expired","message":"The provided continue parameter is too old"}"#),
            (200, Self.list(12, ["a", "b", "c"])),
            (200, #"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"13"}}}"#),
        ])
        let (sink, _) = await runScripted(t, pageSize: 1) { w, _ in w.stats.resourceVersion == "13" }
        #expect(sink.log == ["list:a,b,c"])
        let p = t.paths
        let base = "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1"
        #expect(Array(p.prefix(3)) == [base + "&limit=1&resourceVersion=0", base + "&limit=1&continue=p2", base + "&resourceVersion=0"])
        #expect(p.count >= 4 && p[3].contains("&watch=true&") && p[3].contains("&resourceVersion=12&"))
    }

    /// 410s without progress in between back off more each time, though every list succeeds;
    /// a watch that delivered events starts the delays over. A 410 on the list itself moves the
    /// next list to a quorum read, once; relists ask for the last version seen, or newer.
    @Test func repeatedGoneBacksOffUntilProgress() async {
        let t = ScriptedTransport([
            (410, #"{"kind":"Status","code":410,"reason":"Expired","message":"too old"}"#),  // list
            (200, Self.list(10)), (200, Self.gone),
            (200, Self.list(11)), (200, Self.gone),
            (200, Self.list(12)), (200, #"{"type":"ADDED","object":{"metadata":{"name":"x","namespace":"n","resourceVersion":"13"}}}"# + "\n" + Self.gone),
            (200, Self.list(14)), (ScriptedTransport.drop, #"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"15"}}}"# + "\n"),
            (200, Self.gone),
        ])
        let b = Backoff(initial: .milliseconds(100), maximum: .seconds(1), jitter: 0)
        let (_, sleeps) = await runScripted(t, backoff: b) { _, s in s.count == 6 }
        // list 410; watch 410 twice with no progress; after events: from the start; after a
        // bookmark then a dropped connection: from the start; then a 410 without progress.
        #expect(sleeps == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(100), .milliseconds(100), .milliseconds(200)])
        let lists = t.paths.filter { !$0.contains("watch=true") }
        let base = "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1"
        let at = { (rv: Int) in base + "&resourceVersion=\(rv)&resourceVersionMatch=NotOlderThan" }
        #expect(Array(lists.prefix(5)) == [base + "&limit=500&resourceVersion=0", base + "&limit=500", at(10), at(11), at(13)])
    }

    /// The relist at the last version seen is refused: 410 Expired (compacted), or 504 Too large
    /// (a server whose cache is behind it). The next list is a quorum read; once one succeeded,
    /// relists ask for the version seen again.
    @Test func relistAtAnUnavailableVersionFallsBackToAQuorumRead() async {
        let expired = #"{"kind":"Status","code":410,"reason":"Expired","message":"The resourceVersion for the provided list is too old"}"#
        let tooLarge = #"{"kind":"Status","code":504,"reason":"Timeout","message":"Timeout: Too large resource version: 20, current: 19","details":{"causes":[{"reason":"ResourceVersionTooLarge","message":"Too large resource version"}]}}"#
        let t = ScriptedTransport([
            (200, Self.list(10, ["a"])),
            (200, #"{"type":"ADDED","object":{"metadata":{"name":"b","namespace":"n","resourceVersion":"11"}}}"# + "\n"
                + #"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"12"}}}"# + "\n" + Self.gone),
            (410, expired),
            (200, Self.list(20, ["a", "b"], continue: "p2")), (200, Self.list(20, ["c"])),
            (200, Self.gone),
            (504, tooLarge),
            (200, Self.list(21, ["a"])),
            (200, #"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"22"}}}"# + "\n" + Self.gone),
            (200, Self.list(23, ["a", "d"])),
        ])
        let (sink, sleeps) = await runScripted(t, pageSize: 2) { w, _ in w.stats.lists == 4 }
        #expect(sink.log == ["list:a", "ADDED:b", "list:a,b,c", "list:a", "list:a,d"])
        #expect(sleeps.count == 5)  // still backed off: 410, 410 on the list, 410, 504, 410
        let base = "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1"
        let at = { (rv: Int) in base + "&resourceVersion=\(rv)&resourceVersionMatch=NotOlderThan" }
        #expect(t.paths.filter { !$0.contains("watch=true") } == [
            base + "&limit=2&resourceVersion=0",
            at(12), base + "&limit=2", base + "&limit=2&continue=p2",
            at(20), base + "&limit=2",
            at(22),
        ])
    }

    @Test func signallerGivesUpAfterTooManyConflicts() async {
        let obj = #"{"metadata":{"name":"n","resourceVersion":"1"},"spec":{}}"#
        let conflict = #"{"kind":"Status","code":409,"reason":"Conflict","message":"modified"}"#
        let t = ScriptedTransport([(200, obj), (409, conflict), (200, obj), (409, conflict), (200, obj), (409, conflict)])
        let pauses = Mutex<[Duration]>([])
        let s = NodeSignaller(client: KubeClient(transport: t, token: nil, logger: quiet), nodeName: "n", logger: quiet, maxConflicts: 2,
                              sleep: { d in pauses.withLock { $0.append(d) } })
        await #expect { try await s.ensureCNINodeFeature() } throws: { ($0 as? KubeError)?.isConflict == true }
        #expect(t.seen.count == 6)
        #expect(pauses.withLock { $0.count } == 2 && pauses.withLock { $0.allSatisfy { $0 > .zero } })  // a pause before each re-read
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
        #expect { try KubeConnection.kubeconfig(path: dir + "/missing") } throws: { e in
            guard case KubeError.file(let what, let fe) = e else { return false }
            return what == "kubeconfig" && fe.errno == ENOENT && fe.path == dir + "/missing"
        }
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
    let base = ["TRUNK_INTERFACE": "eth1", "MY_NODE_NAME": "ip-10-0-0-1.ec2.internal", "VPC_CIDRS": "10.0.0.0/16"]

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
