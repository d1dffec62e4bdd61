import Foundation
import IPAMDCore
import IPAMDKubernetes
import Logging
import Netlink

// Process edge: environment, logging bootstrap, signals, exit codes.

Daemon.blockTerminationSignals()

let config: IPAMDConfig
do {
    config = try IPAMDConfig.fromEnvironment(ProcessInfo.processInfo.environment)
} catch {
    FileHandle.standardError.write(Data("ipamd: invalid configuration: \(error)\n".utf8))
    exit(2)
}

let level: Logger.Level = switch config.logLevel { case .debug: .debug; case .info: .info; case .warn: .warning; case .error: .error }
LoggingSystem.bootstrap { label in
    var h = StreamLogHandler.standardError(label: label)
    h.logLevel = level
    return h
}
let logger = Logger(label: "ipamd")

let source: any PodENISource
var kubernetes: KubernetesPodSource?
switch config.podENISource {
case .file(let path): source = StaticFileSource(path: path, logger: logger)
case .kubernetes(let settings):
    kubernetes = startKubernetesSource(settings, logger: logger)
    source = kubernetes!.cache
}

let trunk: NetlinkTrunkLocator
do {
    trunk = NetlinkTrunkLocator(client: try LibNLClient(), spec: config.trunk)
    if let idx = try trunk.trunkIndex() {
        logger.info("found trunk", metadata: ["trunk": "\(config.trunk)", "ifindex": "\(idx)"])
    } else {
        // The trunk may be attached after ipamd starts; requests look again.
        logger.warning("trunk not found yet", metadata: ["trunk": "\(config.trunk)"])
    }
} catch {
    logger.critical("cannot open netlink", metadata: ["error": "\(error)"])
    exit(1)
}

let daemon = Daemon(config: config, source: source, trunk: trunk, logger: logger)
do {
    try daemon.start()
} catch {
    logger.critical("cannot serve", metadata: ["error": "\(error)"])
    exit(1)
}
let sig = Daemon.waitForTermination()
logger.info("shutting down", metadata: ["signal": "\(sig)"])
daemon.stop()
kubernetes?.stopBlocking()
exit(0)
