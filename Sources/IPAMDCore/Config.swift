import EnforcingMode
import IPAMDProtocol
import NetModel
import NodeSetup

public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var variable: String
    public var message: String

    public init(_ variable: String, _ message: String) { self.variable = variable; self.message = message }

    public var description: String { "\(variable): \(message)" }
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
    public var debugSocket: String = "/var/run/aws-node/ipamd-debug.sock"
    public var podENISource: PodENISourceKind
    public var trunk: TrunkSpec
    public var vpcCIDRs: [IPPrefix]
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
    public var conflist: ConflistSettings

    public init(podENISource: PodENISourceKind, trunk: TrunkSpec, vpcCIDRs: [IPPrefix]) {
        self.podENISource = podENISource; self.trunk = trunk; self.vpcCIDRs = vpcCIDRs
        node = NodeSettings(vpcCIDRs: vpcCIDRs)
        conflist = ConflistSettings(ipamdSocket: rpcSocket)
    }

    public static func fromEnvironment(_ env: [String: String]) throws(ConfigError) -> IPAMDConfig {
        func value(_ k: String) -> String? {
            guard let v = env[k]?.trimmingSpaces, !v.isEmpty else { return nil }
            return v
        }
        let sourceText = value("POD_ENI_SOURCE") ?? "kubernetes"
        let source: PodENISourceKind
        if sourceText.hasPrefix("file:"), sourceText.count > 5 {
            source = .file(path: String(sourceText.dropFirst(5)))
        } else if sourceText == "kubernetes" {
            source = .kubernetes(try KubernetesSettings.fromEnvironment(env))
        } else {
            throw ConfigError("POD_ENI_SOURCE", "invalid value \"\(sourceText)\"; accepted values: kubernetes, file:<path>")
        }

        guard let trunkText = value("TRUNK_INTERFACE") else {
            throw ConfigError("TRUNK_INTERFACE", "not set; give the trunk's link name (e.g. eth1) or MAC (e.g. 0a:1b:2c:3d:4e:5f)")
        }
        let trunk: TrunkSpec
        if let mac = MACAddress(trunkText) {
            trunk = .mac(mac)
        } else if trunkText.utf8.count <= 15, !trunkText.contains("/"), !trunkText.contains(" ") {
            trunk = .name(trunkText)
        } else {
            throw ConfigError("TRUNK_INTERFACE", "\"\(trunkText)\" is neither a link name (at most 15 characters) nor a MAC address")
        }

        let cidrs = try ipv4CIDRs(value("VPC_CIDRS"), "VPC_CIDRS")

        var c = IPAMDConfig(podENISource: source, trunk: trunk, vpcCIDRs: cidrs)
        if let s = value("IPAMD_SOCKET") {
            guard s.hasPrefix("/") else { throw ConfigError("IPAMD_SOCKET", "\"\(s)\" is not an absolute path") }
            c.rpcSocket = s
        }
        if let s = value("IPAMD_DEBUG_SOCKET") {
            guard s.hasPrefix("/") else { throw ConfigError("IPAMD_DEBUG_SOCKET", "\"\(s)\" is not an absolute path") }
            c.debugSocket = s
        }
        if let l = value("AWS_VPC_K8S_CNI_LOGLEVEL") {
            guard let level = LogLevel(rawValue: l.uppercased()) else {
                throw ConfigError("AWS_VPC_K8S_CNI_LOGLEVEL", "invalid value \"\(l)\"; accepted values: DEBUG, INFO, WARN, ERROR")
            }
            c.logLevel = level
        }
        if let f = value("AWS_VPC_K8S_CNI_LOG_FILE") {
            guard f == "stderr" || f == "stdout" || f.hasPrefix("/") else {
                throw ConfigError("AWS_VPC_K8S_CNI_LOG_FILE", "invalid value \"\(f)\"; accepted values: an absolute path, stderr, stdout")
            }
            c.logFile = f
        }
        try c.readNodeSettings(value, env)
        try c.readPluginInstall(value)
        if case .kubernetes(var k) = c.podENISource {
            k.enablePodENI = c.node.enablePodENI
            c.podENISource = .kubernetes(k)
        }
        return c
    }

    mutating func readNodeSettings(_ value: (String) -> String?, _ env: [String: String]) throws(ConfigError) {
        var n = NodeSettings(vpcCIDRs: vpcCIDRs)
        n.enablePodENI = try Self.bool(env, "ENABLE_POD_ENI", default: false)
        if let m = value("POD_SECURITY_GROUP_ENFORCING_MODE") {
            guard let mode = PodSGEnforcingMode(rawValue: m) else {
                throw ConfigError("POD_SECURITY_GROUP_ENFORCING_MODE", "invalid value \"\(m)\"; accepted values: strict, standard")
            }
            n.enforcingMode = mode
        }
        guard try Self.bool(env, "ENABLE_IPv4", default: true) else {
            throw ConfigError("ENABLE_IPv4", "false is not supported: this build serves IPv4 clusters only; accepted values: true")
        }
        guard try !Self.bool(env, "ENABLE_IPv6", default: false) else {
            throw ConfigError("ENABLE_IPv6", "true is not supported: this build serves IPv4 clusters only; accepted values: false")
        }
        n.externalSNAT = try Self.bool(env, "AWS_VPC_K8S_CNI_EXTERNALSNAT", default: false)
        n.excludedSNATCIDRs = try Self.ipv4CIDRs(value("AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS"), "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS")
        if let r = value("AWS_VPC_K8S_CNI_RANDOMIZESNAT") {
            guard let mode = SNATPortRandomization(rawValue: r) else {
                throw ConfigError("AWS_VPC_K8S_CNI_RANDOMIZESNAT", "invalid value \"\(r)\"; accepted values: prng, hashrandom, none")
            }
            n.portRandomization = mode
        }
        if let m = value("AWS_VPC_K8S_CNI_CONNMARK") {
            let parsed = m.lowercased().hasPrefix("0x") ? UInt32(m.dropFirst(2), radix: 16) : UInt32(m)
            guard let mark = parsed, mark != 0 else {
                throw ConfigError("AWS_VPC_K8S_CNI_CONNMARK", "invalid value \"\(m)\"; accepted values: a non-zero 32-bit mark, decimal or 0x-hex (default 0x80)")
            }
            n.connmark = mark
        }
        n.disableTCPEarlyDemux = try Self.bool(env, "DISABLE_TCP_EARLY_DEMUX", default: false)
        if let t = value("NODE_RECONCILE_INTERVAL") {
            guard let secs = Int(t), (0...3600).contains(secs) else {
                throw ConfigError("NODE_RECONCILE_INTERVAL", "invalid value \"\(t)\"; accepted values: whole seconds from 0 (never) to 3600 (default 60)")
            }
            nodeReconcileInterval = secs == 0 ? nil : .seconds(secs)
        }
        if let p = value("AWS_VPC_K8S_CNI_VETHPREFIX") {
            guard Naming.vethPrefixProblem(p) == nil else {
                throw ConfigError("AWS_VPC_K8S_CNI_VETHPREFIX", "invalid value \"\(p)\"; accepted values: 1 to 4 ASCII letters or digits, not eth, lo or vlan")
            }
            n.vethPrefix = p
        }
        if let i = value("NODE_PRIMARY_INTERFACE") {
            guard i.utf8.count <= 15, !i.contains("/"), !i.contains(" "), !i.contains("\"") else {
                throw ConfigError("NODE_PRIMARY_INTERFACE", "invalid value \"\(i)\"; accepted values: a link name of at most 15 characters")
            }
            n.primaryInterface = i
        }
        if let ip = value("NODE_PRIMARY_IP") {
            guard let a = IPAddress(ip), case .v4(let v4) = a else {
                throw ConfigError("NODE_PRIMARY_IP", "invalid value \"\(ip)\"; accepted values: an IPv4 address (default: the primary interface's first)")
            }
            n.primaryIP = v4
        }
        node = n
    }

    mutating func readPluginInstall(_ value: (String) -> String?) throws(ConfigError) {
        for (k, keyPath) in [("CNI_BIN_DIR", \IPAMDConfig.cniBinDir), ("CNI_CONF_DIR", \IPAMDConfig.cniConfDir)] {
            if let d = value(k) {
                guard d.hasPrefix("/") else { throw ConfigError(k, "\"\(d)\" is not an absolute path") }
                self[keyPath: keyPath] = d
            }
        }
        if let s = value("CNI_PLUGIN_SOURCE") {
            guard s.hasPrefix("/") else { throw ConfigError("CNI_PLUGIN_SOURCE", "\"\(s)\" is not an absolute path") }
            pluginSource = s
        }
        func mtu(_ k: String, default d: UInt32) throws(ConfigError) -> UInt32 {
            guard let t = value(k) else { return d }
            guard let m = UInt32(t), Naming.podMTURange.contains(m) else {
                throw ConfigError(k, "invalid value \"\(t)\"; accepted values: an integer in 576...9001")
            }
            return m
        }
        let eniMTU = try mtu("AWS_VPC_ENI_MTU", default: 9001)
        var c = ConflistSettings(vethPrefix: node.vethPrefix, mtu: try mtu("POD_MTU", default: eniMTU),
                                 enforcingMode: node.enforcingMode, ipamdSocket: rpcSocket)
        if let f = value("AWS_VPC_K8S_PLUGIN_LOG_FILE") {
            guard f == "stderr" || f.hasPrefix("/") else {
                throw ConfigError("AWS_VPC_K8S_PLUGIN_LOG_FILE", "invalid value \"\(f)\"; accepted values: an absolute path or stderr (stdout carries CNI results)")
            }
            c.pluginLogFile = f
        }
        if let l = value("AWS_VPC_K8S_PLUGIN_LOG_LEVEL") {
            guard Naming.pluginLogLevels.contains(l.lowercased()) else {
                throw ConfigError("AWS_VPC_K8S_PLUGIN_LOG_LEVEL", "invalid value \"\(l)\"; accepted values: Debug, Info, Warn, Error")
            }
            c.pluginLogLevel = l
        }
        conflist = c
    }

    static func ipv4CIDRs(_ text: String?, _ k: String) throws(ConfigError) -> [IPPrefix] {
        var out: [IPPrefix] = []
        for part in (text ?? "").split(separator: ",") {
            let t = part.trimmingSpaces
            guard let p = IPPrefix(t), p.family == .ipv4 else {
                throw ConfigError(k, "\"\(t)\" is not an IPv4 CIDR; accepted values: a comma-separated list like 10.0.0.0/16,100.64.0.0/16")
            }
            out.append(p.network)
        }
        return out
    }

    static func bool(_ env: [String: String], _ k: String, default d: Bool) throws(ConfigError) -> Bool {
        guard let v = env[k]?.trimmingSpaces, !v.isEmpty else { return d }
        switch v.lowercased() {
        case "true", "1", "yes": return true
        case "false", "0", "no": return false
        default: throw ConfigError(k, "invalid value \"\(v)\"; accepted values: true, false")
        }
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}
