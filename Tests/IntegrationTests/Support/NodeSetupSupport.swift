import Foundation
import IPAMDCore
import Glibc
import NetModel
import Netlink
import Synchronization
import SystemIO
import TestSupport
import Testing

/// JSON documents as the project's one JSON value type (TestSupport adds the readers).
typealias NodeJSON = JSONValue

/// The expected outputs shared with the shell tests.
enum Expected {
    static let dir = Binaries.root + "/scripts/tests/expected"

    /// An expected nft ruleset: the list of `nftables` items (no metainfo, no handles).
    static func nft(_ name: String) throws -> [NodeJSON] { try NodeJSON.parse(file: dir + "/" + name).arrayValue }

    /// An expected file with `@WORK@` standing for the node's work directory.
    static func json(_ name: String, work: String) throws -> NodeJSON {
        let text = String(decoding: try FileIO.read(path: dir + "/" + name), as: UTF8.self).replacingOccurrences(of: "@WORK@", with: work)
        return try NodeJSON.parse(Array(text.utf8))
    }
}

/// A bad setting and the text of its accepted values that ipamd must print.
struct BadSetting: Sendable, CustomTestStringConvertible {
    var variable: String
    var value: String
    var accepted: String
    var testDescription: String { "\(variable)=\(value)" }

    static let all: [BadSetting] = [
        BadSetting(variable: "AWS_VPC_K8S_CNI_RANDOMIZESNAT", value: "always", accepted: "prng, hashrandom, none"),
        BadSetting(variable: "AWS_VPC_K8S_CNI_CONNMARK", value: "0", accepted: "non-zero 32-bit mark"),
        BadSetting(variable: "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS", value: "10.0.0.0/33", accepted: "comma-separated list"),
        BadSetting(variable: "AWS_VPC_K8S_CNI_EXTERNALSNAT", value: "maybe", accepted: "true, false"),
        BadSetting(variable: "DISABLE_TCP_EARLY_DEMUX", value: "yesplease", accepted: "true, false"),
        BadSetting(variable: "ENABLE_POD_ENI", value: "2", accepted: "true, false"),
        BadSetting(variable: "AWS_VPC_K8S_CNI_VETHPREFIX", value: "toolong", accepted: "1 to 4 ASCII letters or digits"),
        BadSetting(variable: "POD_MTU", value: "100", accepted: "576...9001"),
        BadSetting(variable: "AWS_VPC_ENI_MTU", value: "abc", accepted: "576...9001"),
        BadSetting(variable: "AWS_VPC_K8S_PLUGIN_LOG_LEVEL", value: "chatty", accepted: "Debug, Info, Warn, Error"),
        BadSetting(variable: "AWS_VPC_K8S_PLUGIN_LOG_FILE", value: "stdout", accepted: "absolute path or stderr"),
        BadSetting(variable: "NODE_PRIMARY_IP", value: "10.0.0", accepted: "IPv4 address"),
        BadSetting(variable: "CNI_BIN_DIR", value: "relative", accepted: "absolute path"),
        BadSetting(variable: "ENABLE_IPv6", value: "true", accepted: "IPv4 clusters only"),
        BadSetting(variable: "NODE_RECONCILE_INTERVAL", value: "soon", accepted: "whole seconds from 0"),
    ]
}

/// One simulated node for the node-setup tests: ipamd's environment as the shell test's BASE
/// (node defaults: pod ENI off, no mode set), the plugin installed from a copy in the work
/// directory, and readers for what node setup owns.
final class NodeSetupBench {
    static let invalidPrefix = "ipamd: invalid configuration: "
    let sim: SimNode
    let ipamd: IpamdProcess
    let base: [String: String]
    /// The plugin ipamd installs (CNI_PLUGIN_SOURCE): a copy of the release aws-cni.
    var pluginA: String { sim.work + "/aws-cni.a" }

    init(primaryInterfaces: [String] = ["eth0"]) throws {
        sim = try SimNode(primaryInterfaces: primaryInterfaces)
        ipamd = IpamdProcess(sim)
        var env = ipamd.env
        env["ENABLE_POD_ENI"] = nil
        env["POD_SECURITY_GROUP_ENFORCING_MODE"] = nil
        env["TRUNK_INTERFACE"] = "eth1"
        env["CNI_PLUGIN_SOURCE"] = sim.work + "/aws-cni.a"
        base = env
        try FileManager.default.copyItem(atPath: Binaries.awsCNI, toPath: sim.work + "/aws-cni.a")
    }

    func destroy() {
        ipamd.stop(SIGKILL)
        sim.destroy()
    }

    /// Starts ipamd with `base` plus `settings` and waits for "ipamd ready"; records an issue
    /// (with the log) when it does not get there.
    @discardableResult
    func start(_ settings: [String: String] = [:], sourceLocation: SourceLocation = #_sourceLocation) throws -> Bool {
        ipamd.env = base.merging(settings) { _, b in b }
        if try ipamd.start() { return true }
        Issue.record("ipamd did not become ready with \(settings): \(ipamd.log.suffix(10).joined(separator: "\n"))", sourceLocation: sourceLocation)
        return false
    }

    /// SIGTERM; expects a clean exit 0. Returns the log of that run.
    @discardableResult
    func stop(sourceLocation: SourceLocation = #_sourceLocation) -> [String] {
        let log = ipamd.log
        let end = ipamd.stop()
        #expect(end?.exitCode == 0, "ipamd's graceful stop: \(String(describing: end))", sourceLocation: sourceLocation)
        return log
    }

    /// Runs ipamd with `base` plus `settings` (nil removes a variable) expecting it not to become
    /// ready: how it ended and everything it printed.
    func runToExit(_ settings: [String: String?]) throws -> (exitCode: Int32?, signal: Int32?, log: [String]) {
        var env = base
        for (k, v) in settings { env[k] = v }
        ipamd.env = env
        let p = try RunningProcess([Binaries.ipamd], env: env, netns: sim.node.path)
        guard let end = p.waitForExit(timeout: 60) else {
            p.signal(SIGKILL)
            _ = p.waitForExit()
            return (nil, SIGKILL, p.output + ["(test: killed, did not exit within 60 s)"])
        }
        return (end.exitCode, end.signal, p.output)
    }

    // MARK: reading node state

    /// The node's IPv4 policy rules, through our Netlink module.
    func rules() throws -> [Rule] {
        try LibNLClient(namespacePath: sim.node.path).rules(family: .ipv4)
    }

    /// The node's whole nft ruleset (`nft -j list ruleset`), strictly parsed, without metainfo
    /// and handles: in this fresh namespace, only what ipamd made.
    func nftRuleset() throws -> [NodeJSON] {
        let r = try Spawn.run(["/usr/sbin/nft", "-j", "list", "ruleset"], env: ["PATH": "/usr/sbin:/usr/bin"], netns: sim.node.path)
        guard r.exitCode == 0 else { throw NodeBenchError("nft list ruleset: \(r)") }
        return try NodeJSON.parse(r.stdout)["nftables"].map(\.arrayValue).unwrap("nft output without nftables: \(r.out)")
            .filter { $0["metainfo"] == nil }.map { $0.dropping(key: "handle") }
    }

    /// Deletes a rule of the node (as an admin would), through our Netlink module.
    func deleteRule(_ r: Rule) throws {
        try LibNLClient(namespacePath: sim.node.path).deleteRule(r)
    }

    /// `nft` in the node (mutations a host firewall or an admin would make).
    func nft(_ args: String...) throws {
        let r = try Spawn.run(["/usr/sbin/nft"] + args, env: ["PATH": "/usr/sbin:/usr/bin"], netns: sim.node.path)
        guard r.exitCode == 0 else { throw NodeBenchError("nft \(args): \(r)") }
    }

    /// Writes a sysctl of the node (as `sysctl -w` would).
    func setSysctl(_ key: String, _ value: String) throws {
        try inNetns(sim.node.path) {
            let fd = try FileDescriptor.open(path: "/proc/sys/" + key.replacingOccurrences(of: ".", with: "/"), O_WRONLY)
            defer { fd.closeQuietly() }
            try fd.writeFully(Array(value.utf8))
        }
    }

    /// Waits for ipamd to report drift containing `what` after log line `from`, then for the
    /// repair's "node setup complete": the line that reported it, or nil (issue recorded).
    @discardableResult
    func waitForRepair(of what: String, from: Int, sourceLocation: SourceLocation = #_sourceLocation) -> String? {
        guard let p = ipamd.process, p.waitForLine(containing: "node setup drifted", from: from, timeout: 20) else {
            Issue.record("no drift reported within 20 s after \(what): \(ipamd.log.suffix(8).joined(separator: "\n"))", sourceLocation: sourceLocation)
            return nil
        }
        let log = p.output
        let i = log.indices.first { $0 >= from && log[$0].contains("node setup drifted") }!
        #expect(log[i].contains(what), "the drift report names \(what): \(log[i])", sourceLocation: sourceLocation)
        #expect(p.waitForLine(containing: "node setup complete", from: i + 1, timeout: 20),
                "the repair after \(what) completes: \(ipamd.log.suffix(8).joined(separator: "\n"))", sourceLocation: sourceLocation)
        return log[i]
    }

    /// A file's permission bits.
    static func mode(_ path: String) -> mode_t? {
        var st = stat()
        return stat(path, &st) == 0 ? st.st_mode & 0o7777 : nil
    }

    /// A directory's entries, hidden ones included, sorted.
    static func listing(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    static func isSocket(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFSOCK
    }
}

/// The node rules ipamd leaves, with the kernel's defaults.
enum NodeRuleSet {
    static func fwmark(_ mark: UInt32) -> Rule { Rule(priority: 1024, table: RouteTable.main, fwmark: mark, fwmask: mark) }
    static func local(at priority: UInt32) -> Rule { Rule(priority: priority, table: RouteTable.local) }
    static let main = Rule(priority: 32766, table: RouteTable.main)
    static let `default` = Rule(priority: 32767, table: 253)

    /// Exactly the rules a node has with `mark` (nil: external SNAT) and local lookup at `local`.
    static func expected(mark: UInt32?, local: UInt32) -> [Rule] {
        ([Self.local(at: local)] + (mark.map { [fwmark($0)] } ?? []) + [main, `default`]).sorted { $0.priority < $1.priority }
    }
}

/// Execs a binary over and over on its own thread (`CNI_COMMAND=VERSION`), recording every exec
/// that fails to start or does not answer with a version result.
final class ExecLoop: @unchecked Sendable {
    // @unchecked: the mutable state is inside the Mutex; `done` is a semaphore.
    private let state = Mutex((stop: false, count: 0, failures: [String]()))
    private let done = DispatchSemaphore(value: 0)
    let binary: String

    init(binary: String) {
        self.binary = binary
        Thread.detachNewThread { [self] in
            while !state.withLock({ $0.stop }) {
                var failure: String?
                do {
                    let r = try Spawn.run([binary], env: ["CNI_COMMAND": "VERSION"])
                    let versions = r.json?["supportedVersions"] as? [String] ?? []
                    if r.exitCode != 0 || !versions.contains("1.0.0") { failure = "\(r)" }
                } catch {
                    failure = "exec failed: \(error)"
                }
                state.withLock { s in
                    s.count += 1
                    if let failure { s.failures.append(failure) }
                }
            }
            done.signal()
        }
    }

    /// Execs finished so far.
    var count: Int { state.withLock { $0.count } }

    /// Stops the loop and waits for its last exec: the total, and every failure.
    func stop() -> (count: Int, failures: [String]) {
        state.withLock { $0.stop = true }
        done.wait()
        return state.withLock { ($0.count, $0.failures) }
    }
}

struct NodeBenchError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

extension Optional {
    fileprivate func unwrap(_ why: @autoclosure () -> String) throws -> Wrapped {
        guard let v = self else { throw NodeBenchError(why()) }
        return v
    }
}
