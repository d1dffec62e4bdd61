import Foundation
import IPAMDCore
import IPAMDMetrics
import Kubernetes
import Logging
import ServiceLifecycle
import Synchronization

extension PodFacts {
    public static let podENIAnnotation = "vpc.amazonaws.com/pod-eni"
    public static let podENIResourcePrefix = "vpc.amazonaws.com/pod-eni"
    static let mirrorAnnotation = "kubernetes.io/config.mirror"

    /// nil for an object without namespace or name (nothing a CNI request could name).
    public init?(pod: Pod) {
        guard let ns = pod.metadata.namespace, let name = pod.metadata.name else { return nil }
        let limits = pod.spec?.containers?.first?.resources?.limits ?? [:]
        let annotations = pod.metadata.annotations ?? [:]
        self.init(namespace: ns, name: name, uid: pod.metadata.uid ?? "",
                  branch: limits.keys.contains { $0.hasPrefix(Self.podENIResourcePrefix) },
                  annotation: annotations[Self.podENIAnnotation], mirrorOf: annotations[Self.mirrorAnnotation])
    }
}

/// Feeds the watch into the pod cache.
public struct PodCacheSink: PodEventSink {
    let cache: PodCache
    let metrics: IPAMDMetrics

    public init(cache: PodCache, metrics: IPAMDMetrics = .system) { self.cache = cache; self.metrics = metrics }

    public func replaceAll(_ pods: [Pod]) {
        metrics.watchRelisted()
        cache.replaceAll(pods.compactMap(PodFacts.init(pod:)))
    }

    public func watchStarted() { metrics.watchRestarted() }

    public func apply(_ type: WatchEventType, _ pod: Pod) {
        guard let f = PodFacts(pod: pod) else { return }
        if type == .deleted { cache.remove(f) } else { cache.upsert(f) }
    }
}

/// The Kubernetes pod-ENI source: the pod watch of this node feeding a `PodCache` (which answers
/// AddNetwork), and the node signalling (CNINode feature, trunk label) retried in the background
/// until it succeeds. Nothing here runs on the ADD path.
public final class KubernetesPodSource: Sendable {
    public let cache: PodCache
    public let client: KubeClient
    public let watcher: PodWatcher
    let settings: KubernetesSettings
    let logger: Logger
    let retry: Backoff
    private let tasks = Mutex<[Task<Void, Never>]>([])
    private let signalled = Mutex<Set<String>>([])

    /// The connection the settings describe: the kubeconfig when KUBECONFIG is set, else in-cluster.
    public static func connection(for settings: KubernetesSettings, env: [String: String]) throws(KubeError) -> KubeConnection {
        if let k = settings.kubeconfig { return try KubeConnection.kubeconfig(path: k) }
        return try KubeConnection.inCluster(env: env, serviceAccountDir: settings.serviceAccountDir)
    }

    public init(settings: KubernetesSettings, transport: any KubeTransport, token: TokenSource?, logger: Logger,
                watchOptions: PodWatcher.Options? = nil, retry: Backoff = Backoff(initial: .seconds(1), maximum: .seconds(60))) {
        self.settings = settings
        self.logger = logger
        self.retry = retry
        cache = PodCache(waitBound: settings.waitTimeout, logger: logger)
        client = KubeClient(transport: transport, token: token, logger: logger)
        watcher = PodWatcher(client: client, sink: PodCacheSink(cache: cache),
                             options: watchOptions ?? PodWatcher.Options(nodeName: settings.nodeName), logger: logger)
    }

    public convenience init(settings: KubernetesSettings, connection: KubeConnection, logger: Logger) throws(KubeError) {
        self.init(settings: settings, transport: try HTTPClientTransport(connection: connection, logger: logger), token: connection.token, logger: logger)
    }

    /// Starts the watch and, when enabled, the node signalling.
    /// Once: a second call (ipamd starts the watch early, then runs it as a service) does nothing.
    public func start() {
        guard tasks.withLock({ $0.isEmpty }) else { return }
        let watcher = self.watcher
        var started = [Task.detached { await watcher.run() }]
        if settings.enablePodENI {
            // Independent: a cluster without the CNINode CRD (404 forever) must still get the label.
            started.append(Task.detached { [self] in await signalCNINode() })
            if settings.enableTrunkLabel {
                started.append(Task.detached { [self] in await signalTrunkLabel() })
            }
        }
        tasks.withLock { $0 += started }
    }

    /// What node signalling has completed: "cninode", "label".
    public var signalsDone: Set<String> { signalled.withLock { $0 } }

    var signaller: NodeSignaller { NodeSignaller(client: client, nodeName: settings.nodeName, logger: logger) }

    func signalCNINode() async {
        let s = signaller
        if await retrying("CNINode feature \(NodeSignaller.securityGroupsForPods)", { () throws(KubeError) in try await s.ensureCNINodeFeature() }) {
            signalled.withLock { _ = $0.insert("cninode") }
        }
    }

    func signalTrunkLabel() async {
        let s = signaller
        if await retrying("node label \(NodeSignaller.trunkLabel)", { () throws(KubeError) in try await s.ensureNodeLabel() }) {
            signalled.withLock { _ = $0.insert("label") }
        }
    }

    /// Retries until success (true) or cancellation (false): the CNINode appears only once the
    /// controller saw the node.
    func retrying(_ what: String, _ body: () async throws(KubeError) -> Bool) async -> Bool {
        var backoff = retry
        while !Task.isCancelled {
            do throws(KubeError) {
                let changed = try await body()
                logger.info("node signalling done", metadata: ["what": "\(what)", "changed": "\(changed)"])
                return true
            } catch {
                if Task.isCancelled { break }
                let d = backoff.next()
                let meta: Logger.Metadata = ["what": "\(what)", "error": "\(error)", "retry_in": "\(d)"]
                if error.isTLS {
                    logger.error("node signalling: TLS to the API server failed; check the cluster CA; retrying", metadata: meta)
                } else {
                    logger.warning("node signalling failed; retrying", metadata: meta)
                }
                try? await Task.sleep(for: d)
            }
        }
        return false
    }

    /// Cancels the watch and signalling, and closes the connections.
    public func stop() async {
        let running = tasks.withLock { t in defer { t.removeAll() }; return t }
        for t in running { t.cancel() }
        for t in running { await t.value }
        await client.transport.shutdown()
    }
}

extension KubernetesPodSource: Service {
    /// The watch and the node signalling as one service of ipamd's group: they end at graceful
    /// shutdown, then the connections close.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            self.start()
            let running = self.tasks.withLock { $0 }
            await withTaskCancellationHandler {
                for t in running { await t.value }
            } onCancel: {
                for t in running { t.cancel() }
            }
        }
        await stop()
    }
}
