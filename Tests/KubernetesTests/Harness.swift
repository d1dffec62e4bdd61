import Foundation
import IPAMDCore
import IPAMDKubernetes
import Kubernetes
import Logging
import NetModel
import Netlink
import Synchronization
import Testing
@_exported import TestSupport

/// A source connected to `server` with quick retries; stopped (connections closed) after `body`.
func withSource<T>(_ server: FakeAPIServer, wait: Double = 10, podENI: Bool = false, trunkLabel: Bool = false, pageSize: Int = 500,
                   watchTimeout: ClosedRange<Int> = 300...600, idleLimit: Duration = .seconds(150), listTimeout: Duration = .seconds(60),
                   _ body: (KubernetesPodSource) async throws -> T) async throws -> T {
    var settings = KubernetesSettings(nodeName: "node-1")
    settings.waitTimeout = wait
    settings.enablePodENI = podENI
    settings.enableTrunkLabel = trunkLabel
    let conn = try KubeConnection.kubeconfig(path: server.kubeconfigPath)
    var options = PodWatcher.Options(nodeName: "node-1")
    options.backoff = Backoff(initial: .milliseconds(50), maximum: .milliseconds(300))
    options.pageSize = pageSize
    options.watchTimeout = watchTimeout
    options.idleLimit = idleLimit
    options.listTimeout = listTimeout
    let source = KubernetesPodSource(settings: settings, transport: try HTTPClientTransport(connection: conn, logger: quiet), token: conn.token, logger: quiet,
                                     watchOptions: options, retry: Backoff(initial: .milliseconds(50), maximum: .milliseconds(300)))
    source.start()
    do {
        let r = try await body(source)
        await source.stop()
        return r
    } catch {
        await source.stop()
        throw error
    }
}

/// Waits for the first list and an open watch.
func synced(_ source: KubernetesPodSource, _ server: FakeAPIServer) async -> Bool {
    await eventually { source.cache.isSynced && (server.stats()["open_watches"] as? Int ?? 0) > 0 }
}
