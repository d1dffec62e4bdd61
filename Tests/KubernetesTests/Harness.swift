import Foundation
import IPAMDCore
import IPAMDKubernetes
import Kubernetes
import Logging
import NetModel
import Netlink
import Synchronization
import Testing

let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

struct FixedTrunk: TrunkLocator {
    var index: Int32?
    func trunkIndex() throws(NetlinkError) -> Int32? { index }
}

func tempDir() -> String {
    let d = NSTemporaryDirectory() + "k8s-test-" + UUID().uuidString.prefix(8)
    try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

/// Runs blocking work (a waiting lookup, an RPC) on its own thread, as ipamd's RPC server does,
/// so it never holds one of the few cooperative-pool threads the watch needs.
func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { c in Thread.detachNewThread { c.resume(returning: body()) } }
}

/// Waits for a condition, up to a deadline (no fixed sleeps).
func eventually(_ timeout: Duration = .seconds(15), _ what: () async -> Bool) async -> Bool {
    let end = ContinuousClock.now + timeout
    while ContinuousClock.now < end {
        if await what() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return await what()
}

let podENI = #"[{"eniId":"eni-0a1b2c3d4e5f60718","ifAddress":"0a:1b:2c:3d:4e:5f","privateIp":"10.0.40.12","vlanId":7,"subnetCidr":"10.0.32.0/19","associationID":"trunk-assoc-0123"}]"#

func podENI(vlan: Int, ip: String) -> String {
    #"[{"eniId":"eni-\#(vlan)","ifAddress":"0a:00:00:00:00:\#(String(format: "%02x", vlan))","privateIp":"\#(ip)","vlanId":\#(vlan),"subnetCidr":"10.0.32.0/19"}]"#
}

/// A pod object as the API server sends it (the fields ipamd reads, plus some it must ignore).
func pod(_ name: String, ns: String = "default", uid: String, node: String = "node-1", branch: Bool, annotation: String? = nil) -> [String: Any] {
    var meta: [String: Any] = ["name": name, "namespace": ns, "uid": uid, "labels": ["app": name]]
    if let a = annotation { meta["annotations"] = ["vpc.amazonaws.com/pod-eni": a, "other": "x"] }
    var limits: [String: Any] = ["cpu": "100m"]
    if branch { limits["vpc.amazonaws.com/pod-eni"] = "1" }
    return ["kind": "Pod", "apiVersion": "v1", "metadata": meta,
            "spec": ["nodeName": node, "containers": [["name": "app", "image": "nginx", "resources": ["limits": limits]]]],
            "status": ["phase": "Pending"]]
}

/// scripts/tests/fake-apiserver.py as a child process: HTTPS on an ephemeral loopback port with a
/// freshly generated CA; commands on its stdin. It exits when we close its stdin.
final class FakeAPIServer: @unchecked Sendable {
    // @unchecked: the pipes are used under `lock` only.
    let process = Process()
    let stdin = Pipe()
    let stdout = Pipe()
    let lock = NSLock()
    var buffer: [UInt8] = []
    let port: Int
    let dir: String

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/tests/fake-apiserver.py").path

    init() throws {
        dir = tempDir()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.script, "--dir", dir]
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        var p = 0
        let first = Self.readLine(stdout.fileHandleForReading, &buffer)
        if let obj = try? JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any] { p = obj["port"] as? Int ?? 0 }
        guard p > 0 else { throw KubeError.config("fake API server did not start: \(first)") }
        port = p
        try? "token-1".write(toFile: dir + "/token", atomically: true, encoding: .utf8)
        writeKubeconfig(caFile: "ca.crt")
    }

    deinit { close() }

    func close() {
        lock.lock(); defer { lock.unlock() }
        try? stdin.fileHandleForWriting.close()
    }

    static func readLine(_ h: FileHandle, _ buffer: inout [UInt8]) -> String {
        while true {
            if let nl = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<nl], as: UTF8.self)
                buffer.removeFirst(nl + 1)
                return line
            }
            let d = h.availableData
            if d.isEmpty { return "" }
            buffer += d
        }
    }

    @discardableResult
    func control(_ cmd: [String: Any]) -> [String: Any] {
        lock.lock(); defer { lock.unlock() }
        let data = try! JSONSerialization.data(withJSONObject: cmd)
        stdin.fileHandleForWriting.write(data + Data("\n".utf8))
        let line = Self.readLine(stdout.fileHandleForReading, &buffer)
        let obj = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? ["error": "no answer"]
        if let e = obj["error"] { Issue.record("fake API server: \(e) for \(cmd["op"] ?? "")") }
        return obj
    }

    func stats() -> [String: Any] { control(["op": "stats"]) }
    func requests() -> Int { stats()["requests"] as? Int ?? -1 }
    func lists() -> Int { stats()["lists"] as? Int ?? -1 }
    /// The resourceVersion and resourceVersionMatch each list asked for (nil: not given).
    func listVersions() -> (rvs: [String?], matches: [String?]) {
        let s = stats()
        func strings(_ v: Any?) -> [String?] { (v as? [Any] ?? []).map { $0 as? String } }
        return (strings(s["list_rvs"]), strings(s["list_matches"]))
    }

    var kubeconfigPath: String { dir + "/kubeconfig" }

    func writeKubeconfig(caFile: String, tokenLine: String = "tokenFile: token") {
        let yaml = """
        apiVersion: v1
        kind: Config
        current-context: test
        clusters:
        - name: fake
          cluster:
            server: https://127.0.0.1:\(port)
            certificate-authority: \(caFile)
        contexts:
        - name: other
          context: {cluster: nowhere, user: nobody}
        - name: test
          context:
            cluster: fake
            user: ipamd
        users:
        - name: ipamd
          user:
            \(tokenLine)
        """
        try! yaml.write(toFile: kubeconfigPath, atomically: true, encoding: .utf8)
    }

    /// Replaces the token file as kubelet does (a new file renamed over the old one).
    func rotateTokenFile(_ token: String) {
        try! token.write(toFile: dir + "/token.new", atomically: false, encoding: .utf8)
        rename(dir + "/token.new", dir + "/token")
    }
}

/// A source connected to `server` with quick retries; stopped (connections closed) after `body`.
func withSource<T>(_ server: FakeAPIServer, wait: Double = 10, podENI: Bool = false, trunkLabel: Bool = false, pageSize: Int = 500,
                   watchTimeout: ClosedRange<Int> = 300...600, idleLimit: Duration = .seconds(150), listTimeout: Duration = .seconds(60),
                   _ body: (KubernetesPodSource) async throws -> T) async throws -> T {
    var settings = KubernetesSettings(nodeName: "node-1")
    settings.waitTimeout = wait
    settings.enablePodENI = podENI
    settings.enableTrunkLabel = trunkLabel
    let conn = try KubeConnection.kubeconfig(path: server.kubeconfigPath)
    var options = PodWatcher.Options(nodeName: "node-1")
    options.backoff = Backoff(initial: .milliseconds(50), maximum: .milliseconds(300))
    options.pageSize = pageSize
    options.watchTimeout = watchTimeout
    options.idleLimit = idleLimit
    options.listTimeout = listTimeout
    let source = KubernetesPodSource(settings: settings, transport: try HTTPClientTransport(connection: conn, logger: quiet), token: conn.token, logger: quiet,
                                     watchOptions: options, retry: Backoff(initial: .milliseconds(50), maximum: .milliseconds(300)))
    source.start()
    do {
        let r = try await body(source)
        await source.stop()
        return r
    } catch {
        await source.stop()
        throw error
    }
}

/// Waits for the first list and an open watch.
func synced(_ source: KubernetesPodSource, _ server: FakeAPIServer) async -> Bool {
    await eventually { source.cache.isSynced && (server.stats()["open_watches"] as? Int ?? 0) > 0 }
}
