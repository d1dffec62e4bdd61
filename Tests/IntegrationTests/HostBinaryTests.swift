import Foundation
import Glibc
import SystemIO
import TestSupport
import Testing

/// The release binaries as processes, no VLAN needed: aws-cni is fully static, answers bad input
/// with CNI error JSON (never a crash), honours the verbs its cniVersion allows, logs JSON lines
/// and fails when its result cannot be written; ipamd validates its environment (every problem
/// at once), serves root-only sockets, replaces a stale one
/// and shuts down cleanly. Every child runs in a throwaway network namespace, never the host's,
/// and writes only under the test's work directory.
@Suite(.ownThread) struct HostBinaryTests {
    static let cniVersions = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]

    /// A throwaway namespace and work directory for aws-cni runs.
    final class Scratch {
        let ns: TestNamespace
        let work = tempDir()
        init() throws { ns = try TestNamespace.create("host") }
        func destroy() { ns.destroy(); try? FileManager.default.removeItem(atPath: work) }

        /// The shell test's GOOD configuration: ipamd never listens on its socket.
        func conf(version: String = "1.0.0", log: String? = nil) -> String {
            #"{"cniVersion":"\#(version)","name":"aws-cni","type":"aws-cni","podSGEnforcingMode":"strict","ipamdSocket":"\#(work)/none.sock","pluginLogFile":"\#(log ?? work + "/plugin.log")"}"#
        }

        func cni(_ env: [String: String], _ stdin: String) throws -> Completed {
            try Spawn.run([Binaries.awsCNI], env: env, stdin: Array(stdin.utf8), netns: ns.path)
        }
    }

    static let addEnv = ["CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/var/run/netns/x", "CNI_IFNAME": "eth0",
                         "CNI_PATH": "/opt/cni/bin"]

    // MARK: aws-cni

    /// Fully static: no program interpreter (dynamic loader) and no dynamic section, read from
    /// the ELF program headers. ipamd (dynamically linked) shows the parser sees both.
    @Test func awsCNIIsAStaticExecutable() throws {
        let cni = try ELF64Image(path: Binaries.awsCNI)
        #expect(cni.loadSegments > 0, "aws-cni: no PT_LOAD in \(cni.programHeaderTypes)")
        #expect(!cni.hasInterpreter, "aws-cni has a PT_INTERP program header: \(cni.programHeaderTypes)")
        #expect(!cni.hasDynamicSection, "aws-cni has a PT_DYNAMIC program header (shared libraries): \(cni.programHeaderTypes)")
        #expect(cni.type == ELF64Image.etExec, "aws-cni is ELF type \(cni.type), not a position-dependent executable")
        let ipamd = try ELF64Image(path: Binaries.ipamd)
        #expect(ipamd.hasInterpreter && ipamd.hasDynamicSection, "the parser finds no PT_INTERP/PT_DYNAMIC in the dynamic ipamd: \(ipamd.programHeaderTypes)")
    }

    struct BadInput: CustomTestStringConvertible, Sendable {
        var name: String
        var code: Int
        var needle: String
        var stdin: String?       // nil: the GOOD configuration, in `goodVersion`
        var goodVersion = "1.0.0"
        var env: [String: String]
        var answerVersion: String // the cniVersion the error JSON must carry
        var testDescription: String { name }
    }

    static let badInputs: [BadInput] = [
        BadInput(name: "malformed stdin", code: 6, needle: "decode", stdin: #"{"cniVersion":"#, env: addEnv, answerVersion: "1.1.0"),
        BadInput(name: "empty stdin", code: 6, needle: "stdin", stdin: "", env: addEnv, answerVersion: "1.1.0"),
        BadInput(name: "missing CNI_NETNS", code: 4, needle: "CNI_NETNS", stdin: nil,
                 env: ["CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_IFNAME": "eth0"], answerVersion: "1.0.0"),
        BadInput(name: "missing CNI_COMMAND", code: 4, needle: "CNI_COMMAND", stdin: nil, env: [:], answerVersion: "1.0.0"),
        BadInput(name: "unknown command", code: 4, needle: "FROB", stdin: nil, env: ["CNI_COMMAND": "FROB"], answerVersion: "1.0.0"),
        BadInput(name: "unsupported cniVersion", code: 1, needle: "0.2.0", stdin: #"{"cniVersion":"0.2.0","name":"x","type":"aws-cni"}"#,
                 env: addEnv, answerVersion: "1.1.0"),
        BadInput(name: "invalid mtu", code: 7, needle: "mtu", stdin: #"{"cniVersion":"1.0.0","name":"x","type":"aws-cni","mtu":"99999"}"#,
                 env: addEnv, answerVersion: "1.0.0"),
        BadInput(name: "invalid mode", code: 7, needle: "podSGEnforcingMode",
                 stdin: #"{"cniVersion":"1.0.0","name":"x","type":"aws-cni","podSGEnforcingMode":"loose"}"#, env: addEnv, answerVersion: "1.0.0"),
        BadInput(name: "ipamd down on ADD", code: 11, needle: "ipamd", stdin: nil, env: addEnv, answerVersion: "1.0.0"),
        // STATUS exists from 1.1.0 on: an older configuration gets code 1 (cniVersionGating below).
        BadInput(name: "ipamd down on STATUS", code: 50, needle: "ipamd", stdin: nil, goodVersion: "1.1.0", env: ["CNI_COMMAND": "STATUS"],
                 answerVersion: "1.1.0"),
    ]

    /// Bad input gets a CNI error on stdout (code, a message naming the problem, the request's
    /// cniVersion when readable), exit 1, and nothing crash-like on stderr.
    @Test(.enabled(if: isRoot, "needs root: runs aws-cni in a network namespace"), arguments: badInputs)
    func badInputGetsCNIError(_ c: BadInput) throws {
        let s = try Scratch()
        defer { s.destroy() }
        let r = try s.cni(c.env, c.stdin ?? s.conf(version: c.goodVersion))
        expectCNIError(r, code: c.code, needle: c.needle, version: c.answerVersion, c.name)
    }

    func expectCNIError(_ r: Completed, code: Int, needle: String, version: String, _ what: String,
                        sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.exitCode == 1 && r.signal == nil, "\(what): \(r)", sourceLocation: sourceLocation)
        guard let j = r.json else {
            Issue.record("\(what): stdout is not a JSON object: \(r)", sourceLocation: sourceLocation)
            return
        }
        #expect(j["code"] as? Int == code, "\(what): \(r.out)", sourceLocation: sourceLocation)
        let text = "\(j["msg"] as? String ?? "") \(j["details"] as? String ?? "")"
        #expect(text.contains(needle), "\(what): message does not name \(needle): \(r.out)", sourceLocation: sourceLocation)
        #expect(j["cniVersion"] as? String == version, "\(what): answered in another version: \(r.out)", sourceLocation: sourceLocation)
        let crash = ["fatal", "backtrace", "crash", "panic"].filter { r.err.lowercased().contains($0) }
        #expect(crash.isEmpty, "\(what): stderr looks like a crash: \(r.err)", sourceLocation: sourceLocation)
    }

    struct VerbGate: CustomTestStringConvertible, Sendable {
        var command: String
        var version: String
        var allowedFrom: String
        var testDescription: String { "\(command) in \(version)" }
    }

    /// CHECK exists from 0.4.0, STATUS and GC from 1.1.0: an older configuration's verb is
    /// refused with code 1 before anything else happens (ipamd is never asked).
    @Test(.enabled(if: isRoot, "needs root: runs aws-cni in a network namespace"), arguments: [
        VerbGate(command: "CHECK", version: "0.3.1", allowedFrom: "0.4.0"),
        VerbGate(command: "STATUS", version: "1.0.0", allowedFrom: "1.1.0"),
        VerbGate(command: "GC", version: "0.4.0", allowedFrom: "1.1.0"),
    ])
    func cniVersionGatesVerbs(_ g: VerbGate) throws {
        let s = try Scratch()
        defer { s.destroy() }
        var env = Self.addEnv
        env["CNI_COMMAND"] = g.command
        let r = try s.cni(env, s.conf(version: g.version))
        expectCNIError(r, code: 1, needle: "config version does not allow \(g.command)", version: g.version, g.testDescription)
        #expect(r.json?["details"] as? String == "cniVersion \(g.version); \(g.command) needs \(g.allowedFrom) or later", "\(r.out)")
        // The first version that has the verb gets past the gate (to ipamd, which is down).
        let allowed = try s.cni(env, s.conf(version: g.allowedFrom))
        #expect(allowed.exitCode != 0 && allowed.cniCode != 1, "\(g.command) in \(g.allowedFrom) is refused by the gate: \(allowed)")
    }

    /// pluginLogFile: a file gets one JSON object per line, each naming the container and the
    /// pod, and stderr stays empty; "stderr" puts the same lines on stderr. stdout carries only
    /// the CNI result.
    @Test(.enabled(if: isRoot, "needs root: runs aws-cni in a network namespace"))
    func pluginLogIsJSONLines() throws {
        let s = try Scratch()
        defer { s.destroy() }
        var env = Self.addEnv
        env["CNI_ARGS"] = "IgnoreUnknown=1;K8S_POD_NAMESPACE=team;K8S_POD_NAME=web-1"
        let r = try s.cni(env, s.conf())
        #expect(r.cniCode == 11, "stdout carries only the CNI result: \(r)")
        #expect(r.err.isEmpty, "nothing on stderr when pluginLogFile is a file: \(r.err)")
        let logText = (try? String(contentsOfFile: s.work + "/plugin.log", encoding: .utf8)) ?? ""
        let events = try #require(jsonLines(logText), "plugin.log has a line that is not a JSON object: \(logText)")
        #expect(!events.isEmpty, "plugin.log is empty")
        for e in events {
            #expect(e["cni.container_id"] as? String == "c1" && e["pod"] as? String == "team/web-1", "event without container and pod: \(e)")
        }

        let toStderr = try s.cni(Self.addEnv, s.conf(log: "stderr"))
        #expect(toStderr.cniCode == 11, "\(toStderr)")
        let lines = try #require(jsonLines(toStderr.err), "stderr has a line that is not a JSON object: \(toStderr.err)")
        #expect(!lines.isEmpty, "pluginLogFile \"stderr\": nothing on stderr")
        #expect(lines.allSatisfy { $0["cni.container_id"] as? String == "c1" }, "\(lines)")
    }

    /// VERSION answers in the version asked; with stdout on a full device the answer is lost,
    /// so the run must not exit 0.
    @Test(.enabled(if: isRoot, "needs root: runs aws-cni in a network namespace"))
    func versionAndUnwritableResult() throws {
        let s = try Scratch()
        defer { s.destroy() }
        let r = try s.cni(["CNI_COMMAND": "VERSION"], #"{"cniVersion":"0.4.0"}"#)
        #expect(r.exitCode == 0, "\(r)")
        let j = try #require(r.json, "VERSION: not JSON: \(r)")
        #expect(j["cniVersion"] as? String == "0.4.0")
        #expect(j["supportedVersions"] as? [String] == Self.cniVersions)
        #expect(Set(j.keys) == ["cniVersion", "supportedVersions"], "\(r.out)")

        let full = try Spawn.run([Binaries.awsCNI], env: ["CNI_COMMAND": "VERSION"], stdin: Array(#"{"cniVersion":"0.4.0"}"#.utf8),
                                 netns: s.ns.path, stdoutPath: "/dev/full")
        #expect(full.signal == nil && full.exitCode != nil && full.exitCode != 0, "result lost on /dev/full, yet: \(full)")
        #expect(full.err.contains("cannot write the result"), "stderr says why: \(full.err)")
    }

    // MARK: ipamd

    /// DEL of a pod nobody knows, with ipamd down and no netns: success, nothing on stdout.
    @Test(.enabled(if: isRoot, "needs root: runs aws-cni in a network namespace"))
    func delOfUnknownPodWithIpamdDown() throws {
        let s = try Scratch()
        defer { s.destroy() }
        let r = try s.cni(["CNI_COMMAND": "DEL", "CNI_CONTAINERID": "c1", "CNI_IFNAME": "eth0", "CNI_NETNS": ""], s.conf())
        #expect(r.exitCode == 0 && r.signal == nil, "\(r)")
        #expect(r.stdout.isEmpty, "DEL prints nothing: \(r.out)")
    }

    /// The node's ipamd environment (file pod-ENI source), everything under the node's work
    /// directory; the checkpoint apart from the sockets so the run directory is sockets only.
    func ipamdEnv(_ sim: SimNode) -> IpamdProcess {
        let ipamd = IpamdProcess(sim)
        ipamd.env["AWS_VPC_K8S_CNI_BACKING_STORE"] = sim.work + "/state/ipam.json"
        return ipamd
    }

    struct ConfigCase: CustomTestStringConvertible, Sendable {
        var name: String
        var env: [String: String]
        /// Each expected problem line (without the prefix) starts with one of these.
        var problems: [String]
        var testDescription: String { name }
    }

    /// Invalid configuration stops ipamd with exit 2 before it serves: one line per problem,
    /// each naming the variable and what is accepted, and nothing else printed.
    @Test(.enabled(if: isRoot, "needs root: runs ipamd in a network namespace"), arguments: [
        ConfigCase(name: "enforcing mode", env: ["POD_SECURITY_GROUP_ENFORCING_MODE": "loose"],
                   problems: [#"POD_SECURITY_GROUP_ENFORCING_MODE: invalid value "loose"; accepted values: strict, standard"#]),
        ConfigCase(name: "metadata endpoint not a URL", env: ["AWS_EC2_METADATA_SERVICE_ENDPOINT": "169.254.169.254"],
                   problems: [#"AWS_EC2_METADATA_SERVICE_ENDPOINT: "169.254.169.254" is not an http:// or https:// URL"#]),
        ConfigCase(name: "every problem at once",
                   env: ["AWS_ENDPOINT_URL_EC2": "ec2", "POD_SECURITY_GROUP_ENFORCING_MODE": "loose", "IPAMD_SOCKET": "run/ipamd.sock", "AWS_VPC_K8S_CNI_LOGLEVEL": "LOUD"],
                   problems: ["AWS_ENDPOINT_URL_EC2: \"ec2\" is not an http", "IPAMD_SOCKET: \"run/ipamd.sock\" is not an absolute path",
                              #"AWS_VPC_K8S_CNI_LOGLEVEL: invalid value "LOUD"; accepted values: DEBUG, INFO, WARN, ERROR"#,
                              "POD_SECURITY_GROUP_ENFORCING_MODE: invalid value \"loose\""]),
    ])
    func invalidEnvironmentStopsIpamd(_ c: ConfigCase) throws {
        let sim = try SimNode()
        defer { sim.destroy() }
        let ipamd = ipamdEnv(sim)
        let r = try Spawn.run([Binaries.ipamd], env: ipamd.env.merging(c.env) { _, b in b }, netns: sim.node.path)
        #expect(r.exitCode == 2 && r.signal == nil, "\(r)")
        let (problems, other) = ipamdConfigProblems(r.out + r.err)
        #expect(other.isEmpty, "printed more than its problems: \(other)")
        #expect(problems.count == c.problems.count, "one line per problem: \(problems)")
        for p in c.problems {
            #expect(problems.contains { $0.hasPrefix(p) }, "no problem line starting \(p) in \(problems)")
        }
        #expect(!FileManager.default.fileExists(atPath: ipamd.rpcSocket) && !FileManager.default.fileExists(atPath: ipamd.debugSocket),
                "a refused configuration must not serve")
        #expect(!FileManager.default.fileExists(atPath: ipamd.installedPlugin), "a refused configuration must not install the plugin")
    }

    /// VPC_CIDRS may be empty when SNAT happens outside the node: ipamd then starts.
    @Test(.enabled(if: isRoot, "needs root: runs ipamd in a network namespace"))
    func emptyVPCCIDRsWithExternalSNATStarts() throws {
        let sim = try SimNode()
        defer { sim.destroy() }
        let ipamd = ipamdEnv(sim)
        defer { ipamd.stop() }
        let ready = try ipamd.start(["VPC_CIDRS": "", "AWS_VPC_K8S_CNI_EXTERNALSNAT": "true"])
        #expect(ready, "ipamd did not start: \(ipamd.log.suffix(10))")
        #expect(!ipamd.log.contains { $0.contains("invalid configuration") }, "\(ipamd.log.suffix(10))")
    }

    /// A stale socket file (a crashed ipamd's) does not stop the next ipamd; both sockets are
    /// root-only, the debug socket answers health and an empty pod list, STATUS is ready while
    /// ipamd serves, and SIGTERM exits 0 with both sockets removed.
    @Test(.enabled(if: isRoot, "needs root: runs ipamd in a network namespace"))
    func servesRootOnlySocketsAndShutsDownCleanly() throws {
        let sim = try SimNode()
        defer { sim.destroy() }
        let ipamd = ipamdEnv(sim)
        defer { ipamd.stop(SIGKILL) }
        let run = sim.work + "/run"
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        try leaveStaleUnixSocket(at: ipamd.rpcSocket)
        #expect(fileMode(ipamd.rpcSocket)?.isSocket == true, "stale socket file exists before start")

        let ready = try ipamd.start()
        try #require(ready, "ipamd did not start over a stale socket: \(ipamd.log.suffix(10))")
        let health = try ipamd.get("/healthz")
        #expect(health.status == 200 && (health.json as? [String: String]) == ["status": "ok"], "healthz: \(health)")
        for (name, path) in [("RPC", ipamd.rpcSocket), ("debug", ipamd.debugSocket)] {
            let m = fileMode(path)
            #expect(m?.isSocket == true && m?.permissions == 0o600, "\(name) socket: \(String(describing: m))")
        }
        let pods = try ipamd.get("/v1/pods")
        #expect(pods.status == 200 && (pods.json as? [Any])?.isEmpty == true, "/v1/pods before any ADD: \(pods)")

        // The plugin and its conflist were installed under the work directory, pointing at our socket.
        #expect(FileManager.default.isExecutableFile(atPath: ipamd.installedPlugin), "plugin not installed in CNI_BIN_DIR")
        let conflist = try #require((try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: ipamd.conflist)))) as? [String: Any],
                                    "conflist not installed in CNI_CONF_DIR")
        let plugins = conflist["plugins"] as? [[String: Any]] ?? []
        #expect(plugins.contains { $0["type"] as? String == "aws-cni" && $0["ipamdSocket"] as? String == ipamd.rpcSocket }, "\(conflist)")

        let status = try Spawn.run([Binaries.awsCNI], env: ["CNI_COMMAND": "STATUS"],
                                   stdin: Array(#"{"cniVersion":"1.1.0","name":"aws-cni","type":"aws-cni","ipamdSocket":"\#(ipamd.rpcSocket)","pluginLogFile":"stderr"}"#.utf8),
                                   netns: sim.node.path)
        #expect(status.exitCode == 0 && status.stdout.isEmpty, "STATUS while ipamd serves: \(status)")

        let end = ipamd.stop()
        #expect(end?.exitCode == 0 && end?.signal == nil, "SIGTERM: \(String(describing: end))")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: run)) ?? ["<unreadable>"]
        #expect(left.isEmpty, "SIGTERM leaves in the run directory: \(left)")
    }
}
