import NetModel

/// Where an HTTP endpoint listens: `host:port` (an empty host is every address, as in the
/// reference's `:61678`) or `unix:/path`.
public enum BindAddress: Sendable, Hashable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case unix(path: String)

    public init?(_ text: String) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard path.hasPrefix("/"), path.utf8.count < 108 else { return nil }
            self = .unix(path: path)
            return
        }
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard host.isEmpty || IPAddress(host) != nil || host == "localhost" else { return nil }
        self = .tcp(host: host, port: port)
    }

    public var description: String {
        switch self {
        case .unix(let p): "unix:\(p)"
        case .tcp(let h, let p): h.contains(":") ? "[\(h)]:\(p)" : "\(h):\(p)"
        }
    }
}

/// The introspection and metrics endpoints (nil: disabled), and the reference's settings that
/// `/v1/ipamd-env-settings` reports.
public struct ServerSettings: Sendable, Hashable {
    /// INTROSPECTION_BIND_ADDRESS; nil when DISABLE_INTROSPECTION=true. The debug Unix socket is
    /// served either way (root only, for `ipamd pods` and `ipamd explain`).
    public var introspection: BindAddress? = .tcp(host: "127.0.0.1", port: 61679)
    /// METRICS_BIND_ADDRESS; nil when DISABLE_METRICS=true.
    public var metrics: BindAddress? = .tcp(host: "", port: 61678)
    /// Reported as the reference reports them; this build manages no ENIs on unschedulable nodes
    /// and discovers no subnets, so they only echo the setting.
    public var manageENIsOnNonSchedulable = false
    public var subnetDiscovery = true
    /// AWS_VPC_CNI_NODE_PORT_SUPPORT and AWS_EXTERNAL_SERVICE_CIDRS, echoed for
    /// `/v1/networkutils-env-settings` (regular-pod rules are not built yet).
    public var nodePortSupport = true
    public var externalServiceCIDRs: [IPPrefix] = []

    public init() {}

    static func read(_ r: inout EnvReader) -> ServerSettings {
        var s = ServerSettings()
        let accepted = "host:port (an empty host is every address, e.g. :61678), or unix:/absolute/path"
        let introspection = r.read("INTROSPECTION_BIND_ADDRESS", default: s.introspection!, accepted: accepted) { BindAddress($0) }
        s.introspection = r.bool("DISABLE_INTROSPECTION", default: false) ? nil : introspection
        let metrics = r.read("METRICS_BIND_ADDRESS", default: s.metrics!, accepted: accepted) { BindAddress($0) }
        s.metrics = r.bool("DISABLE_METRICS", default: false) ? nil : metrics
        if let i = s.introspection, i == s.metrics {
            r.fail("METRICS_BIND_ADDRESS", "\(i) is INTROSPECTION_BIND_ADDRESS too; accepted values: another address, or DISABLE_METRICS=true")
        }
        s.manageENIsOnNonSchedulable = r.bool("AWS_MANAGE_ENIS_NON_SCHEDULABLE", default: false)
        s.subnetDiscovery = r.bool("ENABLE_SUBNET_DISCOVERY", default: true)
        s.nodePortSupport = r.bool("AWS_VPC_CNI_NODE_PORT_SUPPORT", default: true)
        s.externalServiceCIDRs = r.ipv4CIDRs("AWS_EXTERNAL_SERVICE_CIDRS")
        return s
    }
}
