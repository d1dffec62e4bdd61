import Logging

/// Where the plugin goes and what the conflist says.
public struct PluginInstallSettings: Sendable, Hashable {
    /// The `aws-cni` binary to install (by default the one next to ipamd's executable).
    public var pluginSource: String
    public var binDir: String
    public var confDir: String
    public var conflist: ConflistSettings

    public init(pluginSource: String, binDir: String = "/opt/cni/bin", confDir: String = "/etc/cni/net.d", conflist: ConflistSettings) {
        self.pluginSource = pluginSource; self.binDir = binDir; self.confDir = confDir; self.conflist = conflist
    }
}

public struct PluginInstallReport: Sendable, Equatable {
    public var binaryPath: String
    public var binaryReplaced: Bool
    public var conflistPath: String
    public var conflistReplaced: Bool
}

/// Installs the plugin binary, then the conflist (the runtime's "network ready" signal), each
/// atomically. The binary first: a conflist must never name a plugin that is not there yet.
public struct PluginInstaller {
    let logger: Logger

    public init(logger: Logger) { self.logger = logger }

    public func install(_ s: PluginInstallSettings) throws(FileError) -> PluginInstallReport {
        let binaryPath = "\(s.binDir)/aws-cni"
        let binaryReplaced = try AtomicFile.replace(binaryPath, withCopyOf: s.pluginSource, mode: 0o755)
        let conflistPath = "\(s.confDir)/\(ConflistSettings.fileName)"
        let conflistReplaced = try AtomicFile.replace(conflistPath, with: Array(Conflist.render(s.conflist).utf8), mode: 0o644)
        logger.info("plugin installed", metadata: [
            "binary": "\(binaryPath)", "binary_replaced": "\(binaryReplaced)",
            "conflist": "\(conflistPath)", "conflist_replaced": "\(conflistReplaced)",
        ])
        return PluginInstallReport(binaryPath: binaryPath, binaryReplaced: binaryReplaced,
                                   conflistPath: conflistPath, conflistReplaced: conflistReplaced)
    }
}
