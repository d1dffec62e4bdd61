import JSONText

/// CNI spec versions this plugin speaks; it answers in the version it was called with.
public enum CNIVersion {
    public static let supported = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
    public static let latest = "1.1.0"

    public static func check(_ v: String) throws(CNIError) {
        guard supported.contains(v) else {
            throw CNIError(.incompatibleVersion, "unsupported cniVersion \"\(v)\"",
                           details: "supported: \(supported.joined(separator: ", "))")
        }
    }

    /// The spec version that introduced a verb, for verbs newer than 0.3.0: CHECK came with 0.4.0,
    /// STATUS and GC with 1.1.0. A configuration of an older version must not get them.
    public static func introduced(_ command: CNIEnvironment.Command) -> String? {
        switch command {
        case .check: "0.4.0"
        case .status, .gc: "1.1.0"
        case .add, .del, .version: nil
        }
    }

    /// Throws the spec's error (code 1, as libcni's skel words it) when `version` predates `command`.
    public static func checkAllows(_ command: CNIEnvironment.Command, in version: String) throws(CNIError) {
        guard let first = introduced(command), isOlder(version, than: first) else { return }
        throw CNIError(.incompatibleVersion, "config version does not allow \(command.rawValue)",
                       details: "cniVersion \(version); \(command.rawValue) needs \(first) or later")
    }

    /// Numeric comparison of dotted versions ("0.3.1" < "0.4.0" < "1.1.0").
    public static func isOlder(_ a: String, than b: String) -> Bool {
        let x = a.split(separator: ".").map { Int($0) ?? 0 }, y = b.split(separator: ".").map { Int($0) ?? 0 }
        for i in 0..<max(x.count, y.count) {
            let l = i < x.count ? x[i] : 0, r = i < y.count ? y[i] : 0
            if l != r { return l < r }
        }
        return false
    }

    /// Results before 1.0.0 carry "version" on each IP.
    public static func ipsCarryVersion(_ v: String) -> Bool { v.hasPrefix("0.") }
}

/// Answer to VERSION.
public struct VersionInfo: Codable, Sendable {
    public var cniVersion: String
    public var supportedVersions: [String]

    public init(cniVersion: String) {
        self.cniVersion = cniVersion
        supportedVersions = CNIVersion.supported
    }

    /// What `CNIJSON.encode(self)` writes, without the encoder: VERSION is the runtime's probe of
    /// every plugin.
    public var json: String {
        var o = JSONObject()
        o.add("cniVersion", cniVersion)
        o.add("supportedVersions", strings: supportedVersions)
        return o.text
    }
}
