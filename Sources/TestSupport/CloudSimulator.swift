import Foundation
#if canImport(Testing)
// Only test builds have it; a release build of the package compiles this target without it.
import Testing
#endif

// The cloud test harness (scripts/tests/cloud-sim.py: moto's EC2 and STS, an IMDSv2 server and
// a container-credentials endpoint over one moto model, on loopback) driven from Swift tests.
// The contract is /tmp/spec/cloud-sim-interface.md; this file gives its commands typed methods.

/// One ENI attached to the simulated instance.
public struct SimENI: Sendable, Hashable {
    public var eniID: String
    public var mac: String
    public var ip: String
    public var deviceIndex: Int
    /// "interface" or "trunk"; nil where the harness does not say (create_eni's answer).
    public var interfaceType: String?
    /// Delegated /28 prefixes (the harness's state only).
    public var ipv4Prefixes: [String]
    /// Secondary addresses (the harness's state only).
    public var ipv4Addresses: [String]

    init?(_ obj: Any?) {
        guard let o = obj as? [String: Any], let id = o["eniId"] as? String, let mac = o["mac"] as? String,
              let ip = o["ip"] as? String, let index = o["deviceIndex"] as? Int else { return nil }
        eniID = id; self.mac = mac; self.ip = ip; deviceIndex = index; interfaceType = o["interfaceType"] as? String
        ipv4Prefixes = o["ipv4Prefixes"] as? [String] ?? []
        ipv4Addresses = o["ipv4Addresses"] as? [String] ?? []
    }
}

/// The harness's model: the ready line's fields plus every attached ENI and the VPC's CIDRs.
public struct SimState: Sendable {
    public var region: String
    public var availabilityZone: String
    public var instanceID: String
    public var vpcID: String
    public var vpcCIDR: String
    public var subnetID: String
    public var subnetCIDR: String
    public var primaryENI: SimENI
    public var role: String
    /// Empty in the ready line; filled by `state()`.
    public var enis: [SimENI]
    public var vpcCIDRs: [String]

    init?(_ o: [String: Any]) {
        guard let region = o["region"] as? String, let zone = o["availabilityZone"] as? String, let instance = o["instanceId"] as? String,
              let vpc = o["vpcId"] as? String, let vpcCIDR = o["vpcCidr"] as? String, let subnet = o["subnetId"] as? String,
              let subnetCIDR = o["subnetCidr"] as? String, let primary = SimENI(o["primaryEni"]), let role = o["role"] as? String
        else { return nil }
        self.region = region; availabilityZone = zone; instanceID = instance; vpcID = vpc; self.vpcCIDR = vpcCIDR
        subnetID = subnet; self.subnetCIDR = subnetCIDR; primaryENI = primary; self.role = role
        enis = (o["enis"] as? [Any] ?? []).compactMap { SimENI($0) }
        vpcCIDRs = o["vpcCidrs"] as? [String] ?? []
    }
}

/// Requests the harness served since start or the last `resetCounts()`.
public struct SimRequestCounts: Sendable {
    /// "PUT /latest/api/token", "GET /latest/meta-data/mac", ...
    public var imds: [String: Int]
    /// Per EC2/STS action: "DescribeNetworkInterfaces", "AssumeRoleWithWebIdentity", ...
    public var ec2: [String: Int]
    public var containerCredentials: Int

    public var tokenPUTs: Int { imds["PUT /latest/api/token"] ?? 0 }
    /// Every IMDS GET, whatever its path.
    public var imdsGETs: Int { imds.filter { $0.key.hasPrefix("GET ") }.values.reduce(0, +) }
}

/// An EC2/STS request as the harness received it.
public struct SimHTTPRequest: Sendable {
    public var method: String
    public var path: String
    public var headers: [String: String]
    public var body: String

    /// Header names are case-insensitive; the harness reports them as the server saw them.
    public func header(_ name: String) -> String? {
        headers.first { $0.key.lowercased() == name.lowercased() }?.value
    }
}

/// scripts/tests/cloud-sim.py as a child process; commands on its stdin, one JSON line each way.
/// It exits when we close its stdin (`stop()` or deinit).
public final class CloudSimulator: @unchecked Sendable {
    // @unchecked: the pipes and buffer are used under `lock` only; the rest is immutable.
    let process = Process()
    let stdin = Pipe()
    let stdout = Pipe()
    let lock = NSLock()
    var buffer: [UInt8] = []
    var stopped = false

    /// What the ready line said (ENI list empty: ask `state()`).
    public let initial: SimState
    public let ec2URL: String
    public let imdsURL: String
    public let containerCredentialsURL: String
    /// The token the container endpoint accepts until `containerToken(_:)` changes it.
    public static let defaultContainerToken = "pod-identity-token"

    public static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/tests/cloud-sim.py").path

    /// The interpreter that has moto: CLOUD_SIM_PYTHON (the VM's PATH is not the host's), else
    /// python3 on PATH.
    public static let python = ProcessInfo.processInfo.environment["CLOUD_SIM_PYTHON"] ?? "python3"

    public struct StartFailure: Error, CustomStringConvertible {
        public var output: String
        public var description: String { "cloud-sim.py did not start: \(output.isEmpty ? "no ready line" : output)" }
    }

    /// `netns`: serve on that network namespace's loopback (for an ipamd running there).
    /// `instanceType`: the node's (its ENI and address limits are moto's table's).
    public init(netns: String? = nil, region: String = "us-west-2", instanceType: String = "m5.large") throws {
        let args = [Self.python, Self.script, "--region", region, "--instance-type", instanceType]
        if let netns {
            process.executableURL = URL(fileURLWithPath: TestNamespace.ipPath)
            process.arguments = ["netns", "exec", netns] + args
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = args
        }
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        let first = FakeAPIServer.readLine(stdout.fileHandleForReading, &buffer)
        guard let obj = (try? JSONSerialization.jsonObject(with: Data(first.utf8))) as? [String: Any],
              let ec2 = obj["ec2"] as? String, let imds = obj["imds"] as? String, let creds = obj["containerCredentials"] as? String,
              let state = SimState(obj) else {
            try? stdin.fileHandleForWriting.close()
            process.terminate()
            throw StartFailure(output: first)
        }
        ec2URL = ec2; imdsURL = imds; containerCredentialsURL = creds; initial = state
    }

    /// The same, started on a thread of its own: the harness takes seconds to import moto, and a
    /// test waiting for it must not block a thread of Swift's small cooperative pool meanwhile
    /// (with many tests starting simulators at once, that stalls every other test's timers).
    public static func start(netns: String? = nil, region: String = "us-west-2") async throws -> CloudSimulator {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result { try CloudSimulator(netns: netns, region: region) })
            }
            thread.start()
        }
    }

    deinit { stop() }

    /// Closes its stdin (it exits on EOF) and makes sure it is gone.
    public func stop() {
        lock.lock(); defer { lock.unlock() }
        guard !stopped else { return }
        stopped = true
        try? stdin.fileHandleForWriting.close()
        // SIGKILL, not terminate(): the child inherits the spawning test thread's signal mask,
        // which blocks SIGTERM, and a later child may hold its stdin open (no EOF).
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// One command and its answer; a refused command is recorded as a test issue.
    @discardableResult
    public func control(_ cmd: [String: Any]) -> [String: Any] {
        lock.lock(); defer { lock.unlock() }
        guard !stopped, let data = try? JSONSerialization.data(withJSONObject: cmd) else { return ["ok": false, "error": "stopped"] }
        stdin.fileHandleForWriting.write(data + Data("\n".utf8))
        let line = FakeAPIServer.readLine(stdout.fileHandleForReading, &buffer)
        let obj = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? ["ok": false, "error": "no answer"]
        if obj["ok"] as? Bool != true {
            #if canImport(Testing)
            Issue.record("cloud-sim: \(obj["error"] ?? "failed") for \(cmd["cmd"] ?? "")")
            #endif
        }
        return obj
    }

    public func state() -> SimState? { SimState(control(["cmd": "state"])) }

    /// A new ENI in the subnet; attached at the next free device index when `attach`.
    @discardableResult
    public func createENI(type: String = "interface", attach: Bool = true) -> SimENI? {
        SimENI(control(["cmd": "create_eni", "type": type, "attach": attach]))
    }

    public func detachENI(_ eniID: String) { control(["cmd": "detach_eni", "eniId": eniID]) }

    public func addVPCCIDR(_ cidr: String) { control(["cmd": "add_vpc_cidr", "cidr": cidr]) }

    /// The next `count` IMDS requests (token PUTs included) answer `status` (0: unchanged) after
    /// `delay` seconds. `count` 0 clears.
    public func imdsFault(status: Int, count: Int, delay: Double = 0) {
        control(["cmd": "imds_fault", "status": status, "count": count, "delay": delay])
    }

    /// The next `count` EC2/STS requests answer an EC2 error document with `code` and `status`.
    public func ec2Fault(code: String, status: Int, count: Int) {
        control(["cmd": "ec2_fault", "code": code, "status": status, "count": count])
    }

    /// Every IMDS token issued so far is refused from now on (401).
    public func expireTokens() { control(["cmd": "expire_tokens"]) }

    public func requests() -> SimRequestCounts {
        let o = control(["cmd": "requests"])
        return SimRequestCounts(imds: o["imds"] as? [String: Int] ?? [:], ec2: o["ec2"] as? [String: Int] ?? [:],
                                containerCredentials: o["containerCredentials"] as? Int ?? 0)
    }

    public func resetCounts() { control(["cmd": "reset_counts"]) }

    public func lastEC2Request() -> SimHTTPRequest? {
        let o = control(["cmd": "last_ec2_request"])
        guard let method = o["method"] as? String, let path = o["path"] as? String else { return nil }
        return SimHTTPRequest(method: method, path: path, headers: o["headers"] as? [String: String] ?? [:], body: o["body"] as? String ?? "")
    }

    /// The container-credentials endpoint accepts only `Authorization: <token>` from now on.
    public func containerToken(_ token: String) { control(["cmd": "container_token", "token": token]) }
}
