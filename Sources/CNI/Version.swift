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
}
