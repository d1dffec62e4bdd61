import CNI
import EnforcingMode

/// The network configuration on stdin, as the runtime passes it (conflist entry + runtime keys).
public struct NetConf: Decodable, Sendable {
    public var cniVersion: String?
    public var name: String?
    public var type: String?
    public var vethPrefix: String?
    /// A string in the reference's conflist ("9001"); a number is accepted too.
    public var mtu: String?
    public var podSGEnforcingMode: String?
    public var pluginLogFile: String?
    public var pluginLogLevel: String?
    /// Ours: where ipamd listens (default /var/run/aws-node/ipamd.sock).
    public var ipamdSocket: String?
    public var prevResult: CNIResult?
    /// GC only: the attachments the runtime still has for this network.
    public var validAttachments: [Attachment]?

    public struct Attachment: Codable, Sendable, Hashable {
        public var containerID: String
        public var ifname: String

        public init(containerID: String, ifname: String) { self.containerID = containerID; self.ifname = ifname }
    }

    enum CodingKeys: String, CodingKey {
        case cniVersion, name, type, vethPrefix, mtu, podSGEnforcingMode, pluginLogFile, pluginLogLevel, ipamdSocket, prevResult
        case validAttachments = "cni.dev/valid-attachments"
    }

    public init(cniVersion: String? = nil) { self.cniVersion = cniVersion }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        cniVersion = try c.decodeIfPresent(String.self, forKey: .cniVersion)
        name = try c.decodeIfPresent(String.self, forKey: .name)
        type = try c.decodeIfPresent(String.self, forKey: .type)
        vethPrefix = try c.decodeIfPresent(String.self, forKey: .vethPrefix)
        if let s = try? c.decodeIfPresent(String.self, forKey: .mtu) {
            mtu = s
        } else {
            mtu = try c.decodeIfPresent(Int.self, forKey: .mtu).map(String.init)
        }
        podSGEnforcingMode = try c.decodeIfPresent(String.self, forKey: .podSGEnforcingMode)
        pluginLogFile = try c.decodeIfPresent(String.self, forKey: .pluginLogFile)
        pluginLogLevel = try c.decodeIfPresent(String.self, forKey: .pluginLogLevel)
        ipamdSocket = try c.decodeIfPresent(String.self, forKey: .ipamdSocket)
        prevResult = try c.decodeIfPresent(CNIResult.self, forKey: .prevResult)
        validAttachments = try c.decodeIfPresent([Attachment].self, forKey: .validAttachments)
    }
}

/// NetConf after validation: every value typed and in range.
public struct PluginConfig: Sendable, Hashable {
    public static let defaultSocket = "/var/run/aws-node/ipamd.sock"
    public static let defaultLogFile = "/var/log/aws-routed-eni/plugin.log"
    public static let mtuRange = Naming.podMTURange
    public static let logLevels = Naming.pluginLogLevels

    public var cniVersion: String
    public var networkName: String
    public var mode: PodSGEnforcingMode
    public var vethPrefix: String
    public var mtu: UInt32
    public var logFile: String
    public var logLevel: String
    public var ipamdSocket: String
    public var prevResult: CNIResult?
    public var validAttachments: [NetConf.Attachment]?

    /// Version problems are code 1; every other bad value is code 7 and names the key.
    public static func validate(_ c: NetConf) throws(CNIError) -> PluginConfig {
        guard let v = c.cniVersion, !v.isEmpty else { throw CNIError(.invalidConfig, "network configuration has no cniVersion") }
        try CNIVersion.check(v)

        let modeText = c.podSGEnforcingMode ?? PodSGEnforcingMode.strict.rawValue
        guard let mode = PodSGEnforcingMode(rawValue: modeText) else {
            throw CNIError(.invalidConfig, "invalid podSGEnforcingMode \"\(modeText)\"", details: "accepted values: strict, standard")
        }
        let prefix = c.vethPrefix ?? Naming.defaultVethPrefix
        if let problem = Naming.vethPrefixProblem(prefix) {
            throw CNIError(.invalidConfig, "invalid vethPrefix \"\(prefix)\"", details: problem)
        }
        let mtuText = c.mtu ?? "9001"
        guard let mtu = UInt32(mtuText), mtuRange.contains(mtu) else {
            throw CNIError(.invalidConfig, "invalid mtu \"\(mtuText)\"", details: "an integer in \(mtuRange.lowerBound)...\(mtuRange.upperBound)")
        }
        let level = (c.pluginLogLevel ?? "debug").lowercased()
        guard logLevels.contains(level) else {
            throw CNIError(.invalidConfig, "invalid pluginLogLevel \"\(c.pluginLogLevel ?? "")\"", details: "accepted values: Debug, Info, Warn, Error")
        }
        let logFile = c.pluginLogFile ?? defaultLogFile
        guard logFile != "stdout" else {
            throw CNIError(.invalidConfig, "invalid pluginLogFile \"stdout\"", details: "stdout carries the CNI result; use a file path or stderr")
        }
        let socket = c.ipamdSocket ?? defaultSocket
        guard socket.hasPrefix("/") else {
            throw CNIError(.invalidConfig, "invalid ipamdSocket \"\(socket)\"", details: "an absolute path")
        }
        return PluginConfig(cniVersion: v, networkName: c.name ?? "", mode: mode, vethPrefix: prefix, mtu: mtu,
                            logFile: logFile, logLevel: level, ipamdSocket: socket, prevResult: c.prevResult,
                            validAttachments: c.validAttachments)
    }
}
