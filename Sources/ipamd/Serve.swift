import ArgumentParser
import Datapath
import EnforcingMode
import Foundation
import IPAMDCloud
import IPAMDCore
import IPAMDKubernetes
import IPAMDMetrics
import IPAMDServer
import Logging
import Metrics
import Netlink
import NodeSetup
import ServiceLifecycle

/// `ipamd` (or `ipamd serve`): the node agent. Process edge: environment, logging bootstrap,
/// exit codes, and the start order: node setup, then the sockets, then the plugin install (the
/// runtime's "network ready" signal); then every server and loop runs as one service group until
/// SIGTERM or SIGINT.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the node agent (the default). Configured by environment variables only (see the README).")

    func run() async throws {
        await serve()
    }
}


func serve() async -> Never {
    let started = ContinuousClock.now

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

    // Metrics are recorded from the start (the Prometheus endpoint binds with the other servers).
    let prometheus = CatalogMetricsFactory()
    MetricsSystem.bootstrap(prometheus)
    let metrics = IPAMDMetrics.system
    metrics.buildInfo(version: BuildInfo.version, swiftVersion: BuildInfo.swiftVersion)

    let source: any PodENISource
    var kubernetes: KubernetesPodSource?
    switch config.podENISource {
    case .file(let path): source = StaticFileSource(path: path, logger: logger)
    case .kubernetes(let settings):
        // Started now: the first list arrives while discovery and node setup run.
        kubernetes = startKubernetesSource(settings, logger: logger)
        source = kubernetes!.cache
    }

    // What the overrides left out comes from instance metadata and EC2; with all of them given, no
    // cloud call is made (the lab, the demo).
    let cloud = config.needsDiscovery ? CloudConnections(settings: config.cloud, logger: logger) : nil
    let discovered = await discoverNode(config, cloud: cloud, logger: logger)
    let node = config.with(discovered)
    let facts = NodeFacts(vpcCIDRs: node.vpcCIDRs)
    let inventory = NodeInventory(enis: inventoryRecords(discovered, config: node))

    let trunk: NetlinkTrunkLocator
    do {
        trunk = NetlinkTrunkLocator(client: try LibNLClient(), spec: node.trunk)
    } catch {
        logger.critical("cannot open netlink", metadata: ["error": "\(error)"])
        exit(1)
    }
    var background: [ServiceGroupConfiguration.ServiceConfiguration] = []
    if let spec = node.trunk {
        if let idx = try? trunk.trunkIndex() {
            logger.info("found trunk", metadata: ["trunk": "\(spec)", "ifindex": "\(idx)"])
        } else {
            // Given by name or MAC but not there yet: requests look again.
            logger.warning("trunk not found yet", metadata: ["trunk": "\(spec)"])
        }
    } else if node.enablePodENI, let cloud {
        if let watch = await watchForTrunk(discovered, config: node, cloud: cloud, locator: trunk, inventory: { mac in
            inventory.record(ENIRecord(id: "", mac: mac, deviceNumber: 0, isPrimary: false, isTrunk: true))
        }, logger: logger) {
            background.append(.init(service: watch, successTerminationBehavior: .ignore))
        }
    }

    let setup: NodeSetup
    let reconciler: NodeReconciler
    do {
        setup = NodeSetup(netlink: try LibNLClient(), nft: try LibNFTables(), sysctl: ProcSysctl(root: config.sysctlRoot), logger: logger)
        let report = try setup.apply(node.node)
        reconciler = NodeReconciler(setup: setup, settings: node.node, report: report,
                                    interval: node.nodeReconcileInterval ?? .seconds(3600), logger: logger)
    } catch {
        logger.critical("node setup failed; not serving", metadata: ["error": "\(error)"])
        exit(1)
    }
    if node.nodeReconcileInterval != nil {
        background.append(.init(service: ClosureService {
            await cancelWhenGracefulShutdown {
                await reconciler.run { drift, repaired in
                    metrics.reconciled(fn: "nodeSetup")
                    if repaired { metrics.nodeSetupRepaired() } else if !drift.isEmpty { metrics.error(fn: "nodeSetup") }
                }
            }
        }))
    }
    // Discovered VPC CIDRs are read again while running; a new one joins the SNAT-exempt set.
    if let cloud, let md = discovered.metadata, config.vpcCIDRs.isEmpty {
        let refresher = VPCCIDRRefresher(metadata: cloud.imds, primaryMAC: md.primaryMAC, facts: facts,
                                         apply: { cidrs throws(NodeSetupError) in try reconciler.updateVPCCIDRs(cidrs) }, logger: logger)
        let every = node.cloud.vpcCIDRRefreshInterval
        background.append(.init(service: ClosureService { await cancelWhenGracefulShutdown { await refresher.run(every: every) } }))
    }

    // The pods served before a restart: reconciled with the node and the pod source before serving.
    let checkpoint = FileCheckpoint(path: node.checkpointPath)
    let registry = PodRegistry(store: checkpoint)
    var checkpointLost = false
    do {
        let restored = try registry.restore()
        logger.info("checkpoint loaded", metadata: ["path": "\(node.checkpointPath)", "pods": "\(restored)"])
    } catch {
        // Never fatal: the pods are rebuilt from the kernel's tagged links and the pod source.
        checkpointLost = true
        do {
            let aside = try checkpoint.moveAside()
            logger.error("checkpoint unusable; moved aside, rebuilding from the node", metadata: ["reason": "\(error)", "moved_to": "\(aside)"])
        } catch {
            logger.error("checkpoint unusable and cannot be moved aside; rebuilding from the node", metadata: ["reason": "\(error)"])
        }
    }
    do {
        let context = try LibNLDatapathProvider().hostContext()
        let report = try await StartupReconciler(registry: registry, source: source, context: context, vethPrefix: node.node.vethPrefix,
                                  mode: node.enforcingMode, logger: logger)
            .run(rebuild: checkpointLost, syncTimeout: .seconds(node.podENIWaitTimeout + 20))
        metrics.reconciled(fn: "checkpoint")
        metrics.leakedObjectsRemoved(report.removed.count)
    } catch {
        logger.error("cannot read the node to reconcile the checkpoint; serving the pods it recorded", metadata: ["error": "\(error)"])
    }

    // After the reconcile: the addresses of pods gone while ipamd was down are free again.
    let pool = await startPool(node, discovered: discovered, cloud: cloud, registry: registry, logger: logger)
    if let pool {
        background.append(.init(service: ClosureService { await cancelWhenGracefulShutdown { await pool.run() } }))
    }

    let daemon: Daemon
    do {
        var extra: [HTTPServer] = []
        if let address = node.servers.metrics {
            extra.append(try await HTTPServer.bind(address, name: "metrics", routes: MetricsRoutes(registry: prometheus.registry), logger: logger))
        }
        daemon = try await Daemon.bind(config: node, source: source, trunk: trunk, registry: registry, facts: facts,
                                       inventory: inventory, extraHTTP: extra, pool: pool, poolBoard: pool?.board, logger: logger)
    } catch {
        logger.critical("cannot serve", metadata: ["error": "\(error)"])
        exit(1)
    }

    let pluginSource = node.pluginSource ?? {
        // The aws-cni shipped next to this executable (same image, same release).
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("aws-cni").path
    }()
    do {
        _ = try PluginInstaller(logger: logger).install(PluginInstallSettings(
            pluginSource: pluginSource, binDir: config.cniBinDir, confDir: config.cniConfDir, conflist: config.conflist))
    } catch {
        logger.critical("cannot install the plugin; not ready", metadata: ["error": "\(error)"])
        daemon.close()
        exit(1)
    }
    // Ready once the group runs: SIGTERM is handled from then on (a signal before that would
    // kill ipamd outright), so nobody is told "ready" earlier.
    let ready = ClosureService {
        inventory.markReady()
        let startup = ContinuousClock.now - started
        metrics.startupDuration(startup)
        logger.info("ipamd ready", metadata: ["startup_ms": "\(startup.components.seconds * 1000 + startup.components.attoseconds / 1_000_000_000_000_000)"])
        try? await gracefulShutdown()
        inventory.markReady(false)
    }

    // Shut down in reverse order: not ready first, then the RPC socket (waiting AddNetworks
    // answered with code 11, in-flight requests finished), then the HTTP endpoints, then the
    // watch and the loops that feed it.
    var services = background
    if let kubernetes { services.insert(.init(service: kubernetes), at: 0) }
    services += daemon.http.map { .init(service: $0) }
    services.append(.init(service: daemon.rpc))
    services.append(.init(service: ready))
    var groupConfig = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
    // A connection that will not close must not hang the node's ipamd restart.
    groupConfig.maximumGracefulShutdownDuration = .seconds(10)
    do {
        try await ServiceGroup(configuration: groupConfig).run()
    } catch {
        logger.error("stopped on an error", metadata: ["error": "\(error)"])
        exit(1)
    }
    logger.info("ipamd stopped")
    exit(0)
}
