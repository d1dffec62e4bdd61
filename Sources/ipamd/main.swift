import Datapath
import EnforcingMode
import Foundation
import IPAMDCore
import IPAMDKubernetes
import Logging
import Netlink
import NodeSetup

// Process edge: environment, logging bootstrap, signals, exit codes, and the start order:
// node setup, then the sockets, then the plugin install (the runtime's "network ready" signal).

let started = ContinuousClock.now
Daemon.blockTerminationSignals()

let config: IPAMDConfig
do {
    config = try IPAMDConfig.fromEnvironment(ProcessInfo.processInfo.environment)
} catch {
    // Every problem at once, one line each, so one restart is enough to fix them.
    let lines = error.problems.map { "ipamd: invalid configuration: \($0)\n" }.joined()
    FileHandle.standardError.write(Data(lines.utf8))
    exit(2)
}

if config.logFile != "stderr" && config.logFile != "stdout" {
    // Everything ipamd prints, crash messages included, goes to the log file.
    do {
        try AtomicFile.makeDirectories(AtomicFile.directory(of: config.logFile))
    } catch {
        FileHandle.standardError.write(Data("ipamd: cannot create the directory of AWS_VPC_K8S_CNI_LOG_FILE: \(error)\n".utf8))
        exit(2)
    }
    let fd = open(config.logFile, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
    guard fd >= 0, dup2(fd, 2) >= 0 else {
        FileHandle.standardError.write(Data("ipamd: cannot open AWS_VPC_K8S_CNI_LOG_FILE \(config.logFile): errno \(errno)\n".utf8))
        exit(2)
    }
    close(fd)
}

let level: Logger.Level = switch config.logLevel { case .debug: .debug; case .info: .info; case .warn: .warning; case .error: .error }
LoggingSystem.bootstrap { label in
    var h = config.logFile == "stdout" ? StreamLogHandler.standardOutput(label: label) : StreamLogHandler.standardError(label: label)
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

let reconciler: NodeReconciler?
do {
    let setup = NodeSetup(netlink: try LibNLClient(), nft: try LibNFTables(), sysctl: ProcSysctl(), logger: logger)
    let report = try setup.apply(config.node)
    reconciler = config.nodeReconcileInterval.map {
        NodeReconciler(setup: setup, settings: config.node, report: report, interval: $0, logger: logger)
    }
} catch {
    logger.critical("node setup failed; not serving", metadata: ["error": "\(error)"])
    exit(1)
}

// The pods served before a restart: who holds which VLAN and address (the ADD conflict check).
let registry = PodRegistry(store: FileCheckpoint(path: config.checkpointPath))
do {
    let restored = try registry.restore()
    // Reconcile with the node: a pod deleted while ipamd was down no longer has its VLAN link
    // tagged with its container.
    let owners = Dictionary(try LibNLClient().links().map { ($0.name, $0.alias) }, uniquingKeysWith: { a, _ in a })
    let dropped = try registry.prune { p in owners[Naming.vlanLinkName(vlanID: p.vlanID)] == p.containerID }
    logger.info("checkpoint", metadata: ["path": "\(config.checkpointPath)", "restored": "\(restored)", "gone": "\(dropped.map(\.key))"])
} catch {
    // An unreadable checkpoint must not take the node's pod networking down: serve without
    // it (the next write replaces it); only the conflict check is blind to the pods it held.
    logger.error("cannot use the checkpoint; starting without the pods it recorded", metadata: ["error": "\(error)"])
}

let daemon = Daemon(config: config, source: source, trunk: trunk, registry: registry, logger: logger)
do {
    try daemon.start()
} catch {
    logger.critical("cannot serve", metadata: ["error": "\(error)"])
    exit(1)
}

let pluginSource = config.pluginSource ?? {
    // The aws-cni shipped next to this executable (same image, same release).
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("aws-cni").path
}()
do {
    _ = try PluginInstaller(logger: logger).install(PluginInstallSettings(
        pluginSource: pluginSource, binDir: config.cniBinDir, confDir: config.cniConfDir, conflist: config.conflist))
} catch {
    logger.critical("cannot install the plugin; not ready", metadata: ["error": "\(error)"])
    daemon.stop()
    exit(1)
}
reconciler?.start()
let startup = ContinuousClock.now - started
logger.info("ipamd ready", metadata: ["startup_ms": "\(startup.components.seconds * 1000 + startup.components.attoseconds / 1_000_000_000_000_000)"])
let sig = Daemon.waitForTermination()
logger.info("shutting down", metadata: ["signal": "\(sig)"])
// Waiting AddNetworks are answered "shutting down" (CNI code 11) before the sockets drain.
source.shutdown()
reconciler?.stop()
daemon.stop()
kubernetes?.stopBlocking()
exit(0)
