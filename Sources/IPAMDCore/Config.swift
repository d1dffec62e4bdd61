import IPAMDProtocol
import NetModel

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
    public var externalSNAT: Bool = false
    public var logLevel: LogLevel = .debug

    public init(podENISource: PodENISourceKind, trunk: TrunkSpec, vpcCIDRs: [IPPrefix]) {
        self.podENISource = podENISource; self.trunk = trunk; self.vpcCIDRs = vpcCIDRs
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

        var cidrs: [IPPrefix] = []
        for part in (value("VPC_CIDRS") ?? "").split(separator: ",") {
            let t = part.trimmingSpaces
            guard let p = IPPrefix(t), p.family == .ipv4 else {
                throw ConfigError("VPC_CIDRS", "\"\(t)\" is not an IPv4 CIDR; expected a comma-separated list like 10.0.0.0/16,100.64.0.0/16")
            }
            cidrs.append(p.network)
        }

        var c = IPAMDConfig(podENISource: source, trunk: trunk, vpcCIDRs: cidrs)
        if let s = value("IPAMD_SOCKET") {
            guard s.hasPrefix("/") else { throw ConfigError("IPAMD_SOCKET", "\"\(s)\" is not an absolute path") }
            c.rpcSocket = s
        }
        if let s = value("IPAMD_DEBUG_SOCKET") {
            guard s.hasPrefix("/") else { throw ConfigError("IPAMD_DEBUG_SOCKET", "\"\(s)\" is not an absolute path") }
            c.debugSocket = s
        }
        c.externalSNAT = try bool(env, "AWS_VPC_K8S_CNI_EXTERNALSNAT", default: false)
        if let l = value("AWS_VPC_K8S_CNI_LOGLEVEL") {
            guard let level = LogLevel(rawValue: l.uppercased()) else {
                throw ConfigError("AWS_VPC_K8S_CNI_LOGLEVEL", "invalid value \"\(l)\"; accepted values: DEBUG, INFO, WARN, ERROR")
            }
            c.logLevel = level
        }
        if let m = value("POD_SECURITY_GROUP_ENFORCING_MODE"), m != "strict" && m != "standard" {
            throw ConfigError("POD_SECURITY_GROUP_ENFORCING_MODE", "invalid value \"\(m)\"; accepted values: strict, standard")
        }
        return c
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
