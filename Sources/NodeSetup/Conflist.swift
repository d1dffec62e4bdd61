import EnforcingMode
import FoundationEssentials

/// What ipamd writes as `10-aws.conflist`: our plugin, chained with `portmap` like the reference.
public struct ConflistSettings: Sendable, Hashable {
    public static let fileName = "10-aws.conflist"
    /// The newest version containerd 1.6/1.7 and the Debian plugins accept.
    public static let cniVersion = "1.0.0"

    public var vethPrefix: String
    public var mtu: UInt32
    public var enforcingMode: PodSGEnforcingMode
    public var pluginLogFile: String
    public var pluginLogLevel: String
    public var ipamdSocket: String

    public init(vethPrefix: String = Naming.defaultVethPrefix, mtu: UInt32 = 9001, enforcingMode: PodSGEnforcingMode = .strict,
                pluginLogFile: String = "/var/log/aws-routed-eni/plugin.log", pluginLogLevel: String = "Debug",
                ipamdSocket: String = "/var/run/aws-node/ipamd.sock") {
        self.vethPrefix = vethPrefix; self.mtu = mtu; self.enforcingMode = enforcingMode
        self.pluginLogFile = pluginLogFile; self.pluginLogLevel = pluginLogLevel; self.ipamdSocket = ipamdSocket
    }
}

public enum Conflist {
    struct File: Encodable {
        var cniVersion: String
        var name: String
        var plugins: [Plugin]
    }

    struct Plugin: Encodable {
        var name: String?
        var type: String
        var vethPrefix: String?
        var mtu: String?
        var podSGEnforcingMode: String?
        var pluginLogFile: String?
        var pluginLogLevel: String?
        var ipamdSocket: String?
        var capabilities: [String: Bool]?
        var snat: Bool?
    }

    /// Pretty JSON with sorted keys: stable bytes, so a restart with the same settings rewrites
    /// an identical file.
    public static func render(_ s: ConflistSettings) -> String {
        let file = File(cniVersion: ConflistSettings.cniVersion, name: "aws-cni", plugins: [
            Plugin(name: "aws-cni", type: "aws-cni", vethPrefix: s.vethPrefix, mtu: String(s.mtu),
                   podSGEnforcingMode: s.enforcingMode.rawValue, pluginLogFile: s.pluginLogFile,
                   pluginLogLevel: s.pluginLogLevel, ipamdSocket: s.ipamdSocket),
            // Host ports (hostPort in pod specs), SNATing hairpin traffic as the reference does.
            Plugin(type: "portmap", capabilities: ["portMappings": true], snat: true),
        ])
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = (try? enc.encode(file)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
