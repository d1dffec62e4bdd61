import EnforcingMode
import IPAMDProtocol
import NetModel
import NodeSetup

/// One invalid or missing variable: its name and what is wrong, with the accepted values.
public struct ConfigProblem: Sendable, Hashable, CustomStringConvertible {
    public var variable: String
    public var message: String

    public init(_ variable: String, _ message: String) { self.variable = variable; self.message = message }

    public var description: String { "\(variable): \(message)" }
}

/// Everything wrong with the environment at once, so a user fixes it in one round, not one
/// restart per variable.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var problems: [ConfigProblem]

    public init(_ problems: [ConfigProblem]) { self.problems = problems }
    public init(_ variable: String, _ message: String) { problems = [ConfigProblem(variable, message)] }

    public var variables: [String] { problems.map(\.variable) }
    /// The first problem's variable and message (most errors have one).
    public var variable: String { problems.first?.variable ?? "" }
    public var message: String { problems.first?.message ?? "" }

    /// One line per problem.
    public var description: String { problems.map(\.description).joined(separator: "\n") }
}

/// Reads variables and collects every problem instead of stopping at the first; each reader
/// returns a usable value (the default) after recording a problem, so reading goes on.
struct EnvReader {
    let env: [String: String]
    private(set) var problems: [ConfigProblem] = []

    init(_ env: [String: String]) { self.env = env }

    /// The trimmed value; nil when unset or empty.
    func value(_ k: String) -> String? {
        guard let v = env[k]?.trimmingSpaces, !v.isEmpty else { return nil }
        return v
    }

    mutating func fail(_ k: String, _ message: String) { problems.append(ConfigProblem(k, message)) }

    /// `parse` the value when set; a value it refuses is a problem naming `accepted`.
    mutating func read<T>(_ k: String, default d: T, accepted: String, _ parse: (String) -> T?) -> T {
        guard let t = value(k) else { return d }
        guard let v = parse(t) else {
            fail(k, "invalid value \"\(t)\"; accepted values: \(accepted)")
            return d
        }
        return v
    }

    mutating func bool(_ k: String, default d: Bool) -> Bool {
        read(k, default: d, accepted: "true, false") { v in
            switch v.lowercased() {
            case "true", "1", "yes": true
            case "false", "0", "no": false
            default: nil
            }
        }
    }

    mutating func absolutePath(_ k: String) -> String? {
        guard let d = value(k) else { return nil }
        guard d.hasPrefix("/") else { fail(k, "\"\(d)\" is not an absolute path"); return nil }
        return d
    }

    mutating func ipv4CIDRs(_ k: String) -> [IPPrefix] {
        var out: [IPPrefix] = []
        for part in (value(k) ?? "").split(separator: ",") {
            let t = part.trimmingSpaces
            guard let p = IPPrefix(t), p.family == .ipv4 else {
                fail(k, "\"\(t)\" is not an IPv4 CIDR; accepted values: a comma-separated list like 10.0.0.0/16,100.64.0.0/16")
                return []
            }
            out.append(p.network)
        }
        return out
    }

    /// Throws every problem recorded so far.
    func finish() throws(ConfigError) {
        if !problems.isEmpty { throw ConfigError(problems) }
    }
}

/// ipamd's configuration, read once from the environment and validated in one place.
public struct IPAMDConfig: Sendable, Hashable {
    public enum PodENISourceKind: Sendable, Hashable {
        /// A JSON file of `{"pods": {"<ns>/<name>" or "<container id>": [<pod-eni element>]}}`.
        case file(path: String)
        /// The pod watch of this node (Config+Kubernetes.swift).
        case kubernetes(KubernetesSettings)
    }

    /// The trunk as configured: a link name or its MAC.
    public enum TrunkSpec: Sendable, Hashable, CustomStringConvertible {
        case name(String)
        case mac(MACAddress)

        public var description: String {
            switch self { case .name(let n): n; case .mac(let m): m.description }
        }
    }

    public enum LogLevel: String, Sendable, CaseIterable { case debug = "DEBUG", info = "INFO", warn = "WARN", error = "ERROR" }

    public var rpcSocket: String = "/var/run/aws-node/ipamd.sock"
    /// AWS_VPC_K8S_CNI_BACKING_STORE: the checkpoint of served pods.
    public var checkpointPath: String = "/var/run/aws-node/ipam.json"
    public var debugSocket: String = "/var/run/aws-node/ipamd-debug.sock"
    public var podENISource: PodENISourceKind
    /// TRUNK_INTERFACE; nil: discovered through EC2 (and possibly attached after start).
    public var trunk: TrunkSpec?
    /// VPC_CIDRS; empty: discovered from instance metadata (and re-read while running).
    public var vpcCIDRs: [IPPrefix]
    /// NODE_PRIMARY_INTERFACE was given (else: the link with the primary MAC when discovering,
    /// eth0 when not).
    public var primaryInterfaceGiven = false
    /// Instance metadata and the EC2 API (Config+Cloud.swift).
    public var cloud = CloudSettings()
    public var externalSNAT: Bool { node.externalSNAT }
    public var logLevel: LogLevel = .debug
    /// A file path, or "stderr"/"stdout".
    public var logFile: String = "/host/var/log/aws-routed-eni/ipamd.log"
    public var enablePodENI: Bool { node.enablePodENI }
    public var enforcingMode: PodSGEnforcingMode { node.enforcingMode }
    /// Node-wide setup (sysctls, SNAT table, node rules).
    public var node: NodeSettings
    /// How often node setup is checked and repaired when it drifted; nil: never after start.
    public var nodeReconcileInterval: Duration? = .seconds(60)
    /// Where the plugin and conflist go; `pluginSource` nil means the aws-cni next to ipamd.
    public var pluginSource: String?
    public var cniBinDir: String = "/opt/cni/bin"
    public var cniConfDir: String = "/etc/cni/net.d"
    /// SYSCTL_ROOT: where the kernel's parameters are written ("<root>/net/..."). The DaemonSet
    /// mounts the host's /proc/sys/net at /host/proc/sys/net: a container's own /proc/sys is
    /// read-only unless it is privileged, and with host networking the files are the node's.
    public var sysctlRoot: String = "/proc/sys"
    /// AWS_VPC_ENI_MTU: a trunk attached while ipamd runs is brought up with it.
    public var eniMTU: UInt32 = 9001
    public var conflist: ConflistSettings
    /// Introspection and metrics endpoints (Config+Servers.swift).
    public var servers = ServerSettings()
    /// The regular pods' warm pool (Config+Pool.swift).
    public var pool = PoolConfig()

    public init(podENISource: PodENISourceKind, trunk: TrunkSpec?, vpcCIDRs: [IPPrefix]) {
        self.podENISource = podENISource; self.trunk = trunk; self.vpcCIDRs = vpcCIDRs
        node = NodeSettings(vpcCIDRs: vpcCIDRs)
        conflist = ConflistSettings(ipamdSocket: rpcSocket)
    }

    public static func fromEnvironment(_ env: [String: String]) throws(ConfigError) -> IPAMDConfig {
        var r = EnvReader(env)
        let sourceText = r.value("POD_ENI_SOURCE") ?? "kubernetes"
        var source = PodENISourceKind.file(path: "")
        if sourceText.hasPrefix("file:"), sourceText.count > 5 {
            source = .file(path: String(sourceText.dropFirst(5)))
        } else if sourceText == "kubernetes" {
            source = .kubernetes(KubernetesSettings.read(&r))
        } else {
            r.fail("POD_ENI_SOURCE", "invalid value \"\(sourceText)\"; accepted values: kubernetes, file:<path>")
        }

        // Unset: the trunk is found through EC2 (the attached ENI of InterfaceType trunk).
        var trunk: TrunkSpec?
        if let trunkText = r.value("TRUNK_INTERFACE") {
            if let mac = MACAddress(trunkText) {
                trunk = .mac(mac)
            } else if trunkText.utf8.count <= 15, !trunkText.contains("/"), !trunkText.contains(" ") {
                trunk = .name(trunkText)
            } else {
                r.fail("TRUNK_INTERFACE", "\"\(trunkText)\" is neither a link name (at most 15 characters) nor a MAC address")
            }
        }

        var c = IPAMDConfig(podENISource: source, trunk: trunk, vpcCIDRs: r.ipv4CIDRs("VPC_CIDRS"))
        if let s = r.absolutePath("IPAMD_SOCKET") { c.rpcSocket = s }
        if let s = r.absolutePath("IPAMD_DEBUG_SOCKET") { c.debugSocket = s }
        if let s = r.absolutePath("AWS_VPC_K8S_CNI_BACKING_STORE") { c.checkpointPath = s }
        if let s = r.absolutePath("SYSCTL_ROOT") { c.sysctlRoot = s }
        c.logLevel = r.read("AWS_VPC_K8S_CNI_LOGLEVEL", default: .debug, accepted: "DEBUG, INFO, WARN, ERROR") { LogLevel(rawValue: $0.uppercased()) }
        c.logFile = r.read("AWS_VPC_K8S_CNI_LOG_FILE", default: c.logFile, accepted: "an absolute path, stderr, stdout") { f in
            f == "stderr" || f == "stdout" || f.hasPrefix("/") ? f : nil
        }
        c.readNodeSettings(&r)
        c.readPluginInstall(&r)
        c.cloud = CloudSettings.read(&r)
        c.servers = ServerSettings.read(&r)
        c.pool = PoolConfig.read(&r)
        if case .kubernetes(var k) = c.podENISource {
            k.enablePodENI = c.node.enablePodENI
            c.podENISource = .kubernetes(k)
        }
        try r.finish()
        return c
    }

    mutating func readNodeSettings(_ r: inout EnvReader) {
        var n = NodeSettings(vpcCIDRs: vpcCIDRs)
        n.enablePodENI = r.bool("ENABLE_POD_ENI", default: false)
        n.enforcingMode = r.read("POD_SECURITY_GROUP_ENFORCING_MODE", default: .strict, accepted: "strict, standard") { PodSGEnforcingMode(rawValue: $0) }
        if !r.bool("ENABLE_IPv4", default: true) {
            r.fail("ENABLE_IPv4", "false is not supported: this build serves IPv4 clusters only; accepted values: true")
        }
        if r.bool("ENABLE_IPv6", default: false) {
            r.fail("ENABLE_IPv6", "true is not supported: this build serves IPv4 clusters only; accepted values: false")
        }
        n.externalSNAT = r.bool("AWS_VPC_K8S_CNI_EXTERNALSNAT", default: false)
        n.excludedSNATCIDRs = r.ipv4CIDRs("AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS")
        n.portRandomization = r.read("AWS_VPC_K8S_CNI_RANDOMIZESNAT", default: .prng, accepted: "prng, hashrandom, none") { SNATPortRandomization(rawValue: $0) }
        n.connmark = r.read("AWS_VPC_K8S_CNI_CONNMARK", default: n.connmark,
                            accepted: "a non-zero 32-bit mark, decimal or 0x-hex (default 0x80)") { m in
            let parsed = m.lowercased().hasPrefix("0x") ? UInt32(m.dropFirst(2), radix: 16) : UInt32(m)
            return parsed == 0 ? nil : parsed
        }
        n.disableTCPEarlyDemux = r.bool("DISABLE_TCP_EARLY_DEMUX", default: false)
        let interval = r.read("NODE_RECONCILE_INTERVAL", default: 60,
                              accepted: "whole seconds from 0 (never) to 3600 (default 60)") { t in Int(t).flatMap { (0...3600).contains($0) ? $0 : nil } }
        nodeReconcileInterval = interval == 0 ? nil : .seconds(interval)
        n.vethPrefix = r.read("AWS_VPC_K8S_CNI_VETHPREFIX", default: n.vethPrefix,
                              accepted: "1 to 4 ASCII letters or digits, not eth, lo or vlan") { Naming.vethPrefixProblem($0) == nil ? $0 : nil }
        primaryInterfaceGiven = r.value("NODE_PRIMARY_INTERFACE") != nil
        n.primaryInterface = r.read("NODE_PRIMARY_INTERFACE", default: n.primaryInterface,
                                    accepted: "a link name of at most 15 characters") { i in
            i.utf8.count <= 15 && !i.contains("/") && !i.contains(" ") && !i.contains("\"") ? i : nil
        }
        n.primaryIP = r.read("NODE_PRIMARY_IP", default: nil,
                             accepted: "an IPv4 address (default: the primary interface's first)") { ip -> IPv4Address?? in
            guard let a = IPAddress(ip), case .v4(let v4) = a else { return nil }
            return .some(v4)
        }
        node = n
    }

    mutating func readPluginInstall(_ r: inout EnvReader) {
        if let d = r.absolutePath("CNI_BIN_DIR") { cniBinDir = d }
        if let d = r.absolutePath("CNI_CONF_DIR") { cniConfDir = d }
        if let s = r.absolutePath("CNI_PLUGIN_SOURCE") { pluginSource = s }
        func mtu(_ k: String, default d: UInt32) -> UInt32 {
            r.read(k, default: d, accepted: "an integer in 576...9001") { t in UInt32(t).flatMap { Naming.podMTURange.contains($0) ? $0 : nil } }
        }
        eniMTU = mtu("AWS_VPC_ENI_MTU", default: 9001)
        var c = ConflistSettings(vethPrefix: node.vethPrefix, mtu: mtu("POD_MTU", default: eniMTU),
                                 enforcingMode: node.enforcingMode, ipamdSocket: rpcSocket)
        c.pluginLogFile = r.read("AWS_VPC_K8S_PLUGIN_LOG_FILE", default: c.pluginLogFile,
                                 accepted: "an absolute path or stderr (stdout carries CNI results)") { f in f == "stderr" || f.hasPrefix("/") ? f : nil }
        c.pluginLogLevel = r.read("AWS_VPC_K8S_PLUGIN_LOG_LEVEL", default: c.pluginLogLevel,
                                  accepted: "Debug, Info, Warn, Error") { Naming.pluginLogLevels.contains($0.lowercased()) ? $0 : nil }
        conflist = c
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}
