import Foundation
#if canImport(Testing)
// Only test builds have it; a release build of the package compiles this target without it.
import Testing
#endif

// The test Kubernetes API server (scripts/tests/fake-apiserver.py: the real wire format over
// HTTPS with a CA made at start) driven from Swift tests, and the pod objects it serves.

public let podENI = #"[{"eniId":"eni-0a1b2c3d4e5f60718","ifAddress":"0a:1b:2c:3d:4e:5f","privateIp":"10.0.40.12","vlanId":7,"subnetCidr":"10.0.32.0/19","associationID":"trunk-assoc-0123"}]"#

public func podENI(vlan: Int, ip: String) -> String {
    #"[{"eniId":"eni-\#(vlan)","ifAddress":"0a:00:00:00:00:\#(String(format: "%02x", vlan))","privateIp":"\#(ip)","vlanId":\#(vlan),"subnetCidr":"10.0.32.0/19"}]"#
}

/// A pod object as the API server sends it (the fields ipamd reads, plus some it must ignore).
public func pod(_ name: String, ns: String = "default", uid: String, node: String = "node-1", branch: Bool, annotation: String? = nil) -> [String: Any] {
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
public final class FakeAPIServer: @unchecked Sendable {
    // @unchecked: the pipes are used under `lock` only.
    let process = Process()
    let stdin = Pipe()
    let stdout = Pipe()
    let lock = NSLock()
    var buffer: [UInt8] = []
    public let port: Int
    public let dir: String

    public static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/tests/fake-apiserver.py").path

    /// `netns`: serve on that network namespace's loopback (for an ipamd running there).
    public init(netns: String? = nil) throws {
        dir = tempDir()
        if let netns {
            process.executableURL = URL(fileURLWithPath: TestNamespace.ipPath)
            process.arguments = ["netns", "exec", netns, "python3", Self.script, "--dir", dir]
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", Self.script, "--dir", dir]
        }
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        var p = 0
        let first = Self.readLine(stdout.fileHandleForReading, &buffer)
        if let obj = try? JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any] { p = obj["port"] as? Int ?? 0 }
        guard p > 0 else { throw StartFailure(output: first) }
        port = p
        try? "token-1".write(toFile: dir + "/token", atomically: true, encoding: .utf8)
        writeKubeconfig(caFile: "ca.crt")
    }

    deinit { close() }

    public struct StartFailure: Error { public var output: String }

    public func close() {
        lock.lock(); defer { lock.unlock() }
        try? stdin.fileHandleForWriting.close()
    }

    /// One line of a test server's stdout (its JSON answers), `buffer` keeping what came after
    /// it; "" when the server closed its end. Shared with CloudSimulator.
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
    public func control(_ cmd: [String: Any]) -> [String: Any] {
        lock.lock(); defer { lock.unlock() }
        let data = try! JSONSerialization.data(withJSONObject: cmd)
        stdin.fileHandleForWriting.write(data + Data("\n".utf8))
        let line = Self.readLine(stdout.fileHandleForReading, &buffer)
        let obj = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? ["error": "no answer"]
        if let e = obj["error"] {
            #if canImport(Testing)
            Issue.record("fake API server: \(e) for \(cmd["op"] ?? "")")
            #endif
        }
        return obj
    }

    public func stats() -> [String: Any] { control(["op": "stats"]) }
    public func requests() -> Int { stats()["requests"] as? Int ?? -1 }
    public func lists() -> Int { stats()["lists"] as? Int ?? -1 }
    /// The resourceVersion and resourceVersionMatch each list asked for (nil: not given).
    public func listVersions() -> (rvs: [String?], matches: [String?]) {
        let s = stats()
        func strings(_ v: Any?) -> [String?] { (v as? [Any] ?? []).map { $0 as? String } }
        return (strings(s["list_rvs"]), strings(s["list_matches"]))
    }

    public var kubeconfigPath: String { dir + "/kubeconfig" }

    public func writeKubeconfig(caFile: String, tokenLine: String = "tokenFile: token") {
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
    public func rotateTokenFile(_ token: String) {
        try! token.write(toFile: dir + "/token.new", atomically: false, encoding: .utf8)
        rename(dir + "/token.new", dir + "/token")
    }
}

